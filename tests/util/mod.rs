//! Shared helpers for vmctl's integration tests: locating real tools and fixtures.
#![allow(dead_code)]

pub mod mutate;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture path under tests/fixtures.
pub fn fixture(rel: &str) -> PathBuf {
    repo().join("tests/fixtures").join(rel)
}

/// Fails the test (never skips) when a tool the test needs is missing.
pub fn require_tool(name: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is not installed: run ./scripts/test.sh (it installs the test tools), \
         or eval \"$(./scripts/setup-test-tools.sh)\" before cargo test"
    );
}

/// `nix-instantiate --eval --strict --json FILE`, or the error text.
pub fn nix_eval_json(file: &Path) -> Result<serde_json::Value, String> {
    require_tool("nix-instantiate");
    let out = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "--readonly-mode"])
        .arg(file)
        .output()
        .expect("run nix-instantiate");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A copy of the demo fleet (definitions, hosts.nix, hosts/, hosts-template/) in a temp dir.
pub fn demo_fleet() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for d in ["vms", "hosts", "hosts-template"] {
        copy_dir(&repo().join(d), &dir.path().join(d));
    }
    std::fs::copy(repo().join("hosts.nix"), dir.path().join("hosts.nix")).unwrap();
    dir
}

/// Runs the `vmctl` binary on a fleet.
pub fn vmctl(fleet: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vmctl"))
        .arg("--fleet")
        .arg(fleet)
        .args(args)
        .env_remove("VMCTL_FLEET")
        .output()
        .unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Output with miette's line wrapping undone, for `contains` checks.
pub fn unwrapped(b: &[u8]) -> String {
    text(b)
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("- ", "-")
}

/// The upstream SSH/age test keys (public test vectors from ssh-to-age and sops-nix, see
/// tests/fixtures/sops/SOURCES.txt) by their short names.
pub fn key_fixture(name: &str) -> PathBuf {
    let rel = if let Some(rest) = name.strip_prefix("sops-nix-") {
        format!("sops/sops-nix/{rest}")
    } else if name == "ssh-to-age-vectors.txt" {
        "sops/ssh-to-age-vectors.txt".to_string()
    } else {
        format!("sops/ssh-to-age/{name}")
    };
    fixture(&rel)
}
