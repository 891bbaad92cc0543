//! `--json` on a run: one event per line on stdout (JSON Lines), nothing else there.

use std::io::Write;
use std::sync::Mutex;

use crate::exec::events::{Event, EventSink};

/// Writes each event as one JSON line and flushes it, so a script reading the pipe sees it
/// as it happens. A reader that went away stops the output, never the run.
pub struct JsonLines {
    out: Mutex<Box<dyn Write + Send>>,
}

impl JsonLines {
    pub fn stdout() -> Self {
        Self::to(Box::new(std::io::stdout()))
    }

    pub fn to(out: Box<dyn Write + Send>) -> Self {
        JsonLines {
            out: Mutex::new(out),
        }
    }
}

impl EventSink for JsonLines {
    fn emit(&self, event: &Event) {
        let mut line = event.to_json_line();
        line.push('\n');
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // The one lock makes each line whole even when many VMs report at once.
        let _ = out.write_all(line.as_bytes()).and_then(|()| out.flush());
    }
}
