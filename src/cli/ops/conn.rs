//! How `vmctl ops` reaches Proxmox: the connection options every ops command shares and the
//! one SSH connection a command opens.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::run::{err, Traced};
use crate::exec::proxmox::QmProxmox;
use crate::exec::remote::{Remote as _, SshRemote};
use crate::model::Definitions;
use crate::proxmox::ssh::SshTarget;
use crate::proxmox::validate as valid;
use crate::proxmox::{Fence, RetryPolicy};

/// How to reach Proxmox and how patient to be with its locks.
#[derive(Debug, Clone, Args)]
pub struct Conn {
    /// An ssh_config file to use instead of ~/.ssh/config (host alias, port, identity,
    /// UserKnownHostsFile). The host, user and port come from definitions.nix `proxmox`.
    #[arg(long, value_name = "FILE", env = "VMCTL_SSH_CONFIG")]
    pub ssh_config: Option<PathBuf>,
    /// How often to retry a command that hit a Proxmox lock ("can't lock file … got
    /// timeout", "VM is locked"): 0 to 100; 0 disables retries.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 5,
        env = "VMCTL_LOCK_RETRIES",
        value_parser = valid::lock_retries
    )]
    pub lock_retries: u32,
    /// First wait before a lock retry, in milliseconds (1 to 10000); it doubles each retry
    /// (at most 10x).
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 2000,
        env = "VMCTL_LOCK_BACKOFF_MS",
        value_parser = valid::lock_backoff_ms
    )]
    pub lock_backoff_ms: u64,
}

fn retry_policy(c: &Conn) -> RetryPolicy {
    let initial = Duration::from_millis(c.lock_backoff_ms);
    RetryPolicy {
        retries: c.lock_retries,
        initial,
        max: initial.saturating_mul(10),
    }
}

/// The one SSH connection of a command, enforcing `fence` again on every mutation. With
/// `announce`, each mutation's command line is shown on stderr just before it is sent.
pub(crate) fn connect(
    defs: &Definitions,
    conn: &Conn,
    fence: Fence,
    announce: bool,
) -> miette::Result<QmProxmox<Traced<SshRemote>>> {
    let target = SshTarget::from_proxmox(&defs.proxmox, conn.ssh_config.clone()).map_err(err)?;
    let remote = Traced(SshRemote::connect(&target).map_err(err)?);
    let p = QmProxmox::new(remote, fence, retry_policy(conn)).with_reporter(Box::new(|m| {
        crate::cli::ui::info(&format!("proxmox lock: {m}"))
    }));
    if !announce {
        return Ok(p);
    }
    let target = p.remote().target();
    Ok(p.with_on_send(Box::new(move |line| {
        crate::cli::ui::info(&format!("running on {target}: {line}"))
    })))
}
