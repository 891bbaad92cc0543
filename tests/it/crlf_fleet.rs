//! A fleet whose hosts.nix and .sops.yaml use CRLF line breaks keeps them through every edit
//! vmctl makes, and still lints clean: the edits are the LF fleet's, byte for byte up to the
//! line breaks.

use std::path::Path;

use crate::support::{demo_fleet, repo, text, vmctl};

const FILES: [&str; 2] = ["hosts.nix", ".sops.yaml"];
const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOHz+U0YtjINc54dZiJNclfmEFifF7RXCFlNlTbuZBji joerg@turingmachine";

/// The demo fleet with its .sops.yaml, its two edited files rewritten with CRLF when asked.
fn fleet(crlf: bool) -> tempfile::TempDir {
    let dir = demo_fleet();
    std::fs::copy(repo().join(".sops.yaml"), dir.path().join(".sops.yaml")).unwrap();
    if crlf {
        for f in FILES {
            let path = dir.path().join(f);
            let t = std::fs::read_to_string(&path).unwrap();
            assert!(!t.contains('\r'), "{f} of the demo fleet is already CRLF");
            std::fs::write(&path, t.replace('\n', "\r\n")).unwrap();
        }
    }
    dir
}

/// Adds a host everywhere and removes another one everywhere, so the fleet stays consistent.
fn edit(root: &Path) {
    let steps: [&[&str]; 5] = [
        &["hosts", "add", "newbox", "--key", KEY],
        &["sops", "add-recipient", "newbox", KEY],
        &["sops", "add-host-rule", "newbox"],
        &["sops", "remove-recipient", "doc1"],
        &["hosts", "remove", "doc1"],
    ];
    for args in steps {
        let out = vmctl(root, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
}

#[track_caller]
fn lints_clean(root: &Path) {
    let out = vmctl(root, &["lint"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("checked 3 files: no problems"), "{err}");
}

fn read(root: &Path, f: &str) -> String {
    std::fs::read_to_string(root.join(f)).unwrap()
}

#[test]
fn crlf_hosts_nix_and_sops_yaml_stay_crlf_through_edits_and_lint_clean() {
    let lf = fleet(false);
    let crlf = fleet(true);
    lints_clean(crlf.path());
    let before: Vec<String> = FILES.iter().map(|f| read(crlf.path(), f)).collect();
    edit(lf.path());
    edit(crlf.path());
    lints_clean(crlf.path());
    for (f, before) in FILES.iter().zip(before) {
        let after = read(crlf.path(), f);
        assert_ne!(after, before, "{f} was not edited");
        assert_eq!(
            after.matches('\n').count(),
            after.matches("\r\n").count(),
            "{f} has a bare LF:\n{after:?}"
        );
        assert!(after.ends_with("\r\n"), "{f}: {after:?}");
        assert_eq!(
            after,
            read(lf.path(), f).replace('\n', "\r\n"),
            "{f}: the CRLF fleet was edited differently"
        );
    }
}
