//! The fleet's advisory lock (`.vmctl/lock`): every command that writes holds it from before
//! it reads the files it changes until the change set is applied.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{io_err, ApplyError, STATE_DIR};
use crate::exec::report::Reporter;

/// The fleet's advisory lock, held until dropped. Every vmctl command that writes takes it
/// before reading the files it changes, so concurrent runs serialise instead of losing
/// each other's edits.
#[derive(Debug)]
pub struct FleetLock {
    file: File,
    path: PathBuf,
}

impl FleetLock {
    /// Locks the fleet at `root` (`ROOT/.vmctl/lock`, created when missing), waiting up to
    /// `VMCTL_LOCK_TIMEOUT` seconds (default 120) for another vmctl to finish, saying so
    /// through `out` (silent with `-q`) when the wait is noticeable.
    pub fn acquire(root: &Path, out: &Reporter) -> Result<FleetLock, ApplyError> {
        let dir = root.join(STATE_DIR);
        let path = dir.join("lock");
        let lock_err = |error| ApplyError::Lock {
            lock: path.clone(),
            error,
        };
        fs::create_dir_all(&dir).map_err(lock_err)?;
        // The directory ignores itself, so a fleet's git never sees the lock, whatever the
        // fleet's own .gitignore says.
        let ignore = dir.join(".gitignore");
        if !ignore.exists() {
            let _ = fs::write(&ignore, "# vmctl's runtime files (the fleet lock)\n*\n");
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(lock_err)?;
        Self::wait_for(file, path, out)
    }

    /// Locks the directory `dir` itself: for files outside any fleet (a `--config` elsewhere,
    /// `keys generate --out /some/dir`), where there is no `.vmctl/` to create.
    pub fn acquire_dir(dir: &Path, out: &Reporter) -> Result<FleetLock, ApplyError> {
        let file = File::open(dir).map_err(|error| ApplyError::Lock {
            lock: dir.to_path_buf(),
            error,
        })?;
        Self::wait_for(file, dir.to_path_buf(), out)
    }

    /// The lock for changing `file`: its fleet's lock when it lies in a fleet (found upward
    /// from its directory), else its directory's.
    pub fn for_file(file: &Path, out: &Reporter) -> Result<FleetLock, ApplyError> {
        let abs = std::path::absolute(file).map_err(io_err("resolve", file))?;
        let mut dir = abs.parent().unwrap_or(Path::new("/")).to_path_buf();
        // The directory may not exist yet (scaffold, keys generate): lock the nearest one that does.
        while !dir.is_dir() {
            match dir.parent() {
                Some(p) => dir = p.to_path_buf(),
                None => break,
            }
        }
        match crate::exec::root::find_root(&dir) {
            Some(root) => FleetLock::acquire(&root, out),
            None => FleetLock::acquire_dir(&dir, out),
        }
    }

    fn wait_for(file: File, path: PathBuf, out: &Reporter) -> Result<FleetLock, ApplyError> {
        let timeout = std::env::var("VMCTL_LOCK_TIMEOUT")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(120);
        let start = Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(FleetLock { file, path }),
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(error)) => {
                    return Err(ApplyError::Lock { lock: path, error })
                }
            }
            if start.elapsed() >= Duration::from_secs(timeout) {
                return Err(ApplyError::Locked {
                    lock: path,
                    waited: timeout,
                });
            }
            if !told && start.elapsed() >= Duration::from_secs(1) {
                out.info(&format!(
                    "waiting for another vmctl to finish changing the fleet (lock `{}`)",
                    path.display()
                ));
                told = true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FleetLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}
