//! `times.jsonl`: each Proxmox command's argv with when it started and ended (milliseconds
//! since the epoch), one JSON object per line, written when the command ends however it ends
//! (`exit` included: an `atexit` handler). argv.jsonl has no times; with these a test tells
//! which commands overlapped: a clone's interval here includes its wait for the storage lock,
//! so two clones vmctl sent at once overlap here even though the storage lock (and
//! timeline.jsonl, see `timing.rs`) serializes their copies. Off unless the state
//! directory holds a `times.jsonl` (create it empty to turn the log on), so the state other
//! tests compare stays as it was.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

static STARTED: OnceLock<(PathBuf, Vec<String>, u128)> = OnceLock::new();

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

/// Notes the start of `argv`; its end is written at exit.
pub(crate) fn begin(state: PathBuf, argv: &[String]) {
    if !state.join("times.jsonl").exists() {
        return;
    }
    if STARTED.set((state, argv.to_vec(), now_ms())).is_ok() {
        // SAFETY: registering a plain `extern "C"` function with no arguments.
        unsafe {
            libc::atexit(finish);
        }
    }
}

extern "C" fn finish() {
    let Some((state, argv, start)) = STARTED.get() else {
        return;
    };
    let line = format!(
        "{}\n",
        serde_json::json!({"argv": argv, "start_ms": *start as u64, "end_ms": now_ms() as u64})
    );
    // One append of one line: lines of concurrent commands never interleave.
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .append(true)
        .open(state.join("times.jsonl"))
    {
        let _ = f.write_all(line.as_bytes());
    }
}
