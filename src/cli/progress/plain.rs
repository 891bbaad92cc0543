//! Without a terminal (a log, CI, a pipe): one plain timestamped line per event on stderr,
//! nothing redrawn, and the summary table at the end.

use std::io::Write;
use std::sync::Mutex;

use super::{duration, summary};
use crate::exec::events::{Event, EventSink, Kind, Source};

pub struct Plain {
    out: Mutex<Box<dyn Write + Send>>,
}

impl Plain {
    pub fn stderr() -> Self {
        Self::to(Box::new(std::io::stderr()))
    }

    pub fn to(out: Box<dyn Write + Send>) -> Self {
        Plain {
            out: Mutex::new(out),
        }
    }
}

/// The line (or, for `finished`, the lines) an event reads as.
pub fn render(e: &Event) -> String {
    let who = match (&e.vm, &e.step) {
        (Some(vm), Some(step)) => format!("{vm} {step}"),
        (Some(vm), None) => vm.clone(),
        (None, _) => "run".into(),
    };
    let t = &e.time;
    match &e.kind {
        Kind::StepStart { title } => format!("{t} {who}: {title}\n"),
        Kind::StepFinish {
            success: true,
            duration_ms,
            ..
        } => format!("{t} {who}: done in {}\n", duration(*duration_ms)),
        Kind::StepFinish {
            duration_ms, error, ..
        } => format!(
            "{t} {who}: failed after {}: {}\n",
            duration(*duration_ms),
            error.as_deref().unwrap_or("(no reason given)")
        ),
        Kind::Output {
            source: Source::Installer,
            line,
        } => format!("{t} {who} | {line}\n"),
        Kind::Output {
            source: Source::Vmctl,
            line,
        } => format!("{t} {who}: {line}\n"),
        Kind::Warning { message } => format!("{t} {who}: warning: {message}\n"),
        Kind::Finished {
            duration_ms,
            results,
            ..
        } => summary(results, *duration_ms),
    }
}

impl EventSink for Plain {
    fn emit(&self, event: &Event) {
        let text = render(event);
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(vm: Option<&str>, step: Option<&str>, kind: Kind) -> Event {
        Event {
            time: "2026-11-30T01:02:03.456Z".into(),
            ..Event::new(vm, step, kind)
        }
    }

    #[test]
    fn each_kind_is_one_timestamped_line() {
        let t = "2026-11-30T01:02:03.456Z";
        let cases = [
            (
                ev(
                    Some("web"),
                    Some("clone"),
                    Kind::StepStart {
                        title: "Clone the template".into(),
                    },
                ),
                format!("{t} web clone: Clone the template\n"),
            ),
            (
                ev(
                    Some("web"),
                    Some("clone"),
                    Kind::StepFinish {
                        success: true,
                        duration_ms: 1500,
                        error: None,
                    },
                ),
                format!("{t} web clone: done in 1.5s\n"),
            ),
            (
                ev(
                    Some("web"),
                    Some("install"),
                    Kind::StepFinish {
                        success: false,
                        duration_ms: 20,
                        error: Some("it broke".into()),
                    },
                ),
                format!("{t} web install: failed after 20ms: it broke\n"),
            ),
            (
                ev(
                    Some("web"),
                    Some("install"),
                    Kind::Output {
                        source: Source::Installer,
                        line: "### Done! ###".into(),
                    },
                ),
                format!("{t} web install | ### Done! ###\n"),
            ),
            (
                ev(
                    Some("web"),
                    None,
                    Kind::Warning {
                        message: "slow".into(),
                    },
                ),
                format!("{t} web: warning: slow\n"),
            ),
        ];
        for (e, want) in cases {
            assert_eq!(render(&e), want);
        }
    }
}
