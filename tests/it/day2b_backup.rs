//! `vmctl backup`, `backups` and `restore` against the Proxmox simulator (a 3-node cluster)
//! behind a real sshd: for a VM on each node, the backup and the restores go through that
//! node's API path (`pvesh create /nodes/N/vzdump`, `/nodes/N/qemu --archive`), its backups are
//! read from that node's storage, backup then restore as a new VM gives the same configuration,
//! and a restore into the VM happens only confirmed, stopped, after a backup of its state. A
//! readonly VM may be backed up (a read) but never stopped, restored into or sent anything else.

use std::path::Path;

use crate::support::pve::Pve;
use crate::support::vmctl_on as run;
use crate::support::{demo_fleet, squash, text};

pub(crate) const NODES: [&str; 3] = ["prom", "pve2", "pve3"];

fn git(root: &Path, args: &[&str]) -> String {
    crate::support::git(
        root,
        &[&["-c", "user.name=t", "-c", "user.email=t@t"], args].concat(),
    )
}

/// The demo cluster grown to three nodes: `local` and `nvmeprom` are each node's own,
/// `cephpool` is shared.
pub(crate) fn three_nodes(pve: &Pve) {
    pve.write(
        "sim.json",
        r#"{"node":"prom","nodes":["prom","pve2","pve3"],"storage_lock_timeout_ms":1500,"clone_ms":0}"#,
    );
}

/// Puts VM `vmid` on `node` (and on no other node) with `conf`.
pub(crate) fn place(pve: &Pve, vmid: u32, node: &str, conf: &str) {
    for n in NODES {
        let _ = std::fs::remove_file(pve.state.join(format!("nodes/{n}/qemu-server/{vmid}.conf")));
    }
    pve.write(&format!("nodes/{node}/qemu-server/{vmid}.conf"), conf);
}

pub(crate) fn conf_on(pve: &Pve, node: &str, vmid: u32) -> Option<String> {
    pve.read(&format!("nodes/{node}/qemu-server/{vmid}.conf"))
}

/// The API calls that change something (`pvesh create …`) the simulator received.
pub(crate) fn creates(log: &[Vec<String>]) -> Vec<Vec<String>> {
    log.iter()
        .filter(|a| a.len() > 2 && a[0] == "pvesh" && a[1] == "create")
        .cloned()
        .collect()
}

const WEB: &str = "#Testing automated provisioning system\nagent: 1\ncores: 2\nmemory: 4096\n\
                   name: test-automation\nnet0: virtio=BC:24:11:00:01:10,bridge=vmbr0\n\
                   scsi0: nvmeprom:vm-110-disk-0,size=20G\ntags: test\n";

/// A restored VM's configuration with what a restore as another VM changes by design put
/// back: its name, its MAC (`--unique`) and its disks' volume names (they carry the VMID).
fn as_original(conf: &str, vmid: u32) -> String {
    conf.lines()
        .map(|l| {
            if l.starts_with("name:") {
                "name: test-automation".to_string()
            } else if l.starts_with("net0:") {
                "net0: virtio=BC:24:11:00:01:10,bridge=vmbr0".to_string()
            } else {
                l.replace(&format!("vm-{vmid}-disk-"), "vm-110-disk-")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn backup_and_restores_of_a_vm_on_each_of_three_nodes() {
    crate::support::require_tool("git");
    crate::support::pve::require_tools();
    let pve = Pve::start();
    pve.seed_demo();
    three_nodes(&pve);
    let dir = demo_fleet();
    let fleet = dir.path();
    git(fleet, &["init", "-q"]);
    git(fleet, &["add", "-A"]);
    git(fleet, &["commit", "-qm", "fleet"]);
    let head = git(fleet, &["rev-parse", "--short", "HEAD"]);

    for (i, node) in NODES.into_iter().enumerate() {
        place(&pve, 110, node, WEB);
        let out = run(&pve, fleet, &["backup", "test-automation"]);
        assert!(
            out.status.success(),
            "backup on {node}: {}",
            text(&out.stderr)
        );
        let sent = creates(&pve.argv_log());
        let last = sent.last().unwrap();
        assert_eq!(
            last[..last.len() - 1],
            [
                "pvesh",
                "create",
                &format!("/nodes/{node}/vzdump"),
                "--vmid",
                "110",
                "--storage",
                "local",
                "--mode",
                "snapshot",
                "--notes-template"
            ],
            "{last:?}"
        );
        assert_eq!(
            last[last.len() - 1],
            format!("vmctl backup of test-automation at fleet commit {head}")
        );

        // `local` is each node's own storage: this node lists this run's backup only.
        let out = run(&pve, fleet, &["backups", "test-automation", "--json"]);
        assert!(out.status.success(), "backups: {}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 1, "{node}: {v}");
        let volume = v[0]["volid"].as_str().unwrap().to_string();
        assert!(
            volume.starts_with("local:backup/vzdump-qemu-110-"),
            "{volume}"
        );
        assert!(pve
            .argv_log()
            .iter()
            .any(|a| a.join(" ").starts_with(&format!(
                "pvesh get /nodes/{node}/storage/local/content --content backup --vmid 110"
            ))));

        // As a new VM: the next free VMID of the managed range, on the VM's node, the same
        // configuration.
        let new = 111 + i as u32;
        let out = run(
            &pve,
            fleet,
            &[
                "restore",
                "test-automation",
                "--from",
                &volume,
                "--as",
                &format!("ta-{node}"),
            ],
        );
        assert!(out.status.success(), "restore --as: {}", text(&out.stderr));
        let restored = conf_on(&pve, node, new).unwrap_or_else(|| panic!("no VM {new} on {node}"));
        assert_eq!(as_original(&restored, new), as_original(WEB, 110));
        assert!(restored.contains(&format!("name: ta-{node}")), "{restored}");
        assert!(restored.contains(&format!("vm-{new}-disk-0")), "{restored}");
        assert!(
            !restored.contains("BC:24:11:00:01:10"),
            "a unique MAC: {restored}"
        );
        assert_eq!(
            creates(&pve.argv_log()).last().unwrap()[..5],
            [
                "pvesh",
                "create",
                &format!("/nodes/{node}/qemu"),
                "--vmid",
                &new.to_string()
            ]
        );

        // Into the VM: refused without confirmation and while it runs; nothing sent.
        pve.write("running/110", "1\n");
        let before = creates(&pve.argv_log()).len();
        for (args, needle) in [
            (vec![], "needs `--confirm test-automation`"),
            (vec!["--confirm", "ta"], "needs `--confirm test-automation`"),
            (vec!["--confirm", "test-automation"], "it is running"),
        ] {
            let mut a = vec!["restore", "test-automation", "--from", &volume];
            a.extend(args.iter().copied());
            let out = run(&pve, fleet, &a);
            assert_eq!(out.status.code(), Some(1), "{a:?}: {}", text(&out.stderr));
            assert!(
                squash(&text(&out.stderr)).contains(&squash(needle)),
                "{a:?}: {}",
                text(&out.stderr)
            );
        }
        assert_eq!(
            creates(&pve.argv_log()).len(),
            before,
            "a refusal sent something"
        );

        // Stopped and confirmed: a backup of the state now, then the restore over it.
        std::fs::remove_file(pve.state.join("running/110")).unwrap();
        place(&pve, 110, node, &WEB.replace("cores: 2", "cores: 6"));
        let out = run(
            &pve,
            fleet,
            &[
                "restore",
                "test-automation",
                "--from",
                &volume,
                "--confirm",
                "test-automation",
            ],
        );
        assert!(out.status.success(), "restore into: {}", text(&out.stderr));
        let sent = creates(&pve.argv_log())[before..].to_vec();
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert_eq!(
            sent[0][2],
            format!("/nodes/{node}/vzdump"),
            "the state first"
        );
        assert_eq!(
            sent[1],
            [
                "pvesh",
                "create",
                &format!("/nodes/{node}/qemu"),
                "--vmid",
                "110",
                "--archive",
                &volume,
                "--force",
                "1"
            ]
        );
        let back = conf_on(&pve, node, 110).unwrap();
        assert!(
            back.contains("cores: 2"),
            "the backup's config is back: {back}"
        );
        let out = run(&pve, fleet, &["backups", "test-automation", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            v.as_array().unwrap().len(),
            2,
            "the pre-restore backup is listed: {v}"
        );
    }
    // VMIDs are the cluster's: the three restores took 111, 112 and 113, one per node.
    for (i, node) in NODES.into_iter().enumerate() {
        for (j, other) in NODES.into_iter().enumerate() {
            assert_eq!(
                conf_on(&pve, other, 111 + i as u32).is_some(),
                i == j,
                "{node}"
            );
        }
    }

    // The VM gone: its backups are looked up, and restored, through the node definitions.nix
    // gives it (`proxmox.node`, prom), whose own storage holds the two made there.
    for n in NODES {
        let _ = std::fs::remove_file(pve.state.join(format!("nodes/{n}/qemu-server/110.conf")));
    }
    let out = run(&pve, fleet, &["backups", "test-automation", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(squash(&text(&out.stderr)).contains(&squash("is not on the cluster")));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
    let volume = v[0]["volid"].as_str().unwrap();
    let out = run(
        &pve,
        fleet,
        &[
            "restore",
            "test-automation",
            "--from",
            volume,
            "--as",
            "ta-back",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // 110 is free again, but definitions.nix reserves it: the restore takes 114.
    let back = conf_on(&pve, "prom", 114).expect("restored on prom");
    assert_eq!(as_original(&back, 114), as_original(WEB, 110));
}

#[test]
fn a_readonly_vm_is_backed_up_but_never_stopped_or_restored_into() {
    crate::support::pve::require_tools();
    let pve = Pve::start();
    pve.seed_demo();
    three_nodes(&pve);
    let doc1 = pve.conf(104).unwrap();
    place(&pve, 104, "pve3", &doc1);
    let dir = demo_fleet();
    let fleet = dir.path();

    let out = run(&pve, fleet, &["backup", "doc1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sent = creates(&pve.argv_log());
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0][2..5], ["/nodes/pve3/vzdump", "--vmid", "104"]);
    let volume = {
        let out = run(&pve, fleet, &["backups", "doc1", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["volid"].as_str().unwrap().to_string()
    };

    let before = pve.argv_log().len();
    for args in [
        vec!["backup", "doc1", "--mode", "stop"],
        vec!["backup", "doc1", "test-automation", "--mode", "stop"],
        vec!["restore", "doc1", "--from", &volume, "--confirm", "doc1"],
        vec!["migrate", "doc1", "prom"],
    ] {
        let out = run(&pve, fleet, &args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            squash(&text(&out.stderr)).contains("readonly"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(pve.argv_log().len(), before, "a readonly VM got a call");
    // Another VM's volume is refused before anything is read.
    let out = run(
        &pve,
        fleet,
        &["restore", "igpu", "--from", &volume, "--as", "x1"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(squash(&text(&out.stderr)).contains(&squash("is of VMID 104")));
}

#[test]
fn backup_due_follows_the_policy_and_keeps_keep() {
    crate::support::pve::require_tools();
    let pve = Pve::start();
    pve.seed_demo();
    pve.write_conf(
        110,
        "agent: 1\ncores: 2\nmemory: 4096\nname: test-automation\n\
         net0: virtio=BC:24:11:00:01:10,bridge=vmbr0\nscsi0: nvmeprom:vm-110-disk-0,size=20G\n",
    );
    let dir = demo_fleet();
    let fleet = dir.path();
    let defs = fleet.join("vms/definitions.nix");
    let original = std::fs::read_to_string(&defs).unwrap();
    let at = original.rfind('}').unwrap();
    let with = |policy: &str| format!("{}  backups = {policy};\n}}\n", &original[..at]);
    std::fs::write(
        &defs,
        with(r#"{ vms = [ "test-automation" ]; storage = "local"; keep = 2; everyHours = 24; }"#),
    )
    .unwrap();
    let lint = crate::support::vmctl(fleet, &["lint", "--no-nix"]);
    assert!(lint.status.success(), "{}", text(&lint.stdout));
    // Two old backups on the VM's node's own `local` storage, as a timer left them long ago.
    for stamp in ["2020_01_01-00_00_00", "2020_01_02-00_00_00"] {
        pve.write(
            &format!("nodes/prom/dump/local/vzdump-qemu-110-{stamp}.vma.zst"),
            "name: test-automation\n",
        );
    }
    let vzdumps = |pve: &Pve| {
        creates(&pve.argv_log())
            .iter()
            .filter(|a| a[2].ends_with("/vzdump"))
            .count()
    };

    let dry = run(&pve, fleet, &["backup", "--due", "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert!(
        text(&dry.stdout).starts_with(
            "pvesh create /nodes/prom/vzdump --vmid 110 --storage local --mode snapshot --notes-template 'vmctl backup of test-automation (fleet not in git)' --prune-backups 'keep-last=2'"
        ),
        "{}",
        text(&dry.stdout)
    );
    assert_eq!(vzdumps(&pve), 0, "a dry run only reads");

    let due = run(&pve, fleet, &["backup", "--due"]);
    assert!(due.status.success(), "{}", text(&due.stderr));
    assert_eq!(vzdumps(&pve), 1);
    let out = run(&pve, fleet, &["backups", "test-automation", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["volid"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "kept 2: {names:?}");
    assert!(
        names[0].ends_with("2020_01_02-00_00_00.vma.zst"),
        "{names:?}"
    );
    assert!(!names[1].contains("2020_"), "{names:?}");

    // Not due again within everyHours: nothing sent.
    let again = run(&pve, fleet, &["backup", "--due"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(vzdumps(&pve), 1);
    assert!(squash(&text(&again.stderr)).contains(&squash("is not due")));

    // A policy vmctl cannot follow is refused (lint first where it can tell).
    std::fs::write(&defs, with(r#"{ vms = [ "nosuch" ]; }"#)).unwrap();
    let out = run(&pve, fleet, &["backup", "--due"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    std::fs::write(&defs, with(r#"{ vms = [ ]; everyHours = 0; }"#)).unwrap();
    let lint = crate::support::vmctl(fleet, &["lint", "--no-nix", "--format", "json"]);
    assert_eq!(lint.status.code(), Some(1));
    assert!(
        text(&lint.stdout).contains("VM006"),
        "{}",
        text(&lint.stdout)
    );
    assert_eq!(vzdumps(&pve), 1);
}
