//! Locks across the simulator's processes: directories made with `mkdir` (atomic), released
//! on drop or, since `exit` skips destructors, by `die` through `release_all`.

use std::fs;
use std::path::PathBuf;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::die;

/// Locks this process holds; `exit` skips destructors, so `die` releases them itself.
pub(crate) static HELD: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

pub(crate) fn release_all() {
    if let Ok(mut held) = HELD.lock() {
        for p in held.drain(..) {
            let _ = fs::remove_dir(p);
        }
    }
}

/// A directory lock: `mkdir` is atomic, so it works across the processes of parallel sessions.
pub(crate) struct DirLock(PathBuf);

impl DirLock {
    pub(crate) fn acquire(path: PathBuf, timeout: Duration) -> Option<DirLock> {
        let start = Instant::now();
        loop {
            match fs::create_dir(&path) {
                Ok(()) => {
                    HELD.lock().unwrap().push(path.clone());
                    return Some(DirLock(path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if start.elapsed() >= timeout {
                        return None;
                    }
                    sleep(Duration::from_millis(3));
                }
                Err(e) => die(&format!("pve-sim: cannot lock {}: {e}", path.display())),
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.0);
        if let Ok(mut held) = HELD.lock() {
            held.retain(|p| p != &self.0);
        }
    }
}
