//! The fences of every ops change, decided before anything connects: readonly, unlisted,
//! imported without a written `readonly`, destroy's managed-only and confirmation, clone
//! sources, undetermined VMIDs and the console.

use super::super::*;
use super::{change, clone_spec, defs, dry, refusal};
use crate::model::{Vm, VmKind};
use crate::proxmox::fence::is_destructive;

/// Every mutation a VMID can receive, for the fence matrix.
fn every_mutation(vmid: VmId, name: &str) -> Vec<Request> {
    let snap = "s1".to_string();
    vec![
        change(Mutation::Clone(clone_spec(9001, vmid))),
        Request::Configure {
            vmid,
            cores: 1,
            memory: 512,
            set: vec![],
        },
        Request::CreateDisk {
            vmid,
            size: "1G".into(),
            storage: None,
            disk: None,
        },
        change(Mutation::Resize {
            vmid,
            disk: "scsi0".into(),
            size: "+1G".into(),
        }),
        change(Mutation::RestoreVma {
            archive: "/a.vma".into(),
            vmid,
            storage: None,
        }),
        change(Mutation::SerialSocket { vmid }),
        change(Mutation::Start { vmid }),
        change(Mutation::Stop { vmid }),
        change(Mutation::Shutdown { vmid }),
        change(Mutation::Template { vmid }),
        change(Mutation::Destroy {
            vmid,
            confirm: Some(name.into()),
        }),
        change(Mutation::SnapshotCreate {
            vmid,
            name: snap.clone(),
            description: None,
            vmstate: false,
        }),
        change(Mutation::SnapshotRollback {
            vmid,
            name: snap.clone(),
        }),
        change(Mutation::SnapshotDelete { vmid, name: snap }),
        change(Mutation::Migrate {
            node: "prom".into(),
            vmid,
            target: "prom2".into(),
            online: false,
            with_local_disks: false,
        }),
        Request::Protect {
            vmid: Some(vmid),
            on: Some(false),
        },
    ]
}

#[test]
fn a_readonly_vm_refuses_every_mutation_even_with_unlisted() {
    for req in every_mutation(104, "doc1") {
        for unlisted in [false, true] {
            let e = refusal(req.clone(), unlisted);
            assert!(
                matches!(
                    &e,
                    PlanError::Fence(FenceError::Readonly { vmid: 104, name, .. }) if name == "doc1"
                ),
                "{req:?}: {e:?}"
            );
        }
    }
}

#[test]
fn protection_on_is_the_one_change_a_readonly_vm_allows() {
    let d = dry(Request::Protect {
        vmid: Some(104),
        on: Some(true),
    });
    assert_eq!(d.commands, ["qm set 104 --protection 1"]);
}

#[test]
fn an_unlisted_vmid_is_refused_unless_unlisted_is_given() {
    for req in every_mutation(777, "x") {
        let e = refusal(req.clone(), false);
        assert!(
            matches!(e, PlanError::Fence(FenceError::Unlisted { vmid: 777, .. })),
            "{req:?}: {e:?}"
        );
        let allowed = matches!(&req, Request::Change(Mutation::Destroy { .. }));
        // Destroy is for managed VMs only, `--unlisted` or not.
        match plan(req.clone(), &defs(), true) {
            Ok(p) => assert!(!allowed, "{req:?} planned: {p:?}"),
            Err(e) => assert!(
                allowed && matches!(e, PlanError::Fence(FenceError::NotManaged { .. })),
                "{req:?}: {e:?}"
            ),
        }
    }
}

#[test]
fn an_imported_vm_without_written_readonly_refuses_only_destructive_changes() {
    // The fence's destructive set, pinned by name so a change to it is a visible decision.
    let mut named: Vec<String> = every_mutation(106, "vague")
        .iter()
        .filter_map(|r| match r {
            Request::Change(m) if is_destructive(m) => {
                let debug = format!("{m:?}");
                Some(
                    debug
                        .split([' ', '(', '{'])
                        .next()
                        .unwrap_or("")
                        .to_string(),
                )
            }
            _ => None,
        })
        .collect();
    named.sort();
    named.dedup();
    let want = [
        "Destroy",
        "Migrate",
        "Resize",
        "SnapshotDelete",
        "SnapshotRollback",
        "Template",
    ];
    assert_eq!(named, want);
    for req in every_mutation(106, "vague") {
        let destructive = matches!(&req, Request::Change(m) if is_destructive(m));
        match plan(req.clone(), &defs(), false) {
            Ok(_) => assert!(!destructive, "{req:?} was planned"),
            Err(PlanError::Fence(FenceError::ImportedNotExplicit { vmid: 106, .. })) => {
                assert!(destructive, "{req:?} was refused")
            }
            // Destroy is refused as not managed before anything else.
            Err(PlanError::Fence(FenceError::NotManaged { .. })) => {
                assert!(matches!(req, Request::Change(Mutation::Destroy { .. })))
            }
            Err(e) => panic!("{req:?}: {e:?}"),
        }
    }
}

#[test]
fn destroy_needs_a_managed_vm_and_its_name_confirmed() {
    let destroy = |vmid, confirm: Option<&str>| {
        change(Mutation::Destroy {
            vmid,
            confirm: confirm.map(Into::into),
        })
    };
    assert!(matches!(
        refusal(destroy(110, None), false),
        PlanError::Fence(FenceError::ConfirmMissing { vmid: 110, .. })
    ));
    assert!(matches!(
        refusal(destroy(110, Some("test")), false),
        PlanError::Fence(FenceError::ConfirmMismatch { vmid: 110, .. })
    ));
    // An imported VM with `readonly = false` is still not vmctl's to destroy.
    assert!(matches!(
        refusal(destroy(105, Some("legacy")), false),
        PlanError::Fence(FenceError::NotManaged { vmid: 105, .. })
    ));
    assert!(matches!(
        refusal(destroy(9001, Some("nixos-template")), false),
        PlanError::Fence(FenceError::NotManaged { vmid: 9001, .. })
    ));
}

#[test]
fn a_clone_may_read_only_the_template_among_readonly_vms() {
    let e = refusal(change(Mutation::Clone(clone_spec(104, 120))), true);
    assert!(
        matches!(
            e,
            PlanError::Fence(FenceError::ReadonlySource {
                source_vmid: 104,
                ..
            })
        ),
        "{e:?}"
    );
    let template_readonly = Definitions {
        template: Some(Vm {
            readonly: true,
            ..Vm::new("nixos-template", VmKind::Template, Some(9001))
        }),
        ..defs()
    };
    let p = plan(
        change(Mutation::Clone(clone_spec(9001, 120))),
        &template_readonly,
        true,
    )
    .unwrap();
    assert_eq!(p.steps.len(), 1);
}

#[test]
fn an_undetermined_vmid_refuses_every_change_and_the_console() {
    let undetermined = Definitions {
        undetermined: vec!["`managed` (built by a function)".into()],
        ..defs()
    };
    for req in every_mutation(110, "test-automation")
        .into_iter()
        .chain([Request::ProtectReadonly])
    {
        let e = plan(req.clone(), &undetermined, true).unwrap_err();
        assert!(
            matches!(e, PlanError::Fence(FenceError::VmidUndetermined { .. })),
            "{req:?}: {e:?}"
        );
    }
    assert!(matches!(
        console(&undetermined, 110, true),
        Err(PlanError::Fence(FenceError::VmidUndetermined { .. }))
    ));
    // Reads stay possible: they are how the user finds out what is there.
    assert!(plan(Request::Read(Read::List), &undetermined, false).is_ok());
}

#[test]
fn the_console_is_fenced_like_a_change() {
    let (fence, argv) = console(&defs(), 110, false).unwrap();
    assert_eq!(argv, ["qm", "terminal", "110"]);
    assert_eq!(fence, super::fence(&defs(), false));
    assert!(matches!(
        console(&defs(), 104, true),
        Err(PlanError::Fence(FenceError::Readonly { vmid: 104, .. }))
    ));
    assert!(matches!(
        console(&defs(), 777, false),
        Err(PlanError::Fence(FenceError::Unlisted { vmid: 777, .. }))
    ));
    let (fence, _) = console(&defs(), 777, true).unwrap();
    assert_eq!(fence, super::fence(&defs(), true));
}
