//! Undoing a run from its journal, in reverse: the fleet files (only while they still hold
//! what the run wrote), the cloud-init keys file, the VM (only the one this run created,
//! checked by VMID and name), the temporary key directory.

use std::path::Path;

use super::journal::{self, Journal};
use super::StepErrors;
use super::{HostFiles, ProvisionError};
use crate::exec::apply::{apply, ChangeSet, FileChange, FleetLock};
use crate::exec::proxmox::Proxmox;
use crate::plan::provision::StepId;
use crate::proxmox::{Mutation, VmResource};

/// `Err` when `vm` carries a lock: who holds it (a task still running on its node, or nobody,
/// the lock left by a killed run) and what the user does next. vmctl never unlocks a VM itself:
/// a stale lock on a half-made VM is for a person to look at.
pub(super) fn refuse_locked<P: Proxmox>(
    p: &P,
    vm: &VmResource,
    doing: &'static str,
    name: &str,
) -> Result<(), ProvisionError> {
    let Some(lock) = &vm.lock else {
        return Ok(());
    };
    let tasks = p
        .active_tasks(&vm.node, vm.vmid)
        .map_err(ProvisionError::proxmox(StepId::Clone))?;
    let held = match tasks.first() {
        Some(t) => format!(
            "by task `{}`, still running on node `{}`: wait for it to end (`pvenode task status \
             {}` on that node, or the web UI's task log), then run `vmctl provision {name} \
             --rollback` (or `--resume`) again",
            t.upid, vm.node, t.upid
        ),
        None => format!(
            "and no task on node `{node}` holds it any more: the run that took it was killed, so \
             the VM may be half-made; look at it (`qm config {id}`), release the lock yourself with \
             `qm unlock {id}` on `{node}` (vmctl never unlocks a VM), then run `vmctl provision \
             {name} --rollback`",
            node = vm.node,
            id = vm.vmid
        ),
    };
    Err(ProvisionError::Locked {
        doing,
        vmid: vm.vmid,
        name: name.to_string(),
        lock: lock.clone(),
        held,
    })
}

/// Rolls back what `j` records. Checks every file before changing any: one changed since the
/// run wrote it stops the rollback before anything is undone, naming the file.
pub fn rollback<P: Proxmox + HostFiles>(
    p: &P,
    root: &Path,
    j: &Journal,
    lock: &FleetLock,
    report: &dyn Fn(&str),
) -> Result<(), ProvisionError> {
    // 1. Files: decide for every file first.
    let mut set = ChangeSet::new();
    let mut delete = Vec::new();
    for f in j.files.iter().rev() {
        let abs = root.join(&f.path);
        let now = std::fs::read(&abs).ok();
        let now_hash = now.as_deref().map(journal::sha256);
        if now_hash == f.before_sha256 {
            continue;
        }
        if now_hash.as_deref() != Some(f.after_sha256.as_str()) {
            return Err(ProvisionError::FileChanged {
                path: f.path.display().to_string(),
                name: j.name.clone(),
            });
        }
        let shown = f.path.display().to_string();
        match f
            .before_bytes()
            .map_err(|e| ProvisionError::step(StepId::KeyCeremony, e.to_string()))?
        {
            Some(before) => set.push(FileChange::modify(
                abs,
                shown,
                now.unwrap_or_default(),
                before,
                "restored",
            )),
            None => delete.push(abs),
        }
    }
    apply(&set, lock)?;
    for abs in &delete {
        std::fs::remove_file(abs).map_err(|e| {
            ProvisionError::step(
                StepId::KeyCeremony,
                format!("cannot remove `{}`: {e}", abs.display()),
            )
        })?;
        // Directories the run created for them (hosts/NAME/), once empty.
        let mut dir = abs.parent();
        while let Some(d) = dir.filter(|d| *d != root && d.starts_with(root)) {
            if std::fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }
    if !set.changes.is_empty() || !delete.is_empty() {
        report(&format!(
            "   restored {} file(s), removed {}",
            set.changes.len(),
            delete.len()
        ));
    }
    // 2. The cloud-init keys file, when the run died before removing it.
    if let Some(path) = &j.uploaded {
        p.remove_file(path)
            .map_err(ProvisionError::proxmox(StepId::CloudInit))?;
    }
    // 3. The VM: only when this run sent the clone, and only while VMID and name say it is ours.
    if j.clone_sent {
        let found = p
            .list()
            .map_err(ProvisionError::proxmox(StepId::Clone))?
            .into_iter()
            .find(|r| r.vmid == j.vmid);
        match found {
            Some(r) if r.name.as_deref() == Some(&j.name) && !r.template => {
                refuse_locked(p, &r, "rollback stopped", &j.name)?;
                if r.status != "stopped" {
                    p.apply(&Mutation::Stop { vmid: j.vmid })
                        .map_err(ProvisionError::proxmox(StepId::Clone))?;
                }
                p.apply(&Mutation::Destroy {
                    vmid: j.vmid,
                    confirm: Some(j.name.clone()),
                })
                .map_err(ProvisionError::proxmox(StepId::Clone))?;
                report(&format!("   destroyed VM {} `{}`", j.vmid, j.name));
            }
            Some(r) if j.vm_created => {
                return Err(ProvisionError::NotOurVm {
                    vmid: j.vmid,
                    name: j.name.clone(),
                    found: format!("`{}`", r.name.unwrap_or_default()),
                })
            }
            _ => {}
        }
    }
    // 4. The key directory a crashed run left behind.
    if let Some(k) = &j.key {
        let _ = std::fs::remove_dir_all(&k.dir);
    }
    Ok(())
}
