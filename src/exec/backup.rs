//! The side effects of `vmctl backup`, `backups` and `restore`: vzdump, `pvesm list` and
//! qmrestore over the command's one SSH connection, and the fleet's commit for the notes.

use std::path::Path;

use crate::exec::process::Process;
use crate::exec::proxmox::{succeeded, ProxmoxError, QmProxmox};
use crate::exec::remote::Remote;

/// Runs a plain remote command (not a `qm` mutation: the caller has checked the fences) and
/// returns its stdout, or its error with the stderr's tail.
pub fn run_remote<R: Remote>(p: &QmProxmox<R>, argv: &[String]) -> Result<String, ProxmoxError> {
    let out = p.remote().run(argv)?;
    if out.success() {
        Ok(out.stdout)
    } else {
        succeeded(argv, out).map(|()| String::new())
    }
}

/// The fleet's commit (`git rev-parse --short HEAD`), with `-dirty` when files differ from it;
/// `None` outside git.
pub fn fleet_commit(root: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        Process::new("read the fleet's commit", "git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "--short", "HEAD"])?;
    let dirty = git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{head}-dirty") } else { head })
}
