//! `vmctl hosts` against a copy of the demo fleet: add/set-key/remove write atomically,
//! refusals and dry runs leave hosts.nix untouched, JSON output for scripts.

use std::path::Path;

use crate::support::{demo_fleet, repo, text, unwrapped, vmctl};

const NEW_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO8VKyhzcBQ4yMgYmcX8xILCt0u2lTGGk4vH1uMd4X9T root@new";
const OTHER_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBz9Ds1OVlfmdWRnwCzRpFUkK5+5yPtMy2SeTGUp3OKw";
const DOC1_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMlLRoQ0HoeSXd9Rbb9WB51hQUGkEPeKZvmAsJFjg/wH";

fn hosts(root: &Path) -> String {
    std::fs::read_to_string(root.join("hosts.nix")).unwrap()
}

fn no_temp_files(root: &Path) {
    let leftovers: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("vmctl-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn add_set_key_remove_round_trip() {
    let fleet = demo_fleet();
    let root = fleet.path();
    let original = hosts(root);

    let add = vmctl(root, &["hosts", "add", "test-automation", "--key", NEW_KEY]);
    assert_eq!(add.status.code(), Some(0), "{}", text(&add.stderr));
    assert_eq!(
        text(&add.stdout),
        "hosts.nix: added host `test-automation` at line 24\n"
    );
    let added = hosts(root);
    assert!(added.starts_with(&original[..original.len() - 2]));
    assert!(added.contains(&format!("  test-automation = {{\n    hostname = \"test-automation\";\n    sshAlias = \"test-automation\";\n    publicKey = \"{NEW_KEY}\";\n  }};\n}}\n")));

    // The result passes lint (hosts.nix rules included) with no diagnostics at all.
    let lint = crate::support::vmlint_cmd()
        .args(["--format", "json"])
        .arg(root)
        .output()
        .unwrap();
    assert_eq!(lint.status.code(), Some(0), "{}", text(&lint.stderr));
    assert_eq!(text(&lint.stdout).trim(), "[]");

    let again = vmctl(root, &["hosts", "add", "test-automation", "--key", NEW_KEY]);
    assert_eq!(again.status.code(), Some(0));
    assert!(
        text(&again.stdout).contains("nothing to change"),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(hosts(root), added);

    // A key another host has is refused.
    let taken = vmctl(root, &["hosts", "set-key", "doc1", "--key", NEW_KEY]);
    assert_eq!(taken.status.code(), Some(1));
    assert!(
        unwrapped(&taken.stderr).contains("already the publicKey of `test-automation`"),
        "{}",
        text(&taken.stderr)
    );
    assert_eq!(hosts(root), added);

    let set = vmctl(root, &["hosts", "set-key", "doc1", "--key", OTHER_KEY]);
    assert_eq!(set.status.code(), Some(0), "{}", text(&set.stderr));
    assert_eq!(hosts(root), added.replace(DOC1_KEY, OTHER_KEY));

    let rm = vmctl(root, &["hosts", "remove", "test-automation"]);
    assert_eq!(rm.status.code(), Some(0), "{}", text(&rm.stderr));
    assert_eq!(hosts(root), original.replace(DOC1_KEY, OTHER_KEY));
    no_temp_files(root);
}

#[test]
fn another_key_for_an_existing_host_names_set_key_and_writes_nothing() {
    let fleet = demo_fleet();
    let root = fleet.path();
    let before = hosts(root);
    let out = vmctl(root, &["hosts", "add", "doc1", "--key", NEW_KEY]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        unwrapped(&out.stderr).contains("vmctl hosts set-key doc1"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(hosts(root), before);

    let same = vmctl(root, &["hosts", "add", "doc1", "--key", DOC1_KEY]);
    assert_eq!(same.status.code(), Some(0));
    assert_eq!(hosts(root), before);
}

#[test]
fn dry_run_and_json_write_nothing() {
    let fleet = demo_fleet();
    let root = fleet.path();
    let before = hosts(root);
    let out = vmctl(root, &["hosts", "remove", "igpu", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    insta::assert_snapshot!("cli_remove_dry_run", text(&out.stdout));
    assert_eq!(hosts(root), before);

    let json = vmctl(
        root,
        &[
            "hosts",
            "add",
            "web",
            "--key",
            NEW_KEY,
            "--alias",
            "w",
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(json.status.code(), Some(0), "{}", text(&json.stderr));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["changed"], true);
    assert_eq!(v["written"], false);
    assert!(v["diff"]
        .as_str()
        .unwrap()
        .contains("+    sshAlias = \"w\";"));
    assert_eq!(hosts(root), before);
}

#[test]
fn unsupported_shapes_are_refused_and_left_untouched() {
    let fleet = demo_fleet();
    let root = fleet.path();
    let real_world = repo().join("tests/fixtures/real-world/hosts");
    for name in ["NixOS_infra_ssh-keys.nix", "F0RTHSP4CE_infra_ssh-keys.nix"] {
        let original = std::fs::read(real_world.join(name)).unwrap();
        std::fs::write(root.join("hosts.nix"), &original).unwrap();
        let out = vmctl(root, &["hosts", "add", "web", "--key", NEW_KEY]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out.stdout));
        assert_eq!(
            std::fs::read(root.join("hosts.nix")).unwrap(),
            original,
            "{name}"
        );
        no_temp_files(root);
    }
}

#[test]
fn a_fleet_without_hosts_nix_gets_one() {
    let fleet = demo_fleet();
    let root = fleet.path();
    std::fs::remove_file(root.join("hosts.nix")).unwrap();
    let out = vmctl(root, &["hosts", "add", "test-automation", "--key", NEW_KEY]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    insta::assert_snapshot!("cli_new_hosts_nix", hosts(root));
    let missing = vmctl(root, &["hosts", "remove", "test-automaton"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        unwrapped(&missing.stderr).contains("did you mean `test-automation`"),
        "{}",
        text(&missing.stderr)
    );
}
