//! Undoing one failed VM of a many-VM run while its siblings go on: each file it changed is
//! restored byte for byte while it still holds what this VM wrote; a shared file a sibling
//! edited since gets the semantic inverse instead (destroy's `--keep-definition` planner: the
//! hosts.nix entry and the .sops.yaml recipient removed, machines.md regenerated), then the
//! secrets are re-keyed without the recipient; the VM itself as a single run undoes it.

use std::path::Path;

use super::journal::{self, Journal};
use super::StepErrors;
use super::{rollback, HostFiles, ProvisionError, Rekeyer};
use crate::exec::apply::{apply, ChangeSet, FileChange, FleetLock};
use crate::exec::proxmox::Proxmox;
use crate::model::Definitions;
use crate::plan::provision::StepId;

fn fail(reason: String) -> ProvisionError {
    ProvisionError::step(StepId::KeyCeremony, reason)
}

/// Undoes `j` (the failed VM's journal) with siblings' edits in the same files.
pub(super) fn undo<P: Proxmox + HostFiles>(
    p: &P,
    root: &Path,
    defs: &Definitions,
    j: &Journal,
    lock: &FleetLock,
    rekeyer: &dyn Rekeyer,
    report: &dyn Fn(&str),
) -> Result<(), ProvisionError> {
    {
        let _serial = super::fleet_files();
        let s = &defs.settings;
        let shared = [&s.hosts_file, &s.sops_config, &s.docs_file];
        let mut set = ChangeSet::new();
        let mut delete = Vec::new();
        let mut inverse = false;
        let mut rekey = false;
        for f in j.files.iter().rev() {
            let abs = root.join(&f.path);
            let now = std::fs::read(&abs).ok();
            let now_hash = now.as_deref().map(journal::sha256);
            if now_hash == f.before_sha256 {
                continue;
            }
            let shown = f.path.display().to_string();
            if now_hash.as_deref() == Some(f.after_sha256.as_str()) {
                match f.before_bytes().map_err(|e| fail(e.to_string()))? {
                    Some(before) => set.push(FileChange::modify(
                        abs,
                        shown,
                        now.unwrap_or_default(),
                        before,
                        "restored",
                    )),
                    None => delete.push(abs),
                }
            } else if shared.iter().any(|p| **p == f.path) {
                inverse = true;
            } else if f.path.starts_with(&s.secrets_dir) {
                // A sibling re-keyed it since: re-keyed again below, without this VM.
                rekey = true;
            } else {
                return Err(ProvisionError::FileChanged {
                    path: shown,
                    name: j.name.clone(),
                });
            }
        }
        if inverse {
            let inverse_set = semantic_inverse(root, defs, j, &set)?;
            report(&format!(
                "   a sibling edited the shared files since: removed `{}` from them instead of \
                 restoring their bytes",
                j.name
            ));
            for c in inverse_set.changes {
                set.push(c);
            }
            rekey = true;
        }
        apply(&set, lock)?;
        for abs in &delete {
            std::fs::remove_file(abs)
                .map_err(|e| fail(format!("cannot remove `{}`: {e}", abs.display())))?;
            let mut dir = abs.parent();
            while let Some(d) = dir.filter(|d| *d != root && d.starts_with(root)) {
                if std::fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
        }
        if rekey {
            rekeyer.rekey(root, lock)?;
            report("   re-keyed the secrets without its recipient");
        }
    }
    // The cloud-init file, the VM (checked by VMID and name), the key directory: as a single
    // run undoes them; its files are done above.
    let mut rest = j.clone();
    rest.files.clear();
    rollback(p, root, &rest, lock, report)
}

/// The shared files without the VM, by destroy's planner over the working tree's texts (the
/// hosts.nix entry still holds the key this VM pinned, so the right recipient goes).
fn semantic_inverse(
    root: &Path,
    defs: &Definitions,
    j: &Journal,
    already: &ChangeSet,
) -> Result<ChangeSet, ProvisionError> {
    use crate::plan::destroy;
    let s = &defs.settings;
    let read = |rel: &Path| std::fs::read_to_string(root.join(rel)).ok();
    let definitions = read(Path::new("vms/definitions.nix")).unwrap_or_default();
    let hosts = read(&s.hosts_file).unwrap_or_default();
    let sops = read(&s.sops_config);
    let docs = read(&s.docs_file);
    let plan = destroy::plan(&destroy::Inputs {
        defs,
        name: &j.name,
        confirm: &j.name,
        keep_definition: true,
        rotate: false,
        commit: false,
        observation: Some(&[]),
        files: destroy::FleetTexts {
            definitions: &definitions,
            hosts: &hosts,
            sops: sops.as_deref(),
            docs: docs.as_deref(),
            host_dir: &[],
        },
    })
    .map_err(|e| {
        fail(format!(
            "cannot take `{}` out of the fleet files: {e}",
            j.name
        ))
    })?;
    let mut set = ChangeSet::new();
    for f in plan.files {
        let abs = root.join(&f.path);
        // A file restored byte for byte above is not edited twice.
        if already.changes.iter().any(|c| c.path == abs) {
            continue;
        }
        let Some(new) = f.new else { continue };
        set.push(FileChange::modify(
            abs,
            f.path.display().to_string(),
            f.old,
            new,
            "removed the failed VM",
        ));
    }
    Ok(set)
}
