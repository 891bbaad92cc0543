//! `vmctl post-provision`'s side effects: the VM's ed25519 host key fetched with `ssh-keyscan`
//! (which trusts nothing: the key is only shown until it is accepted), and the integration of
//! an accepted key into the fleet, provision's key ceremony without the key generation:
//! journaled before every change and rolled back on failure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::exec::apply::{apply, ApplyError, ChangeSet, FileChange, FleetLock};
use crate::exec::process::{stderr_tail, Process, ProcessError};
use crate::exec::provision::journal::{self, Journal, JournalError};
use crate::exec::provision::{
    files, rollback, FleetFileError, Git, GitError, HostFiles, RekeyError, Rekeyer,
};
use crate::exec::proxmox::Proxmox;
use crate::keys::PublicKey;
use crate::model::{Definitions, Vm};
use crate::plan::post_provision::{self as plan, ScanError};
use crate::plan::provision::ceremony::{self, CeremonyError, PlannedFile};
use crate::proxmox::VmId;

/// Why the host key could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// ssh-keyscan could not be started or did not finish.
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Scan(#[from] ScanError),
}

/// Fetches the ed25519 host key `ip` presents on `port` with `ssh-keyscan` through the one
/// process runner. Nothing is trusted or written: the caller shows the fingerprint and
/// integrates the key only once it is accepted.
pub fn fetch_host_key(ip: &str, port: u16, timeout: Duration) -> Result<PublicKey, FetchError> {
    let secs = timeout.as_secs().clamp(1, 3600);
    // `--` ends the options: the address (validated by `plan::post_provision::ip`) can never
    // be read as one.
    let out = Process::new("fetch the VM's host key with ssh-keyscan", "ssh-keyscan")
        .args([
            "-T",
            &secs.to_string(),
            "-t",
            "ed25519",
            "-p",
            &port.to_string(),
        ])
        .args(["--", ip])
        .timeout(Duration::from_secs(secs + 10))
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    // ssh-keyscan's exit status says little (1 when a host did not answer); its output says
    // whether there is a key, its stderr why not.
    let tail = stderr_tail(&out.stderr, &[]).replace('\n', " / ");
    Ok(plan::scanned_key(&stdout, &plan::addr(ip, port), &tail)?)
}

/// What is integrated, and how.
pub struct Integration<'a> {
    pub root: &'a Path,
    pub defs: &'a Definitions,
    pub vm: &'a Vm,
    pub vmid: VmId,
    /// The node the cluster shows the VM on (the commit's `Node:` trailer).
    pub node: Option<&'a str>,
    /// The accepted host key.
    pub key: &'a PublicKey,
    /// Where it was fetched from (`IP:PORT`), for the commit message.
    pub from: &'a str,
    /// How it was accepted, for the commit message.
    pub accepted: plan::Acceptance,
    /// Commit the changed files (`--no-commit` leaves them uncommitted).
    pub commit: bool,
}

/// How an integration ended well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integrated {
    /// hosts.nix already has the host with this key and nothing else would change.
    NothingToDo(String),
    Done {
        /// The fleet files written (not the secrets).
        files: Vec<PlannedFile>,
        /// The secrets files re-keyed, fleet-relative, sorted.
        secrets: Vec<String>,
        commit: Option<String>,
    },
}

/// Why an integration failed.
#[derive(Debug, thiserror::Error)]
pub enum IntegrateError {
    #[error(transparent)]
    Ceremony(#[from] CeremonyError),
    #[error(transparent)]
    FleetFile(#[from] FleetFileError),
    #[error("the host key: {0}")]
    Key(#[from] crate::keys::KeyError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("an earlier run for `{name}` did not finish (its journal is `{}`); undo it with `vmctl provision {name} --rollback`, then run post-provision again", journal.display())]
    Pending { name: String, journal: PathBuf },
    #[error(transparent)]
    Apply(Box<ApplyError>),
    #[error("re-keying the secrets: {0}")]
    Rekey(#[from] RekeyError),
    #[error("commit: {0}")]
    Git(#[from] GitError),
    #[error("{failure}; {rollback}")]
    RolledBack { failure: String, rollback: String },
}

impl From<ApplyError> for IntegrateError {
    fn from(e: ApplyError) -> Self {
        IntegrateError::Apply(Box::new(e))
    }
}

/// The fleet-file changes the integration of `key` makes (provision's ceremony edits: hosts.nix,
/// .sops.yaml, `hosts/CONFIG/` when missing, machines.md), read fresh from the fleet. A refusal
/// (the host in hosts.nix with another key, a .sops.yaml vmctl cannot edit) comes from here,
/// before anything is asked or written.
pub fn planned(
    root: &Path,
    defs: &Definitions,
    vm: &Vm,
    key: &PublicKey,
) -> Result<Vec<PlannedFile>, IntegrateError> {
    let loaded = files::load(root, defs, vm)?;
    let recipient = key.age_recipient()?;
    Ok(ceremony::changes(
        defs,
        vm,
        &loaded.view(),
        &key.to_openssh(),
        &recipient,
    )?)
}

/// Integrates `it.key` as `it.vm`'s identity under `lock`: the fleet edits journaled then
/// applied, the secrets journaled then re-keyed, then one commit. Any failure rolls this run's
/// changes back (only files that still hold what it wrote) and removes the journal; a crash
/// leaves the journal for `vmctl provision NAME --rollback`.
pub fn integrate<P: Proxmox + HostFiles>(
    p: &P,
    rekeyer: &dyn Rekeyer,
    git: &dyn Git,
    lock: &FleetLock,
    it: &Integration,
    report: &dyn Fn(&str),
) -> Result<Integrated, IntegrateError> {
    let name = it.vm.name.as_str();
    if journal::load(it.root, name)?.is_some() {
        return Err(IntegrateError::Pending {
            name: name.into(),
            journal: journal::path(it.root, name),
        });
    }
    let planned = planned(it.root, it.defs, it.vm, it.key)?;
    if planned.is_empty() {
        return Ok(Integrated::NothingToDo(format!(
            "`{name}` is already integrated with this host key (hosts.nix, .sops.yaml and the \
             docs have it): nothing to do"
        )));
    }
    let mut j = Journal::new(name, it.vmid, it.node.map(str::to_string));
    journal::save(it.root, &j)?;
    let result = steps(rekeyer, git, lock, it, &planned, &mut j, report);
    match result {
        Ok((secrets, commit)) => {
            journal::remove(it.root, name)?;
            Ok(Integrated::Done {
                files: planned,
                secrets,
                commit,
            })
        }
        Err(failure) => {
            report(&format!(
                "failed: {failure}; rolling back this run's changes"
            ));
            journal::save(it.root, &j)?;
            match rollback(p, it.root, &j, lock, report) {
                Ok(()) => {
                    journal::remove(it.root, name)?;
                    Err(IntegrateError::RolledBack {
                        failure: failure.to_string(),
                        rollback: "rolled back: the fleet files are as before".into(),
                    })
                }
                Err(e) => Err(IntegrateError::RolledBack {
                    failure: failure.to_string(),
                    rollback: format!(
                        "the rollback stopped: {e} (the journal `{}` is kept; `vmctl provision \
                         {name} --rollback` tries again)",
                        journal::path(it.root, name).display()
                    ),
                }),
            }
        }
    }
}

/// The integration's changes, each journaled before it is made. Returns the secrets re-keyed
/// and the commit made.
fn steps(
    rekeyer: &dyn Rekeyer,
    git: &dyn Git,
    lock: &FleetLock,
    it: &Integration,
    planned: &[PlannedFile],
    j: &mut Journal,
    report: &dyn Fn(&str),
) -> Result<(Vec<String>, Option<String>), IntegrateError> {
    let mut set = ChangeSet::new();
    for f in planned {
        j.record_file(f.path.clone(), f.old.as_deref(), &f.new);
        let abs = it.root.join(&f.path);
        let shown = f.path.display().to_string();
        set.push(match &f.old {
            Some(old) => FileChange::modify(abs, shown, old.clone(), f.new.clone(), &f.summary),
            None => FileChange::create(abs, shown, f.new.clone(), &f.summary),
        });
    }
    journal::save(it.root, j)?;
    for f in planned.iter().filter(|f| f.old.is_none()) {
        if let Some(parent) = it.root.join(&f.path).parent() {
            std::fs::create_dir_all(parent).map_err(|error| ApplyError::Io {
                action: "create the directory",
                path: parent.to_path_buf(),
                error,
            })?;
        }
    }
    apply(&set, lock)?;
    for f in planned {
        report(&format!("   {}: {}", f.path.display(), f.summary));
    }
    // Re-keying: every secret's bytes journaled first, so a crash mid-way can be undone.
    let secrets_dir = it.root.join(&it.defs.settings.secrets_dir);
    let before = crate::exec::provision::files::snapshot(&secrets_dir, it.root);
    for (rel, bytes) in &before {
        j.record_file(rel.clone(), Some(bytes), bytes);
    }
    journal::save(it.root, j)?;
    let rekeyed = crate::exec::provision::files::rekey_journaled(
        rekeyer,
        it.root,
        lock,
        j,
        &before,
        &secrets_dir,
    );
    journal::save(it.root, j)?;
    let after = crate::exec::provision::files::snapshot(&secrets_dir, it.root);
    rekeyed?;
    let secrets: Vec<String> = after
        .iter()
        .filter(|(rel, bytes)| before.get(*rel) != Some(*bytes))
        .map(|(rel, _)| rel.display().to_string())
        .collect();
    report(&format!("   re-keyed {} secrets file(s)", secrets.len()));
    if !it.commit {
        report("   --no-commit: the files stay changed, uncommitted");
        return Ok((secrets, None));
    }
    let mut changed: Vec<PathBuf> = planned.iter().map(|f| f.path.clone()).collect();
    changed.extend(secrets.iter().map(PathBuf::from));
    let shown: Vec<String> = changed.iter().map(|p| p.display().to_string()).collect();
    let message = plan::commit_message(
        &it.vm.name,
        it.vmid,
        it.node,
        it.key,
        it.from,
        it.accepted,
        &shown,
    );
    let hash = git.commit(it.root, &changed, &message)?;
    j.commit = Some(hash.clone());
    Ok((secrets, Some(hash)))
}

#[cfg(test)]
mod tests;
