//! Build script: names the commit in `--version` (`vmctl 0.1.0 (abc1234)`), so a bug report
//! says which build it came from.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Asks cargo to rerun when `path` changes; only for paths that exist, because cargo reruns a
/// build script on every build while a watched path is missing.
fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=VMCTL_COMMIT");
    let commit = match git(&["rev-parse", "--short", "HEAD"]) {
        Some(hash) if !hash.is_empty() => {
            // A worktree's HEAD lives in its own git dir, the branch ref in the common one
            // (or in packed-refs); the index changes on commit and add, which is as close to
            // tracking `-dirty` as cargo allows without rerunning on every build.
            let git_dir = git(&["rev-parse", "--git-dir"]).map(PathBuf::from);
            let common = git(&["rev-parse", "--git-common-dir"]).map(PathBuf::from);
            if let Some(dir) = &git_dir {
                watch(&dir.join("HEAD"));
                watch(&dir.join("index"));
            }
            if let (Some(dir), Some(r)) = (&common, git(&["symbolic-ref", "-q", "HEAD"])) {
                watch(&dir.join(r));
                watch(&dir.join("packed-refs"));
            }
            let clean = Command::new("git")
                .args(["diff", "--quiet", "HEAD"])
                .status()
                .map(|s| s.success())
                .unwrap_or(true);
            if clean {
                hash
            } else {
                format!("{hash}-dirty")
            }
        }
        // Not a git checkout (a Nix build copies the source without .git): the packager may
        // name the commit, otherwise the version says it does not know.
        _ => std::env::var("VMCTL_COMMIT")
            .ok()
            .filter(|c| !c.trim().is_empty())
            .unwrap_or_else(|| "unknown".to_string()),
    };
    println!(
        "cargo:rustc-env=VMCTL_VERSION={} ({commit})",
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default()
    );
}
