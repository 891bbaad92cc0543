//! The real `sops` binary as a fallback: `updatekeys` and `rotate` rewrite a file in place, so
//! the original is kept aside and restored on any failure or signal.

use super::{LoadedConfig, INSTALL_SOPS};
use crate::exec::apply;
use crate::exec::process::{Process, ProcessError};
use crate::secrets::Identities;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The `sops` executable: `explicit`, else the first `sops` on PATH.
pub fn find_sops(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return p.is_file().then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("sops"))
        .find(|p| p.is_file())
}

/// The argv for the fallback: `sops --config CONFIG updatekeys --yes FILE`.
pub fn updatekeys_argv(config: &Path, file: &Path) -> Vec<OsString> {
    vec![
        "--config".into(),
        config.into(),
        "updatekeys".into(),
        "--yes".into(),
        file.into(),
    ]
}

/// Why a sops run that rewrites a file in place failed. When sops itself failed, the message
/// says what became of the file and the [`ProcessError`] (purpose, status, stderr tail) is its
/// `source()`: print the whole chain ([`crate::exec::process::causes`]), not just the message.
#[derive(Debug, thiserror::Error)]
pub enum SopsRunError {
    #[error("cannot read the file: {error}")]
    Read { error: std::io::Error },
    #[error("{} exists: an earlier re-key of this file was interrupted and it holds the original; compare it with the file, restore it (`mv`) or delete it, then run again", .0.display())]
    BackupExists(PathBuf),
    #[error("cannot copy the original aside to {}: {error}", path.display())]
    Backup {
        path: PathBuf,
        error: std::io::Error,
    },
    /// sops could not be started (the message quotes why, then what to do).
    #[error("{process}; {INSTALL_SOPS}{}", restored.suffix())]
    Start {
        process: ProcessError,
        restored: Restored,
    },
    /// sops ran and failed (an exit status or a signal).
    #[error("sops failed{}", restored.suffix())]
    Failed {
        #[source]
        process: ProcessError,
        restored: Restored,
    },
}

/// What became of the original file after sops failed.
#[derive(Debug)]
pub enum Restored {
    /// It is back in place (or sops never changed it).
    Yes,
    /// Putting it back failed; the copy aside still holds it.
    No(RestoreError),
}

impl Restored {
    fn suffix(&self) -> String {
        match self {
            Restored::Yes => " (the original file was restored)".to_string(),
            Restored::No(e) => format!(" ({e})"),
        }
    }
}

/// Putting the original back failed.
#[derive(Debug, thiserror::Error)]
#[error("the original could not be restored: {error}; it is kept in {}", kept.display())]
pub struct RestoreError {
    kept: PathBuf,
    error: std::io::Error,
}

/// Runs `sops updatekeys --yes` on `file` in the config's directory, handing it vmctl's
/// identities through `SOPS_AGE_KEY` (so `--identity` files and converted ssh keys work for
/// sops too). Returns whether the file changed.
///
/// sops rewrites the file in place, without a temp file. So the original is first copied
/// aside (`.NAME.vmctl-orig` beside it, mode 0600, fsynced) and put back when sops fails in
/// any way: an error, sops killed by a signal, or vmctl receiving SIGINT/SIGTERM/SIGHUP while
/// sops runs (sops is then killed, the original restored, and vmctl exits). Should vmctl
/// itself be killed with SIGKILL, the copy stays and the next run refuses to touch the file
/// until the user restores or removes it. The caller holds the fleet lock.
pub fn run_updatekeys(
    sops: &Path,
    config: &LoadedConfig,
    file: &Path,
    ids: &Identities,
) -> Result<bool, SopsRunError> {
    run_in_place(
        sops,
        config,
        file,
        ids,
        &updatekeys_argv(&config.path, file),
        "updatekeys",
    )
}

/// Runs one sops command that rewrites `file` in place, guarded as [`run_updatekeys`] says.
/// Returns whether the file changed.
pub(super) fn run_in_place(
    sops: &Path,
    config: &LoadedConfig,
    file: &Path,
    ids: &Identities,
    argv: &[OsString],
    what: &str,
) -> Result<bool, SopsRunError> {
    let before = std::fs::read(file).map_err(|error| SopsRunError::Read { error })?;
    let backup = Backup::create(file, &before)?;
    let mut process = Process::new(format!("run `sops {what}` on {}", file.display()), sops)
        .args(argv)
        .current_dir(&config.dir)
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .interruptible();
    let keys = ids.to_key_file();
    if !ids.is_empty() {
        let mut all = zeroize::Zeroizing::new(std::env::var("SOPS_AGE_KEY").unwrap_or_default());
        all.push('\n');
        all.push_str(&keys);
        process = process.env("SOPS_AGE_KEY", all.as_str());
    }
    // The guard keeps a signal from ending vmctl before the original is back in place.
    let guard = crate::exec::signals::guard();
    let process = match process.run() {
        Ok(_) => {
            drop(guard);
            backup.discard();
            let after = std::fs::read(file).ok();
            if let Ok(f) = std::fs::File::open(file) {
                let _ = f.sync_all();
            }
            return Ok(after.as_deref() != Some(&before[..]));
        }
        Err(ProcessError::Interrupted { signal, .. }) => {
            let restored = backup.restore(&before);
            eprintln!(
                "vmctl: interrupted (signal {signal}) while `sops {what}` was rewriting {}: {}",
                file.display(),
                match &restored {
                    Ok(()) => "the original file was restored".to_string(),
                    Err(e) => e.to_string(),
                }
            );
            crate::exec::signals::terminate(signal);
        }
        Err(e) => e,
    };
    let restored = match backup.restore(&before) {
        Ok(()) => Restored::Yes,
        Err(e) => Restored::No(e),
    };
    drop(guard);
    Err(match process {
        ProcessError::Spawn { .. } => SopsRunError::Start { process, restored },
        _ => SopsRunError::Failed { process, restored },
    })
}

/// The original of a file sops rewrites in place, kept beside it until sops succeeded.
pub(super) struct Backup {
    path: PathBuf,
    file: PathBuf,
}

impl Backup {
    fn path_for(file: &Path) -> PathBuf {
        // Beside the real file (a symlinked secret is rewritten at its target).
        let real = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
        let mut name = std::ffi::OsString::from(".");
        name.push(real.file_name().unwrap_or_default());
        name.push(".vmctl-orig");
        real.with_file_name(name)
    }

    fn create(file: &Path, before: &[u8]) -> Result<Backup, SopsRunError> {
        use std::io::Write as _;
        let path = Self::path_for(file);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts.open(&path).map_err(|error| {
            if error.kind() == std::io::ErrorKind::AlreadyExists {
                SopsRunError::BackupExists(path.clone())
            } else {
                SopsRunError::Backup {
                    path: path.clone(),
                    error,
                }
            }
        })?;
        if let Err(error) = f.write_all(before).and_then(|()| f.sync_all()) {
            let _ = std::fs::remove_file(&path);
            return Err(SopsRunError::Backup { path, error });
        }
        Ok(Backup {
            path,
            file: file.to_path_buf(),
        })
    }

    /// Puts the original back (when sops changed the file) and removes the copy.
    fn restore(self, before: &[u8]) -> Result<(), RestoreError> {
        if std::fs::read(&self.file).ok().as_deref() != Some(before) {
            apply::write_atomic(&self.file, before).map_err(|error| RestoreError {
                kept: self.path.clone(),
                error,
            })?;
        }
        self.discard();
        Ok(())
    }

    fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = self.path.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
    }
}

/// The argv for rotating with sops: `sops --config CONFIG rotate --in-place FILE`.
pub fn rotate_argv(config: &Path, file: &Path) -> Vec<OsString> {
    vec![
        "--config".into(),
        config.into(),
        "rotate".into(),
        "--in-place".into(),
        file.into(),
    ]
}

/// Runs `sops rotate --in-place` on `file` (a new data key, every value re-encrypted, a new
/// MAC), with vmctl's identities in `SOPS_AGE_KEY`, restoring the original bytes if sops
/// fails, as [`run_updatekeys`] does.
pub fn run_rotate(
    sops: &Path,
    config: &LoadedConfig,
    file: &Path,
    ids: &Identities,
) -> Result<(), SopsRunError> {
    run_in_place(
        sops,
        config,
        file,
        ids,
        &rotate_argv(&config.path, file),
        "rotate",
    )
    .map(|_| ())
}
