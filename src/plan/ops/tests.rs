//! The plan of every `vmctl ops` subcommand, without SSH: its steps, its command line as
//! `--dry-run` shows it, what it refuses and why.

use super::*;
use crate::model::{Given, Proxmox, Vm, VmKind, VmidRange};
use crate::proxmox::argv::CloneSpec;

/// A fleet with one VM of each kind the fences tell apart (the runner's tests use it too).
pub(crate) fn defs() -> Definitions {
    let vm = |name: &str, kind, vmid, readonly: Option<bool>| {
        let mut v = Vm::new(name, kind, Some(vmid));
        if let Some(r) = readonly {
            v.readonly = r;
            v.fence.readonly = Given::Known;
        }
        v
    };
    Definitions {
        proxmox: Proxmox {
            storage: Some("nvmeprom".into()),
            node: Some("prom".into()),
            ..Default::default()
        },
        template: Some(vm("nixos-template", VmKind::Template, 9001, None)),
        imported: vec![
            vm("doc1", VmKind::Imported, 104, Some(true)),
            vm("legacy", VmKind::Imported, 105, Some(false)),
            // `readonly` not written: fine for start/stop, refused for destructive ops.
            vm("vague", VmKind::Imported, 106, None),
        ],
        managed: vec![
            vm("test-automation", VmKind::Managed, 110, None),
            // Listed, not yet created: the target of clone and restore.
            vm("web", VmKind::Managed, 120, None),
        ],
        vmid_ranges: vec![VmidRange {
            name: "managed".into(),
            start: 110,
            end: 199,
            description: None,
            range: Default::default(),
        }],
        ..Default::default()
    }
}

fn change(m: Mutation) -> Request {
    Request::Change(m)
}

fn clone_spec(source: VmId, vmid: VmId) -> CloneSpec {
    CloneSpec {
        full: true,
        ..CloneSpec::new(source, vmid, "web")
    }
}

fn dry(req: Request) -> DryRun {
    plan(req, &defs(), false)
        .unwrap_or_else(|e| panic!("expected a plan: {e}"))
        .dry_run()
}

fn refusal(req: Request, unlisted: bool) -> PlanError {
    plan(req, &defs(), unlisted).expect_err("expected a refusal")
}

const CLUSTER: &str =
    "dry run: when run for real, vmctl first checks that VMID 120 is free in the cluster";
const LIVE: &str = "dry run: when run for real, vmctl first reads VM 110 and refuses unless its \
                    name is the one definitions.nix gives, it is not a template and protection \
                    is off";

#[test]
fn every_change_plans_one_step_with_its_command_line_and_checks() {
    let cases: Vec<(Request, &str, Vec<&str>)> = vec![
        (
            change(Mutation::Clone(CloneSpec {
                storage: Some("nvmeprom".into()),
                pool: Some("web pool".into()),
                ..clone_spec(9001, 120)
            })),
            "qm clone 9001 120 --name web --full 1 --storage nvmeprom --pool 'web pool'",
            vec![CLUSTER],
        ),
        (
            change(Mutation::Clone(CloneSpec {
                full: false,
                ..clone_spec(9001, 120)
            })),
            "qm clone 9001 120 --name web",
            vec![CLUSTER],
        ),
        (
            Request::Configure {
                vmid: 110,
                cores: 2,
                memory: 2048,
                set: vec!["ciuser=root".into(), "ipconfig0=ip=dhcp".into()],
            },
            "qm set 110 --cores 2 --memory 2048 --ciuser root --ipconfig0 'ip=dhcp'",
            vec![],
        ),
        (
            Request::CreateDisk {
                vmid: 110,
                size: "20G".into(),
                storage: None,
                disk: None,
            },
            "qm set 110 --scsi0 nvmeprom:20",
            vec![],
        ),
        (
            Request::CreateDisk {
                vmid: 110,
                size: "8".into(),
                storage: Some("local-lvm".into()),
                disk: Some("virtio1".into()),
            },
            "qm set 110 --virtio1 local-lvm:8",
            vec![],
        ),
        (
            change(Mutation::Resize {
                vmid: 110,
                disk: "scsi0".into(),
                size: "+10G".into(),
            }),
            "qm resize 110 scsi0 +10G",
            vec![],
        ),
        (
            change(Mutation::RestoreVma {
                archive: "/var/lib/vz/dump/a b.vma.zst".into(),
                vmid: 120,
                storage: Some("nvmeprom".into()),
            }),
            "qmrestore '/var/lib/vz/dump/a b.vma.zst' 120 --storage nvmeprom",
            vec![CLUSTER],
        ),
        (
            change(Mutation::SerialSocket { vmid: 110 }),
            "qm set 110 --serial0 socket",
            vec![],
        ),
        (
            change(Mutation::Start { vmid: 110 }),
            "qm start 110",
            vec![],
        ),
        (change(Mutation::Stop { vmid: 110 }), "qm stop 110", vec![]),
        (
            change(Mutation::Shutdown { vmid: 110 }),
            "qm shutdown 110",
            vec![],
        ),
        (
            change(Mutation::Template { vmid: 110 }),
            "qm template 110",
            vec![LIVE],
        ),
        (
            change(Mutation::Destroy {
                vmid: 110,
                confirm: Some("test-automation".into()),
            }),
            "qm destroy 110 --purge 1",
            vec![LIVE],
        ),
        (
            change(Mutation::SnapshotCreate {
                vmid: 110,
                name: "pre-upgrade".into(),
                description: Some("before 24.11".into()),
                vmstate: true,
            }),
            "qm snapshot 110 pre-upgrade --description 'before 24.11' --vmstate 1",
            vec![],
        ),
        (
            change(Mutation::SnapshotRollback {
                vmid: 110,
                name: "pre-upgrade".into(),
            }),
            "qm rollback 110 pre-upgrade",
            vec![LIVE],
        ),
        (
            change(Mutation::SnapshotDelete {
                vmid: 110,
                name: "pre-upgrade".into(),
            }),
            "qm delsnapshot 110 pre-upgrade",
            vec![],
        ),
        (
            Request::Migrate {
                vmid: 110,
                target: "prom2".into(),
                online: true,
            },
            "pvesh create /nodes/prom/qemu/110/migrate --target prom2 --online 1",
            vec![],
        ),
        (
            Request::Protect {
                vmid: Some(110),
                on: Some(false),
            },
            "qm set 110 --protection 0",
            vec![],
        ),
    ];
    for (req, line, notes) in cases {
        let p = plan(req.clone(), &defs(), false).unwrap_or_else(|e| panic!("{req:?}: {e}"));
        assert_eq!(p.steps.len(), 1, "{req:?}");
        assert!(matches!(p.steps[0], Step::Apply(_)), "{req:?}");
        assert_eq!(p.nothing_to_do, None);
        let d = p.dry_run();
        assert_eq!(d.commands, [line], "{req:?}");
        assert_eq!(d.notes, notes, "{req:?}");
    }
}

#[test]
fn reads_plan_one_read_and_are_never_fenced() {
    // Reading a readonly VM, or one definitions.nix does not list, changes nothing.
    for (req, read) in [
        (Request::Read(Read::List), Read::List),
        (Request::Read(Read::Status(104)), Read::Status(104)),
        (Request::Read(Read::Config(777)), Read::Config(777)),
        (Request::Read(Read::GetIp(104)), Read::GetIp(104)),
        (Request::Read(Read::Storage), Read::Storage),
        (Request::Read(Read::Snapshots(104)), Read::Snapshots(104)),
    ] {
        let p = plan(req, &defs(), false).unwrap();
        assert_eq!(p.steps, [Step::Read(read)]);
        // A read's dry run shows the read-only commands it would send, and no note.
        let d = p.dry_run();
        assert!(d.notes.is_empty());
        let want: Vec<String> = read.argv().iter().map(|a| display_line(a)).collect();
        assert!(!want.is_empty());
        assert_eq!(d.commands, want);
        // `--unlisted` is a write option: reads never carry it into the connection.
        assert_eq!(p.fence, fence(&defs(), false));
    }
}

#[test]
fn next_vmid_fills_missing_bounds_from_the_managed_range_then_proxmox_limits() {
    let next = |start, end, defs: &Definitions| {
        plan(Request::NextVmid { start, end }, defs, false).map(|p| p.steps)
    };
    let read = |s, e| Ok(vec![Step::Read(Read::NextVmid(s, e))]);
    assert_eq!(next(None, None, &defs()), read(110, 199));
    assert_eq!(next(Some(150), None, &defs()), read(150, 199));
    assert_eq!(next(None, Some(120), &defs()), read(110, 120));
    let no_ranges = Definitions::default();
    assert_eq!(
        next(None, None, &no_ranges),
        read(VMID_MIN, VMID_MAX),
        "without a managed range the whole VMID space is searched"
    );
    let e = next(Some(300), None, &defs()).unwrap_err();
    assert_eq!(
        e,
        PlanError::StartAboveEnd {
            start: 300,
            end: 199
        }
    );
    assert_eq!(e.to_string(), "START (300) is above END (199)");
}

#[test]
fn a_malformed_set_is_refused_without_echoing_its_value() {
    let e = refusal(
        Request::Configure {
            vmid: 110,
            cores: 1,
            memory: 512,
            set: vec!["ciuser=root".into(), "hunter2".into()],
        },
        false,
    );
    assert!(matches!(e, PlanError::InvalidSet(_)), "{e:?}");
    let text = e.to_string();
    assert!(
        text.starts_with("invalid value for --set: expected KEY=VALUE"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn secrets_in_set_are_redacted_in_the_dry_run() {
    let d = dry(Request::Configure {
        vmid: 110,
        cores: 1,
        memory: 512,
        set: vec!["cipassword=hunter2".into()],
    });
    assert_eq!(
        d.commands,
        ["qm set 110 --cores 1 --memory 512 --cipassword <redacted>"]
    );
}

#[test]
fn argument_errors_come_before_the_fence() {
    // VM 104 is readonly, but the malformed argument is what the user must fix first.
    let e = refusal(
        Request::Configure {
            vmid: 104,
            cores: 1,
            memory: 512,
            set: vec!["no-equals".into()],
        },
        false,
    );
    assert!(matches!(e, PlanError::InvalidSet(_)), "{e:?}");
}

#[test]
fn create_disk_needs_whole_gib_and_a_storage() {
    let req = |size: &str, storage: Option<&str>| Request::CreateDisk {
        vmid: 110,
        size: size.into(),
        storage: storage.map(Into::into),
        disk: None,
    };
    let e = refusal(req("512M", None), false);
    assert_eq!(e, PlanError::DiskNotWholeGib("512M".into()));
    assert_eq!(
        e.to_string(),
        "disk size `512M` is not whole GiB; write it like `20G`"
    );
    let no_storage = Definitions {
        proxmox: Proxmox::default(),
        ..defs()
    };
    let e = plan(req("20G", None), &no_storage, false).unwrap_err();
    assert_eq!(e, PlanError::NoStorage);
    assert_eq!(
        e.to_string(),
        "no storage given and definitions.nix has no `proxmox.storage`; pass STORAGE"
    );
    // A STORAGE on the command line needs no default.
    let p = plan(req("20G", Some("local-lvm")), &no_storage, false).unwrap();
    assert_eq!(p.dry_run().commands, ["qm set 110 --scsi0 local-lvm:20"]);
}

#[test]
fn protect_needs_both_vmid_and_state() {
    for (vmid, on) in [(Some(110), None), (None, Some(true)), (None, None)] {
        let e = refusal(Request::Protect { vmid, on }, false);
        assert_eq!(e, PlanError::ProtectArguments);
        assert_eq!(
            e.to_string(),
            "protect needs VMID and on|off, or --readonly-vms; see `vmctl ops protect --help`"
        );
    }
}

#[test]
fn protect_readonly_vms_plans_one_step_per_readonly_vm() {
    let p = plan(Request::ProtectReadonly, &defs(), true).unwrap();
    assert_eq!(
        p.steps,
        [Step::EnsureProtected {
            vmid: 104,
            name: "doc1".into()
        }]
    );
    // `--unlisted` plays no part: every target is listed.
    assert_eq!(p.fence, fence(&defs(), false));
    assert_eq!(
        p.dry_run(),
        DryRun {
            commands: vec!["qm set 104 --protection 1".into()],
            notes: vec![
                "dry run: when run for real, vmctl skips readonly VMs the cluster does \
                         not have or that are already protected"
                    .into()
            ],
        }
    );
    // An undetermined `readonly` counts as readonly.
    let mut more = defs();
    more.managed.push(Vm {
        fence: crate::model::FenceFacts {
            vmid: Given::Known,
            readonly: Given::Undetermined,
        },
        ..Vm::new("maybe", VmKind::Managed, Some(130))
    });
    let p = plan(Request::ProtectReadonly, &more, false).unwrap();
    assert_eq!(p.steps.len(), 2);
    assert_eq!(p.dry_run().commands[1], "qm set 130 --protection 1");
}

#[test]
fn protect_readonly_vms_without_any_has_nothing_to_do() {
    let none = Definitions {
        imported: vec![],
        ..defs()
    };
    let p = plan(Request::ProtectReadonly, &none, false).unwrap();
    assert!(p.steps.is_empty());
    assert_eq!(
        p.nothing_to_do,
        Some("definitions.nix marks no VM readonly; nothing to protect")
    );
    assert_eq!(p.dry_run(), DryRun::default());
}

#[test]
fn a_plan_carries_the_fence_of_its_unlisted_flag() {
    let p = plan(change(Mutation::Start { vmid: 777 }), &defs(), true).unwrap();
    assert_eq!(p.fence, fence(&defs(), true));
    let p = plan(change(Mutation::Start { vmid: 110 }), &defs(), false).unwrap();
    assert_eq!(p.fence, fence(&defs(), false));
}

mod fences;

#[test]
fn ops_migrate_without_a_node_to_start_from_is_refused() {
    let mut d = defs();
    d.proxmox.node = None;
    let req = Request::Migrate {
        vmid: 110,
        target: "prom2".into(),
        online: false,
    };
    assert!(matches!(
        plan(req.clone(), &d, false),
        Err(PlanError::NoNode { vmid: 110 })
    ));
    // The VM's own `node` is enough.
    d.managed[0].node = Some("pve3".into());
    let p = plan(req, &d, false).unwrap();
    assert_eq!(
        p.dry_run().commands,
        ["pvesh create /nodes/pve3/qemu/110/migrate --target prom2"]
    );
}
