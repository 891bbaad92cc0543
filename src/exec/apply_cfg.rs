//! Runs `vmctl apply`'s plan: per VM the digest-guarded config update, then each disk grown
//! with the digest read again, then (with `reboot`) a reboot that makes pending changes take
//! effect. The fences run before anything is sent; a digest mismatch stops with nothing
//! overwritten.

use crate::exec::proxmox::{succeeded, wait_for_task, ProxmoxError, TASK_TIMEOUT};
use crate::plan::apply::VmApply;
use crate::proxmox::{display_line, strip_control, Fence, FenceError, Mutation};
use crate::proxmox::{node_api, route};

use super::remote::{Remote, RemoteError};

#[derive(Debug, thiserror::Error)]
pub enum ApplyCfgError {
    #[error(transparent)]
    Fence(#[from] FenceError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// A task the call started (a resize on Proxmox 8, a reboot) that failed or did not end.
    #[error(transparent)]
    Task(ProxmoxError),
    #[error(
        "{name} changed on the cluster after vmctl read it (Proxmox: detected modified \
         configuration); nothing of it was overwritten; run `vmctl status {name}` and apply again"
    )]
    Modified { name: String },
    #[error(
        "`{command}` failed on the Proxmox host: {stderr}; nothing more of {name} was changed"
    )]
    Command {
        name: String,
        command: String,
        stderr: String,
    },
    #[error(
        "{name}: disk {disk} is no longer {before} bytes on the cluster (someone resized it); \
         it was not grown; run `vmctl status {name}` and apply again"
    )]
    DiskChanged {
        name: String,
        disk: String,
        before: u64,
    },
}

/// What one VM's apply did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Applied {
    pub commands: Vec<String>,
    /// Keys waiting for the next start after the update.
    pub pending: Vec<String>,
    pub rebooted: bool,
}

fn run<R: Remote>(remote: &R, name: &str, argv: &[String]) -> Result<String, ApplyCfgError> {
    let out = remote.run(argv)?;
    if out.success() {
        return Ok(out.stdout);
    }
    if out.stderr.contains("detected modified configuration") {
        return Err(ApplyCfgError::Modified { name: name.into() });
    }
    Err(ApplyCfgError::Command {
        name: name.into(),
        command: display_line(argv),
        stderr: strip_control(out.stderr.trim()),
    })
}

/// Waits for the task `argv` started, when it printed a UPID (a resize on Proxmox 8 and every
/// reboot run as tasks): pvesh exits 0 even when the task failed, and a resize's digest is
/// checked inside its task, so without the wait a refused resize would count as done.
fn wait<R: Remote>(
    remote: &R,
    name: &str,
    argv: &[String],
    out: &str,
) -> Result<(), ApplyCfgError> {
    let Some(upid) = route::upid_in(out) else {
        return Ok(());
    };
    let read = |a: &[String]| -> Result<String, ProxmoxError> {
        let o = remote.run(a)?;
        if o.success() {
            Ok(o.stdout)
        } else {
            succeeded(a, o).map(|()| String::new())
        }
    };
    wait_for_task(&read, argv, &upid, TASK_TIMEOUT).map_err(|e| match e {
        ProxmoxError::TaskFailed { ref exitstatus, .. }
            if exitstatus.contains("detected modified configuration") =>
        {
            ApplyCfgError::Modified { name: name.into() }
        }
        e => ApplyCfgError::Task(e),
    })
}

/// The remote commands of one VM's apply as they are sent (the digest of later steps is the
/// one read then: shown as `DIGEST`).
pub fn commands(a: &VmApply, reboot: bool) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    if !a.set.is_empty() {
        out.push(node_api::set(&a.node, a.vmid, &a.digest, &a.set));
    }
    for (disk, size, _) in &a.grow {
        out.push(node_api::resize(&a.node, a.vmid, "DIGEST", disk, size));
    }
    if reboot {
        out.push(node_api::reboot(&a.node, a.vmid));
    }
    out
}

/// Applies one VM's plan.
pub fn apply_vm<R: Remote>(
    remote: &R,
    fence: &Fence,
    a: &VmApply,
    reboot: bool,
) -> Result<Applied, ApplyCfgError> {
    // The readonly and undetermined-definitions fences, as for every other mutation.
    fence.check(&Mutation::Configure {
        vmid: a.vmid,
        options: a.set.clone(),
    })?;
    let mut done = Applied::default();
    if !a.set.is_empty() {
        let argv = node_api::set(&a.node, a.vmid, &a.digest, &a.set);
        run(remote, &a.name, &argv)?;
        done.commands.push(display_line(&argv));
    }
    for (disk, size, before) in &a.grow {
        let cfg =
            node_api::parse_config(&run(remote, &a.name, &node_api::config(&a.node, a.vmid))?)
                .map_err(|e| ApplyCfgError::Command {
                    name: a.name.clone(),
                    command: "pvesh get config".into(),
                    stderr: e.to_string(),
                })?;
        let now = cfg
            .get(disk)
            .and_then(crate::plan::status::normalize::disk_size);
        if now != Some(*before) {
            return Err(ApplyCfgError::DiskChanged {
                name: a.name.clone(),
                disk: disk.clone(),
                before: *before,
            });
        }
        let argv = node_api::resize(&a.node, a.vmid, &cfg.digest, disk, size);
        let out = run(remote, &a.name, &argv)?;
        wait(remote, &a.name, &argv, &out)?;
        done.commands.push(display_line(&argv));
    }
    let pending = run(remote, &a.name, &node_api::pending(&a.node, a.vmid))?;
    done.pending = node_api::parse_pending(&pending)
        .map(|p| p.into_iter().map(|(k, _, _)| k).collect())
        .unwrap_or_default();
    if reboot && !done.pending.is_empty() {
        let argv = node_api::reboot(&a.node, a.vmid);
        let out = run(remote, &a.name, &argv)?;
        wait(remote, &a.name, &argv, &out)?;
        done.commands.push(display_line(&argv));
        done.rebooted = true;
    }
    Ok(done)
}
