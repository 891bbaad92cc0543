//! Automatic snapshots on the cluster: take `vmctl-auto-STEP-TIME`, then prune the VM's
//! automatic snapshots to `snapshots.keep` (manual ones are never deleted).

use crate::exec::proxmox::{Proxmox, ProxmoxError};
use crate::plan::rebuild::auto_snapshot_name;
use crate::plan::snapshot::prune;
use crate::proxmox::Mutation;

/// What an automatic snapshot did: its name and the older automatic ones it pruned.
#[derive(Debug, Clone, PartialEq)]
pub struct Taken {
    pub name: String,
    pub pruned: Vec<String>,
}

/// Seconds since the epoch, for the snapshot's name.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Takes the automatic snapshot of `vmid` before `step` (named for `unix_secs`), then deletes
/// the oldest automatic ones beyond `keep`. A failed snapshot stops the step's caller; a
/// failed prune does not undo the snapshot (the error says which one is left). `protect` (the
/// snapshot a rollback goes to) is never pruned.
pub fn take_auto(
    p: &impl Proxmox,
    vmid: u32,
    step: &str,
    unix_secs: u64,
    keep: usize,
    protect: Option<&str>,
) -> Result<Taken, ProxmoxError> {
    let name = auto_snapshot_name(step, unix_secs);
    p.apply(&Mutation::SnapshotCreate {
        vmid,
        name: name.clone(),
        description: Some(format!("automatic snapshot by vmctl before {step}")),
        vmstate: false,
    })?;
    let mut pruned = prune(&p.snapshots(vmid)?, keep);
    pruned.retain(|n| Some(n.as_str()) != protect);
    for old in &pruned {
        p.apply(&Mutation::SnapshotDelete {
            vmid,
            name: old.clone(),
        })?;
    }
    Ok(Taken { name, pruned })
}
