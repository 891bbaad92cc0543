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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::events::{Kind, Source};
    use std::sync::Arc;

    /// A writer into a shared buffer that writes in small pieces, as a pipe may: a sink that
    /// did not keep each line under one lock would interleave them.
    struct Trickle(Arc<Mutex<Vec<u8>>>);

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = buf.len().min(7);
            self.0.lock().unwrap().extend_from_slice(&buf[..n]);
            std::thread::yield_now();
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn many_vms_reporting_at_once_give_whole_lines() {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = JsonLines::to(Box::new(Trickle(buf.clone())));
        std::thread::scope(|s| {
            for vm in 0..8 {
                let sink = &sink;
                s.spawn(move || {
                    for i in 0..50 {
                        sink.emit(&Event::new(
                            Some(&format!("vm{vm}")),
                            Some("install"),
                            Kind::Output {
                                source: Source::Installer,
                                line: format!("line {i} of vm{vm}"),
                            },
                        ));
                    }
                });
            }
        });
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 400);
        for l in lines {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            assert!(
                v["line"]
                    .as_str()
                    .unwrap()
                    .ends_with(v["vm"].as_str().unwrap()),
                "{l}"
            );
        }
    }
}
