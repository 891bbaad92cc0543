//! Running a destroy plan: stop and destroy the VM through the fenced `Proxmox`, apply the
//! planned fleet-file edits, re-key (and rotate) the secrets, commit; each step journaled in
//! `.vmctl/journal/destroy/NAME.json`, so a run killed at any point resumes (`--resume`) or
//! has its file changes undone (`--rollback`).
//!
//! Git and the re-keyer are provision's traits ([`crate::exec::provision::Git`],
//! [`crate::exec::provision::Rekeyer`]); rotation is [`Rotator`], with the real one in
//! [`rotate`].

pub mod journal;
pub mod rotate;
mod runner;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use runner::{rollback, run, Outcome};

use crate::exec::apply::{ApplyError, FleetLock};
use crate::exec::provision::{Git, GitError, RekeyError, StepError, StepErrors};
use crate::plan::destroy::StepId;

/// Gives the secrets the removed host could read new data keys.
pub trait Rotator {
    /// Rotates each of `files` (fleet-relative) under the fleet lock the caller holds.
    fn rotate(&self, root: &Path, lock: &FleetLock, files: &[PathBuf]) -> Result<(), RotateError>;
}

/// Why a secret was not rotated.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("cannot read the sops configuration: {0}; fix it (`vmctl lint`), then resume")]
    Config(String),
    #[error("no identity that can decrypt the secrets: {0}; pass one with --age-identity FILE, then resume")]
    Identities(String),
    #[error("`{path}`: {reason}")]
    File { path: String, reason: String },
}

/// Everything a run talks to.
pub struct Env<'a, P> {
    pub proxmox: &'a P,
    pub git: &'a dyn Git,
    pub rekeyer: &'a dyn crate::exec::provision::Rekeyer,
    pub rotator: &'a dyn Rotator,
}

/// How a run behaves.
pub struct Options<'a> {
    /// Hears a line per step (stderr in the CLI).
    pub report: &'a dyn Fn(&str),
}

/// Why a destroy failed.
#[derive(Debug, thiserror::Error)]
pub enum DestroyError {
    #[error(transparent)]
    Step(#[from] StepError),
    #[error("step fleet-files: {0}")]
    Apply(Box<ApplyError>),
    #[error("step rekey: re-keying the secrets: {0}")]
    Rekey(#[from] RekeyError),
    #[error("step rotate: {0}")]
    Rotate(#[from] RotateError),
    #[error("step commit: {0}")]
    Git(#[from] GitError),
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    #[error("VM {vmid} is `{found}` on the cluster now, not `{name}`: it is not this VM, so vmctl leaves it alone; the journal `{}` is kept (`--rollback` restores the fleet files)", journal.display())]
    NotOurVm {
        vmid: u32,
        name: String,
        found: String,
        journal: PathBuf,
    },
    #[error("`{path}` changed since this run planned it, so vmctl does not touch it: restore it by hand (`git diff {path}`) or undo the run with `vmctl destroy {name} --confirm {name} --rollback`")]
    FileChanged { path: String, name: String },
    #[error("{failure}; nothing was changed")]
    NothingChanged { failure: String },
    #[error("{failure}; the journal `{}` is kept: fix the cause and run `vmctl destroy {name} --confirm {name} --resume`, or restore the fleet files with `--rollback`{}", journal.display(), if *destroyed { " (the VM itself is gone for good)" } else { "" })]
    Kept {
        failure: String,
        name: String,
        journal: PathBuf,
        destroyed: bool,
    },
}

impl From<ApplyError> for DestroyError {
    fn from(e: ApplyError) -> Self {
        DestroyError::Apply(Box::new(e))
    }
}

impl StepErrors for DestroyError {
    type Id = StepId;
}
