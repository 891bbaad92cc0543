//! The fences of backups and restores: a backup reads the VM (allowed on readonly VMs unless
//! it stops them), a restore as a new VM needs a VMID nobody holds, and a restore into a VM
//! replaces its disks, so it is as guarded as destroy: managed, its name confirmed, and on the
//! cluster the same VM, stopped and unprotected.

use super::{Fence, FenceError};
use crate::model::VmKind;
use crate::proxmox::node_api::LiveConfig;
use crate::proxmox::Mutation;

impl Fence {
    /// The static verdict on a backup or restore, or `None` for any other mutation.
    pub(super) fn check_backup_restore(&self, m: &Mutation) -> Option<Result<(), FenceError>> {
        let vmid = m.vmid();
        Some(match m {
            // A backup reads the VM, which a readonly VM allows; any mode but `snapshot` stops
            // or suspends it, which is a change like any other.
            Mutation::Backup { mode, .. } if mode != "snapshot" => {
                let op = if mode == "stop" {
                    "back up with `--mode stop`"
                } else {
                    "back up in a mode that pauses"
                };
                self.check_vm(op, vmid, false)
            }
            Mutation::Backup { .. } => self.check_vm(m.name(), vmid, true),
            // A new VM: no VMID of definitions.nix (whatever its VM), and free on the cluster
            // (`check_target_free`, against the cluster read in the same run).
            Mutation::Restore { force: false, .. } => self.check_restore_new(vmid),
            Mutation::Restore {
                force: true,
                confirm,
                ..
            } => self.check_restore_into(vmid, confirm.as_deref()),
            _ => return None,
        })
    }

    fn check_restore_new(&self, vmid: u32) -> Result<(), FenceError> {
        if !self.undetermined.is_empty() {
            return Err(FenceError::VmidUndetermined {
                op: "restore",
                vmid,
                what: self.undetermined.clone(),
            });
        }
        match self.vms.get(&vmid) {
            Some(k) => Err(FenceError::VmidReserved {
                vmid,
                name: k.name.clone(),
            }),
            None => Ok(()),
        }
    }

    fn check_restore_into(&self, vmid: u32, confirm: Option<&str>) -> Result<(), FenceError> {
        const OP: &str = "restore into";
        self.check_vm(OP, vmid, false)?;
        let known = self.vms.get(&vmid);
        let k = match known {
            Some(k) if k.kind == VmKind::Managed => k,
            _ => {
                return Err(FenceError::RestoreNotManaged {
                    vmid,
                    name: known.map(|k| k.name.clone()),
                    kind: known.map(|k| k.kind.as_str()),
                })
            }
        };
        match confirm {
            Some(given) if given == k.name => Ok(()),
            given => Err(FenceError::RestoreConfirm {
                vmid,
                name: k.name.clone(),
                given: given.map(str::to_string),
            }),
        }
    }

    /// The live half of a restore into a VM, on the config and power state read from the
    /// VM's node in the same run: the VM there must be the one definitions.nix names, not
    /// protected, and stopped (Proxmox replaces only a stopped VM's disks).
    pub fn check_restore_live(
        &self,
        m: &Mutation,
        live: &LiveConfig,
        status: &str,
    ) -> Result<(), FenceError> {
        let vmid = m.vmid();
        let live_name = live.get("name").map(str::to_string);
        if let Some(k) = self.vms.get(&vmid) {
            if live_name.as_deref() != Some(k.name.as_str()) {
                return Err(FenceError::NameMismatch {
                    op: m.name(),
                    vmid,
                    expected: k.name.clone(),
                    live: live_name,
                });
            }
        }
        if live.get("protection") == Some("1") {
            return Err(FenceError::Protected {
                op: m.name(),
                vmid,
                live: live_name,
            });
        }
        if live.get("template") == Some("1") {
            return Err(FenceError::LiveTemplate {
                op: m.name(),
                vmid,
                live: live_name,
            });
        }
        if status != "stopped" {
            return Err(FenceError::NotStopped {
                op: m.name(),
                vmid,
                live: live_name,
                status: status.to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Definitions, Vm};

    fn fence() -> Fence {
        let vm = |name: &str, kind, vmid, readonly| Vm {
            readonly,
            ..Vm::new(name, kind, Some(vmid))
        };
        Fence::from_definitions(&Definitions {
            imported: vec![vm("doc1", VmKind::Imported, 104, true)],
            managed: vec![vm("web", VmKind::Managed, 110, false)],
            ..Default::default()
        })
    }

    fn backup(vmid: u32, mode: &str) -> Mutation {
        Mutation::Backup {
            node: "pve2".into(),
            vmid,
            storage: "local".into(),
            mode: mode.into(),
            notes: "n".into(),
            keep_last: None,
        }
    }

    fn restore(vmid: u32, force: bool, confirm: Option<&str>) -> Mutation {
        Mutation::Restore {
            node: "pve2".into(),
            archive: "local:backup/vzdump-qemu-110-2026_01_01-00_00_00.vma.zst".into(),
            vmid,
            storage: None,
            name: None,
            unique: !force,
            force,
            confirm: confirm.map(str::to_string),
        }
    }

    #[test]
    fn a_backup_is_a_read_unless_it_stops_the_vm() {
        let f = fence();
        assert!(f.check(&backup(104, "snapshot")).is_ok());
        assert!(f.check(&backup(110, "stop")).is_ok());
        let e = f.check(&backup(104, "stop")).unwrap_err();
        assert!(matches!(e, FenceError::Readonly { .. }), "{e}");
        assert!(e.to_string().contains("back up with `--mode stop`"), "{e}");
        assert!(
            f.check(&backup(104, "suspend")).is_err(),
            "suspend pauses the VM"
        );
        // Unlisted VMIDs still need `--unlisted`.
        assert!(matches!(
            f.check(&backup(555, "snapshot")),
            Err(FenceError::Unlisted { .. })
        ));
    }

    #[test]
    fn a_restore_as_new_needs_a_vmid_nobody_holds() {
        let f = fence();
        assert!(f.check(&restore(111, false, None)).is_ok());
        let e = f.check(&restore(104, false, None)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "refusing to restore onto VMID 104: definitions.nix reserves it for `doc1`; restore \
             as a VMID it does not list (`vmctl restore NAME --from VOLUME --as NEWNAME` picks \
             one)"
        );
        let mut existing = std::collections::BTreeMap::new();
        existing.insert(111, Some("other".to_string()));
        assert!(matches!(
            f.check_target_free(&restore(111, false, None), &existing),
            Err(FenceError::VmidExists { .. })
        ));
        // Over an existing VM, the target exists by design.
        assert!(f
            .check_target_free(&restore(110, true, Some("web")), &existing)
            .is_ok());
    }

    #[test]
    fn a_restore_into_a_vm_is_guarded_like_destroy() {
        let f = fence();
        assert!(f.check(&restore(110, true, Some("web"))).is_ok());
        let e = f.check(&restore(110, true, None)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "refusing to restore into VM 110 (web): it replaces the VM's disks and snapshots, so \
             it needs `--confirm web` (or restore beside it with `--as NEWNAME`)"
        );
        let e = f.check(&restore(110, true, Some("doc1"))).unwrap_err();
        assert!(
            e.to_string().contains("`--confirm doc1` does not match"),
            "{e}"
        );
        let e = f.check(&restore(104, true, Some("doc1"))).unwrap_err();
        assert!(matches!(e, FenceError::Readonly { .. }), "{e}");
        let e = f
            .clone()
            .allow_unlisted(true)
            .check(&restore(555, true, Some("x")))
            .unwrap_err();
        assert!(matches!(e, FenceError::RestoreNotManaged { .. }), "{e}");
    }

    #[test]
    fn the_live_vm_must_be_the_named_one_stopped_and_unprotected() {
        let f = fence();
        let m = restore(110, true, Some("web"));
        let conf = |json: &str| crate::proxmox::node_api::parse_config(json).unwrap();
        assert!(f
            .check_restore_live(&m, &conf(r#"{"name":"web","digest":"d"}"#), "stopped")
            .is_ok());
        let e = f
            .check_restore_live(&m, &conf(r#"{"name":"web","digest":"d"}"#), "running")
            .unwrap_err();
        assert!(e.to_string().contains("is running"), "{e}");
        let e = f
            .check_restore_live(&m, &conf(r#"{"name":"other","digest":"d"}"#), "stopped")
            .unwrap_err();
        assert!(matches!(e, FenceError::NameMismatch { .. }), "{e}");
        let e = f
            .check_restore_live(
                &m,
                &conf(r#"{"name":"web","protection":1,"digest":"d"}"#),
                "stopped",
            )
            .unwrap_err();
        assert!(matches!(e, FenceError::Protected { .. }), "{e}");
    }
}
