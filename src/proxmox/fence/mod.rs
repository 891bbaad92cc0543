//! Safety fences: which mutations vmctl refuses, decided from definitions.nix before anything
//! is sent to Proxmox, and (for destroy, rollback and template) from the live VM just before.
//!
//! The fence takes plain values (`Fence::from_definitions`) so the library enforces it on every
//! path (CLI, provisioning, tests), not only at the command line. It fails closed: a value it
//! cannot be sure of makes it refuse, never allow.

mod backup;
mod error;
mod live;

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Definitions, Given, VmKind};

use super::{Mutation, VmId};

pub use error::FenceError;

/// What definitions.nix says about one VMID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub name: String,
    pub kind: VmKind,
    /// `readonly = true`, or a `readonly` nobody could determine (treated as true).
    pub readonly: bool,
    /// How `readonly` was written (an imported VM needs `readonly = false` written out for
    /// destructive operations).
    pub readonly_given: Given,
}

/// The fences for one fleet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fence {
    vms: BTreeMap<VmId, Known>,
    /// Values whose VMID cannot be known: while any exists, every mutation is refused.
    undetermined: Vec<String>,
    /// `--unlisted`: allow mutations of VMIDs definitions.nix does not list.
    allow_unlisted: bool,
}

/// Operations that lose data or are hard to undo: an imported VM needs `readonly = false`
/// written out for them.
pub fn is_destructive(m: &Mutation) -> bool {
    matches!(
        m,
        Mutation::Destroy { .. }
            | Mutation::Template { .. }
            | Mutation::SnapshotRollback { .. }
            | Mutation::SnapshotDelete { .. }
            | Mutation::Migrate { .. }
            | Mutation::Resize { .. }
            | Mutation::Restore { force: true, .. }
    )
}

impl Fence {
    /// The fence for the VMs definitions.nix lists.
    pub fn from_definitions(defs: &Definitions) -> Fence {
        let mut undetermined = defs.undetermined.clone();
        let mut vms = BTreeMap::new();
        for vm in defs.all_vms() {
            if vm.fence.vmid == Given::Undetermined {
                undetermined.push(format!("{} VM `{}`", vm.kind.as_str(), vm.name));
            }
            if let Some(id) = vm.vmid {
                vms.insert(
                    id,
                    Known {
                        name: vm.name.clone(),
                        kind: vm.kind,
                        readonly: vm.readonly || vm.fence.readonly == Given::Undetermined,
                        readonly_given: vm.fence.readonly,
                    },
                );
            }
        }
        Fence {
            vms,
            undetermined,
            allow_unlisted: false,
        }
    }

    /// Allows mutations of VMIDs definitions.nix does not list (`--unlisted`).
    pub fn allow_unlisted(mut self, allow: bool) -> Fence {
        self.allow_unlisted = allow;
        self
    }

    /// What definitions.nix says about `vmid`.
    pub fn known(&self, vmid: VmId) -> Option<&Known> {
        self.vms.get(&vmid)
    }

    /// Every VMID definitions.nix reserves.
    pub fn reserved(&self) -> BTreeSet<VmId> {
        self.vms.keys().copied().collect()
    }

    /// The VMs the fence treats as readonly (written or undetermined), by VMID.
    pub fn readonly_vms(&self) -> impl Iterator<Item = (VmId, &Known)> {
        self.vms
            .iter()
            .filter(|(_, k)| k.readonly)
            .map(|(id, k)| (*id, k))
    }

    /// Values whose VMID cannot be known (every mutation is refused while any exists).
    pub fn undetermined(&self) -> &[String] {
        &self.undetermined
    }

    /// The checks shared by every mutating operation on `vmid`, including the console.
    fn check_vm(&self, op: &'static str, vmid: VmId, protect_on: bool) -> Result<(), FenceError> {
        if !self.undetermined.is_empty() {
            return Err(FenceError::VmidUndetermined {
                op,
                vmid,
                what: self.undetermined.clone(),
            });
        }
        match self.vms.get(&vmid) {
            None if !self.allow_unlisted => Err(FenceError::Unlisted { op, vmid }),
            // Protection on is the one change allowed on a readonly VM: it makes the web UI
            // and other tools respect the fence too.
            Some(k) if k.readonly && !protect_on => {
                let name = k.name.clone();
                Err(if k.readonly_given == Given::Undetermined {
                    FenceError::ReadonlyUndetermined { op, vmid, name }
                } else {
                    FenceError::Readonly { op, vmid, name }
                })
            }
            _ => Ok(()),
        }
    }

    /// The interactive serial console is fenced like a mutation: typing into a readonly VM's
    /// console changes it as surely as `qm set` does.
    pub fn check_console(&self, vmid: VmId) -> Result<(), FenceError> {
        self.check_vm("open the console of", vmid, false)
    }

    /// The checks that need nothing but definitions.nix: undetermined values, unlisted VMIDs,
    /// readonly, imported VMs and destructive operations, clone sources, and destroy's
    /// managed-only and name confirmation.
    pub fn check(&self, m: &Mutation) -> Result<(), FenceError> {
        let vmid = m.vmid();
        // Backups and restores have rules of their own (fence/backup.rs).
        if let Some(verdict) = self.check_backup_restore(m) {
            return verdict;
        }
        let protect_on = matches!(m, Mutation::Protect { on: true, .. });
        self.check_vm(m.name(), vmid, protect_on)?;
        let known = self.vms.get(&vmid);
        if let Some(k) = known {
            if k.kind == VmKind::Imported && k.readonly_given != Given::Known && is_destructive(m) {
                return Err(FenceError::ImportedNotExplicit {
                    op: m.name(),
                    vmid,
                    name: k.name.clone(),
                });
            }
        }
        if let Mutation::Clone(c) = m {
            if let Some(src) = self.vms.get(&c.source) {
                if src.readonly && src.kind != VmKind::Template {
                    return Err(FenceError::ReadonlySource {
                        source_vmid: c.source,
                        name: src.name.clone(),
                    });
                }
            }
        }
        if let Mutation::Destroy { confirm, .. } = m {
            let k = match known {
                Some(k) if k.kind == VmKind::Managed => k,
                _ => {
                    return Err(FenceError::NotManaged {
                        vmid,
                        name: known.map(|k| k.name.clone()),
                        kind: known.map(|k| k.kind.as_str()),
                    })
                }
            };
            match confirm {
                None => {
                    return Err(FenceError::ConfirmMissing {
                        vmid,
                        name: k.name.clone(),
                    })
                }
                Some(given) if *given != k.name => {
                    return Err(FenceError::ConfirmMismatch {
                        vmid,
                        name: k.name.clone(),
                        given: given.clone(),
                    })
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Vm;
    use crate::proxmox::argv::CloneSpec;

    fn vm(name: &str, kind: VmKind, vmid: u32, readonly: bool) -> Vm {
        Vm {
            readonly,
            ..Vm::new(name, kind, Some(vmid))
        }
    }

    fn demo() -> Fence {
        Fence::from_definitions(&Definitions {
            template: Some(vm("NixosServerBlank", VmKind::Template, 9001, false)),
            imported: vec![
                vm("doc1", VmKind::Imported, 104, true),
                vm("igpu", VmKind::Imported, 109, true),
            ],
            managed: vec![vm("test-automation", VmKind::Managed, 110, false)],
            ..Default::default()
        })
    }

    #[test]
    fn readonly_refuses_every_mutation_and_names_the_flag() {
        let f = demo();
        let e = f.check(&Mutation::Stop { vmid: 104 }).unwrap_err();
        assert_eq!(
            e.to_string(),
            "refusing to stop VM 104 (doc1): definitions.nix marks it `readonly = true`; vmctl \
             never changes readonly VMs (remove the flag in vms/definitions.nix only if vmctl \
             should manage this VM)"
        );
        let protect = |on| Mutation::Protect { vmid: 109, on };
        assert!(f.check(&protect(false)).is_err());
        assert!(f.check(&protect(true)).is_ok(), "protection on is allowed");
        assert!(f.check(&Mutation::Start { vmid: 110 }).is_ok());
        assert!(f.check_console(104).is_err());
        assert!(f.check_console(110).is_ok());
    }

    #[test]
    fn unlisted_vmids_need_the_flag() {
        let f = demo();
        assert_eq!(
            f.check(&Mutation::Start { vmid: 555 })
                .unwrap_err()
                .to_string(),
            "refusing to start VM 555: definitions.nix does not list it; add it to \
             vms/definitions.nix (under `managed`, or `imported` with `readonly = true`), or \
             pass `--unlisted` if you mean a VM vmctl does not know"
        );
        assert!(f.check_console(555).is_err());
        let f = f.allow_unlisted(true);
        assert!(f.check(&Mutation::Start { vmid: 555 }).is_ok());
        // The flag never opens a readonly VM.
        assert!(f.check(&Mutation::Start { vmid: 104 }).is_err());
    }

    fn given(vm: Vm, vmid: Given, readonly: Given) -> Vm {
        Vm {
            fence: crate::model::FenceFacts { vmid, readonly },
            ..vm
        }
    }

    #[test]
    fn undetermined_readonly_is_readonly_and_undetermined_vmid_refuses_all() {
        let mut defs = Definitions {
            imported: vec![given(
                vm("doc1", VmKind::Imported, 104, false),
                Given::Known,
                Given::Undetermined,
            )],
            managed: vec![vm("web", VmKind::Managed, 110, false)],
            ..Default::default()
        };
        let f = Fence::from_definitions(&defs);
        let e = f.check(&Mutation::Stop { vmid: 104 }).unwrap_err();
        assert!(matches!(e, FenceError::ReadonlyUndetermined { .. }), "{e}");
        assert!(e.to_string().contains("readonly = true;"), "{e}");
        assert!(f.check(&Mutation::Stop { vmid: 110 }).is_ok());
        assert!(f.readonly_vms().any(|(id, _)| id == 104));

        defs.managed.push(given(
            Vm::new("db", VmKind::Managed, None),
            Given::Undetermined,
            Given::Absent,
        ));
        let f = Fence::from_definitions(&defs).allow_unlisted(true);
        for m in [
            Mutation::Stop { vmid: 110 },
            Mutation::Protect {
                vmid: 104,
                on: true,
            },
            Mutation::Start { vmid: 555 },
        ] {
            let e = f.check(&m).unwrap_err();
            assert!(matches!(e, FenceError::VmidUndetermined { .. }), "{e}");
            assert!(e.to_string().contains("managed VM `db`"), "{e}");
        }
        assert!(f.check_console(110).is_err());
        defs.managed.pop();
        defs.undetermined.push("`managed.db`".into());
        assert!(Fence::from_definitions(&defs)
            .check(&Mutation::Start { vmid: 110 })
            .is_err());
    }

    #[test]
    fn definitions_record_what_the_fence_cannot_know() {
        use crate::model::definitions::read_definitions;
        use crate::syntax::{evaluate, NoImports, SourceDb};
        let read = |src: &str| {
            let mut db = SourceDb::new();
            let f = db.add("/fleet/vms/definitions.nix", src);
            let ev = evaluate(&mut db, f, &NoImports);
            read_definitions(&ev.value).definitions
        };
        let d = read(
            r#"{ proxmox.host = "h";
                 imported.doc1 = { vmid = 104; readonly = builtins.head [ true ]; };
                 imported.igpu = { vmid = 109; };
                 imported.nas = { vmid = 103; readonly = false; };
                 managed.web = builtins.getAttr "x" { x = 1; }; }"#,
        );
        let doc1 = d.vm_by_name("doc1").unwrap();
        assert_eq!(
            (doc1.readonly, doc1.fence.readonly),
            (false, Given::Undetermined)
        );
        assert_eq!(d.vm_by_name("igpu").unwrap().fence.readonly, Given::Absent);
        assert_eq!(d.vm_by_name("nas").unwrap().fence.readonly, Given::Known);
        assert_eq!(d.undetermined, ["`managed.web`"]);
        let f = Fence::from_definitions(&d);
        assert!(
            f.known(104).unwrap().readonly,
            "undetermined counts as readonly"
        );
        assert!(matches!(
            f.check(&Mutation::Start { vmid: 103 }),
            Err(FenceError::VmidUndetermined { .. })
        ));
        let d = read(r#"{ proxmox.host = "h"; imported = import <x>; }"#);
        assert_eq!(d.undetermined, ["`imported`"]);
    }

    #[test]
    fn imported_vms_need_readonly_false_written_for_destructive_operations() {
        let written = given(
            vm("old", VmKind::Imported, 105, false),
            Given::Known,
            Given::Known,
        );
        let absent = vm("older", VmKind::Imported, 106, false);
        let f = Fence::from_definitions(&Definitions {
            imported: vec![written, absent],
            ..Default::default()
        });
        let destructive = |vmid| {
            vec![
                Mutation::Template { vmid },
                Mutation::SnapshotRollback {
                    vmid,
                    name: "s".into(),
                },
                Mutation::SnapshotDelete {
                    vmid,
                    name: "s".into(),
                },
                Mutation::Migrate {
                    node: "prom".into(),
                    vmid,
                    target: "n".into(),
                    online: false,
                    with_local_disks: false,
                },
                Mutation::Resize {
                    vmid,
                    disk: "scsi0".into(),
                    size: "+1G".into(),
                },
            ]
        };
        for m in destructive(106) {
            let e = f.check(&m).unwrap_err();
            assert!(matches!(e, FenceError::ImportedNotExplicit { .. }), "{e}");
            assert!(e.to_string().contains("readonly = false;"), "{e}");
        }
        for m in destructive(105) {
            assert!(f.check(&m).is_ok(), "{}", m.name());
        }
        // Not destructive: allowed without the flag written.
        assert!(f.check(&Mutation::Start { vmid: 106 }).is_ok());
    }

    #[test]
    fn a_readonly_clone_source_must_be_the_template() {
        let mut defs = Definitions {
            template: Some(vm("tpl", VmKind::Template, 9001, true)),
            imported: vec![vm("doc1", VmKind::Imported, 104, true)],
            managed: vec![vm("web", VmKind::Managed, 110, false)],
            ..Default::default()
        };
        let clone = |source| {
            Mutation::Clone(CloneSpec {
                full: true,
                ..CloneSpec::new(source, 110, "web")
            })
        };
        let f = Fence::from_definitions(&defs);
        assert!(f.check(&clone(9001)).is_ok());
        assert_eq!(
            f.check(&clone(104)).unwrap_err(),
            FenceError::ReadonlySource {
                source_vmid: 104,
                name: "doc1".into()
            }
        );
        defs.imported[0].readonly = false;
        assert!(Fence::from_definitions(&defs).check(&clone(104)).is_ok());
    }

    #[test]
    fn the_live_vm_must_be_the_listed_one() {
        let f = demo();
        let conf = |text: &str| crate::proxmox::parse::config(text).unwrap();
        let destroy = Mutation::Destroy {
            vmid: 110,
            confirm: Some("test-automation".into()),
        };
        assert!(f
            .check_live(&destroy, &conf("name: test-automation\n"))
            .is_ok());
        assert_eq!(
            f.check_live(&destroy, &conf("name: someone-else\ncores: 2\n"))
                .unwrap_err()
                .to_string(),
            "refusing to destroy VM 110: definitions.nix names it `test-automation` but the VM \
             with this VMID on the cluster is `someone-else`; the VMID was reused, so nothing \
             was changed (check `vmctl ops config 110` and fix vms/definitions.nix)"
        );
        let e = f
            .check_live(&destroy, &conf("name: test-automation\ntemplate: 1\n"))
            .unwrap_err();
        assert!(matches!(e, FenceError::LiveTemplate { .. }), "{e}");
        let e = f
            .check_live(&destroy, &conf("name: test-automation\nprotection: 1\n"))
            .unwrap_err();
        assert!(e.to_string().contains("vmctl ops protect 110 off"), "{e}");
        // Operations on the template itself may see a template.
        let tpl = Mutation::SnapshotRollback {
            vmid: 9001,
            name: "s".into(),
        };
        assert!(f
            .check_live(&tpl, &conf("name: NixosServerBlank\ntemplate: 1\n"))
            .is_ok());
    }

    #[test]
    fn destroy_needs_managed_and_the_name() {
        let f = demo();
        let d = |vmid, c: Option<&str>| Mutation::Destroy {
            vmid,
            confirm: c.map(str::to_string),
        };
        assert!(matches!(
            f.check(&d(110, None)),
            Err(FenceError::ConfirmMissing { .. })
        ));
        assert_eq!(
            f.check(&d(110, Some("doc1"))).unwrap_err().to_string(),
            "refusing to destroy VM 110 (test-automation): `--confirm doc1` does not match its \
             name; pass `--confirm test-automation`"
        );
        assert!(f.check(&d(110, Some("test-automation"))).is_ok());
        assert_eq!(
            f.check(&d(9001, Some("NixosServerBlank")))
                .unwrap_err()
                .to_string(),
            "refusing to destroy VM 9001: definitions.nix does not manage it (it is \
             `NixosServerBlank`, listed as template); vmctl destroys only VMs listed under \
             `managed`"
        );
        assert!(matches!(
            f.clone().allow_unlisted(true).check(&d(777, Some("x"))),
            Err(FenceError::NotManaged { name: None, .. })
        ));
    }

    #[test]
    fn clone_onto_existing_vmid_is_refused() {
        let f = demo();
        let m = Mutation::Clone(CloneSpec::new(9001, 111, "new"));
        let mut existing = BTreeMap::new();
        assert!(f.check_target_free(&m, &existing).is_ok());
        existing.insert(111, Some("other".to_string()));
        assert_eq!(
            f.check_target_free(&m, &existing).unwrap_err().to_string(),
            "refusing to clone onto VMID 111: it already exists in the cluster as `other`; pick \
             a free one with `vmctl ops next-vmid`"
        );
    }
}
