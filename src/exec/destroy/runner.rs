//! The step runner of a destroy, and the rollback of its file changes.
//!
//! Every Proxmox step observes the cluster first, so a resumed run neither stops a VM twice
//! nor destroys one that is already gone, and never touches a VMID that now names another VM.
//! The fleet-file step writes only files that still hold what the plan read (or already hold
//! what it wants, when a killed run got that far).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::journal::{self, Journal};
use super::{DestroyError, Env, Options};
use crate::exec::apply::{apply, ChangeSet, FileChange, FleetLock};
use crate::exec::provision::files::rekey_journaled;
use crate::exec::provision::StepErrors;
use crate::exec::proxmox::Proxmox;
use crate::plan::destroy::{commit_message, DestroyPlan, Live, StepId};
use crate::proxmox::Mutation;

/// How a run ended well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The commit's hash when one was made.
    pub commit: Option<String>,
    /// Whether this run (or the one it resumed) destroyed the VM.
    pub destroyed: bool,
    /// The secrets re-keyed (and rotated with --rotate), fleet-relative.
    pub secrets: Vec<PathBuf>,
}

/// Runs `plan`, or continues `resume`'s journal. On failure the journal is kept (unless
/// nothing was changed yet) and the error says how to resume or roll back.
pub fn run<P: Proxmox>(
    env: &Env<P>,
    opts: &Options,
    root: &Path,
    lock: &FleetLock,
    plan: DestroyPlan,
    resume: Option<Journal>,
) -> Result<Outcome, DestroyError> {
    let mut j = resume.unwrap_or_else(|| Journal::new(plan));
    journal::save(root, &j)?;
    let name = j.plan.name.clone();
    match steps(env, opts, root, lock, &mut j) {
        Ok(()) => {
            journal::remove(root, &name)?;
            Ok(Outcome {
                commit: j.commit.clone(),
                destroyed: j.destroy_sent || j.plan.live == Live::Absent,
                secrets: changed_secrets(root, &j),
            })
        }
        Err(failure) if !j.changed_anything() => {
            journal::remove(root, &name)?;
            Err(DestroyError::NothingChanged {
                failure: failure.to_string(),
            })
        }
        Err(e @ DestroyError::NotOurVm { .. }) => {
            journal::save(root, &j)?;
            Err(e)
        }
        Err(failure) => {
            journal::save(root, &j)?;
            Err(DestroyError::Kept {
                failure: failure.to_string(),
                name: name.clone(),
                journal: journal::path(root, &name),
                destroyed: j.destroy_sent,
            })
        }
    }
}

fn steps<P: Proxmox>(
    env: &Env<P>,
    opts: &Options,
    root: &Path,
    lock: &FleetLock,
    j: &mut Journal,
) -> Result<(), DestroyError> {
    let steps = j.plan.steps.clone();
    for step in &steps {
        if j.is_done(step.id) {
            continue;
        }
        (opts.report)(&format!("== {} {}", step.id.as_str(), step.title));
        match step.id {
            StepId::Stop | StepId::Destroy => vm_step(env.proxmox, root, j, step.id, opts)?,
            StepId::FleetFiles => fleet_files(root, lock, j, opts)?,
            StepId::Rekey => {
                let before = snapshot_secrets(root, j);
                journal::save(root, j)?;
                let secrets = root.join(secrets_dir(j));
                let rekeyed = rekey_journaled(env.rekeyer, root, lock, j, &before, &secrets);
                journal::save(root, j)?;
                rekeyed?;
            }
            StepId::Rotate => {
                let files = changed_secrets(root, j);
                let rotated = env.rotator.rotate(root, lock, &files);
                record_secrets(root, j);
                rotated?;
                (opts.report)(&format!("   rotated {} file(s)", files.len()));
            }
            StepId::Commit => {
                let mut files: Vec<PathBuf> = j.plan.files.iter().map(|f| f.path.clone()).collect();
                files.extend(changed_secrets(root, j));
                let shown: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
                let msg = commit_message(&j.plan, &shown);
                j.commit = Some(env.git.commit(root, &files, &msg)?);
            }
        }
        j.completed.push(step.id);
        journal::save(root, j)?;
    }
    Ok(())
}

/// Stop or destroy, after looking at the cluster: the VMID must still be this VM; a VM that
/// is already stopped or gone needs nothing.
fn vm_step<P: Proxmox>(
    p: &P,
    root: &Path,
    j: &mut Journal,
    id: StepId,
    opts: &Options,
) -> Result<(), DestroyError> {
    let (vmid, name) = (j.plan.vmid, j.plan.name.clone());
    let found = p
        .list()
        .map_err(DestroyError::proxmox(id))?
        .into_iter()
        .find(|r| r.vmid == vmid);
    let Some(r) = found else {
        (opts.report)(&format!(
            "   VM {vmid} is not on the cluster: nothing to {}",
            id.as_str()
        ));
        return Ok(());
    };
    if r.name.as_deref() != Some(name.as_str()) || r.template {
        return Err(DestroyError::NotOurVm {
            vmid,
            name: name.clone(),
            found: r.name.unwrap_or_else(|| "(no name)".into()),
            journal: journal::path(root, &name),
        });
    }
    let m = j.plan.mutation(id).expect("a VM step");
    match id {
        StepId::Stop if r.status == "stopped" => {
            (opts.report)(&format!("   VM {vmid} is stopped already"));
            return Ok(());
        }
        StepId::Stop => j.stop_sent = true,
        _ => {
            if r.status != "stopped" {
                // Started again since the plan saw it stopped: Proxmox destroys no running VM.
                j.stop_sent = true;
                journal::save(root, j)?;
                p.apply(&Mutation::Stop { vmid })
                    .map_err(DestroyError::proxmox(StepId::Stop))?;
            }
            j.destroy_sent = true;
        }
    }
    // Journaled before it is sent: a run killed while Proxmox works knows what it asked for.
    journal::save(root, j)?;
    p.apply(&m).map_err(DestroyError::proxmox(id))?;
    Ok(())
}

/// The planned file edits: each file must hold what the plan read (it is then written) or
/// what the plan wants (a killed run wrote it already); anything else stops the run.
fn fleet_files(
    root: &Path,
    lock: &FleetLock,
    j: &mut Journal,
    opts: &Options,
) -> Result<(), DestroyError> {
    let mut set = ChangeSet::new();
    let mut delete = Vec::new();
    for f in &j.plan.files {
        let abs = root.join(&f.path);
        let now = std::fs::read(&abs).ok();
        if now.as_deref() == f.new.as_deref() {
            continue;
        }
        if now.as_deref() != Some(f.old.as_slice()) {
            return Err(DestroyError::FileChanged {
                path: f.path.display().to_string(),
                name: j.plan.name.clone(),
            });
        }
        let shown = f.path.display().to_string();
        match &f.new {
            Some(new) => set.push(FileChange::modify(
                abs,
                shown,
                f.old.clone(),
                new.clone(),
                &f.summary,
            )),
            None => delete.push(abs),
        }
    }
    j.files_started = true;
    journal::save(root, j)?;
    apply(&set, lock)?;
    for abs in &delete {
        std::fs::remove_file(abs).map_err(|e| {
            DestroyError::step(
                StepId::FleetFiles,
                format!("cannot remove `{}`: {e}", abs.display()),
            )
        })?;
        remove_empty_parents(root, abs);
    }
    for f in &j.plan.files {
        (opts.report)(&format!("   {}: {}", f.path.display(), f.summary));
    }
    Ok(())
}

/// The directories that held only `abs` (hosts/NAME/), up to the fleet root.
fn remove_empty_parents(root: &Path, abs: &Path) {
    let mut dir = abs.parent();
    while let Some(d) = dir.filter(|d| *d != root && d.starts_with(root)) {
        if std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// The secrets directory the re-keyer works on: where the removed recipient's files are.
fn secrets_dir(j: &Journal) -> PathBuf {
    j.plan.secrets_dir.clone()
}

/// Records every secret's bytes before the re-keying (kept from the first record on resume).
fn snapshot_secrets(root: &Path, j: &mut Journal) -> BTreeMap<PathBuf, Vec<u8>> {
    let now = crate::exec::provision::files::snapshot(&root.join(secrets_dir(j)), root);
    for (rel, bytes) in &now {
        if !j.secrets.iter().any(|f| &f.path == rel) {
            j.record_secret(rel.clone(), bytes, bytes);
        }
    }
    now
}

/// Records what the re-keyer or rotator wrote: this run's, even when it failed half-way.
fn record_secrets(root: &Path, j: &mut Journal) {
    for (rel, bytes) in crate::exec::provision::files::snapshot(&root.join(secrets_dir(j)), root) {
        j.record_secret(rel, &bytes, &bytes);
    }
}

/// The journaled secrets whose bytes differ from their before-state.
fn changed_secrets(root: &Path, j: &Journal) -> Vec<PathBuf> {
    crate::exec::provision::journal::changed(root, &j.secrets)
}

/// Undoes a run's file changes from its journal, in reverse: every file is checked before any
/// is changed (one that holds neither what the plan read nor what the run wrote stops it);
/// a VM this run stopped but did not destroy is started again. A destroyed VM stays gone.
pub fn rollback<P: Proxmox>(
    p: &P,
    root: &Path,
    j: &Journal,
    lock: &FleetLock,
    report: &dyn Fn(&str),
) -> Result<(), DestroyError> {
    let name = j.plan.name.clone();
    let changed = |path: &Path| DestroyError::FileChanged {
        path: path.display().to_string(),
        name: name.clone(),
    };
    let mut set = ChangeSet::new();
    let mut recreate = Vec::new();
    for f in j.plan.files.iter().rev() {
        let abs = root.join(&f.path);
        let now = std::fs::read(&abs).ok();
        if now.as_deref() == Some(f.old.as_slice()) {
            continue;
        }
        if now.as_deref() != f.new.as_deref() {
            return Err(changed(&f.path));
        }
        let shown = f.path.display().to_string();
        match now {
            Some(now) => set.push(FileChange::modify(
                abs,
                shown,
                now,
                f.old.clone(),
                "restored",
            )),
            None => recreate.push(FileChange::create(abs, shown, f.old.clone(), "restored")),
        }
    }
    for f in j.secrets.iter().rev() {
        let abs = root.join(&f.path);
        let now = std::fs::read(&abs).ok();
        let hash = now.as_deref().map(journal::sha256);
        if hash == f.before_sha256 {
            continue;
        }
        if hash.as_deref() != Some(f.after_sha256.as_str()) {
            return Err(changed(&f.path));
        }
        let before = f
            .before_bytes()
            .map_err(|e| DestroyError::step(StepId::Rekey, e.to_string()))?
            .unwrap_or_default();
        set.push(
            FileChange::modify(
                abs,
                f.path.display().to_string(),
                now.unwrap_or_default(),
                before,
                "restored",
            )
            .secret(),
        );
    }
    for c in &recreate {
        if let Some(parent) = c.path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                DestroyError::step(
                    StepId::FleetFiles,
                    format!("cannot create `{}`: {e}", parent.display()),
                )
            })?;
        }
        set.push(c.clone());
    }
    apply(&set, lock)?;
    if !set.changes.is_empty() {
        report(&format!("   restored {} file(s)", set.changes.len()));
    }
    if j.stop_sent && !j.destroy_sent {
        let vmid = j.plan.vmid;
        let found = p
            .list()
            .map_err(DestroyError::proxmox(StepId::Stop))?
            .into_iter()
            .find(|r| r.vmid == vmid);
        if let Some(r) = found.filter(|r| r.name.as_deref() == Some(name.as_str())) {
            if r.status == "stopped" {
                p.apply(&Mutation::Start { vmid })
                    .map_err(DestroyError::proxmox(StepId::Stop))?;
                report(&format!(
                    "   started VM {vmid} again (this run had stopped it)"
                ));
            }
        }
    }
    if j.destroy_sent {
        report(&format!(
            "   VM {} was destroyed and cannot be brought back; the fleet files describe it again",
            j.plan.vmid
        ));
    }
    Ok(())
}
