//! The one way vmctl changes files: a [`ChangeSet`] applied under the fleet lock.
//!
//! Every command that writes (hosts, sops, docs, scaffold, secrets rekey, keys generate) builds
//! a change set — for each file the bytes it read, the bytes it wants and a summary — and hands
//! it to [`apply`], which:
//!
//! * runs while the caller holds the fleet's advisory lock ([`FleetLock`], `.vmctl/lock` in the
//!   fleet root), taken *before* the caller read the files, so two vmctl processes never
//!   interleave their read-modify-write cycles;
//! * writes each new content to a temp file beside its target, created exclusively
//!   (`O_EXCL`) with its final mode from the first byte (an existing file's mode and owner, or
//!   the change's mode for a new file, e.g. 0600 for a private key), and fsyncs it;
//! * re-reads every target and compares it with the bytes the change was computed from: when
//!   any file changed underneath (an editor, another tool), nothing at all is written;
//! * only then renames the temps into place (a new file is linked, so it never replaces a file
//!   that appeared meanwhile) and fsyncs the directories;
//! * writes a symlinked file through to its target: the link stays a link.

mod files;
mod lock;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use files::{
    read_current, read_for_change, read_text, write_atomic, write_atomic_unsynced, write_state_file,
};
pub use lock::FleetLock;

use files::{create_temp, final_mode, parent_of, sync_dir, unchanged_since_read, write_target};

/// The directory (in the fleet root) holding vmctl's runtime files; git-ignored.
pub const STATE_DIR: &str = ".vmctl";

/// Mode of a file vmctl creates when the change does not say otherwise.
pub const DEFAULT_MODE: u32 = 0o644;

/// Mode of private key files.
pub const PRIVATE_MODE: u32 = 0o600;

/// One file's change: what it held when read, what it should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// Where the file is (absolute or relative to the working directory).
    pub path: PathBuf,
    /// How the user knows the file (fleet-relative), for messages, diffs and JSON.
    pub shown: String,
    /// The bytes the change was computed from; `None`: the file must not exist yet.
    pub old: Option<Vec<u8>>,
    pub new: Vec<u8>,
    /// One line saying what the change does (`added host `web` at line 12`).
    pub summary: String,
    /// Mode of the file when this change creates it; an existing file keeps its own.
    pub create_mode: u32,
    /// Secret contents (private keys, encrypted files): never shown in a diff.
    pub secret: bool,
}

impl FileChange {
    /// A change of an existing file from `old` to `new`.
    pub fn modify(
        path: impl Into<PathBuf>,
        shown: impl Into<String>,
        old: impl Into<Vec<u8>>,
        new: impl Into<Vec<u8>>,
        summary: impl Into<String>,
    ) -> Self {
        FileChange {
            path: path.into(),
            shown: shown.into(),
            old: Some(old.into()),
            new: new.into(),
            summary: summary.into(),
            create_mode: DEFAULT_MODE,
            secret: false,
        }
    }

    /// A new file, refused if the path exists by the time it is written.
    pub fn create(
        path: impl Into<PathBuf>,
        shown: impl Into<String>,
        new: impl Into<Vec<u8>>,
        summary: impl Into<String>,
    ) -> Self {
        FileChange {
            old: None,
            ..Self::modify(path, shown, Vec::new(), new, summary)
        }
    }

    pub fn mode(mut self, mode: u32) -> Self {
        self.create_mode = mode;
        self
    }

    pub fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// Whether applying the change alters the file.
    pub fn is_change(&self) -> bool {
        self.old.as_deref() != Some(&self.new[..])
    }

    /// `create`, `modify` or `unchanged`.
    pub fn action(&self) -> &'static str {
        match (&self.old, self.is_change()) {
            (_, false) => "unchanged",
            (None, true) => "create",
            (Some(_), true) => "modify",
        }
    }
}

/// Files to change together: all of them or none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    pub changes: Vec<FileChange>,
}

impl ChangeSet {
    pub fn new() -> Self {
        ChangeSet::default()
    }

    pub fn one(change: FileChange) -> Self {
        ChangeSet {
            changes: vec![change],
        }
    }

    pub fn push(&mut self, change: FileChange) {
        self.changes.push(change);
    }

    /// Whether applying the set alters any file.
    pub fn is_change(&self) -> bool {
        self.changes.iter().any(FileChange::is_change)
    }
}

/// Why a change set was not applied. Each message quotes its I/O error whole, so none is
/// also returned as `source()` (a rendered report would print it twice). When one of these is returned no file of the set was
/// changed (a failure after the first rename puts the renamed files back; see
/// [`ApplyError::Partial`] for the case where even that failed).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ApplyError {
    #[error("another vmctl is changing this fleet (it holds `{}`); waited {waited}s — wait for it to finish, or set VMCTL_LOCK_TIMEOUT to wait longer", lock.display())]
    Locked { lock: PathBuf, waited: u64 },
    #[error("cannot take the fleet lock `{}`: {error}", lock.display())]
    Lock { lock: PathBuf, error: io::Error },
    #[error("`{shown}` changed while vmctl was editing it (another program wrote it); nothing was written: run the command again")]
    #[diagnostic(help(
        "see what the other program wrote (`git diff`), then run the command again"
    ))]
    ChangedUnderneath {
        shown: String,
        /// The file as it is now (not for secrets).
        #[source_code]
        found: Option<miette::NamedSource<String>>,
        /// What changed since vmctl read it.
        #[label("changed since vmctl read the file")]
        at: Option<miette::SourceSpan>,
    },
    #[error("`{shown}` already exists; vmctl does not overwrite it: nothing was written")]
    Exists { shown: String },
    #[error("`{shown}` is a symlink whose target does not exist; fix or remove the link: nothing was written")]
    DanglingSymlink { shown: String },
    #[error("cannot {action} `{}`: {error}; nothing was written", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error("writing `{shown}` failed after other files of the change were written, and putting them back failed too ({error}); check {files} with `git diff`")]
    Partial {
        shown: String,
        files: String,
        error: io::Error,
    },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ApplyError {
    let path = path.to_path_buf();
    move |error| ApplyError::Io {
        action,
        path,
        error,
    }
}

/// Lets a test stop the applier at a named point: with `VMCTL_TEST_HOOK_DIR` set, the
/// applier writes `DIR/POINT.ready` (holding `detail`) and waits (up to 60 s) until a file
/// `DIR/POINT.go` exists. This is how the tests look at a temp file's mode while it is being
/// written, and change a file between vmctl's read and its write.
pub(crate) fn test_pause(point: &str, detail: &Path) {
    let Some(dir) = std::env::var_os("VMCTL_TEST_HOOK_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let go = dir.join(format!("{point}.go"));
    let _ = fs::write(
        dir.join(format!("{point}.ready")),
        detail.as_os_str().as_encoded_bytes(),
    );
    let start = Instant::now();
    while !go.exists() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A temp file written and waiting to be renamed over its target.
struct Staged {
    tmp: PathBuf,
    target: PathBuf,
    create: bool,
}

/// Applies every change of `set` that alters its file, or none of them. The caller must hold
/// the fleet lock (`_lock`) since before it read the files the set was computed from.
/// Returns the paths written.
pub fn apply(set: &ChangeSet, _lock: &FleetLock) -> Result<Vec<PathBuf>, ApplyError> {
    let todo: Vec<&FileChange> = set.changes.iter().filter(|c| c.is_change()).collect();
    // Preconditions of every file before anything is staged.
    for c in &todo {
        check_precondition(c)?;
    }
    let mut staged: Vec<Staged> = Vec::new();
    let result = stage_all(&todo, &mut staged).and_then(|()| {
        test_pause(
            "before-commit",
            &todo.first().map(|c| c.path.clone()).unwrap_or_default(),
        );
        // Again, right before the renames: a file changed while the temps were written means
        // the whole set is stale.
        for c in &todo {
            check_precondition(c)?;
        }
        commit(&todo, &staged)
    });
    for s in &staged {
        let _ = fs::remove_file(&s.tmp);
    }
    result
}

fn check_precondition(c: &FileChange) -> Result<(), ApplyError> {
    let Some(now) = unchanged_since_read(c)? else {
        return Ok(());
    };
    Err(match &c.old {
        None => ApplyError::Exists {
            shown: c.shown.clone(),
        },
        Some(old) => {
            // Point at what the other program changed, in the file as it is now; never show
            // a secret's text.
            let texts = (std::str::from_utf8(old), String::from_utf8(now));
            let (found, at) = match texts {
                (Ok(old), Ok(now)) if !c.secret => {
                    let at = crate::exec::fleet::changed_range(old, &now);
                    (
                        Some(miette::NamedSource::new(&c.shown, now)),
                        Some(at.into()),
                    )
                }
                _ => (None, None),
            };
            ApplyError::ChangedUnderneath {
                shown: c.shown.clone(),
                found,
                at,
            }
        }
    })
}

fn stage_all(todo: &[&FileChange], staged: &mut Vec<Staged>) -> Result<(), ApplyError> {
    for c in todo {
        let target = write_target(c)?;
        let dir = parent_of(&target);
        if c.old.is_none() && !dir.is_dir() {
            fs::create_dir_all(dir).map_err(io_err("create the directory", dir))?;
        }
        let (mode, owner) = final_mode(&target, c.create_mode);
        let (tmp, mut f) = create_temp(&target, mode, owner)
            .map_err(io_err("create a temp file beside", &target))?;
        staged.push(Staged {
            tmp: tmp.clone(),
            target: target.clone(),
            create: c.old.is_none(),
        });
        test_pause("temp-created", &tmp);
        f.write_all(&c.new)
            .and_then(|()| f.sync_all())
            .map_err(io_err("write a temp file beside", &target))?;
    }
    Ok(())
}

fn commit(todo: &[&FileChange], staged: &[Staged]) -> Result<Vec<PathBuf>, ApplyError> {
    let mut done: Vec<usize> = Vec::new();
    for (i, s) in staged.iter().enumerate() {
        let r = if s.create {
            // A link fails when the name exists: a file that appeared since the check is kept.
            fs::hard_link(&s.tmp, &s.target).or_else(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    Err(e)
                } else {
                    // Filesystems without hard links: check and rename (a tiny window).
                    if fs::symlink_metadata(&s.target).is_ok() {
                        Err(io::Error::from(io::ErrorKind::AlreadyExists))
                    } else {
                        fs::rename(&s.tmp, &s.target)
                    }
                }
            })
        } else {
            fs::rename(&s.tmp, &s.target)
        };
        if let Err(e) = r {
            let first_error = if e.kind() == io::ErrorKind::AlreadyExists && s.create {
                ApplyError::Exists {
                    shown: todo[i].shown.clone(),
                }
            } else {
                ApplyError::Io {
                    action: "replace",
                    path: s.target.clone(),
                    error: e,
                }
            };
            if let Err(error) = roll_back(todo, staged, &done) {
                return Err(ApplyError::Partial {
                    shown: todo[i].shown.clone(),
                    files: done
                        .iter()
                        .map(|&j| format!("`{}`", todo[j].shown))
                        .collect::<Vec<_>>()
                        .join(", "),
                    error,
                });
            }
            return Err(first_error);
        }
        done.push(i);
    }
    let mut dirs: Vec<&Path> = staged.iter().map(|s| parent_of(&s.target)).collect();
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        sync_dir(d);
    }
    Ok(staged.iter().map(|s| s.target.clone()).collect())
}

/// Puts back the files of `done` (a later file of the set could not be written).
fn roll_back(todo: &[&FileChange], staged: &[Staged], done: &[usize]) -> io::Result<()> {
    for &j in done.iter().rev() {
        match &todo[j].old {
            Some(old) => write_atomic(&staged[j].target, old)?,
            None => fs::remove_file(&staged[j].target)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs::{File, OpenOptions};

    use super::*;
    #[cfg(unix)]
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn lock(dir: &Path) -> FleetLock {
        FleetLock::acquire(dir, &crate::exec::report::Reporter::default()).unwrap()
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("vmctl-tmp"))
            .collect()
    }

    fn rendered(err: ApplyError) -> String {
        let mut out = String::new();
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100)
            .render_report(&mut out, &err)
            .unwrap();
        out
    }

    #[test]
    fn changed_underneath_points_at_the_change_but_never_shows_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hosts.nix");
        fs::write(&p, "{\n  a = 1;\n  b = 20;\n}\n").unwrap();
        let l = lock(dir.path());
        let change = FileChange::modify(&p, "hosts.nix", "{\n  a = 1;\n  b = 2;\n}\n", "x", "x");
        let shown = rendered(apply(&ChangeSet::one(change.clone()), &l).unwrap_err());
        assert!(shown.contains("[hosts.nix:3:"), "{shown}");
        assert!(
            shown.contains("changed since vmctl read the file"),
            "{shown}"
        );
        assert!(
            shown.contains("help: see what the other program wrote"),
            "{shown}"
        );
        let shown = rendered(apply(&ChangeSet::one(change.secret()), &l).unwrap_err());
        assert!(!shown.contains("b = 20"), "{shown}");
        assert!(
            shown.contains("`hosts.nix` changed while vmctl was editing it"),
            "{shown}"
        );
    }

    #[test]
    fn changed_underneath_writes_nothing_of_the_set() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.nix");
        let b = dir.path().join("b.nix");
        fs::write(&a, "a0").unwrap();
        fs::write(&b, "b-changed-by-someone").unwrap();
        let mut set = ChangeSet::new();
        set.push(FileChange::modify(&a, "a.nix", "a0", "a1", "a"));
        set.push(FileChange::modify(&b, "b.nix", "b0", "b1", "b"));
        let l = lock(dir.path());
        let err = apply(&set, &l).unwrap_err();
        assert!(
            matches!(&err, ApplyError::ChangedUnderneath { shown, .. } if shown == "b.nix"),
            "{err}"
        );
        assert_eq!(
            fs::read_to_string(&a).unwrap(),
            "a0",
            "a must not be written"
        );
        assert_eq!(fs::read_to_string(&b).unwrap(), "b-changed-by-someone");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn a_file_created_meanwhile_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("new.nix");
        let set = ChangeSet::one(FileChange::create(&p, "new.nix", "mine", "create"));
        fs::write(&p, "theirs").unwrap();
        let err = apply(&set, &lock(dir.path())).unwrap_err();
        assert!(matches!(err, ApplyError::Exists { .. }), "{err}");
        assert_eq!(fs::read_to_string(&p).unwrap(), "theirs");
    }

    #[cfg(unix)]
    #[test]
    fn existing_mode_is_kept_and_new_files_get_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret.yaml");
        fs::write(&p, "old").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        let k = dir.path().join("keys/ssh_host_ed25519_key");
        let mut set = ChangeSet::one(FileChange::modify(&p, "secret.yaml", "old", "new", "x"));
        set.push(FileChange::create(&k, "key", "PRIVATE", "k").mode(PRIVATE_MODE));
        apply(&set, &lock(dir.path())).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(mode(&p), 0o640);
        assert_eq!(mode(&k), 0o600);
        assert!(leftovers(dir.path()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_written_through_and_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("real")).unwrap();
        let target = dir.path().join("real/hosts.nix");
        fs::write(&target, "{ }").unwrap();
        let link = dir.path().join("hosts.nix");
        std::os::unix::fs::symlink("real/hosts.nix", &link).unwrap();
        let set = ChangeSet::one(FileChange::modify(
            &link,
            "hosts.nix",
            "{ }",
            "{ a = 1; }",
            "x",
        ));
        apply(&set, &lock(dir.path())).unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&target).unwrap(), "{ a = 1; }");
        // A dangling link is refused, not replaced by a regular file.
        let dangling = dir.path().join("gone.nix");
        std::os::unix::fs::symlink("nowhere.nix", &dangling).unwrap();
        let set = ChangeSet::one(FileChange::create(&dangling, "gone.nix", "x", "x"));
        assert!(apply(&set, &lock(dir.path())).is_err());
        assert!(fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[cfg(unix)]
    #[test]
    fn temp_files_are_exclusive_and_born_with_the_final_mode() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("key");
        // A symlink planted where a temp could go must not be followed: every name is new.
        let (tmp, _f) = create_temp(&target, 0o600, None).unwrap();
        assert_eq!(mode(&tmp), 0o600);
        assert!(tmp
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".key.vmctl-tmp-"));
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        assert_eq!(
            opts.open(&tmp).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists,
            "the name is taken exclusively"
        );
        let (tmp2, _f2) = create_temp(&target, 0o644, None).unwrap();
        assert_ne!(tmp, tmp2);
        assert_eq!(mode(&tmp2), 0o644);
    }

    #[test]
    fn the_lock_is_held_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path());
        assert!(dir.path().join(".vmctl/lock").is_file());
        assert!(fs::read_to_string(dir.path().join(".vmctl/.gitignore"))
            .unwrap()
            .contains("\n*\n"));
        // A second open file description cannot take it while the first holds it.
        let other = File::open(dir.path().join(".vmctl/lock")).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(fs::TryLockError::WouldBlock)
        ));
        drop(held);
        other.try_lock().expect("free once dropped");
    }

    #[test]
    fn unchanged_files_are_not_touched() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("same");
        fs::write(&p, "x").unwrap();
        let set = ChangeSet::one(FileChange::modify(&p, "same", "x", "x", "nothing"));
        assert!(!set.is_change());
        assert!(apply(&set, &lock(dir.path())).unwrap().is_empty());
    }
}
