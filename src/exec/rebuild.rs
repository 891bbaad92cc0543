//! The side effects of `vmctl rebuild` and `vmctl known-hosts`: what ssh resolves a name to
//! (`ssh -G`), the host key check over ssh with only the hosts.nix key pinned, the automatic
//! snapshot, and `nixos-rebuild` with that pinned known_hosts in `NIX_SSHOPTS`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::exec::process::{Finished, Process, ProcessError};
use crate::exec::proxmox::{Proxmox, ProxmoxError};
use crate::plan::rebuild::{known_hosts_pattern, Target};

/// Why a VM's rebuild did not start or did not succeed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RebuildRunError {
    #[error("`{name}` at {address} does not present the host key hosts.nix pins for it: {detail}")]
    #[diagnostic(help(
        "something else answers at that address, or the VM's key changed: check it out of band \
         (its console), then `vmctl hosts set-key {name} --key \"…\"` if the new key is right"
    ))]
    HostKey {
        name: String,
        address: String,
        detail: String,
    },
    #[error("cannot reach `{name}` at {address} over ssh with its host key pinned: {detail}")]
    #[diagnostic(help(
        "check that the VM runs and that root can log in with your key (--identity), then run the rebuild again"
    ))]
    Unreachable {
        name: String,
        address: String,
        detail: String,
    },
    #[error("cannot write the pinned known_hosts for `{name}`: {error}")]
    Write { name: String, error: std::io::Error },
    #[error("a path of the ssh options holds whitespace, which NIX_SSHOPTS cannot carry: {0}")]
    #[diagnostic(help("use an ssh_config and identity file whose paths have no spaces"))]
    Whitespace(String),
    #[error("cannot take the automatic snapshot of `{name}` before its rebuild: {error}")]
    #[diagnostic(help(
        "nothing was rebuilt; fix the cause (see `vmctl ops snapshot list VMID`) and run it again"
    ))]
    Snapshot {
        name: String,
        error: Box<ProxmoxError>,
    },
    #[error(transparent)]
    Process(#[from] ProcessError),
}

/// What `ssh -G` resolves `host` to: the host name it connects to and the port (no
/// connection is made). `(host, 22)` when ssh cannot tell.
pub fn resolve(host: &str, config: Option<&Path>) -> (String, u16) {
    let mut cmd = Process::new("read the ssh configuration", "ssh").arg("-G");
    if let Some(c) = config {
        cmd = cmd.arg("-F").arg(c);
    }
    let out = cmd
        .args(["--", host])
        .timeout(Duration::from_secs(5))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    let hostname = field("hostname ").unwrap_or_else(|| host.to_string());
    let port = field("port ").and_then(|p| p.parse().ok()).unwrap_or(22);
    (hostname, port)
}

/// A VM ready to rebuild: its pinned known_hosts and the `NIX_SSHOPTS` that use it.
#[derive(Debug, Clone)]
pub struct Pinned {
    pub target: Target,
    pub port: u16,
    pub known_hosts: PathBuf,
    pub sshopts: String,
}

/// Writes `dir/NAME/known_hosts` holding only the hosts.nix key for the address ssh will
/// check (the address as given and as ssh resolves it, with the port), and the ssh options.
pub fn pin(
    dir: &Path,
    t: &Target,
    config: Option<&Path>,
    identity: Option<&Path>,
) -> Result<Pinned, RebuildRunError> {
    let (resolved, port) = resolve(&t.address, config);
    let mut patterns = vec![known_hosts_pattern(&t.address, port)];
    let other = known_hosts_pattern(&resolved, port);
    if !patterns.contains(&other) {
        patterns.push(other);
    }
    let sub = dir.join(&t.name);
    let write = |e| RebuildRunError::Write {
        name: t.name.clone(),
        error: e,
    };
    std::fs::create_dir_all(&sub).map_err(write)?;
    let known_hosts = sub.join("known_hosts");
    let text = format!("{} {}\n", patterns.join(","), t.host_key);
    crate::exec::apply::write_atomic(&known_hosts, text.as_bytes()).map_err(write)?;
    let show = |p: &Path| p.display().to_string();
    let sshopts = crate::plan::rebuild::nix_sshopts(
        &show(&known_hosts),
        config.map(show).as_deref(),
        identity.map(show).as_deref(),
    )
    .ok_or_else(|| RebuildRunError::Whitespace(show(&known_hosts)))?;
    Ok(Pinned {
        target: t.clone(),
        port,
        known_hosts,
        sshopts,
    })
}

/// Logs in as root with only the pinned key trusted and runs `true`: a VM presenting another
/// key is refused here, before anything is snapshotted or rebuilt.
pub fn check_host_key(p: &Pinned) -> Result<(), RebuildRunError> {
    let t = &p.target;
    let out = Process::new("check the VM's host key", "ssh")
        .args(p.sshopts.split_whitespace())
        .args(["-o", "ConnectTimeout=10", "-p", &p.port.to_string()])
        .args(["-l", "root", "--", &t.address, "true"])
        .timeout(Duration::from_secs(30))
        .output()?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let detail = crate::exec::process::stderr_tail(&out.stderr, &[]);
    // ssh's own words for a key other than the pinned one.
    if stderr.contains("Host key verification failed")
        || stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
    {
        Err(RebuildRunError::HostKey {
            name: t.name.clone(),
            address: t.address.clone(),
            detail,
        })
    } else {
        Err(RebuildRunError::Unreachable {
            name: t.name.clone(),
            address: t.address.clone(),
            detail,
        })
    }
}

/// Takes the target's automatic snapshot before `step` (through the fenced Proxmox
/// connection) and prunes its older automatic ones to `keep`.
pub fn snapshot(
    p: &impl Proxmox,
    t: &Target,
    step: &str,
    unix_secs: u64,
    keep: usize,
) -> Result<crate::exec::snapshot::Taken, RebuildRunError> {
    crate::exec::snapshot::take_auto(p, t.vmid, step, unix_secs, keep, None).map_err(|error| {
        RebuildRunError::Snapshot {
            name: t.name.clone(),
            error: Box::new(error),
        }
    })
}

/// The program that rebuilds: `VMCTL_NIXOS_REBUILD`, else `nixos-rebuild` on PATH.
pub fn program() -> PathBuf {
    std::env::var_os("VMCTL_NIXOS_REBUILD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("nixos-rebuild"))
}

/// Runs `argv` (nixos-rebuild's command line) in the fleet root with the pinned ssh options;
/// returns what it printed, whatever its status.
pub fn rebuild(root: &Path, argv: &[String], sshopts: &str) -> Result<Finished, ProcessError> {
    Process::new("rebuild the VM with nixos-rebuild", program())
        .args(&argv[1..])
        .env("NIX_SSHOPTS", sshopts)
        .current_dir(root)
        .interruptible()
        .output()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinning_writes_only_the_hosts_nix_key_and_a_matching_option_line() {
        let dir = tempfile::tempdir().unwrap();
        let t = Target {
            name: "web".into(),
            vmid: 110,
            config: "web".into(),
            address: "10.9.9.9".into(),
            host_key:
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMlLRoQ0HoeSXd9Rbb9WB51hQUGkEPeKZvmAsJFjg/wH"
                    .into(),
        };
        let cfg = dir.path().join("ssh_config");
        std::fs::write(&cfg, "Host 10.9.9.9\n  Port 2200\n").unwrap();
        let p = pin(dir.path(), &t, Some(&cfg), None).unwrap();
        assert_eq!(p.port, 2200, "the port ssh resolves");
        let kh = std::fs::read_to_string(&p.known_hosts).unwrap();
        assert_eq!(kh, format!("[10.9.9.9]:2200 {}\n", t.host_key));
        assert!(p
            .sshopts
            .contains(&format!("UserKnownHostsFile={}", p.known_hosts.display())));
        assert!(p.sshopts.contains("StrictHostKeyChecking=yes"));
    }
}
