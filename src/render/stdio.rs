//! Writing to stdout and stderr so that a reader that goes away (`vmlint | head -1`) ends the
//! program quietly instead of with a panic.
//!
//! Rust ignores SIGPIPE, so a write to a closed pipe fails with `BrokenPipe`, and `print!`
//! turns that failure into a panic. The linter writes through [`out`] and [`err`], which stop
//! at the first failure; for every other `print!` (the commands of `vmctl`), the binaries run
//! under [`quiet_on_closed_output`], which ends the program with status 141 (a shell's status
//! for a process ended by SIGPIPE) and no message. Destructors still run on the way out, so a
//! command cleans up (locks, SSH masters) as on any other early return.

use std::io::Write;
use std::panic::{self, UnwindSafe};

/// The exit status when an output stream was closed by its reader: 128 + SIGPIPE.
pub const CLOSED_OUTPUT_STATUS: u8 = 141;

/// Writes to stdout; `false` once the reader has gone (then write nothing more).
pub fn out(text: &str) -> bool {
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes())
        .and_then(|()| o.flush())
        .is_ok()
}

/// Writes to stderr, ignoring a closed stream (there is nowhere left to report it).
pub fn err(text: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(text.as_bytes()).and_then(|()| e.flush());
}

/// True for the panic `print!`/`eprint!` raise when their stream is closed.
fn is_closed_output(payload: &(dyn std::any::Any + Send)) -> bool {
    let msg = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied());
    msg.is_some_and(|m| {
        m.starts_with("failed printing to std")
            && (m.contains("Broken pipe") || m.contains("os error 32"))
    })
}

/// Runs `main`; a `print!` to a closed stdout or stderr ends it quietly with
/// [`CLOSED_OUTPUT_STATUS`] instead of a panic message and status 101. Any other panic is
/// reported as usual.
pub fn quiet_on_closed_output(main: impl FnOnce() -> u8 + UnwindSafe) -> u8 {
    let default = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if !is_closed_output(info.payload()) {
            default(info);
        }
    }));
    match panic::catch_unwind(main) {
        Ok(code) => code,
        Err(payload) if is_closed_output(payload.as_ref()) => CLOSED_OUTPUT_STATUS,
        Err(payload) => panic::resume_unwind(payload),
    }
}
