//! The pure part of `vmctl backup`, `vmctl backups` and `vmctl restore`: the notes a backup
//! carries, the backup volume IDs, reading a node's list of backups, and the backup policy.
//! The mutations themselves are `Mutation::Backup` and `Mutation::Restore`, fenced by
//! `proxmox::fence` like every other change.

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
    #[error("vms/definitions.nix has no `backups` policy for `vmctl backup --due`")]
    #[diagnostic(help(
        "add `backups = {{ vms = [ \"web\" ]; storage = \"local\"; keep = 7; everyHours = 24; }};`"
    ))]
    NoPolicy,
    #[error("`{0}` in `backups.vms` is not a VM of vms/definitions.nix with a vmid")]
    #[diagnostic(help("name VMs of vms/definitions.nix in `backups.vms`"))]
    PolicyVm(String),
    #[error("`backups.{0}` is `{1}`, which vmctl cannot follow")]
    #[diagnostic(help("storage: a Proxmox storage ID; mode: `snapshot` or `stop`; keep: 1 to 1000; everyHours: 1 to 8760"))]
    PolicyValue(&'static str, String),
    #[error("`{0}` is already a VM of vms/definitions.nix")]
    #[diagnostic(help("choose a new name for the restored VM"))]
    NameTaken(String),
    #[error("`{0}` is not a valid VM name for the restored VM")]
    #[diagnostic(help("a DNS label: letters, digits and `-`, starting with a letter"))]
    BadName(String),
}

/// One backup volume as the storage's content list gives it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Volume {
    pub volid: String,
    pub size: u64,
    pub vmid: u32,
}

/// The notes a backup carries: who made it, of which VM, at which commit of the fleet.
pub fn notes(name: &str, commit: Option<&str>) -> String {
    match commit {
        Some(c) => format!("vmctl backup of {name} at fleet commit {c}"),
        None => format!("vmctl backup of {name} (fleet not in git)"),
    }
}

/// Reads `pvesh get /nodes/N/storage/S/content --content backup --output-format json` (an
/// array of `{volid, size, vmid, format, ctime, …}`), sorted by volume ID (oldest first, as
/// vzdump names them by time). Entries of another kind or without a VMID are left out.
pub fn parse_volumes(json: &str) -> Result<Vec<Volume>, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let items = v.as_array().ok_or("expected a JSON array")?;
    let mut out: Vec<Volume> = items
        .iter()
        .filter(|e| {
            e.get("content")
                .and_then(|c| c.as_str())
                .unwrap_or("backup")
                == "backup"
        })
        .filter_map(|e| {
            Some(Volume {
                volid: e.get("volid")?.as_str()?.to_string(),
                size: e.get("size").and_then(|s| s.as_u64()).unwrap_or(0),
                vmid: u32::try_from(e.get("vmid")?.as_u64()?).ok()?,
            })
        })
        .collect();
    out.sort_by(|a, b| a.volid.cmp(&b.volid));
    Ok(out)
}

/// The storage a backup volume ID names (`STORAGE:backup/…`).
pub fn volume_storage(volid: &str) -> &str {
    volid.split_once(':').map_or("local", |(s, _)| s)
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

/// When a backup was made, from its volume name (`…-YYYY_MM_DD-HH_MM_SS.…`), in seconds since
/// the epoch (UTC, as vzdump names them).
pub fn volume_time(volid: &str) -> Option<u64> {
    let file = volid.rsplit('/').next()?;
    let rest = file.strip_prefix("vzdump-qemu-")?;
    let (_, stamp) = rest.split_once('-')?;
    let digits: Vec<u64> = stamp
        .split(['_', '-', '.'])
        .take(6)
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [y, mo, d, h, mi, se] = digits[..] else {
        return None;
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = i64::try_from(y).ok()? - i64::from(mo <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::try_from(mo).ok()? + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::try_from(d).ok()? - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400)
        .ok()
        .map(|s| s + h * 3600 + mi * 60 + se)
}

/// One VM the policy backs up, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyVm {
    pub name: String,
    pub vmid: u32,
}

/// The backup policy of definitions.nix, resolved: its VMs (each must be a VM of the file with
/// a VMID), its storage (default `local`), mode (`snapshot` or `stop`, default `snapshot`),
/// how many backups each VM keeps and how often one is due.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub vms: Vec<PolicyVm>,
    pub storage: String,
    pub mode: String,
    pub keep: Option<u32>,
    pub every_hours: u64,
}

/// The policy as `vmctl backup --due` follows it; anything it cannot follow exactly is refused.
pub fn policy(defs: &crate::model::Definitions) -> Result<Policy, BackupError> {
    let p = defs.backup_policy.as_ref().ok_or(BackupError::NoPolicy)?;
    let mut vms = Vec::new();
    for name in &p.vms {
        let vm = defs
            .vm_by_name(name)
            .ok_or_else(|| BackupError::PolicyVm(name.clone()))?;
        let vmid = vm.vmid.ok_or_else(|| BackupError::PolicyVm(name.clone()))?;
        vms.push(PolicyVm {
            name: name.clone(),
            vmid,
        });
    }
    let storage = p.storage.clone().unwrap_or_else(|| "local".into());
    valid::storage(&storage).map_err(|_| BackupError::PolicyValue("storage", storage.clone()))?;
    let mode = p.mode.clone().unwrap_or_else(|| "snapshot".into());
    if mode != "snapshot" && mode != "stop" {
        return Err(BackupError::PolicyValue("mode", mode));
    }
    let bounded = |v: Option<(i64, _)>, field, lo: i64, hi: i64| match v {
        None => Ok(None),
        Some((n, _)) if (lo..=hi).contains(&n) => Ok(Some(n)),
        Some((n, _)) => Err(BackupError::PolicyValue(field, n.to_string())),
    };
    let keep = bounded(p.keep, "keep", 1, 1000)?.map(|k| k as u32);
    let every_hours = bounded(p.every_hours, "everyHours", 1, 8760)?.unwrap_or(24) as u64;
    Ok(Policy {
        vms,
        storage,
        mode,
        keep,
        every_hours,
    })
}

/// Whether a VM with these backups is due at `now`: none yet, or the newest is at least
/// `every_hours` old. A volume whose time cannot be read does not count as recent.
pub fn is_due(volumes: &[Volume], vmid: u32, now: u64, every_hours: u64) -> bool {
    let newest = volumes
        .iter()
        .filter(|v| v.vmid == vmid)
        .filter_map(|v| volume_time(&v.volid))
        .max();
    newest.is_none_or(|t| now.saturating_sub(t) >= every_hours * 3600)
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
        let json = r#"[{"volid":"local:backup/vzdump-qemu-110-2026_11_30-02_00_00.vma.zst",
                        "format":"vma.zst","content":"backup","size":1234,"vmid":110,
                        "ctime":1796003715},
                       {"volid":"local:backup/vzdump-qemu-110-2026_11_29-02_00_00.vma.zst",
                        "content":"backup","size":1,"vmid":110},
                       {"volid":"local:iso/x.iso","content":"iso","size":1}]"#;
        let v = parse_volumes(json).unwrap();
        assert_eq!(v.len(), 2);
        assert!(v[0].volid.contains("2026_11_29"), "oldest first: {v:?}");
        let v = &v[1..];
        assert!(parse_volumes("{}").is_err());
        assert_eq!(volume_storage(&v[0].volid), "local");
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
        assert!(notes("web", Some("abc")).contains("abc"));
        let t = volume_time("local:backup/vzdump-qemu-110-2026_11_30-01_55_15.vma.zst").unwrap();
        assert_eq!(t, 1_796_003_715);
        assert_eq!(
            volume_time("local:backup/vzdump-qemu-110-2026_13_30-01_55_15.vma.zst"),
            None
        );
        let v = |id, stamp: &str| Volume {
            volid: format!("local:backup/vzdump-qemu-{id}-{stamp}.vma.zst"),
            size: 1,
            vmid: id,
        };
        let vols = [v(110, "2026_11_30-01_55_15"), v(111, "2026_11_20-00_00_00")];
        assert!(!is_due(&vols, 110, t + 3600, 24));
        assert!(is_due(&vols, 110, t + 24 * 3600, 24));
        assert!(is_due(&vols, 112, t, 24), "no backup yet");
    }
}
