//! The `vmlint` and `vmctl lint`/`explain` binaries as users run them: exit codes, formats,
//! the demo fleet, and the generated docs.

use crate::support;

use std::process::{Command, Output};

fn run(bin: &str, args: &[&str], cwd: &std::path::Path) -> Output {
    Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .expect("run binary")
}

const VMLINT: &str = env!("CARGO_BIN_EXE_vmlint");
const VMCTL: &str = env!("CARGO_BIN_EXE_vmctl");

#[test]
fn the_demo_fleet_lints_clean() {
    for (bin, args) in [
        (VMLINT, vec!["--deny-warnings"]),
        (VMCTL, vec!["lint", "--deny-warnings"]),
    ] {
        let out = run(bin, &args, &support::repo().join("hosts/igpu"));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            out.stdout.is_empty(),
            "no diagnostics: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("checked 3 files: no problems"), "{err}");
    }
    let out = run(
        VMLINT,
        &["--format", "json", "vms/definitions.nix", "hosts.nix"],
        support::repo(),
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
}

#[test]
fn exit_codes_follow_errors_warnings_and_usage() {
    let lint = support::fixture("lint");
    // Errors: 1.
    let out = run(VMLINT, &[], &lint.join("VM001"));
    assert_eq!(out.status.code(), Some(1));
    // Warnings only: 0, or 1 with --deny-warnings.
    assert_eq!(run(VMLINT, &[], &lint.join("VM007")).status.code(), Some(0));
    assert_eq!(
        run(VMLINT, &["--deny-warnings"], &lint.join("VM007"))
            .status
            .code(),
        Some(1)
    );
    // Unreadable input and bad usage: 2, with a message saying what is wrong.
    let out = run(VMLINT, &["does-not-exist.nix"], &lint);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read `does-not-exist.nix`"));
    let out = run(VMLINT, &[], std::path::Path::new("/"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no fleet found"));
    assert_eq!(
        run(VMLINT, &["--format", "xml"], &lint).status.code(),
        Some(2)
    );
}

#[test]
fn json_output_has_the_documented_shape() {
    let out = run(
        VMLINT,
        &["--format", "json"],
        &support::fixture("lint/VM001"),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &v.as_array().unwrap()[0];
    assert_eq!(d["code"], "VM001");
    assert_eq!(d["severity"], "error");
    assert_eq!(d["file"], "vms/definitions.nix");
    assert_eq!(d["range"]["start"]["line"], 5);
    assert_eq!(d["range"]["start"]["column"], 26);
    assert_eq!(
        d["notes"][0]["message"],
        "VMID 104 first used here by `doc1`"
    );
    assert_eq!(d["notes"][0]["range"]["start"]["line"], 4);
    assert!(d["help"].as_str().unwrap().contains("next-vmid"));
}

#[test]
fn single_files_are_read_by_name_or_as_told() {
    let dir = support::fixture("lint/HS002");
    let out = run(VMLINT, &["hosts.nix"], &dir);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("[HS002]"));
    let out = run(VMLINT, &["--as", "nix", "hosts.nix"], &dir);
    assert_eq!(out.status.code(), Some(0), "as plain Nix the file is fine");
}

#[test]
fn explain_prints_the_rule_and_the_docs_list_every_code() {
    let out = run(VMCTL, &["explain", "vm001"], support::repo());
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("VM001 duplicate-vmid (error)"), "{text}");
    assert!(text.contains("## Fix"));
    assert_eq!(
        run(VMCTL, &["explain", "XX999"], support::repo())
            .status
            .code(),
        Some(2)
    );
    let md = run(VMCTL, &["explain", "--markdown"], support::repo()).stdout;
    let docs = std::fs::read(support::repo().join("docs/diagnostics.md")).unwrap();
    assert!(
        md == docs,
        "docs/diagnostics.md is out of date: run `cargo run -- explain --markdown > docs/diagnostics.md`"
    );
}
