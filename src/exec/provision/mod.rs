//! Running a provision plan: the steps against the cluster, the installer, SSH and git, each
//! journaled, with rollback of this run's own work in reverse on failure.
//!
//! The external systems are small traits ([`HostFiles`], [`Installer`], [`SshProbe`], [`Git`],
//! [`Rekeyer`]) next to the `Proxmox` trait, with real implementations in [`real`] and fakes
//! in the tests.

mod errors;
pub mod files;
pub mod fleet_git;
mod fleet_rollback;
pub mod fleet_run;
pub mod journal;
pub mod keydir;
pub mod real;
mod rollback;
mod runner;
#[cfg(test)]
pub(crate) mod test_fleet;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use errors::{
    FleetFileError, GitError, InstallError, ProbeError, RekeyError, StepError, StepErrors, StepName,
};
pub use rollback::rollback;
pub use runner::{run, Outcome};

use crate::exec::apply::{ApplyError, FleetLock};
use crate::exec::proxmox::ProxmoxError;
use crate::plan::provision::ceremony::CeremonyError;
use crate::plan::provision::StepId;

/// Serializes the fleet-file work (key ceremony, the commit, undoing files) of the VMs one
/// process provisions at once: the process holds the [`FleetLock`] already, so this in-process
/// lock is all the siblings need; a single-VM run takes it uncontended.
static FLEET_FILES: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(crate) fn fleet_files() -> std::sync::MutexGuard<'static, ()> {
    // A sibling that panicked holding it left no half-applied edit (apply is atomic per file).
    FLEET_FILES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Files on the Proxmox host beyond `Proxmox::upload`: removing the cloud-init keys file.
pub trait HostFiles {
    fn remove_file(&self, path: &str) -> Result<(), ProxmoxError>;
}

/// Installs NixOS (nixos-anywhere in production).
pub trait Installer {
    /// Runs the installer's argv, its output shown to the user.
    fn install(&self, argv: &[String]) -> Result<(), InstallError>;
}

/// Reaches the new VM over SSH.
pub trait SshProbe {
    /// The port the VM's sshd is reached on at `ip` (the installer is told it too).
    fn port(&self, _ip: &str) -> u16 {
        22
    }
    /// Returns once `ip` answers on the SSH port (the host key is not trusted yet: only the
    /// installer connects before the key ceremony's key is installed).
    fn wait_ssh(&self, ip: &str) -> Result<(), ProbeError>;
    /// Connects as root trusting only `host_key` (a known_hosts of that one key, written into
    /// the private directory `dir`; `StrictHostKeyChecking=yes`) and returns what the VM says
    /// it is (`hostname`, `nixos-version`). A different host key is an error.
    fn verify(&self, ip: &str, host_key: &str, dir: &Path) -> Result<Identity, ProbeError>;
}

/// What the installed VM says it is, asked over the pinned connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub hostname: String,
    /// `nixos-version`'s output: proof the install left a NixOS behind.
    pub nixos_version: String,
}

/// Commits the fleet repository.
pub trait Git {
    /// Commits exactly `files` (fleet-relative) with `message`, whatever else is staged;
    /// returns the new commit's hash.
    fn commit(&self, root: &Path, files: &[PathBuf], message: &str) -> Result<String, GitError>;
}

/// Hears a secret file's re-keyed bytes (its absolute path, the bytes) before they replace it;
/// an `Err` leaves that file unwritten and fails the re-keying with the message.
pub type Announce<'a> = dyn FnMut(&Path, &[u8]) -> Result<(), String> + 'a;

/// Re-keys the fleet's secrets for the recipients .sops.yaml now lists.
pub trait Rekeyer {
    fn rekey(&self, root: &Path, lock: &FleetLock) -> Result<(), RekeyError>;

    /// [`Rekeyer::rekey`], telling `announce` each file's new bytes before it writes them, so
    /// the journal can recognise the write as the run's own after a kill. A re-keyer that
    /// cannot know its output in advance (the sops fallback) writes unannounced: the runner
    /// records what it finds afterwards, and a kill in between leaves a file rollback refuses.
    fn rekey_announcing(
        &self,
        root: &Path,
        lock: &FleetLock,
        announce: &mut Announce<'_>,
    ) -> Result<(), RekeyError> {
        let _ = announce;
        self.rekey(root, lock)
    }
}

/// Everything a run talks to.
pub struct Env<'a, P> {
    pub proxmox: &'a P,
    pub installer: &'a dyn Installer,
    pub ssh: &'a dyn SshProbe,
    pub git: &'a dyn Git,
    pub rekeyer: &'a dyn Rekeyer,
}

/// How a run behaves.
pub struct Options<'a> {
    /// On failure, keep everything (and the journal) instead of rolling back.
    pub keep_on_failure: bool,
    /// Skip the commit step (the files stay changed, uncommitted).
    pub commit: bool,
    /// How often and how long to look for the VM's address and its SSH port.
    pub attempts: u32,
    pub interval: Duration,
    /// Hears a line per step (stderr in the CLI).
    pub report: &'a dyn Fn(&str),
    /// `--phases`: run only these steps (checked by `plan::provision::phases::check` first);
    /// the run stops, journal kept, at the first step not among them. `None`: every step.
    pub only: Option<&'a std::collections::BTreeSet<StepId>>,
}

/// Why a provision failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Step(#[from] StepError),
    #[error("step key-ceremony: {0}")]
    Ceremony(#[from] CeremonyError),
    #[error("step key-ceremony: {0}")]
    Apply(Box<ApplyError>),
    #[error("step key-ceremony: re-keying the secrets: {0}")]
    Rekey(#[from] RekeyError),
    #[error("step key-ceremony: {0}")]
    FleetFile(#[from] FleetFileError),
    #[error("step install: {0}")]
    Install(#[from] InstallError),
    #[error("step commit: {0}")]
    Git(#[from] GitError),
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    #[error("{failure}; {rollback}")]
    RolledBack { failure: String, rollback: String },
    #[error("{failure}; everything is kept (--keep-on-failure) but the generated private host key, which never outlives a run: the journal is `{}`; undo it with `vmctl provision {name} --rollback`, or fix the cause and continue with `--resume` (a run that got past the key ceremony can only be rolled back)", journal.display())]
    Kept {
        failure: String,
        name: String,
        journal: PathBuf,
    },
    #[error("rollback refused: `{path}` changed since this run wrote it; nothing else was undone after it: restore it by hand (`git diff {path}`), then run `vmctl provision {name} --rollback` again")]
    FileChanged { path: String, name: String },
    #[error("rollback refused: VM {vmid} is not `{name}` any more (the cluster says {found}); it is not this run's VM, so vmctl leaves it alone")]
    NotOurVm {
        vmid: u32,
        name: String,
        found: String,
    },
    #[error("cannot resume: {0}")]
    Resume(String),
    #[error("{doing}: VM {vmid} `{name}` is locked ({lock}) {held}")]
    Locked {
        doing: &'static str,
        vmid: u32,
        name: String,
        lock: String,
        /// Who holds the lock and what to do about it.
        held: String,
    },
}

impl From<ApplyError> for ProvisionError {
    fn from(e: ApplyError) -> Self {
        ProvisionError::Apply(Box::new(e))
    }
}

impl StepErrors for ProvisionError {
    type Id = StepId;
}
