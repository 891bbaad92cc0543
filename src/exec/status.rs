//! Reading what `vmctl status` and `vmctl apply` compare: one cluster-wide read, then each
//! declared VM's config (and, while it runs, its pending changes) from the node that holds it,
//! batched into one remote command on the one SSH connection.

use std::collections::BTreeMap;

use crate::model::Definitions;
use crate::plan::status::select;
use crate::proxmox::node_api::{self, Cluster, LiveConfig};
use crate::proxmox::parse::ParseError;
use crate::proxmox::{command_line, display_line, strip_control, VmId};

use super::remote::{Remote, RemoteError};

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("`{command}` failed on the Proxmox host: {stderr}; check the VM in the Proxmox UI and retry")]
    Command { command: String, stderr: String },
    #[error("{0}")]
    Select(String),
}

/// What the cluster holds for the selected VMs.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub cluster: Cluster,
    pub configs: BTreeMap<VmId, LiveConfig>,
    pub pending: BTreeMap<VmId, Vec<String>>,
}

/// The line that ends each command's output in a batch, with its exit status.
const MARK: &str = "@@vmctl-batch-end";

/// Runs `commands` in one remote shell, in order; each one's stdout, or its failure (the exit
/// status; stderr is shared by the batch and quoted whole).
pub fn batch<R: Remote>(
    remote: &R,
    commands: &[Vec<String>],
) -> Result<Vec<Result<String, String>>, RemoteError> {
    if commands.is_empty() {
        return Ok(Vec::new());
    }
    // Every argument is quoted by the one helper; the marker is a literal.
    let script: String = commands
        .iter()
        .map(|argv| format!("{}; printf '\\n{MARK} %s\\n' \"$?\"\n", command_line(argv)))
        .collect();
    let out = remote.run(&["sh".to_string(), "-c".to_string(), script])?;
    let mut results = Vec::new();
    let mut current = String::new();
    for line in out.stdout.split_inclusive('\n') {
        if let Some(rc) = line.trim_end().strip_prefix(MARK) {
            let text = std::mem::take(&mut current);
            let text = text.strip_suffix('\n').unwrap_or(&text).to_string();
            results.push(if rc.trim() == "0" {
                Ok(text)
            } else {
                Err(format!(
                    "exit {}: {}",
                    rc.trim(),
                    strip_control(out.stderr.trim())
                ))
            });
        } else {
            current.push_str(line);
        }
    }
    while results.len() < commands.len() {
        results.push(Err(format!(
            "the batch ended early: {}",
            strip_control(out.stderr.trim())
        )));
    }
    Ok(results)
}

/// One cluster-wide read, then the selected VMs' configs from their nodes in one batch.
pub fn observe<R: Remote>(
    remote: &R,
    defs: &Definitions,
    names: &[String],
) -> Result<Observed, StatusError> {
    let selected = select(defs, names).map_err(StatusError::Select)?;
    let all = node_api::cluster_all();
    let out = remote.run(&all)?;
    if !out.success() {
        return Err(StatusError::Command {
            command: display_line(&all),
            stderr: strip_control(out.stderr.trim()),
        });
    }
    let cluster = node_api::parse_cluster(&out.stdout)?;
    let mut reads: Vec<(VmId, bool, Vec<String>)> = Vec::new();
    for vm in selected {
        let Some(r) = vm
            .vmid
            .and_then(|id| cluster.vms.iter().find(|r| r.vmid == id))
        else {
            continue;
        };
        reads.push((r.vmid, false, node_api::config(&r.node, r.vmid)));
        if r.status == "running" {
            reads.push((r.vmid, true, node_api::pending(&r.node, r.vmid)));
        }
    }
    let commands: Vec<Vec<String>> = reads.iter().map(|(_, _, a)| a.clone()).collect();
    let results = batch(remote, &commands)?;
    let mut observed = Observed {
        cluster,
        ..Observed::default()
    };
    for ((vmid, is_pending, argv), result) in reads.into_iter().zip(results) {
        let text = result.map_err(|stderr| StatusError::Command {
            command: display_line(&argv),
            stderr,
        })?;
        if is_pending {
            let keys = node_api::parse_pending(&text)?
                .into_iter()
                .map(|(k, _, _)| k)
                .collect();
            observed.pending.insert(vmid, keys);
        } else {
            observed
                .configs
                .insert(vmid, node_api::parse_config(&text)?);
        }
    }
    Ok(observed)
}
