//! One process-wide handler for SIGINT, SIGTERM and SIGHUP: registered cleanups run, then
//! vmctl exits with 128 + the signal.
//!
//! Several parts of vmctl must act on a signal: SSH masters run detached and must be told to
//! exit, and the sops fallback must kill sops and restore the file it was rewriting. One handler
//! serves them all, so no part's handler can end the process before another part has cleaned up.
//!
//! The signal handler itself only records the signal and wakes a watcher thread through a pipe
//! (both async-signal-safe). The watcher runs the cleanups and exits, except while a guarded
//! section is open: that section owns the signal ([`received`]) and ends the process itself
//! with [`terminate`] once it has undone its work; should it finish without doing so, the
//! watcher terminates as soon as the section closes.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

static RECEIVED: AtomicI32 = AtomicI32::new(0);
static GUARDS: AtomicUsize = AtomicUsize::new(0);
static TERMINATING: AtomicBool = AtomicBool::new(false);
static WAKE_WRITE: AtomicI32 = AtomicI32::new(-1);

type Cleanup = Box<dyn Fn() + Send>;
static CLEANUPS: Mutex<Vec<Cleanup>> = Mutex::new(Vec::new());

/// Installs the handler and starts the watcher thread, once per process.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return;
        }
        WAKE_WRITE.store(fds[1], Ordering::SeqCst);
        let read_fd = fds[0];
        if std::thread::Builder::new()
            .name("vmctl-signals".into())
            .spawn(move || watch(read_fd))
            .is_err()
        {
            return;
        }
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: the action only touches atomics and calls `write`, both
            // async-signal-safe.
            let _ = unsafe {
                signal_hook_registry::register(sig, move || {
                    let _ = RECEIVED.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
                    let fd = WAKE_WRITE.load(Ordering::SeqCst);
                    if fd >= 0 {
                        let byte = 1u8;
                        libc::write(fd, (&byte as *const u8).cast(), 1);
                    }
                })
            };
        }
    });
}

fn watch(read_fd: libc::c_int) {
    let mut byte = 0u8;
    loop {
        // SAFETY: reads one byte into a live local.
        let n = unsafe { libc::read(read_fd, (&mut byte as *mut u8).cast(), 1) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            return;
        }
        let Some(sig) = received() else { continue };
        // A guarded section handles the signal itself; wait until it is done with it.
        while GUARDS.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        terminate(sig);
    }
}

/// The first terminating signal received, if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Registers a cleanup that runs (in registration order) when vmctl ends on a signal.
pub fn on_terminate(cleanup: impl Fn() + Send + 'static) {
    CLEANUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Box::new(cleanup));
}

/// Runs the cleanups and ends the process with 128 + `sig`.
pub fn terminate(sig: i32) -> ! {
    if TERMINATING.swap(true, Ordering::SeqCst) {
        // Another thread is already ending the process.
        loop {
            std::thread::park();
        }
    }
    let cleanups = std::mem::take(&mut *CLEANUPS.lock().unwrap_or_else(|e| e.into_inner()));
    for c in cleanups {
        c();
    }
    std::process::exit(128 + sig);
}

/// Blocks the calling thread for good once the process is ending on a signal, so that work the
/// signal cut short does not race the cleanups to an exit of its own.
pub fn wait_if_terminating() {
    if TERMINATING.load(Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
}

/// While alive, a signal is left to the code holding the guard (see [`received`]).
pub struct Guard(());

/// Opens a guarded section; installs the handler if needed.
pub fn guard() -> Guard {
    install();
    GUARDS.fetch_add(1, Ordering::SeqCst);
    Guard(())
}

impl Drop for Guard {
    fn drop(&mut self) {
        GUARDS.fetch_sub(1, Ordering::SeqCst);
    }
}
