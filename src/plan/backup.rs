//! The pure part of `vmctl backup`, `vmctl backups` and `vmctl restore`: the command lines
//! (vzdump, `pvesm list`, qmrestore), the notes a backup carries, and reading the volume list.

use crate::proxmox::validate as valid;

/// Why a backup or restore request is refused before anything is sent.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BackupError {
    #[error("`{0}` is not a backup volume ID (`STORAGE:backup/vzdump-qemu-VMID-….vma.zst`)")]
    #[diagnostic(help("copy one from `vmctl backups NAME`"))]
    NotAVolume(String),
    #[error("the backup `{volume}` is of VMID {of}, not of `{name}` (VMID {vmid})")]
    #[diagnostic(help("choose one of `vmctl backups {name}`"))]
    OtherVm {
        volume: String,
        of: u32,
        name: String,
        vmid: u32,
    },
    #[error("restoring into `{0}` replaces its disks and snapshots: it needs `--confirm {0}`")]
    #[diagnostic(help(
        "run it again with `--confirm {0}` (a backup of its state now is taken first), or restore beside it with `--as NEWNAME`"
    ))]
    NotConfirmed(String),
    #[error("`{0}` is readonly or imported: vmctl never restores into it")]
    #[diagnostic(help("restore beside it with `--as NEWNAME`"))]
    Readonly(String),
    #[error("`{0}` is running: qmrestore replaces only a stopped VM")]
    #[diagnostic(help("stop it first (`vmctl ops shutdown VMID`), then run the restore again"))]
    Running(String),
    #[error("`{0}` is already a VM of vms/definitions.nix")]
    #[diagnostic(help("choose a new name for the restored VM"))]
    NameTaken(String),
    #[error("`{0}` is not a valid VM name for the restored VM")]
    #[diagnostic(help("a DNS label: letters, digits and `-`, starting with a letter"))]
    BadName(String),
    #[error("`{0}` is readonly: `--mode stop` would stop it")]
    #[diagnostic(help("use `--mode snapshot` (the default), which does not stop the VM"))]
    StopReadonly(String),
}

/// One backup volume as `pvesm list --content backup` prints it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Volume {
    pub volid: String,
    pub size: u64,
    pub vmid: u32,
}

/// `vzdump VMID --storage S --mode M --notes-template NOTES`.
pub fn vzdump_argv(vmid: u32, storage: &str, mode: &str, notes: &str) -> Vec<String> {
    [
        "vzdump",
        &vmid.to_string(),
        "--storage",
        storage,
        "--mode",
        mode,
        "--notes-template",
        notes,
    ]
    .map(String::from)
    .to_vec()
}

/// The notes a backup carries: who made it, of which VM, at which commit of the fleet.
pub fn notes(name: &str, commit: Option<&str>) -> String {
    match commit {
        Some(c) => format!("vmctl backup of {name} at fleet commit {c}"),
        None => format!("vmctl backup of {name} (fleet not in git)"),
    }
}

/// `pvesm list STORAGE --content backup --vmid VMID`.
pub fn list_argv(storage: &str, vmid: u32) -> Vec<String> {
    [
        "pvesm",
        "list",
        storage,
        "--content",
        "backup",
        "--vmid",
        &vmid.to_string(),
    ]
    .map(String::from)
    .to_vec()
}

/// Reads `pvesm list` output (a header, then `VOLID FORMAT TYPE SIZE VMID` rows).
pub fn parse_volumes(text: &str) -> Vec<Volume> {
    text.lines()
        .skip_while(|l| !l.trim_start().starts_with("Volid"))
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (volid, size, vmid) = (f.first()?, f.get(3)?, f.get(4)?);
            Some(Volume {
                volid: volid.to_string(),
                size: size.parse().ok()?,
                vmid: vmid.parse().ok()?,
            })
        })
        .collect()
}

/// The VMID a backup volume ID names (`…:backup/vzdump-qemu-VMID-…`), checking its shape as
/// strictly as qmrestore's argument is quoted and sent.
pub fn volume_vmid(volid: &str) -> Result<u32, BackupError> {
    let bad = || BackupError::NotAVolume(volid.to_string());
    let (storage, rest) = volid.split_once(':').ok_or_else(bad)?;
    let file = rest.strip_prefix("backup/").ok_or_else(bad)?;
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !plain(storage) || !plain(file) || file.starts_with('.') {
        return Err(bad());
    }
    file.strip_prefix("vzdump-qemu-")
        .and_then(|r| r.split('-').next())
        .and_then(|id| id.parse().ok())
        .ok_or_else(bad)
}

/// `qmrestore VOLUME VMID --unique 1` (new MAC addresses: the original VM may still run).
pub fn restore_argv(volid: &str, vmid: u32) -> Vec<String> {
    ["qmrestore", volid, &vmid.to_string(), "--unique", "1"]
        .map(String::from)
        .to_vec()
}

/// `qmrestore VOLUME VMID --force 1`: over the existing VM (its disks and snapshots go).
pub fn restore_over_argv(volid: &str, vmid: u32) -> Vec<String> {
    ["qmrestore", volid, &vmid.to_string(), "--force", "1"]
        .map(String::from)
        .to_vec()
}

/// Whether `name` can be a new VM's name (Proxmox's DNS-name rule, as vmctl's VM names).
pub fn check_new_name(name: &str) -> Result<(), BackupError> {
    match valid::vm_name(name) {
        Ok(_) => Ok(()),
        Err(_) => Err(BackupError::BadName(name.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_are_read_and_checked() {
        let text = "Volid                        Format  Type  Size VMID\n\
                    local:backup/vzdump-qemu-110-2026_11_30-02_00_00.vma.zst vma.zst backup 1234 110\n";
        let v = parse_volumes(text);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].vmid, 110);
        assert_eq!(volume_vmid(&v[0].volid).unwrap(), 110);
        for bad in [
            "local:vzdump-qemu-110.vma",
            "local:backup/../x",
            "local:backup/vzdump-qemu-x-1.vma",
            "lo cal:backup/vzdump-qemu-110-1.vma",
            "/var/lib/vz/dump/vzdump-qemu-110-1.vma",
        ] {
            assert!(volume_vmid(bad).is_err(), "{bad}");
        }
        assert_eq!(
            vzdump_argv(110, "local", "snapshot", "n"),
            [
                "vzdump",
                "110",
                "--storage",
                "local",
                "--mode",
                "snapshot",
                "--notes-template",
                "n"
            ]
        );
        assert!(notes("web", Some("abc")).contains("abc"));
    }
}
