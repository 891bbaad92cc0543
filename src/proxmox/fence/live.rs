//! The fence checks that need the cluster: a clone or restore target must be free, and the
//! live VM must be the one definitions.nix names before data is lost.

use std::collections::BTreeMap;

use super::{Fence, FenceError};
use crate::model::VmKind;
use crate::proxmox::{Mutation, VmConfig, VmId};

impl Fence {
    /// The check that needs the cluster: a clone or restore must not land on an existing VMID.
    /// `existing` maps the cluster's VMIDs to their names.
    pub fn check_target_free(
        &self,
        m: &Mutation,
        existing: &BTreeMap<VmId, Option<String>>,
    ) -> Result<(), FenceError> {
        if Self::needs_cluster_check(m) {
            if let Some(name) = existing.get(&m.vmid()) {
                return Err(FenceError::VmidExists {
                    op: m.name(),
                    vmid: m.vmid(),
                    existing: name.clone(),
                });
            }
        }
        Ok(())
    }

    /// True when `m` must see the cluster's VMIDs before it is sent.
    pub fn needs_cluster_check(m: &Mutation) -> bool {
        matches!(
            m,
            Mutation::Clone(_)
                | Mutation::RestoreVma { .. }
                | Mutation::Restore { force: false, .. }
        )
    }

    /// True when `m` must see the live VM before it is sent: operations that lose data if the
    /// VMID now belongs to another VM.
    pub fn needs_live_check(m: &Mutation) -> bool {
        matches!(
            m,
            Mutation::Destroy { .. }
                | Mutation::SnapshotRollback { .. }
                | Mutation::Template { .. }
                // A restore over an existing VM replaces its disks: the VM must be the one
                // definitions.nix names (the caller also checks it is stopped).
                | Mutation::Restore { force: true, .. }
        )
    }

    /// The live check: the VM on the cluster must be the one definitions.nix names for this
    /// VMID, not a template (unless it is the fleet's template) and not protected.
    pub fn check_live(&self, m: &Mutation, live: &VmConfig) -> Result<(), FenceError> {
        let vmid = m.vmid();
        let op = m.name();
        let live_name = live.name().map(str::to_string);
        let known = self.vms.get(&vmid);
        if let Some(k) = known {
            if live_name.as_deref() != Some(k.name.as_str()) {
                return Err(FenceError::NameMismatch {
                    op,
                    vmid,
                    expected: k.name.clone(),
                    live: live_name,
                });
            }
        }
        let is_template = live.get("template") == Some("1");
        if is_template && known.is_none_or(|k| k.kind != VmKind::Template) {
            return Err(FenceError::LiveTemplate {
                op,
                vmid,
                live: live_name,
            });
        }
        if live.protected() {
            return Err(FenceError::Protected {
                op,
                vmid,
                live: live_name,
            });
        }
        Ok(())
    }
}
