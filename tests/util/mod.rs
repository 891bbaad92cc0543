//! Shared helpers for vmctl's integration tests: locating real tools and fixtures.
#![allow(dead_code)]

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
