//! The real `sops` binary as a fallback: `updatekeys` and `rotate` rewrite a file in place, so
//! the original is kept aside and restored on any failure or signal.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{LoadedConfig, INSTALL_SOPS};
use crate::exec::apply;
use crate::secrets::Identities;

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
) -> Result<bool, String> {
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
) -> Result<bool, String> {
    let before = std::fs::read(file).map_err(|e| format!("cannot read the file: {e}"))?;
    let backup = Backup::create(file, &before)?;
    let mut cmd = Command::new(sops);
    cmd.args(argv)
        .current_dir(&config.dir)
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let keys = ids.to_key_file();
    if !ids.is_empty() {
        let mut all = zeroize::Zeroizing::new(std::env::var("SOPS_AGE_KEY").unwrap_or_default());
        all.push('\n');
        all.push_str(&keys);
        cmd.env("SOPS_AGE_KEY", all.as_str());
    }
    // The guard keeps a signal from ending vmctl before the original is back in place.
    let (outcome, _guard) = match signals::run_guarded(&mut cmd) {
        Ok((g, guard)) => (Ok(g), Some(guard)),
        Err(e) => (Err(e), None),
    };
    let (status, stderr) = match outcome {
        Ok(Guarded::Exited { status, .. }) if status.success() => {
            backup.discard();
            let after = std::fs::read(file).ok();
            if let Ok(f) = std::fs::File::open(file) {
                let _ = f.sync_all();
            }
            return Ok(after.as_deref() != Some(&before[..]));
        }
        Ok(Guarded::Exited { status, stderr }) => (status.to_string(), stderr),
        Ok(Guarded::Interrupted { signal }) => {
            let restored = backup.restore(&before);
            eprintln!(
                "vmctl: interrupted (signal {signal}) while `sops {what}` was rewriting {}: {}",
                file.display(),
                match &restored {
                    Ok(()) => "the original file was restored".to_string(),
                    Err(e) => e.clone(),
                }
            );
            crate::exec::signals::terminate(signal);
        }
        Err(e) => {
            let restored = backup.restore(&before);
            return Err(format!(
                "cannot run {}: {e}; {INSTALL_SOPS}{}",
                sops.display(),
                restored
                    .err()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ));
        }
    };
    let restored = match backup.restore(&before) {
        Ok(()) => " (the original file was restored)".to_string(),
        Err(e) => format!(" ({e})"),
    };
    let stderr = String::from_utf8_lossy(&stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(4).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!(
        "`sops {what}` failed ({status}){restored}: {}",
        tail.join(" | ")
    ))
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

    fn create(file: &Path, before: &[u8]) -> Result<Backup, String> {
        use std::io::Write as _;
        let path = Self::path_for(file);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts.open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                format!(
                    "{} exists: an earlier re-key of this file was interrupted and it holds the original; compare it with the file, restore it (`mv`) or delete it, then run again",
                    path.display()
                )
            } else {
                format!("cannot copy the original aside to {}: {e}", path.display())
            }
        })?;
        let r = f.write_all(before).and_then(|()| f.sync_all());
        if let Err(e) = r {
            let _ = std::fs::remove_file(&path);
            return Err(format!(
                "cannot copy the original aside to {}: {e}",
                path.display()
            ));
        }
        Ok(Backup {
            path,
            file: file.to_path_buf(),
        })
    }

    /// Puts the original back (when sops changed the file) and removes the copy.
    fn restore(self, before: &[u8]) -> Result<(), String> {
        if std::fs::read(&self.file).ok().as_deref() != Some(before) {
            apply::write_atomic(&self.file, before).map_err(|e| {
                format!(
                    "the original could not be restored: {e}; it is kept in {}",
                    self.path.display()
                )
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

/// How a guarded child process ended.
pub(super) enum Guarded {
    Exited {
        status: std::process::ExitStatus,
        stderr: Vec<u8>,
    },
    /// vmctl got SIGINT/SIGTERM/SIGHUP while the child ran; the child was killed.
    Interrupted { signal: i32 },
}

/// Signal handling around the sops fallback, through the process-wide handler.
mod signals {
    use std::process::Command;
    use std::time::Duration;

    use super::Guarded;
    use crate::exec::signals as process;

    /// Runs `cmd` to completion, collecting its stderr; when vmctl receives a terminating
    /// signal meanwhile, kills the child and reports the signal instead. The caller undoes
    /// its work and then calls [`process::terminate`]; until it does (or drops the guard),
    /// the signal is left to it.
    pub(super) fn run_guarded(cmd: &mut Command) -> std::io::Result<(Guarded, process::Guard)> {
        let guard = process::guard();
        let outcome = run(cmd)?;
        Ok((outcome, guard))
    }

    fn run(cmd: &mut Command) -> std::io::Result<Guarded> {
        use std::io::Read as _;
        let mut child = cmd.spawn()?;
        let mut out = child.stdout.take();
        let mut err = child.stderr.take();
        let out_thread = std::thread::spawn(move || {
            let mut b = Vec::new();
            if let Some(o) = out.as_mut() {
                let _ = o.read_to_end(&mut b);
            }
        });
        let err_thread = std::thread::spawn(move || {
            let mut b = Vec::new();
            if let Some(e) = err.as_mut() {
                let _ = e.read_to_end(&mut b);
            }
            b
        });
        loop {
            if let Some(status) = child.try_wait()? {
                let _ = out_thread.join();
                let stderr = err_thread.join().unwrap_or_default();
                if let Some(signal) = process::received() {
                    return Ok(Guarded::Interrupted { signal });
                }
                return Ok(Guarded::Exited { status, stderr });
            }
            if let Some(signal) = process::received() {
                let _ = child.kill();
                let _ = child.wait();
                let _ = out_thread.join();
                let _ = err_thread.join();
                return Ok(Guarded::Interrupted { signal });
            }
            std::thread::sleep(Duration::from_millis(10));
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
) -> Result<(), String> {
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
