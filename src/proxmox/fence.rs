//! Safety fences: which mutations vmctl refuses, decided from definitions.nix before anything
//! is sent to Proxmox.
//!
//! The fence takes plain values (`Fence::from_definitions`) so the library enforces it on every
//! path (CLI, provisioning, tests), not only at the command line.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Definitions, VmKind};

use super::{Mutation, VmId};

/// What definitions.nix says about one VMID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub name: String,
    pub kind: VmKind,
    pub readonly: bool,
}

/// The fences for one fleet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fence {
    vms: BTreeMap<VmId, Known>,
}

/// A mutation the fence refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FenceError {
    #[error(
        "refusing to {op} VM {vmid} ({name}): definitions.nix marks it `readonly = true`; \
         vmctl never changes readonly VMs (remove the flag in vms/definitions.nix only if vmctl \
         should manage this VM)"
    )]
    Readonly {
        op: &'static str,
        vmid: VmId,
        name: String,
    },
    #[error(
        "refusing to destroy VM {vmid}: definitions.nix does not manage it{}; vmctl destroys \
         only VMs listed under `managed`",
        known_as(.name, .kind)
    )]
    NotManaged {
        vmid: VmId,
        name: Option<String>,
        kind: Option<&'static str>,
    },
    #[error(
        "refusing to destroy VM {vmid} ({name}) without confirmation: pass `--confirm {name}`"
    )]
    ConfirmMissing { vmid: VmId, name: String },
    #[error(
        "refusing to destroy VM {vmid} ({name}): `--confirm {given}` does not match its name; \
         pass `--confirm {name}`"
    )]
    ConfirmMismatch {
        vmid: VmId,
        name: String,
        given: String,
    },
    #[error(
        "refusing to {op} onto VMID {vmid}: it already exists in the cluster{}; pick a free one \
         with `vmctl ops next-vmid`",
        existing.as_ref().map(|n| format!(" as `{n}`")).unwrap_or_default()
    )]
    VmidExists {
        op: &'static str,
        vmid: VmId,
        existing: Option<String>,
    },
}

fn known_as(name: &Option<String>, kind: &Option<&'static str>) -> String {
    match (name, kind) {
        (Some(n), Some(k)) => format!(" (it is `{n}`, listed as {k})"),
        _ => " (it is not in vms/definitions.nix)".into(),
    }
}

impl Fence {
    /// The fence for the VMs definitions.nix lists.
    pub fn from_definitions(defs: &Definitions) -> Fence {
        let vms = defs
            .all_vms()
            .filter_map(|vm| {
                let known = Known {
                    name: vm.name.clone(),
                    kind: vm.kind,
                    readonly: vm.readonly,
                };
                vm.vmid.map(|id| (id, known))
            })
            .collect();
        Fence { vms }
    }

    /// What definitions.nix says about `vmid`.
    pub fn known(&self, vmid: VmId) -> Option<&Known> {
        self.vms.get(&vmid)
    }

    /// Every VMID definitions.nix reserves.
    pub fn reserved(&self) -> BTreeSet<VmId> {
        self.vms.keys().copied().collect()
    }

    /// The checks that need nothing but definitions.nix: readonly, and destroy's managed-only
    /// and name confirmation.
    pub fn check(&self, m: &Mutation) -> Result<(), FenceError> {
        let vmid = m.vmid();
        let known = self.vms.get(&vmid);
        if let Some(k) = known.filter(|k| k.readonly) {
            return Err(FenceError::Readonly {
                op: m.name(),
                vmid,
                name: k.name.clone(),
            });
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

    /// The check that needs the cluster: a clone or restore must not land on an existing VMID.
    /// `existing` maps the cluster's VMIDs to their names.
    pub fn check_target_free(
        &self,
        m: &Mutation,
        existing: &BTreeMap<VmId, Option<String>>,
    ) -> Result<(), FenceError> {
        if matches!(m, Mutation::Clone(_) | Mutation::RestoreVma { .. }) {
            if let Some(name) = existing.get(&m.vmid()) {
                return Err(FenceError::VmidExists {
                    op: m.name(),
                    vmid: m.vmid(),
                    existing: name.clone(),
                });
            }
        }
        Ok(())
    }

    /// True when `m` must see the cluster's VMIDs before it is sent.
    pub fn needs_cluster_check(m: &Mutation) -> bool {
        matches!(m, Mutation::Clone(_) | Mutation::RestoreVma { .. })
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
        assert!(f
            .check(&Mutation::Protect {
                vmid: 109,
                on: true
            })
            .is_err());
        assert!(f.check(&Mutation::Start { vmid: 110 }).is_ok());
        assert!(f.check(&Mutation::Start { vmid: 555 }).is_ok());
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
            f.check(&d(777, Some("x"))),
            Err(FenceError::NotManaged { name: None, .. })
        ));
    }

    #[test]
    fn clone_onto_existing_vmid_is_refused() {
        let f = demo();
        let m = Mutation::Clone(CloneSpec {
            source: 9001,
            vmid: 111,
            name: "new".into(),
            full: false,
            storage: None,
            target: None,
            pool: None,
            description: None,
        });
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
