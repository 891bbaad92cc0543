//! `vmctl secrets check` as a pure result: which sops files' recipients differ from their
//! creation rule. The lead maps [`StaleFile`] into the project's diagnostics later.

use serde::Serialize;

use super::config::CreationRule;
use super::document::SopsFile;
use super::rekey::{diff_key_groups, GroupChange};

/// A sops file whose keys differ from what its creation rule asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleFile {
    /// The file, as the caller names it (usually relative to the fleet root).
    pub path: String,
    /// 1-based position of the matching rule in `creation_rules`.
    pub rule: usize,
    pub path_regex: Option<String>,
    /// Per key group: keys to add and to remove.
    pub changes: Vec<GroupChange>,
}

/// A file `check` could not judge (unreadable, not a sops file, no matching rule …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileProblem {
    pub path: String,
    pub message: String,
}

/// Everything `check` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// How many files were compared with a rule.
    pub checked: usize,
    pub stale: Vec<StaleFile>,
    pub problems: Vec<FileProblem>,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.stale.is_empty() && self.problems.is_empty()
    }
}

/// Compares one file's keys with its rule; `None` when they agree.
pub fn check_file(path: &str, file: &SopsFile, rule: &CreationRule) -> Option<StaleFile> {
    let changes = diff_key_groups(&file.metadata.key_id_groups(), &rule.key_groups);
    (!changes.is_empty()).then(|| StaleFile {
        path: path.to_string(),
        rule: rule.index + 1,
        path_regex: rule.path_regex.clone(),
        changes,
    })
}
