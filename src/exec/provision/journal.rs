//! The provision journal, `.vmctl/journal/NAME.json`: what a run has done so far, written
//! atomically after every step (and before every change it may leave half-done), so a run
//! killed at any point can be resumed or rolled back from it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::exec::apply::{write_state_file, STATE_DIR};
use crate::plan::provision::StepId;
use crate::proxmox::VmId;

/// Bumped when the format changes; a journal of another version is refused, never guessed at.
pub const JOURNAL_VERSION: u32 = 1;

/// One fleet file this run changed (or is about to change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalFile {
    /// Fleet-relative path.
    pub path: PathBuf,
    /// The file's bytes before the run (base64); `None`: the run created it.
    pub before: Option<String>,
    pub before_sha256: Option<String>,
    /// What the run wrote: rollback restores the file only while it still holds this.
    pub after_sha256: String,
}

impl JournalFile {
    pub fn new(path: PathBuf, before: Option<&[u8]>, after: &[u8]) -> Self {
        JournalFile {
            path,
            before: before.map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
            before_sha256: before.map(sha256),
            after_sha256: sha256(after),
        }
    }

    /// The bytes before the run, `None` for a file the run created.
    pub fn before_bytes(&self) -> io::Result<Option<Vec<u8>>> {
        self.before
            .as_deref()
            .map(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
            })
            .transpose()
    }
}

/// The host key this run generated: its public half only (the private key lives in `key_dir`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalKey {
    pub public: String,
    pub fingerprint: String,
    pub age_recipient: String,
    /// The private temporary directory holding `etc/ssh/ssh_host_ed25519_key{,.pub}`.
    pub dir: PathBuf,
}

/// What one provision run has done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub version: u32,
    pub name: String,
    pub vmid: VmId,
    pub node: Option<String>,
    /// Steps finished, in order.
    pub completed: Vec<StepId>,
    /// `qm clone` was sent: the VM may exist even if the run died before hearing back.
    pub clone_sent: bool,
    /// The clone succeeded: VM `vmid` named `name` is this run's.
    pub vm_created: bool,
    /// `qm start` was sent: a resumed run finds the VM running and does not start it twice.
    #[serde(default)]
    pub start_sent: bool,
    /// The cloud-init keys file on the Proxmox host, until it is removed.
    pub uploaded: Option<String>,
    pub ip: Option<String>,
    pub key: Option<JournalKey>,
    /// Fleet files changed (or about to be), in the order they were changed.
    pub files: Vec<JournalFile>,
    /// The commit made, when the run got that far.
    pub commit: Option<String>,
}

impl Journal {
    pub fn new(name: &str, vmid: VmId, node: Option<String>) -> Self {
        Journal {
            version: JOURNAL_VERSION,
            name: name.to_string(),
            vmid,
            node,
            completed: Vec::new(),
            clone_sent: false,
            vm_created: false,
            start_sent: false,
            uploaded: None,
            ip: None,
            key: None,
            files: Vec::new(),
            commit: None,
        }
    }

    pub fn is_done(&self, id: StepId) -> bool {
        self.completed.contains(&id)
    }

    /// The last finished step, for messages.
    pub fn last(&self) -> Option<StepId> {
        self.completed.last().copied()
    }

    /// Records a file before it is written, or updates the record of one written earlier in
    /// this run (its before-state stays the first one).
    pub fn record_file(&mut self, path: PathBuf, before: Option<&[u8]>, after: &[u8]) {
        record(&mut self.files, path, before, after);
    }
}

/// Records a file in `files` before it is written, or updates the after-hash of one recorded
/// earlier (its before-state stays the first one): every run's journal records files so.
pub(crate) fn record(
    files: &mut Vec<JournalFile>,
    path: PathBuf,
    before: Option<&[u8]>,
    after: &[u8],
) {
    match files.iter_mut().find(|f| f.path == path) {
        Some(f) => f.after_sha256 = sha256(after),
        None => files.push(JournalFile::new(path, before, after)),
    }
}

/// The journaled files whose content under `root` differs from their before-state: what a
/// run's commit takes.
pub(crate) fn changed(root: &Path, files: &[JournalFile]) -> Vec<PathBuf> {
    files
        .iter()
        .filter(|f| {
            let now = std::fs::read(root.join(&f.path)).ok();
            now.as_deref().map(sha256) != f.before_sha256
        })
        .map(|f| f.path.clone())
        .collect()
}

/// `ROOT/.vmctl/journal/NAME.json`.
pub fn path(root: &Path, name: &str) -> PathBuf {
    root.join(STATE_DIR)
        .join("journal")
        .join(format!("{name}.json"))
}

/// Why the journal cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot {action} the journal `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("the journal `{}` is not one vmctl can read ({reason}); look at it, then delete it to start over", path.display())]
    Unreadable { path: PathBuf, reason: String },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> JournalError {
    let path = path.to_path_buf();
    move |source| JournalError::Io {
        action,
        path,
        source,
    }
}

/// Writes the journal atomically (temp file, fsync, rename), readable only by its owner: it
/// holds the fleet files' earlier contents. `.vmctl/` ignores itself in git.
pub fn save(root: &Path, journal: &Journal) -> Result<(), JournalError> {
    write(root, journal, true)
}

/// Saves `journal` atomically but without waiting for the disk: a step's completion. It
/// survives vmctl being killed; after a power loss the run may redo that step on `--resume`
/// (every step is safe to redo), and every save before a change outside vmctl is durable.
pub fn checkpoint(root: &Path, journal: &Journal) -> Result<(), JournalError> {
    write(root, journal, false)
}

fn write(root: &Path, journal: &Journal, durable: bool) -> Result<(), JournalError> {
    write_json(root, &path(root, &journal.name), journal, durable)
}

/// Writes a journal's JSON to `p` atomically, private to its owner, for every kind of run's
/// journal; `durable`: also waits for the disk.
pub(crate) fn write_json<T: Serialize>(
    root: &Path,
    p: &Path,
    journal: &T,
    durable: bool,
) -> Result<(), JournalError> {
    let text = serde_json::to_vec_pretty(journal).expect("a journal serialises");
    write_state_file(root, p, &text, durable).map_err(io_err("write", p))
}

/// The journal of `name`, when a run left one.
pub fn load(root: &Path, name: &str) -> Result<Option<Journal>, JournalError> {
    let p = path(root, name);
    let Some(j) = read_json::<Journal>(&p)? else {
        return Ok(None);
    };
    check_identity(&p, j.version, JOURNAL_VERSION, &j.name, name)?;
    Ok(Some(j))
}

/// A journal file's JSON (`None`: there is none), for every kind of run's journal.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    p: &Path,
) -> Result<Option<T>, JournalError> {
    let bytes = match fs::read(p) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", p)(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| JournalError::Unreadable {
            path: p.to_path_buf(),
            reason: e.to_string(),
        })
}

/// A journal of another format version, or of another VM than its file name says, is refused,
/// never guessed at.
pub(crate) fn check_identity(
    p: &Path,
    version: u32,
    expected_version: u32,
    name: &str,
    expected_name: &str,
) -> Result<(), JournalError> {
    if version != expected_version || name != expected_name {
        return Err(JournalError::Unreadable {
            path: p.to_path_buf(),
            reason: format!("version {version} for `{name}`"),
        });
    }
    Ok(())
}

/// Deletes a journal file; one already gone is fine.
pub(crate) fn remove_file(p: &Path) -> Result<(), JournalError> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", p)(e)),
        _ => Ok(()),
    }
}

/// Deletes the journal once the run finished or was rolled back.
pub fn remove(root: &Path, name: &str) -> Result<(), JournalError> {
    remove_file(&path(root, name))
}

pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn round_trips_atomically_private_and_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(load(root, "web").unwrap(), None);
        let mut j = Journal::new("web", 120, Some("prom".into()));
        j.completed.push(StepId::Clone);
        j.record_file("hosts.nix".into(), Some(b"old"), b"new");
        j.record_file("hosts.nix".into(), Some(b"newer-before"), b"newest");
        j.record_file("hosts/web/configuration.nix".into(), None, b"x");
        save(root, &j).unwrap();
        save(root, &j).unwrap();
        let p = path(root, "web");
        assert_eq!(p, root.join(".vmctl/journal/web.json"));
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(fs::read_to_string(root.join(".vmctl/.gitignore"))
            .unwrap()
            .contains('*'));
        let back = load(root, "web").unwrap().unwrap();
        assert_eq!(back, j);
        // The first before-state is kept; the after-hash follows the last write.
        assert_eq!(back.files[0].before_bytes().unwrap().unwrap(), b"old");
        assert_eq!(back.files[0].after_sha256, sha256(b"newest"));
        assert_eq!(back.files[1].before_bytes().unwrap(), None);
        // No temp file left beside it.
        let names: Vec<_> = fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["web.json"]);
        remove(root, "web").unwrap();
        assert_eq!(load(root, "web").unwrap(), None);
    }

    #[test]
    fn a_foreign_journal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::new("web", 120, None);
        j.version = 99;
        save(dir.path(), &j).unwrap();
        let e = load(dir.path(), "web").unwrap_err().to_string();
        assert!(e.contains("delete it to start over"), "{e}");
        fs::write(path(dir.path(), "web"), "{").unwrap();
        assert!(load(dir.path(), "web").is_err());
    }
}
