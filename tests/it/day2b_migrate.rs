//! `vmctl migrate NAME NODE` against the simulated two-node cluster behind a real sshd, in a
//! real git repository: the VM ends on the new node, definitions.nix (lossless) and
//! docs/machines.md say so, in one commit; a dry run and a readonly VM change nothing.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::pve::Pve;
use crate::support::{demo_fleet, text, vmctl, vmctl_cmd};

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

/// The node `vmctl ops list --json` shows VM `vmid` on.
fn node_of(pve: &Pve, fleet: &Path, vmid: u64) -> String {
    let out = pve
        .ops_cmd(fleet)
        .args(["list", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .find(|r| r["vmid"] == vmid)
        .map(|r| r["node"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn migrate_moves_the_vm_then_records_its_node_in_one_commit() {
    crate::support::require_tool("git");
    crate::support::pve::require_tools();
    let pve = Pve::start();
    pve.seed_demo();
    pve.write_conf(
        110,
        "agent: 1\ncores: 2\nmemory: 4096\nname: test-automation\n\
         net0: virtio=BC:24:11:00:01:10,bridge=vmbr0\nscsi0: cephpool:vm-110-disk-0,size=20G\n",
    );
    let dir = demo_fleet();
    let fleet = dir.path();
    let docs = vmctl(fleet, &["docs"]);
    assert!(docs.status.success(), "{}", text(&docs.stderr));
    git(fleet, &["init", "-q"]);
    git(fleet, &["add", "-A"]);
    git(fleet, &["commit", "-qm", "fleet"]);
    let defs_before = std::fs::read_to_string(fleet.join("vms/definitions.nix")).unwrap();
    assert_eq!(node_of(&pve, fleet, 110), "prom");

    // Refusals and the dry run send nothing and write nothing.
    let sent = pve.argv_log().len();
    let ro = run(&pve, fleet, &["migrate", "doc1", "prom2"]);
    assert_eq!(ro.status.code(), Some(1), "{}", text(&ro.stderr));
    let dry = run(
        &pve,
        fleet,
        &["migrate", "test-automation", "prom2", "--dry-run"],
    );
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let shown = text(&dry.stdout);
    assert!(shown.starts_with("qm migrate 110 prom2\n"), "{shown}");
    assert!(shown.contains("+      node = \"prom2\";"), "{shown}");
    assert!(pve.argv_log().len() == sent, "nothing was sent");
    assert_eq!(git(fleet, &["status", "--porcelain"]), "");

    let out = run(&pve, fleet, &["migrate", "test-automation", "prom2"]);
    assert!(out.status.success(), "migrate: {}", text(&out.stderr));
    assert_eq!(node_of(&pve, fleet, 110), "prom2");
    let log = pve.argv_log();
    assert!(
        log.iter()
            .any(|a| a[..] == ["qm", "migrate", "110", "prom2"]),
        "{log:?}"
    );

    // definitions.nix: one line added, every other byte as it was; lint is clean.
    let defs = std::fs::read_to_string(fleet.join("vms/definitions.nix")).unwrap();
    let added: Vec<&str> = defs
        .lines()
        .filter(|l| !defs_before.lines().any(|b| b == *l))
        .collect();
    assert_eq!(added, ["      node = \"prom2\";"], "{defs}");
    assert_eq!(defs.replace("      node = \"prom2\";\n", ""), defs_before);
    let lint = vmctl(fleet, &["lint", "--no-nix"]);
    assert!(lint.status.success(), "{}", text(&lint.stdout));
    // The docs say so, and `docs --check` agrees they are up to date.
    let md = std::fs::read_to_string(fleet.join("docs/machines.md")).unwrap();
    assert!(md.contains("prom2"), "{md}");
    let check = vmctl(fleet, &["docs", "--check"]);
    assert!(check.status.success(), "{}", text(&check.stdout));
    // One commit with exactly those two files; nothing left uncommitted.
    assert_eq!(git(fleet, &["rev-list", "--count", "HEAD"]), "2");
    assert_eq!(
        git(fleet, &["show", "--name-only", "--format=", "HEAD"]),
        "docs/machines.md\nvms/definitions.nix"
    );
    assert!(git(fleet, &["log", "-1", "--format=%s"]).contains("test-automation"));
    assert_eq!(git(fleet, &["status", "--porcelain"]), "");

    // Again: already there, nothing sent, no new commit.
    let again = run(&pve, fleet, &["migrate", "test-automation", "prom2"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(git(fleet, &["rev-list", "--count", "HEAD"]), "2");
}
