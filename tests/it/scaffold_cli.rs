//! `vmctl scaffold` against a copy of the demo fleet: scaffold then lint, scaffold twice,
//! never overwrite, refuse unknown names; the scaffolded files parse with real Nix.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{demo_fleet, repo, text, unwrapped, vmctl};

/// The diagnostic codes `vmlint --format json` reports for the fleet.
fn lint_codes(fleet: &Path) -> Vec<String> {
    let out = crate::support::vmlint_cmd()
        .args(["--format", "json"])
        .arg(fleet)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap().to_string())
        .collect()
}

/// Every file under `dir` with its bytes, sorted by path.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

fn nix_parse(path: &Path) {
    let out = Command::new("nix-instantiate")
        .arg("--parse")
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("nix-instantiate not runnable ({e}): run ./scripts/test.sh or `apt-get install -y nix-bin`")
        });
    assert!(
        out.status.success(),
        "{}: {}",
        path.display(),
        text(&out.stderr)
    );
}

#[test]
fn scaffold_then_lint_clears_the_missing_directory_warning_and_twice_changes_nothing() {
    let fleet = demo_fleet();
    let root = fleet.path();
    std::fs::remove_dir_all(root.join("hosts/test-automation")).unwrap();
    assert!(lint_codes(root).contains(&"VM008".to_string()));

    let first = vmctl(root, &["scaffold", "test-automation"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    insta::assert_snapshot!("scaffold_first_run", text(&first.stdout));
    assert!(!lint_codes(root).contains(&"VM008".to_string()));

    let dir = root.join("hosts/test-automation");
    for f in ["configuration.nix", "disko.nix"] {
        nix_parse(&dir.join(f));
    }
    insta::assert_snapshot!(
        "scaffold_configuration_nix",
        std::fs::read_to_string(dir.join("configuration.nix")).unwrap()
    );
    insta::assert_snapshot!(
        "scaffold_disko_nix",
        std::fs::read_to_string(dir.join("disko.nix")).unwrap()
    );

    let before = tree(root);
    let second = vmctl(root, &["scaffold", "test-automation"]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    insta::assert_snapshot!("scaffold_second_run", text(&second.stdout));
    assert_eq!(tree(root), before, "a second scaffold changes nothing");
}

#[test]
fn existing_files_are_kept_and_only_missing_ones_created() {
    let fleet = demo_fleet();
    let root = fleet.path();
    // hosts/test-automation/configuration.nix exists (hand-written) in the demo fleet.
    let mine = std::fs::read(root.join("hosts/test-automation/configuration.nix")).unwrap();
    let out = vmctl(
        root,
        &["scaffold", "test-automation", "--disk-device", "/dev/vda"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("kept (exists, not overwritten): hosts/test-automation/configuration.nix"),
        "{stdout}"
    );
    assert!(
        stdout.contains("created: hosts/test-automation/disko.nix"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(root.join("hosts/test-automation/configuration.nix")).unwrap(),
        mine
    );
    let disko = std::fs::read_to_string(root.join("hosts/test-automation/disko.nix")).unwrap();
    assert!(disko.contains("device = \"/dev/vda\";"), "{disko}");
}

#[test]
fn dry_run_writes_nothing_and_json_lists_the_plan() {
    let fleet = demo_fleet();
    let root = fleet.path();
    std::fs::remove_dir_all(root.join("hosts/test-automation")).unwrap();
    let before = tree(root);
    let out = vmctl(
        root,
        &["scaffold", "test-automation", "--dry-run", "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dir"], "hosts/test-automation");
    assert_eq!(v["files"][0]["action"], "create");
    assert_eq!(v["files"][0]["written"], false);
    assert_eq!(tree(root), before);
}

#[test]
fn unknown_names_and_the_template_are_refused() {
    let fleet = demo_fleet();
    let root = fleet.path();
    let before = tree(root);
    let out = vmctl(root, &["scaffold", "test-automaton"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        unwrapped(&out.stderr).contains("did you mean `test-automation`"),
        "{}",
        text(&out.stderr)
    );
    let tmpl = vmctl(root, &["scaffold", "NixosServerBlank"]);
    assert_eq!(tmpl.status.code(), Some(1));
    assert!(
        unwrapped(&tmpl.stderr).contains("template VM"),
        "{}",
        text(&tmpl.stderr)
    );
    assert_eq!(tree(root), before);
}

#[test]
fn imported_vms_scaffold_into_their_nixos_config_directory() {
    let fleet = demo_fleet();
    let root = fleet.path();
    // doc1 has nixosConfig = "proxmox-vm"; its configuration.nix exists and is kept.
    let out = vmctl(root, &["scaffold", "doc1", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("kept (exists, not overwritten): hosts/proxmox-vm/configuration.nix"),
        "{stdout}"
    );
    assert!(
        stdout.contains("would create: hosts/proxmox-vm/disko.nix"),
        "{stdout}"
    );
}

#[test]
fn the_project_template_is_valid_nix_as_shipped() {
    for f in ["configuration.nix", "disko.nix", "hosts-entry.nix"] {
        nix_parse(&repo().join("hosts-template").join(f));
    }
}
