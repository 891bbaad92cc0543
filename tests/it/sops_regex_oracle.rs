//! `path_regex` is Go RE2 in sops: the real sops decides which rule a path gets, and vmctl's
//! rule matching (re-keying, checks, the editor) must agree, Go-only spellings included.

use std::process::Command;

use crate::support::secrets::*;
use vmctl::secrets::SopsConfig;

/// Whether the real sops finds a creation rule for `path` under `config` (it refuses to
/// encrypt when none matches).
fn sops_matches(dir: &std::path::Path, path: &str) -> bool {
    let o = Command::new(sops_bin())
        .current_dir(dir)
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .args(["encrypt", "--filename-override", path, "plain.yaml"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() || err.contains("no matching creation rules found"),
        "sops failed otherwise: {err}"
    );
    o.status.success()
}

#[test]
fn go_only_regex_spellings_match_what_sops_matches() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plain.yaml"), "a: b\n").unwrap();
    for (re, paths) in [
        (
            r"^secrets/\Qa.b\E$",
            ["secrets/a.b", "secrets/axb", "secrets/a.bc"],
        ),
        (
            r"^secrets/x{,3}$",
            ["secrets/x{,3}", "secrets/xxx", "secrets/x"],
        ),
        (
            r"^secrets/[^/]+\.yaml$",
            ["secrets/a.yaml", "secrets/a/b.yaml", "x/a.yaml"],
        ),
    ] {
        let config = format!("creation_rules:\n  - path_regex: '{re}'\n    age: {ADMIN}\n");
        std::fs::write(dir.path().join(".sops.yaml"), &config).unwrap();
        let ours = SopsConfig::parse(&config).unwrap_or_else(|e| panic!("{re}: {e}"));
        for path in paths {
            assert_eq!(
                ours.rule_for(path).is_some(),
                sops_matches(dir.path(), path),
                "{re} on {path}"
            );
        }
    }
}
