//! The destroy journal, `.vmctl/journal/destroy/NAME.json`: the plan itself (every file's
//! bytes before and after), the steps done, what was sent to Proxmox, and the secrets'
//! before-states; written atomically after every step and before every change a crash could
//! leave half-done.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::exec::apply::STATE_DIR;
pub use crate::exec::provision::journal::JournalError;
use crate::exec::provision::journal::{self, JournalFile};
use crate::plan::destroy::{DestroyPlan, StepId};

/// Bumped when the format changes; a journal of another version is refused, never guessed at.
pub const JOURNAL_VERSION: u32 = 1;

/// What one destroy run has done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub version: u32,
    /// The plan the run follows, resumed as it was made.
    pub plan: DestroyPlan,
    pub completed: Vec<StepId>,
    /// `qm stop` was sent: a rollback starts the VM again while it still exists.
    pub stop_sent: bool,
    /// `qm destroy` was sent: the VM may be gone even if the run died before hearing back.
    pub destroy_sent: bool,
    /// The fleet-file edits began.
    pub files_started: bool,
    /// The secrets' bytes before the re-keying (and the hash after each later write).
    pub secrets: Vec<JournalFile>,
    pub commit: Option<String>,
}

impl Journal {
    pub fn new(plan: DestroyPlan) -> Self {
        Journal {
            version: JOURNAL_VERSION,
            plan,
            completed: Vec::new(),
            stop_sent: false,
            destroy_sent: false,
            files_started: false,
            secrets: Vec::new(),
            commit: None,
        }
    }

    pub fn is_done(&self, id: StepId) -> bool {
        self.completed.contains(&id)
    }

    /// Records a secret before it is written, or updates the hash of one recorded earlier
    /// (its before-state stays the first one).
    pub fn record_secret(&mut self, path: PathBuf, before: &[u8], after: &[u8]) {
        journal::record(&mut self.secrets, path, Some(before), after);
    }

    /// Whether anything has been changed yet (the VM stopped, destroyed, a file written).
    pub fn changed_anything(&self) -> bool {
        self.stop_sent || self.destroy_sent || self.files_started
    }
}

pub use crate::exec::provision::journal::sha256;

/// `ROOT/.vmctl/journal/destroy/NAME.json` (beside provision's, never the same file).
pub fn path(root: &Path, name: &str) -> PathBuf {
    root.join(STATE_DIR)
        .join("journal")
        .join("destroy")
        .join(format!("{name}.json"))
}

/// Writes the journal atomically, readable only by its owner (it holds the fleet files'
/// contents). `.vmctl/` ignores itself in git.
pub fn save(root: &Path, j: &Journal) -> Result<(), JournalError> {
    write(root, j, true)
}

fn write(root: &Path, j: &Journal, durable: bool) -> Result<(), JournalError> {
    journal::write_json(root, &path(root, &j.plan.name), j, durable)
}

/// The journal of `name`, when a run left one.
pub fn load(root: &Path, name: &str) -> Result<Option<Journal>, JournalError> {
    let p = path(root, name);
    let Some(j) = journal::read_json::<Journal>(&p)? else {
        return Ok(None);
    };
    journal::check_identity(&p, j.version, JOURNAL_VERSION, &j.plan.name, name)?;
    Ok(Some(j))
}

/// Deletes the journal once the run finished or was rolled back.
pub fn remove(root: &Path, name: &str) -> Result<(), JournalError> {
    journal::remove_file(&path(root, name))
}

impl crate::exec::provision::files::SecretsJournal for Journal {
    /// A secret that appeared during the run counts as one that was there (destroy never
    /// deletes a secret on rollback).
    fn record_secret(&mut self, path: PathBuf, before: Option<&[u8]>, after: &[u8]) {
        journal::record(
            &mut self.secrets,
            path,
            Some(before.unwrap_or(after)),
            after,
        );
    }
    /// Atomic, not waited for: a kill cannot lose it (see provision's journal).
    fn checkpoint(&self, root: &Path) -> Result<(), JournalError> {
        write(root, self, false)
    }
}
