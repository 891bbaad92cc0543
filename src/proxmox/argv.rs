//! Argv builders: every command vmctl runs on the Proxmox host, as a vector of arguments.
//!
//! The argv is what the remote program must receive; `quote::command_line` turns it into the
//! string SSH carries. Reads are plain functions; mutations are `Mutation` values so fences,
//! dry-run and the executor all look at the same description of what will happen.

use serde::Serialize;

use super::VmId;

mod node;

use node::node_argv;
pub use node::{backups, task_log, task_status};

fn v(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// Cluster-wide VM list, machine-readable.
pub fn list() -> Vec<String> {
    v(&[
        "pvesh",
        "get",
        "/cluster/resources",
        "--type",
        "vm",
        "--output-format",
        "json",
    ])
}

/// This node's VMs in `qm list`'s fixed-width table (`list` is cluster-wide and preferred).
pub fn qm_list() -> Vec<String> {
    v(&["qm", "list"])
}

pub fn status(vmid: VmId) -> Vec<String> {
    v(&["qm", "status", &vmid.to_string()])
}

pub fn config(vmid: VmId) -> Vec<String> {
    v(&["qm", "config", &vmid.to_string()])
}

pub fn storage() -> Vec<String> {
    v(&["pvesm", "status"])
}

pub fn list_snapshots(vmid: VmId) -> Vec<String> {
    v(&["qm", "listsnapshot", &vmid.to_string()])
}

pub fn guest_interfaces(vmid: VmId) -> Vec<String> {
    v(&[
        "qm",
        "guest",
        "cmd",
        &vmid.to_string(),
        "network-get-interfaces",
    ])
}

/// The Proxmox host's neighbour table (ARP and NDP), for get-ip without a guest agent.
pub fn neighbours() -> Vec<String> {
    v(&["ip", "neigh", "show"])
}

/// The tasks still running on `node` for VM `vmid` (a clone, a backup, …): what holds a VM's
/// lock, or nothing when the lock outlived the task that took it.
pub fn active_tasks(node: &str, vmid: VmId) -> Vec<String> {
    v(&[
        "pvesh",
        "get",
        &format!("/nodes/{node}/tasks"),
        "--vmid",
        &vmid.to_string(),
        "--source",
        "active",
        "--output-format",
        "json",
    ])
}

/// Writes stdin to `path` on the Proxmox host, readable only by its owner (cloud-init's
/// `--sshkeys` takes a file path on the host). The path is an argument of the script, never
/// part of it.
pub fn upload(path: &str) -> Vec<String> {
    v(&[
        "sh",
        "-c",
        "umask 077 && cat > \"$1\"",
        "vmctl-upload",
        path,
    ])
}

/// The interactive serial console.
pub fn console(vmid: VmId) -> Vec<String> {
    v(&["qm", "terminal", &vmid.to_string()])
}

/// What `qm clone` should make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CloneSpec {
    pub source: VmId,
    pub vmid: VmId,
    pub name: String,
    /// Full copy instead of a linked clone (templates default to linked).
    pub full: bool,
    /// Target storage; Proxmox accepts it only for full clones.
    pub storage: Option<String>,
    /// Target node; Proxmox accepts it only with shared storage.
    pub target: Option<String>,
    pub pool: Option<String>,
    pub description: Option<String>,
}

impl CloneSpec {
    /// A clone of `source` as `vmid` named `name` with Proxmox's defaults (a linked clone of a
    /// template, no storage, node, pool or description); set the fields that differ.
    pub fn new(source: VmId, vmid: VmId, name: impl Into<String>) -> Self {
        CloneSpec {
            source,
            vmid,
            name: name.into(),
            full: false,
            storage: None,
            target: None,
            pool: None,
            description: None,
        }
    }
}

/// Every command that changes the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Mutation {
    Clone(CloneSpec),
    /// `qm set ID --KEY VALUE …` (cores, memory, name, description, any other option).
    Configure {
        vmid: VmId,
        options: Vec<(String, String)>,
    },
    /// Allocates a new volume: `qm set ID --DISK STORAGE:SIZE_GIB`.
    CreateDisk {
        vmid: VmId,
        disk: String,
        storage: String,
        size_gib: u64,
    },
    /// `qm resize ID DISK SIZE` (`+10G` grows by, `40G` grows to).
    Resize {
        vmid: VmId,
        disk: String,
        size: String,
    },
    RestoreVma {
        archive: String,
        vmid: VmId,
        storage: Option<String>,
    },
    /// Adds `serial0: socket` so `console` has a terminal to attach to.
    SerialSocket {
        vmid: VmId,
    },
    Start {
        vmid: VmId,
    },
    Stop {
        vmid: VmId,
    },
    Shutdown {
        vmid: VmId,
    },
    Template {
        vmid: VmId,
    },
    /// `qm destroy ID --purge 1`; `confirm` is the name the user typed, checked by the fence.
    Destroy {
        vmid: VmId,
        confirm: Option<String>,
    },
    SnapshotCreate {
        vmid: VmId,
        name: String,
        description: Option<String>,
        vmstate: bool,
    },
    SnapshotRollback {
        vmid: VmId,
        name: String,
    },
    SnapshotDelete {
        vmid: VmId,
        name: String,
    },
    Protect {
        vmid: VmId,
        on: bool,
    },
    // Backup, restore and migration: they name the node that holds the VM (or the archive) and
    // go through that node's API path, so they reach a VM on any node of the cluster.
    /// `pvesh create /nodes/NODE/vzdump --vmid ID --storage S --mode M --notes-template N`
    /// (a task: the answer is its UPID). A backup reads the VM; only `stop` mode changes it.
    Backup {
        node: String,
        vmid: VmId,
        storage: String,
        /// `snapshot`, `suspend` or `stop`.
        mode: String,
        notes: String,
        /// `--prune-backups keep-last=N`: the VM's older backups on the storage beyond N go.
        keep_last: Option<u32>,
    },
    /// `pvesh create /nodes/NODE/qemu --vmid ID --archive VOLUME …`: a backup restored as a
    /// new VM (`force` false: the VMID must be free cluster-wide) or over an existing one
    /// (`force` true: its disks and snapshots are replaced; `confirm` is the name the user
    /// typed, checked by the fence).
    Restore {
        node: String,
        archive: String,
        vmid: VmId,
        storage: Option<String>,
        /// Overrides the backup's `name` (Proxmox merges non-disk options on restore).
        name: Option<String>,
        /// New MAC addresses, so the restored VM can run beside the original.
        unique: bool,
        force: bool,
        confirm: Option<String>,
    },
    /// `pvesh create /nodes/NODE/qemu/ID/migrate --target T [--online 1] [--with-local-disks 1]`
    /// (a task); `node` is where the VM is now.
    Migrate {
        node: String,
        vmid: VmId,
        target: String,
        online: bool,
        with_local_disks: bool,
    },
}

impl Mutation {
    /// The VM this changes (for a clone or restore: the VM it creates).
    pub fn vmid(&self) -> VmId {
        match self {
            Mutation::Clone(c) => c.vmid,
            Mutation::Configure { vmid, .. }
            | Mutation::CreateDisk { vmid, .. }
            | Mutation::Resize { vmid, .. }
            | Mutation::RestoreVma { vmid, .. }
            | Mutation::SerialSocket { vmid }
            | Mutation::Start { vmid }
            | Mutation::Stop { vmid }
            | Mutation::Shutdown { vmid }
            | Mutation::Template { vmid }
            | Mutation::Destroy { vmid, .. }
            | Mutation::SnapshotCreate { vmid, .. }
            | Mutation::SnapshotRollback { vmid, .. }
            | Mutation::SnapshotDelete { vmid, .. }
            | Mutation::Protect { vmid, .. }
            | Mutation::Backup { vmid, .. }
            | Mutation::Restore { vmid, .. }
            | Mutation::Migrate { vmid, .. } => *vmid,
        }
    }

    /// The command's name as `vmctl ops` spells it, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Mutation::Clone(_) => "clone",
            Mutation::Configure { .. } => "configure",
            Mutation::CreateDisk { .. } => "create-disk",
            Mutation::Resize { .. } => "resize",
            Mutation::RestoreVma { .. } => "restore-vma",
            Mutation::SerialSocket { .. } => "serial-socket",
            Mutation::Start { .. } => "start",
            Mutation::Stop { .. } => "stop",
            Mutation::Shutdown { .. } => "shutdown",
            Mutation::Template { .. } => "template",
            Mutation::Destroy { .. } => "destroy",
            Mutation::SnapshotCreate { .. } => "snapshot create",
            Mutation::SnapshotRollback { .. } => "snapshot rollback",
            Mutation::SnapshotDelete { .. } => "snapshot delete",
            Mutation::Protect { .. } => "protect",
            Mutation::Backup { .. } => "back up",
            Mutation::Restore { force: false, .. } => "restore",
            Mutation::Restore { force: true, .. } => "restore into",
            Mutation::Migrate { .. } => "migrate",
        }
    }

    /// The remote argv that performs this mutation.
    pub fn argv(&self) -> Vec<String> {
        let id = self.vmid().to_string();
        let mut a: Vec<String> = Vec::new();
        let mut push = |s: &str| a.push(s.to_string());
        match self {
            Mutation::Clone(c) => {
                for s in ["qm", "clone", &c.source.to_string(), &id, "--name", &c.name] {
                    push(s);
                }
                if c.full {
                    push("--full");
                    push("1");
                }
                for (flag, val) in [
                    ("--storage", &c.storage),
                    ("--target", &c.target),
                    ("--pool", &c.pool),
                    ("--description", &c.description),
                ] {
                    if let Some(val) = val {
                        push(flag);
                        push(val);
                    }
                }
            }
            Mutation::Configure { options, .. } => {
                for s in ["qm", "set", &id] {
                    push(s);
                }
                for (k, val) in options {
                    push(&format!("--{k}"));
                    push(val);
                }
            }
            Mutation::CreateDisk {
                disk,
                storage,
                size_gib,
                ..
            } => {
                for s in [
                    "qm",
                    "set",
                    &id,
                    &format!("--{disk}"),
                    &format!("{storage}:{size_gib}"),
                ] {
                    push(s);
                }
            }
            Mutation::Resize { disk, size, .. } => {
                for s in ["qm", "resize", &id, disk, size] {
                    push(s);
                }
            }
            Mutation::RestoreVma {
                archive, storage, ..
            } => {
                for s in ["qmrestore", archive, &id] {
                    push(s);
                }
                if let Some(s) = storage {
                    push("--storage");
                    push(s);
                }
            }
            Mutation::SerialSocket { .. } => {
                for s in ["qm", "set", &id, "--serial0", "socket"] {
                    push(s);
                }
            }
            Mutation::Start { .. } => a = v(&["qm", "start", &id]),
            Mutation::Stop { .. } => a = v(&["qm", "stop", &id]),
            Mutation::Shutdown { .. } => a = v(&["qm", "shutdown", &id]),
            Mutation::Template { .. } => a = v(&["qm", "template", &id]),
            Mutation::Destroy { .. } => a = v(&["qm", "destroy", &id, "--purge", "1"]),
            Mutation::SnapshotCreate {
                name,
                description,
                vmstate,
                ..
            } => {
                for s in ["qm", "snapshot", &id, name] {
                    push(s);
                }
                if let Some(d) = description {
                    push("--description");
                    push(d);
                }
                if *vmstate {
                    push("--vmstate");
                    push("1");
                }
            }
            Mutation::SnapshotRollback { name, .. } => a = v(&["qm", "rollback", &id, name]),
            Mutation::SnapshotDelete { name, .. } => a = v(&["qm", "delsnapshot", &id, name]),
            Mutation::Protect { on, .. } => {
                a = v(&[
                    "qm",
                    "set",
                    &id,
                    "--protection",
                    if *on { "1" } else { "0" },
                ])
            }
            Mutation::Backup { .. } | Mutation::Restore { .. } | Mutation::Migrate { .. } => {
                a = node_argv(self)
            }
        }
        a
    }
}

/// Parses a disk size as the seed wrote it (`20G`, `20`, `512M` is refused) into GiB.
pub fn parse_size_gib(size: &str) -> Option<u64> {
    let s = size.trim();
    let digits = s
        .strip_suffix('G')
        .or_else(|| s.strip_suffix("GiB"))
        .or_else(|| s.strip_suffix('g'))
        .unwrap_or(s);
    digits.parse().ok().filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(m: &Mutation) -> String {
        super::super::command_line(&m.argv())
    }

    #[test]
    fn reads() {
        assert_eq!(
            list().join(" "),
            "pvesh get /cluster/resources --type vm --output-format json"
        );
        assert_eq!(status(104), ["qm", "status", "104"]);
        assert_eq!(
            guest_interfaces(110).join(" "),
            "qm guest cmd 110 network-get-interfaces"
        );
    }

    #[test]
    fn upload_passes_the_path_as_an_argument() {
        assert_eq!(
            super::super::command_line(&upload("/tmp/keys of $(x)")),
            "sh -c 'umask 077 && cat > \"$1\"' vmctl-upload '/tmp/keys of $(x)'"
        );
    }

    #[test]
    fn clone_full_with_options() {
        let m = Mutation::Clone(CloneSpec {
            source: 9001,
            vmid: 110,
            name: "test-automation".into(),
            full: true,
            storage: Some("nvmeprom".into()),
            target: None,
            pool: Some("lab".into()),
            description: Some("made by vmctl; don't touch".into()),
        });
        assert_eq!(
            line(&m),
            "qm clone 9001 110 --name test-automation --full 1 --storage nvmeprom --pool lab \
             --description 'made by vmctl; don'\\''t touch'"
        );
    }

    #[test]
    fn mutations() {
        let cases = [
            (
                Mutation::Configure {
                    vmid: 110,
                    options: vec![
                        ("cores".into(), "2".into()),
                        ("memory".into(), "4096".into()),
                    ],
                },
                "qm set 110 --cores 2 --memory 4096",
            ),
            (
                Mutation::CreateDisk {
                    vmid: 110,
                    disk: "scsi0".into(),
                    storage: "nvmeprom".into(),
                    size_gib: 20,
                },
                "qm set 110 --scsi0 nvmeprom:20",
            ),
            (
                Mutation::Resize {
                    vmid: 110,
                    disk: "scsi0".into(),
                    size: "+10G".into(),
                },
                "qm resize 110 scsi0 +10G",
            ),
            (
                Mutation::RestoreVma {
                    archive: "/var/lib/vz/dump/vzdump-qemu-104.vma.zst".into(),
                    vmid: 120,
                    storage: Some("nvmeprom".into()),
                },
                "qmrestore /var/lib/vz/dump/vzdump-qemu-104.vma.zst 120 --storage nvmeprom",
            ),
            (
                Mutation::SerialSocket { vmid: 110 },
                "qm set 110 --serial0 socket",
            ),
            (
                Mutation::Destroy {
                    vmid: 110,
                    confirm: Some("x".into()),
                },
                "qm destroy 110 --purge 1",
            ),
            (
                Mutation::SnapshotCreate {
                    vmid: 110,
                    name: "pre".into(),
                    description: Some("before $(upgrade)".into()),
                    vmstate: true,
                },
                "qm snapshot 110 pre --description 'before $(upgrade)' --vmstate 1",
            ),
            (
                Mutation::Protect {
                    vmid: 110,
                    on: false,
                },
                "qm set 110 --protection 0",
            ),
        ];
        for (m, want) in cases {
            assert_eq!(line(&m), want, "{}", m.name());
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size_gib("20G"), Some(20));
        assert_eq!(parse_size_gib("20"), Some(20));
        assert_eq!(parse_size_gib("512M"), None);
        assert_eq!(parse_size_gib("0"), None);
    }
}
