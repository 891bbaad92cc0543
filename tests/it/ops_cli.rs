//! `vmctl ops` end to end: the demo fleet (vms/definitions.nix of this repository) over the
//! real sshd, the readonly matrix, dry-run, and JSON reads.

use crate::support::pve;
use crate::support::text;

use std::path::Path;

use pve::{Pve, HOST};
use vmctl::exec::fleet::load;
use vmctl::exec::proxmox::{Proxmox, ProxmoxError, QmProxmox};
use vmctl::proxmox::argv::CloneSpec;
use vmctl::proxmox::{Fence, FenceError, Mutation};

/// Every mutating command line for `vmid`/`name`.
fn mutating_commands(vmid: u32, name: &str, archive: &Path) -> Vec<Vec<String>> {
    let id = vmid.to_string();
    let a = archive.display().to_string();
    let cmds: Vec<Vec<&str>> = vec![
        vec!["clone", "9001", &id, "x"],
        vec!["configure", &id, "2", "2048"],
        vec!["create-disk", &id, "10G"],
        vec!["resize", &id, "scsi0", "+1G"],
        vec!["restore-vma", &a, &id],
        vec!["serial-socket", &id],
        vec!["start", &id],
        vec!["stop", &id],
        vec!["shutdown", &id],
        vec!["template", &id],
        vec!["destroy", &id, "--confirm", name],
        vec!["snapshot", "create", &id, "s1"],
        vec!["snapshot", "rollback", &id, "s1"],
        vec!["snapshot", "delete", &id, "s1"],
        vec!["migrate", &id, "prom2", "--online"],
        vec!["protect", &id, "off"],
        vec!["console", &id],
        vec!["stop", &id, "--dry-run"],
        vec!["destroy", &id, "--confirm", name, "--dry-run"],
    ];
    cmds.into_iter()
        .map(|c| c.into_iter().map(str::to_string).collect())
        .collect()
}

fn all_mutations(vmid: u32, name: &str) -> Vec<Mutation> {
    vec![
        Mutation::Clone(CloneSpec {
            source: 9001,
            vmid,
            name: "x".into(),
            full: true,
            storage: None,
            target: None,
            pool: None,
            description: None,
        }),
        Mutation::Configure {
            vmid,
            options: vec![("cores".into(), "1".into())],
        },
        Mutation::CreateDisk {
            vmid,
            disk: "scsi1".into(),
            storage: "nvmeprom".into(),
            size_gib: 1,
        },
        Mutation::Resize {
            vmid,
            disk: "scsi0".into(),
            size: "+1G".into(),
        },
        Mutation::RestoreVma {
            archive: "/a.vma".into(),
            vmid,
            storage: None,
        },
        Mutation::SerialSocket { vmid },
        Mutation::Start { vmid },
        Mutation::Stop { vmid },
        Mutation::Shutdown { vmid },
        Mutation::Template { vmid },
        Mutation::Destroy {
            vmid,
            confirm: Some(name.into()),
        },
        Mutation::SnapshotCreate {
            vmid,
            name: "s".into(),
            description: None,
            vmstate: true,
        },
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
            target: "prom2".into(),
            online: true,
            with_local_disks: false,
        },
        Mutation::Protect { vmid, on: false },
    ]
}

#[test]
fn readonly_matrix_in_the_library_with_the_demo_fleet() {
    let fleet = load(
        Some(crate::support::repo()),
        &vmctl::exec::report::Reporter::default(),
    )
    .expect("the demo fleet loads");
    let defs = fleet.definitions;
    assert_eq!(defs.proxmox.host.as_deref(), Some(HOST));
    let readonly: Vec<(u32, String)> = defs
        .all_vms()
        .filter(|v| v.readonly)
        .map(|v| (v.vmid.unwrap(), v.name.clone()))
        .collect();
    assert_eq!(
        readonly,
        [(104, "doc1".to_string()), (109, "igpu".to_string())]
    );
    let pve = Pve::start();
    let p = QmProxmox::new(
        pve.connect(),
        Fence::from_definitions(&defs),
        pve::fast_retry(),
    );
    let before = pve.snapshot();
    let mut refused = 0;
    for (vmid, name) in &readonly {
        for m in all_mutations(*vmid, name) {
            match p.apply(&m) {
                Err(ProxmoxError::Fence(FenceError::Readonly {
                    vmid: v, name: n, ..
                })) => {
                    assert_eq!((v, &n), (*vmid, name));
                    refused += 1;
                }
                other => panic!("{} on {vmid} was not refused: {other:?}", m.name()),
            }
        }
    }
    assert_eq!(refused, 32);
    assert_eq!(
        before,
        pve.snapshot(),
        "the simulator's state is byte-for-byte unchanged"
    );
}

#[test]
fn readonly_matrix_from_the_command_line() {
    let pve = Pve::start();
    let before = pve.snapshot();
    let archive = pve.root.join("backup.vma");
    for (vmid, name) in [(104, "doc1"), (109, "igpu")] {
        for args in mutating_commands(vmid, name, &archive) {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = pve.vmctl_ops(&args);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?} must fail: {err}");
            let flat = err.split_whitespace().collect::<Vec<_>>().join(" ");
            let flat = flat.replace(" │ ", " ");
            assert!(
                flat.contains(&format!("VM {vmid} ({name})")) && flat.contains("readonly = true"),
                "{args:?}: {err}"
            );
            assert!(
                out.stdout.is_empty(),
                "{args:?} printed {}",
                text(&out.stdout)
            );
        }
    }
    assert_eq!(
        before,
        pve.snapshot(),
        "the simulator's state is byte-for-byte unchanged"
    );
    assert_eq!(
        pve.sshd.accepted_connections(),
        0,
        "refused before connecting"
    );
}

#[test]
fn commands_round_trip_over_ssh() {
    let pve = Pve::start();
    pve.write("agent/110.json", r#"["192.168.1.50/24"]"#);

    let out = pve.vmctl_ops(&["list", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let doc1 = &list[0];
    assert_eq!(doc1["vmid"], 104);
    assert_eq!(doc1["fleet"], "imported");
    assert_eq!(doc1["readonly"], true);

    let out = pve.vmctl_ops(&["list"]);
    let t = text(&out.stdout);
    assert!(
        t.contains("doc1") && t.contains("imported (readonly)"),
        "{t}"
    );

    // Dry run: the exact remote command, nothing sent.
    let n = pve.argv_log().len();
    let out = pve.vmctl_ops(&[
        "clone",
        "9001",
        "110",
        "test-automation",
        "nvmeprom",
        "--description",
        "it's $(x)",
        "--dry-run",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "qm clone 9001 110 --name test-automation --full 1 --storage nvmeprom --description 'it'\\''s $(x)'\n"
    );
    assert_eq!(pve.argv_log().len(), n);

    let out = pve.vmctl_ops(&[
        "clone",
        "9001",
        "110",
        "test-automation",
        "nvmeprom",
        "--description",
        "it's $(x)",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        pve.argv_log().last().unwrap(),
        &[
            "qm",
            "clone",
            "9001",
            "110",
            "--name",
            "test-automation",
            "--full",
            "1",
            "--storage",
            "nvmeprom",
            "--description",
            "it's $(x)"
        ]
    );
    let out = pve.vmctl_ops(&["config", "110", "--json"]);
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(c["description"], "it's $(x)");
    assert_eq!(c["name"], "test-automation");

    assert!(pve
        .vmctl_ops(&["configure", "110", "4", "8192", "--set", "ciuser=root"])
        .status
        .success());
    assert!(pve.conf(110).unwrap().contains("ciuser: root"));
    assert!(pve.vmctl_ops(&["start", "110"]).status.success());
    let out = pve.vmctl_ops(&["status", "110"]);
    assert_eq!(text(&out.stdout), "status: running\n");
    let out = pve.vmctl_ops(&["get-ip", "110"]);
    assert_eq!(text(&out.stdout), "192.168.1.50\n", "{}", text(&out.stderr));
    let out = pve.vmctl_ops(&["next-vmid"]);
    assert_eq!(text(&out.stdout), "111\n");
    let out = pve.vmctl_ops(&["storage", "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s[1]["name"], "nvmeprom");
    assert!(pve
        .vmctl_ops(&["snapshot", "create", "110", "pre", "--description", "x"])
        .status
        .success());
    let out = pve.vmctl_ops(&["snapshot", "list", "110", "--json"]);
    let snaps: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(snaps[0]["name"], "pre");

    // Destroy: the name must be confirmed, then it goes.
    let out = pve.vmctl_ops(&["destroy", "110", "--confirm", "doc1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        crate::support::unwrapped(&out.stderr)
            .contains("`--confirm doc1` does not match its name; pass `--confirm test-automation`"),
        "{}",
        text(&out.stderr)
    );
    assert!(pve.conf(110).is_some());
    assert!(pve.vmctl_ops(&["stop", "110"]).status.success());
    let out = pve.vmctl_ops(&["destroy", "110", "--confirm", "test-automation"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(pve.conf(110).is_none());
    // The template is not managed: refused whatever the confirmation.
    let out = pve.vmctl_ops(&["destroy", "9001", "--confirm", "NixosServerBlank"]);
    assert!(
        text(&out.stderr).contains("does not manage it"),
        "{}",
        text(&out.stderr)
    );
    assert!(pve.conf(9001).is_some());
}

#[test]
fn lock_retries_are_configurable_from_the_command_line() {
    let pve = Pve::start();
    pve.set_faults(r#"[{"match":"qm start 104","action":"lock-timeout"}, {"match":"pvesm","action":"lock-timeout","storage":"nvmeprom"}]"#);
    let out = pve.vmctl_ops(&["storage", "--lock-retries", "1", "--lock-backoff-ms", "10"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("proxmox lock:") && err.contains("retry 1/1"),
        "{err}"
    );
    assert!(err.contains("after 2 attempts"), "{err}");
    assert_eq!(pve.argv_log().len(), 2);
}

#[test]
fn wait_ssh_needs_no_fleet_and_reports_readiness() {
    let vm = pve::VmHost::start(31, None);
    let out = crate::support::vmctl_cmd()
        .args(["ops", "wait-ssh", "127.0.0.31", "10", "root", "--port"])
        .arg(vm.sshd.addr.port().to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with(&format!("ssh is up on {}", vm.sshd.addr)));
}
