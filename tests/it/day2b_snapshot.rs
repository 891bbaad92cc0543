//! `vmctl snapshot NAME create|list|rollback|delete` against the Proxmox simulator behind a
//! real sshd: names as Proxmox checks them, the readonly fence, a rollback only with
//! confirmation and after an automatic snapshot, automatic snapshots pruned to
//! `snapshots.keep` while manual ones stay; and lint of `snapshots.keep`.

use std::path::Path;

use crate::support::pve::Pve;
use crate::support::vmctl_on as run;
use crate::support::{demo_fleet, squash, text, vmctl};

/// The snapshot names of VM 110, from `vmctl snapshot test-automation list --json`.
fn names(pve: &Pve, fleet: &Path) -> Vec<String> {
    let out = run(
        pve,
        fleet,
        &["snapshot", "test-automation", "list", "--json"],
    );
    assert!(out.status.success(), "list: {}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut n: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

/// Adds `snapshots = { keep = KEEP; };` to the fleet's definitions.nix.
fn set_keep(fleet: &Path, keep: &str) {
    let p = fleet.join("vms/definitions.nix");
    let s = std::fs::read_to_string(&p).unwrap();
    let at = s.rfind('}').unwrap();
    let s = format!("{}  snapshots = {{ keep = {keep}; }};\n}}\n", &s[..at]);
    std::fs::write(&p, s).unwrap();
}

#[test]
fn snapshots_by_name_with_fences_confirmation_and_retention() {
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
    set_keep(fleet, "2");
    let lint = vmctl(fleet, &["lint", "--no-nix"]);
    assert!(lint.status.success(), "{}", text(&lint.stdout));

    // A manual snapshot, listed as manual.
    let out = run(
        &pve,
        fleet,
        &["snapshot", "test-automation", "create", "s1"],
    );
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    let list = run(&pve, fleet, &["snapshot", "test-automation", "list"]);
    assert!(
        text(&list.stdout).contains("s1  manual"),
        "{}",
        text(&list.stdout)
    );

    // Names Proxmox refuses never reach it; vmctl's own prefix is refused for manual ones;
    // readonly doc1 is fenced.
    let sent = pve.argv_log().len();
    for (args, code, needle) in [
        (vec!["create", "1st"], 2, "is not a snapshot name"),
        (vec!["create", "a.b"], 2, "is not a snapshot name"),
        (
            vec!["create", "vmctl-auto-mine"],
            1,
            "keeps for its automatic snapshots",
        ),
        (
            vec!["rollback", "s1"],
            1,
            "needs `--confirm test-automation`",
        ),
        (
            vec!["rollback", "s1", "--confirm", "web"],
            1,
            "needs `--confirm test-automation`",
        ),
    ] {
        let mut a = vec!["snapshot", "test-automation"];
        a.extend(args.iter().copied());
        let out = run(&pve, fleet, &a);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{a:?}: {}",
            text(&out.stderr)
        );
        assert!(
            squash(&text(&out.stderr)).contains(&squash(needle)),
            "{a:?}: {}",
            text(&out.stderr)
        );
    }
    let out = run(&pve, fleet, &["snapshot", "doc1", "create", "x1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(pve.argv_log().len(), sent, "a refusal sent a command");

    // Three older automatic snapshots (as earlier runs left them) and one more manual one.
    for n in [
        "vmctl-auto-rebuild-20200101T000000",
        "vmctl-auto-rollback-20200102T000000",
        "vmctl-auto-rebuild-20200103T000000",
    ] {
        let out = pve
            .ops_cmd(fleet)
            .args(["snapshot", "create", "110", n])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let out = run(
        &pve,
        fleet,
        &["snapshot", "test-automation", "create", "s2"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A dry run of the rollback shows the automatic snapshot first and sends nothing.
    let sent = pve.argv_log().len();
    let dry = run(
        &pve,
        fleet,
        &[
            "snapshot",
            "test-automation",
            "rollback",
            "s1",
            "--confirm",
            "test-automation",
            "--dry-run",
        ],
    );
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let lines: Vec<String> = text(&dry.stdout).lines().map(String::from).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("qm snapshot 110 vmctl-auto-rollback-"),
        "{lines:?}"
    );
    assert_eq!(lines[1], "qm rollback 110 s1");
    assert_eq!(pve.argv_log().len(), sent);

    // The rollback: an automatic snapshot, pruning to keep = 2 (the oldest automatic ones),
    // then the rollback; manual s1 and s2 stay.
    let out = run(
        &pve,
        fleet,
        &[
            "snapshot",
            "test-automation",
            "rollback",
            "s1",
            "--confirm",
            "test-automation",
        ],
    );
    assert!(out.status.success(), "rollback: {}", text(&out.stderr));
    let now = names(&pve, fleet);
    let auto: Vec<&String> = now
        .iter()
        .filter(|n| n.starts_with("vmctl-auto-"))
        .collect();
    assert_eq!(auto.len(), 2, "{now:?}");
    assert_eq!(auto[0], "vmctl-auto-rebuild-20200103T000000", "{now:?}");
    assert!(auto[1].starts_with("vmctl-auto-rollback-2"), "{now:?}");
    assert!(
        now.contains(&"s1".to_string()) && now.contains(&"s2".to_string()),
        "{now:?}"
    );
    let log = pve.argv_log();
    let rolled = log
        .iter()
        .position(|a| a.iter().any(|x| x == "rollback"))
        .unwrap();
    let took = log
        .iter()
        .position(|a| a.iter().any(|x| x.starts_with("vmctl-auto-rollback-")))
        .unwrap();
    assert!(took < rolled, "the automatic snapshot comes first: {log:?}");

    // Delete a manual one.
    let out = run(
        &pve,
        fleet,
        &["snapshot", "test-automation", "delete", "s2"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!names(&pve, fleet).contains(&"s2".to_string()));
}

#[test]
fn snapshots_keep_is_linted() {
    for (keep, code) in [("0", "VM006"), ("101", "VM006"), ("\"3\"", "DF002")] {
        let dir = demo_fleet();
        set_keep(dir.path(), keep);
        let out = vmctl(dir.path(), &["lint", "--no-nix", "--format", "json"]);
        assert_eq!(out.status.code(), Some(1), "keep = {keep}");
        assert!(
            text(&out.stdout).contains(code),
            "keep = {keep}: {}",
            text(&out.stdout)
        );
    }
    let dir = demo_fleet();
    let p = dir.path().join("vms/definitions.nix");
    let s = std::fs::read_to_string(&p).unwrap();
    let at = s.rfind('}').unwrap();
    std::fs::write(
        &p,
        format!("{}  snapshots = {{ kep = 3; }};\n}}\n", &s[..at]),
    )
    .unwrap();
    let out = vmctl(dir.path(), &["lint", "--no-nix", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("DF003"), "{}", text(&out.stdout));
}
