//! `vmctl backup`, `backups` and `restore` against the Proxmox simulator behind a real sshd
//! (vzdump volumes in tests/pve-sim/vzdump.rs): notes naming vmctl and the fleet's commit,
//! backup then restore as a new VM gives the same configuration, and a restore into the VM only
//! with confirmation, stopped, after a backup of its state; never into a readonly VM.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::pve::Pve;
use crate::support::{demo_fleet, squash, text, vmctl_cmd};

fn run(pve: &Pve, fleet: &Path, args: &[&str]) -> Output {
    vmctl_cmd()
        .arg("--fleet")
        .arg(fleet)
        .envs(pve.vmctl_env())
        .args(args)
        .output()
        .unwrap()
}

fn git(root: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// A VM's configuration without the lines a restore as another VM changes by design.
fn conf_without_name(pve: &Pve, vmid: u32) -> Vec<String> {
    pve.conf(vmid)
        .unwrap_or_else(|| panic!("no VM {vmid}"))
        .lines()
        .filter(|l| !l.starts_with("name:"))
        .map(String::from)
        .collect()
}

#[test]
fn backup_restore_as_new_vm_and_confirmed_restore_into_the_vm() {
    crate::support::require_tool("git");
    crate::support::pve::require_tools();
    let pve = Pve::start();
    pve.seed_demo();
    pve.write_conf(
        110,
        "#Testing automated provisioning system\nagent: 1\ncores: 2\nmemory: 4096\n\
         name: test-automation\nnet0: virtio=BC:24:11:00:01:10,bridge=vmbr0\n\
         scsi0: nvmeprom:vm-110-disk-0,size=20G\ntags: test\n",
    );
    let dir = demo_fleet();
    let fleet = dir.path();
    git(fleet, &["init", "-q"]);
    git(fleet, &["add", "-A"]);
    git(fleet, &["commit", "-qm", "fleet"]);
    let head = git(fleet, &["rev-parse", "--short", "HEAD"]);

    let out = run(
        &pve,
        fleet,
        &["backup", "test-automation", "--storage", "local"],
    );
    assert!(out.status.success(), "backup: {}", text(&out.stderr));
    let log = pve.argv_log();
    let vzdump = log.iter().find(|a| a[0] == "vzdump").expect("vzdump sent");
    assert_eq!(
        &vzdump[..6],
        ["vzdump", "110", "--storage", "local", "--mode", "snapshot"]
    );
    assert_eq!(
        vzdump[7],
        format!("vmctl backup of test-automation at fleet commit {head}")
    );

    let out = run(&pve, fleet, &["backups", "test-automation", "--json"]);
    assert!(out.status.success(), "backups: {}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let vols = v.as_array().unwrap();
    assert_eq!(vols.len(), 1, "{v}");
    let volume = vols[0]["volid"].as_str().unwrap().to_string();
    assert!(
        volume.starts_with("local:backup/vzdump-qemu-110-"),
        "{volume}"
    );

    // As a new VM: the next free VMID of the managed range, the same configuration.
    let out = run(
        &pve,
        fleet,
        &[
            "restore",
            "test-automation",
            "--from",
            &volume,
            "--as",
            "ta-restored",
        ],
    );
    assert!(out.status.success(), "restore --as: {}", text(&out.stderr));
    assert_eq!(conf_without_name(&pve, 111), conf_without_name(&pve, 110));
    assert!(pve.conf(111).unwrap().contains("name: ta-restored"));

    // Into the VM: refused without confirmation and while it runs; nothing sent.
    pve.write("running/110", "1\n");
    let sent = pve.argv_log().len();
    for (args, needle) in [
        (vec![], "needs `--confirm test-automation`"),
        (vec!["--confirm", "ta"], "needs `--confirm test-automation`"),
        (vec!["--confirm", "test-automation"], "is running"),
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
    let mutating = |log: &[Vec<String>]| {
        log.iter()
            .filter(|a| a[0] == "vzdump" || a[0] == "qmrestore")
            .count()
    };
    assert_eq!(
        mutating(&pve.argv_log()[sent..]),
        0,
        "a refusal changed something"
    );
    // Readonly doc1 never; a volume of another VM is refused too.
    let out = run(
        &pve,
        fleet,
        &[
            "restore",
            "doc1",
            "--from",
            "local:backup/vzdump-qemu-104-2026_01_01-00_00_00.vma.zst",
            "--confirm",
            "doc1",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let out = run(
        &pve,
        fleet,
        &["restore", "igpu", "--from", &volume, "--as", "x1"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        squash(&text(&out.stderr)).contains(&squash("is of VMID 110")),
        "{}",
        text(&out.stderr)
    );

    // Stopped and confirmed: a backup of the state now, then the restore over it.
    std::fs::remove_file(pve.state.join("running/110")).unwrap();
    pve.write_conf(110, &pve.conf(110).unwrap().replace("cores: 2", "cores: 6"));
    let before = pve.argv_log().len();
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
    let log = pve.argv_log();
    let sent: Vec<&Vec<String>> = log[before..]
        .iter()
        .filter(|a| a[0] == "vzdump" || a[0] == "qmrestore")
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0][0], "vzdump", "the state is backed up first");
    assert_eq!(sent[1][..5], ["qmrestore", &volume, "110", "--force", "1"]);
    assert!(
        pve.conf(110).unwrap().contains("cores: 2"),
        "the backup's config is back"
    );
    let out = run(&pve, fleet, &["backups", "test-automation", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v.as_array().unwrap().len(),
        2,
        "the pre-restore backup is listed: {v}"
    );
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
    // Two old backups, as a timer left them long ago.
    for stamp in ["2020_01_01-00_00_00", "2020_01_02-00_00_00"] {
        pve.write(
            &format!("dump/local/vzdump-qemu-110-{stamp}.vma.zst"),
            "name: test-automation\n",
        );
    }
    let vzdumps = |pve: &Pve| pve.argv_log().iter().filter(|a| a[0] == "vzdump").count();

    let dry = run(&pve, fleet, &["backup", "--due", "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert!(
        text(&dry.stdout).starts_with(
            "vzdump 110 --storage local --mode snapshot --notes-template 'vmctl backup of test-automation (fleet not in git)' --prune-backups 'keep-last=2'"
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
