//! The demo fleet that ships in the repository is consistent as a whole: its secrets match
//! .sops.yaml, its docs are current, and its readonly VMs are fenced.

mod util;

use std::process::Command;

fn vmctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vmctl"))
        .args(args)
        .current_dir(util::repo())
        .env_remove("VMCTL_FLEET")
        .output()
        .unwrap()
}

#[test]
fn the_demo_secrets_match_their_creation_rules() {
    let out = vmctl(&["secrets", "check", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", util::text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["checked"], 1, "{report}");
}

#[test]
fn the_demo_docs_are_current_and_readonly_vms_are_fenced() {
    assert_eq!(vmctl(&["docs", "--check"]).status.code(), Some(0));
    for vmid in ["104", "109"] {
        let out = vmctl(&["ops", "stop", vmid, "--dry-run"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            util::unwrapped(&out.stderr).contains("readonly = true"),
            "{}",
            util::text(&out.stderr)
        );
    }
}
