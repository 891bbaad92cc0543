//! Locks across the simulator's processes: `flock(2)` on a file, as Proxmox locks its config
//! and storage files, so a lock is released when its holder ends, however it ends (a worker
//! killed mid-clone frees the storage lock but leaves the VM's `lock: clone`, as on Proxmox).

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::die;

/// Kept for `die`'s sake: `exit` skips destructors, and the kernel releases every `flock` of
/// the process anyway, so there is nothing left to do by hand.
pub(crate) fn release_all() {}

/// An exclusive `flock` on `path`, held while this value lives.
pub(crate) struct DirLock(#[allow(dead_code)] File);

impl DirLock {
    pub(crate) fn acquire(path: PathBuf, timeout: Duration) -> Option<DirLock> {
        if let Some(parent) = path.parent() {
            let _ = fs::create_dir_all(parent);
        }
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| die(&format!("pve-sim: cannot lock {}: {e}", path.display())));
        let start = Instant::now();
        loop {
            // SAFETY: flock(2) on a descriptor this value owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Some(DirLock(file));
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                die(&format!("pve-sim: cannot lock {}: {err}", path.display()));
            }
            if start.elapsed() >= timeout {
                return None;
            }
            sleep(Duration::from_millis(3));
        }
    }
}
