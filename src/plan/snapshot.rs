//! The pure part of snapshot management: which VM a name means, the retention of automatic
//! snapshots (`vmctl-auto-STEP-TIME`, pruned to `snapshots.keep`; manual ones never).

use crate::model::{Definitions, VmKind};
use crate::plan::rebuild::AUTO_PREFIX;
use crate::proxmox::Snapshot;

/// How many automatic snapshots a VM keeps when definitions.nix has no `snapshots.keep`.
pub const DEFAULT_KEEP: usize = 5;

/// Why a snapshot request is refused before anything is contacted.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SnapshotError {
    #[error("`{0}` is not a VM of vms/definitions.nix")]
    #[diagnostic(help("name a VM of vms/definitions.nix (`vmctl ops list` shows the cluster's)"))]
    UnknownVm(String),
    #[error("`{0}` has no vmid in vms/definitions.nix")]
    #[diagnostic(help("give it its `vmid`"))]
    NoVmid(String),
    #[error("`{0}` starts with `{AUTO_PREFIX}`, which vmctl keeps for its automatic snapshots")]
    #[diagnostic(help("choose another name; automatic snapshots are pruned to `snapshots.keep`"))]
    AutoName(String),
    #[error("rolling `{name}` back needs `--confirm {name}`: the VM's disks return to snapshot `{snapshot}`")]
    #[diagnostic(help(
        "run it again with `--confirm {name}` (a snapshot of the state now is taken first)"
    ))]
    NotConfirmed { name: String, snapshot: String },
    #[error("`{0}` is the template: it has no snapshots to manage")]
    #[diagnostic(help("snapshot the VMs cloned from it"))]
    Template(String),
}

/// The VMID of the VM `name` of definitions.nix (readonly VMs are fenced when changed, not here:
/// listing their snapshots is a read).
pub fn vmid_of(defs: &Definitions, name: &str) -> Result<u32, SnapshotError> {
    let vm = defs
        .vm_by_name(name)
        .ok_or_else(|| SnapshotError::UnknownVm(name.to_string()))?;
    if vm.kind == VmKind::Template {
        return Err(SnapshotError::Template(name.to_string()));
    }
    vm.vmid
        .ok_or_else(|| SnapshotError::NoVmid(name.to_string()))
}

/// A manual snapshot's name must not look automatic (it would be pruned).
pub fn manual_name(name: &str) -> Result<(), SnapshotError> {
    if name.starts_with(AUTO_PREFIX) {
        Err(SnapshotError::AutoName(name.to_string()))
    } else {
        Ok(())
    }
}

/// `snapshots.keep` of definitions.nix (lint keeps it from 1 to 100), else [`DEFAULT_KEEP`].
pub fn keep(defs: &Definitions) -> usize {
    defs.snapshot_keep
        .and_then(|(k, _)| usize::try_from(k).ok())
        .filter(|k| *k >= 1)
        .unwrap_or(DEFAULT_KEEP)
}

/// Whether a snapshot is one of vmctl's automatic ones.
pub fn is_auto(name: &str) -> bool {
    name.starts_with(AUTO_PREFIX)
}

/// The automatic snapshots to delete so that `keep` remain: the oldest by the time in their
/// name (`…-YYYYMMDDTHHMMSS`, whatever the step), oldest first. Manual ones never appear.
pub fn prune(snapshots: &[Snapshot], keep: usize) -> Vec<String> {
    let mut auto: Vec<&str> = snapshots
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| is_auto(n))
        .collect();
    let stamp = |n: &str| n.rsplit('-').next().unwrap_or_default().to_string();
    auto.sort_by(|a, b| stamp(a).cmp(&stamp(b)).then(a.cmp(b)));
    let excess = auto.len().saturating_sub(keep);
    auto[..excess].iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(name: &str) -> Snapshot {
        Snapshot {
            name: name.into(),
            depth: 0,
            time: None,
            description: String::new(),
            current: false,
        }
    }

    #[test]
    fn only_the_oldest_automatic_snapshots_beyond_keep_are_pruned() {
        let s: Vec<Snapshot> = [
            "before-upgrade",
            "vmctl-auto-rollback-20261130T010000",
            "vmctl-auto-rebuild-20261129T230000",
            "vmctl-auto-rebuild-20261130T020000",
            "manual1",
            "vmctl-auto-rebuild-20261128T000000",
        ]
        .map(snap)
        .to_vec();
        assert_eq!(
            prune(&s, 2),
            [
                "vmctl-auto-rebuild-20261128T000000",
                "vmctl-auto-rebuild-20261129T230000"
            ]
        );
        assert!(prune(&s, 4).is_empty());
        assert_eq!(prune(&s, 1).len(), 3);
        assert!(prune(&s, 1).iter().all(|n| is_auto(n)), "manual ones stay");
    }

    #[test]
    fn keep_defaults_and_names() {
        let mut d = Definitions::default();
        assert_eq!(keep(&d), DEFAULT_KEEP);
        d.snapshot_keep = Some((2, Default::default()));
        assert_eq!(keep(&d), 2);
        assert!(manual_name("vmctl-auto-x").is_err());
        assert!(manual_name("pre-upgrade").is_ok());
        assert!(matches!(
            vmid_of(&d, "nosuch"),
            Err(SnapshotError::UnknownVm(_))
        ));
    }
}
