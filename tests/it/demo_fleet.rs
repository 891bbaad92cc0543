//! The demo fleet that ships in the repository is consistent as a whole: its secrets match
//! .sops.yaml, its docs are current, and its readonly VMs are fenced.

use crate::support;

#[test]
fn the_demo_secrets_match_their_creation_rules() {
    let out = support::vmctl_in(support::repo(), &["secrets", "check", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", support::text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["checked"], 1, "{report}");
}

#[test]
fn the_demo_docs_are_current_and_readonly_vms_are_fenced() {
    assert_eq!(
        support::vmctl_in(support::repo(), &["docs", "--check"])
            .status
            .code(),
        Some(0)
    );
    for vmid in ["104", "109"] {
        let out = support::vmctl_in(support::repo(), &["ops", "stop", vmid, "--dry-run"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            support::unwrapped(&out.stderr).contains("readonly = true"),
            "{}",
            support::text(&out.stderr)
        );
    }
}
