//! `vmctl migrate NAME NODE` against the simulated 3-node cluster behind a real sshd, in a
//! real git repository: the migration goes through the API path of the node the cluster shows
//! the VM on, its task is waited for, and the VM ends on the new node with definitions.nix
//! (lossless) and docs/machines.md saying so, in one commit per migration, from and to each
//! node. Proxmox's refusals (a running VM without `--online`, local disks of a live migration
//! without `--with-local-disks`) leave the files and the cluster as they were; the VM is
//! locked while the task runs; a dry run and a readonly VM send nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::day2b_backup::{conf_on, creates, place, three_nodes, NODES};
use crate::support::pve::Pve;
use crate::support::vmctl_on as run;
use crate::support::{demo_fleet, squash, text, vmctl, vmctl_cmd};

fn git(root: &Path, args: &[&str]) -> String {
    crate::support::git(
        root,
        &[&["-c", "user.name=t", "-c", "user.email=t@t"], args].concat(),
    )
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

/// A fleet in git with its docs generated and committed.
fn fleet_in_git() -> tempfile::TempDir {
    let dir = demo_fleet();
    let fleet = dir.path();
    let docs = vmctl(fleet, &["docs"]);
    assert!(docs.status.success(), "{}", text(&docs.stderr));
    git(fleet, &["init", "-q"]);
    git(fleet, &["add", "-A"]);
    git(fleet, &["commit", "-qm", "fleet"]);
    dir
}

/// The simulator's state without its logs: what a refused migration must leave unchanged.
fn cluster_state(pve: &Pve) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut s = pve.snapshot();
    s.retain(|p, _| {
        !p.starts_with("argv.jsonl")
            && !p.starts_with("times.jsonl")
            && !p.starts_with("tasks-done")
    });
    s
}

const WEB: &str = "agent: 1\ncores: 2\nmemory: 4096\nname: test-automation\nparent: pre\n\
                   net0: virtio=BC:24:11:00:01:10,bridge=vmbr0\n\
                   scsi0: cephpool:vm-110-disk-0,size=20G\n\n[pre]\ncores: 2\nmemory: 4096\n\
                   name: test-automation\nscsi0: cephpool:vm-110-disk-0,size=20G\nsnaptime: 1\n";

#[test]
fn migrate_to_and_from_each_node_records_it_in_one_commit_each() {
    crate::support::require_tool("git");
    crate::support::pve::require_tools();
    let pve = Pve::start();
    pve.seed_demo();
    three_nodes(&pve);
    place(&pve, 110, "prom", WEB);
    let dir = fleet_in_git();
    let fleet = dir.path();
    let defs_before = std::fs::read_to_string(fleet.join("vms/definitions.nix")).unwrap();

    // Refusals and the dry run send nothing and write nothing.
    let sent = pve.argv_log().len();
    let ro = run(&pve, fleet, &["migrate", "doc1", "pve2"]);
    assert_eq!(ro.status.code(), Some(1), "{}", text(&ro.stderr));
    assert!(
        squash(&text(&ro.stderr)).contains("readonly"),
        "{}",
        text(&ro.stderr)
    );
    let dry = run(
        &pve,
        fleet,
        &["migrate", "test-automation", "pve2", "--dry-run"],
    );
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let shown = text(&dry.stdout);
    assert!(
        shown.starts_with("pvesh create /nodes/prom/qemu/110/migrate --target pve2\n"),
        "{shown}"
    );
    assert!(shown.contains("+      node = \"pve2\";"), "{shown}");
    assert_eq!(pve.argv_log().len(), sent, "nothing was sent");
    assert_eq!(git(fleet, &["status", "--porcelain"]), "");

    let mut commits = 1;
    for (from, to) in [("prom", "pve2"), ("pve2", "pve3"), ("pve3", "prom")] {
        assert_eq!(node_of(&pve, fleet, 110), from);
        let out = run(&pve, fleet, &["migrate", "test-automation", to]);
        assert!(
            out.status.success(),
            "migrate {from} -> {to}: {}",
            text(&out.stderr)
        );
        commits += 1;
        assert_eq!(node_of(&pve, fleet, 110), to);
        let call = creates(&pve.argv_log()).last().unwrap().clone();
        assert_eq!(
            call,
            [
                "pvesh",
                "create",
                &format!("/nodes/{from}/qemu/110/migrate"),
                "--target",
                to
            ]
        );
        // The config moved with its snapshots, and the task's lock is gone.
        let conf = conf_on(&pve, to, 110).unwrap();
        assert!(conf.contains("[pre]") && !conf.contains("lock:"), "{conf}");
        for other in NODES.iter().filter(|n| **n != to) {
            assert!(conf_on(&pve, other, 110).is_none(), "still on {other}");
        }
        // definitions.nix: the one `node` line, every other byte as it was; lint is clean.
        let defs = std::fs::read_to_string(fleet.join("vms/definitions.nix")).unwrap();
        let line = format!("      node = \"{to}\";\n");
        assert!(defs.contains(&line), "{defs}");
        assert_eq!(defs.replace(&line, ""), defs_before);
        let lint = vmctl(fleet, &["lint", "--no-nix"]);
        assert!(lint.status.success(), "{}", text(&lint.stdout));
        // The docs say so, and `docs --check` agrees they are up to date.
        let md = std::fs::read_to_string(fleet.join("docs/machines.md")).unwrap();
        assert!(md.contains(to), "{md}");
        let check = vmctl(fleet, &["docs", "--check"]);
        assert!(check.status.success(), "{}", text(&check.stdout));
        // One commit with exactly those two files; nothing left uncommitted.
        assert_eq!(
            git(fleet, &["rev-list", "--count", "HEAD"]),
            commits.to_string()
        );
        assert_eq!(
            git(fleet, &["show", "--name-only", "--format=", "HEAD"]),
            "docs/machines.md\nvms/definitions.nix"
        );
        let message = git(fleet, &["log", "-1", "--format=%B"]);
        assert!(
            message.contains(&format!("test-automation: now on node {to}")),
            "{message}"
        );
        assert!(
            message.contains(&format!("/nodes/{from}/qemu/110/migrate")),
            "{message}"
        );
        assert_eq!(git(fleet, &["status", "--porcelain"]), "");
    }
    let md = std::fs::read_to_string(fleet.join("docs/machines.md")).unwrap();
    assert!(md.contains("prom"), "{md}");

    // Again: already there, nothing sent, no new commit.
    let before = creates(&pve.argv_log()).len();
    let again = run(&pve, fleet, &["migrate", "test-automation", "prom"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(
        git(fleet, &["rev-list", "--count", "HEAD"]),
        commits.to_string()
    );
    assert_eq!(creates(&pve.argv_log()).len(), before);
}

#[test]
fn proxmox_refusals_leave_files_and_cluster_unchanged() {
    crate::support::require_tool("git");
    crate::support::pve::require_tools();
    let pve = Pve::start();
    pve.seed_demo();
    three_nodes(&pve);
    // Running, its disk on pve2's own storage.
    let local = WEB.replace("cephpool:", "nvmeprom:");
    place(&pve, 110, "pve2", &local);
    pve.write("running/110", "1\n");
    let dir = fleet_in_git();
    let fleet = dir.path();
    let files = || {
        ["vms/definitions.nix", "docs/machines.md"]
            .map(|f| std::fs::read_to_string(fleet.join(f)).unwrap())
    };
    let (files_before, cluster_before) = (files(), cluster_state(&pve));

    for (args, needle) in [
        (vec![], "can't migrate running VM without --online"),
        (
            vec!["--online"],
            "can't live migrate attached local disks without with-local-disks option",
        ),
    ] {
        let mut a = vec!["migrate", "test-automation", "pve3"];
        a.extend(args.iter().copied());
        let out = run(&pve, fleet, &a);
        assert_eq!(out.status.code(), Some(1), "{a:?}: {}", text(&out.stderr));
        assert!(
            squash(&text(&out.stderr)).contains(&squash(needle)),
            "{a:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(files(), files_before, "{a:?} changed a file");
        assert_eq!(
            cluster_state(&pve),
            cluster_before,
            "{a:?} changed the cluster"
        );
        assert_eq!(git(fleet, &["rev-list", "--count", "HEAD"]), "1");
    }
    // The failed task's exit status is named.
    let out = run(
        &pve,
        fleet,
        &["migrate", "test-automation", "pve3", "--online"],
    );
    assert!(
        squash(&text(&out.stderr)).contains("migrationaborted"),
        "{}",
        text(&out.stderr)
    );

    let out = run(
        &pve,
        fleet,
        &[
            "migrate",
            "test-automation",
            "pve3",
            "--online",
            "--with-local-disks",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(conf_on(&pve, "pve3", 110).is_some());
    assert!(
        pve.read("running/110").is_some(),
        "a live migration keeps it running"
    );
    assert_eq!(git(fleet, &["rev-list", "--count", "HEAD"]), "2");
}

#[test]
fn the_vm_is_locked_while_the_migration_task_runs() {
    crate::support::require_tool("git");
    crate::support::pve::require_tools();
    let pve = Pve::start();
    pve.seed_demo();
    pve.write(
        "sim.json",
        r#"{"node":"prom","nodes":["prom","pve2","pve3"],"gates":["migrate"]}"#,
    );
    place(&pve, 110, "pve3", WEB);
    let dir = fleet_in_git();
    let fleet = dir.path().to_path_buf();
    let child = vmctl_cmd()
        .arg("--fleet")
        .arg(&fleet)
        .envs(pve.vmctl_env())
        .args(["migrate", "test-automation", "pve2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    pve.wait_gate("migrate");
    let conf = conf_on(&pve, "pve3", 110).unwrap();
    assert!(conf.contains("lock: migrate"), "{conf}");
    // Anything else on the VM meanwhile is refused by Proxmox's lock.
    let out = run(&pve, &fleet, &["backup", "test-automation"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        squash(&text(&out.stderr)).contains(&squash("VM is locked (migrate)")),
        "{}",
        text(&out.stderr)
    );
    pve.open_gate("migrate");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let conf = conf_on(&pve, "pve2", 110).unwrap();
    assert!(!conf.contains("lock:"), "{conf}");
}
