//! The argv of the operations that name their node and go through its API path (backup,
//! restore, migrate, and the reads of backups and tasks), so they reach a VM on any node of
//! the cluster; checked against qemu-server's `API2/Qemu.pm` (`create_vm` with `archive`,
//! `migrate_vm`), pve-manager's vzdump API and the storage content and task APIs.

use super::{v, Mutation, VmId};

/// The argv of the mutations that go through their node's API path.
pub(super) fn node_argv(m: &Mutation) -> Vec<String> {
    fn opt(a: &mut Vec<String>, k: &str, val: &str) {
        a.push(format!("--{k}"));
        a.push(val.to_string());
    }
    let mut a: Vec<String>;
    match m {
        Mutation::Backup {
            node,
            vmid,
            storage,
            mode,
            notes,
            keep_last,
        } => {
            a = v(&["pvesh", "create", &format!("/nodes/{node}/vzdump")]);
            opt(&mut a, "vmid", &vmid.to_string());
            opt(&mut a, "storage", storage);
            opt(&mut a, "mode", mode);
            opt(&mut a, "notes-template", notes);
            if let Some(k) = keep_last {
                opt(&mut a, "prune-backups", &format!("keep-last={k}"));
            }
        }
        Mutation::Restore {
            node,
            archive,
            vmid,
            storage,
            name,
            unique,
            force,
            ..
        } => {
            a = v(&["pvesh", "create", &format!("/nodes/{node}/qemu")]);
            opt(&mut a, "vmid", &vmid.to_string());
            opt(&mut a, "archive", archive);
            if let Some(s) = storage {
                opt(&mut a, "storage", s);
            }
            if let Some(n) = name {
                opt(&mut a, "name", n);
            }
            if *unique {
                opt(&mut a, "unique", "1");
            }
            if *force {
                opt(&mut a, "force", "1");
            }
        }
        Mutation::Migrate {
            node,
            vmid,
            target,
            online,
            with_local_disks,
        } => {
            a = v(&[
                "pvesh",
                "create",
                &format!("/nodes/{node}/qemu/{vmid}/migrate"),
            ]);
            opt(&mut a, "target", target);
            if *online {
                opt(&mut a, "online", "1");
            }
            if *with_local_disks {
                opt(&mut a, "with-local-disks", "1");
            }
        }
        _ => unreachable!("node_argv is called for backup, restore and migrate only"),
    }
    a
}

/// The backups of VM `vmid` on `storage`, as the node that holds them lists them.
pub fn backups(node: &str, storage: &str, vmid: VmId) -> Vec<String> {
    v(&[
        "pvesh",
        "get",
        &format!("/nodes/{node}/storage/{storage}/content"),
        "--content",
        "backup",
        "--vmid",
        &vmid.to_string(),
        "--output-format",
        "json",
    ])
}

/// A task's state (`running` or `stopped`, with `exitstatus` once stopped).
pub fn task_status(node: &str, upid: &str) -> Vec<String> {
    v(&[
        "pvesh",
        "get",
        &format!("/nodes/{node}/tasks/{upid}/status"),
        "--output-format",
        "json",
    ])
}

/// A task's log, `[{"n":1,"t":"line"},…]`.
pub fn task_log(node: &str, upid: &str) -> Vec<String> {
    v(&[
        "pvesh",
        "get",
        &format!("/nodes/{node}/tasks/{upid}/log"),
        "--limit",
        "1000",
        "--output-format",
        "json",
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(m: &Mutation) -> String {
        crate::proxmox::command_line(&m.argv())
    }

    #[test]
    fn node_mutations() {
        let cases = [
            (
                Mutation::Migrate {
                    node: "prom".into(),
                    vmid: 110,
                    target: "prom2".into(),
                    online: true,
                    with_local_disks: true,
                },
                "pvesh create /nodes/prom/qemu/110/migrate --target prom2 --online 1 \
                 --with-local-disks 1",
            ),
            (
                Mutation::Backup {
                    node: "pve2".into(),
                    vmid: 110,
                    storage: "pbs".into(),
                    mode: "snapshot".into(),
                    notes: "vmctl backup of web".into(),
                    keep_last: Some(3),
                },
                "pvesh create /nodes/pve2/vzdump --vmid 110 --storage pbs --mode snapshot \
                 --notes-template 'vmctl backup of web' --prune-backups 'keep-last=3'",
            ),
            (
                Mutation::Restore {
                    node: "pve3".into(),
                    archive: "local:backup/vzdump-qemu-110-2026_01_01-00_00_00.vma.zst".into(),
                    vmid: 111,
                    storage: None,
                    name: Some("web-restored".into()),
                    unique: true,
                    force: false,
                    confirm: None,
                },
                "pvesh create /nodes/pve3/qemu --vmid 111 --archive \
                 local:backup/vzdump-qemu-110-2026_01_01-00_00_00.vma.zst --name web-restored \
                 --unique 1",
            ),
        ];
        for (m, want) in cases {
            assert_eq!(line(&m), want, "{}", m.name());
        }
    }

    #[test]
    fn node_reads() {
        assert_eq!(
            backups("pve2", "pbs", 110).join(" "),
            "pvesh get /nodes/pve2/storage/pbs/content --content backup --vmid 110 \
             --output-format json"
        );
        let upid = "UPID:pve2:0000AB12:00000000:6B0CF634:vzdump:110:root@pam:";
        assert_eq!(
            crate::proxmox::command_line(&task_status("pve2", upid)),
            format!("pvesh get /nodes/pve2/tasks/{upid}/status --output-format json")
        );
        assert_eq!(
            task_log("pve2", upid)[2],
            format!("/nodes/pve2/tasks/{upid}/log")
        );
    }
}
