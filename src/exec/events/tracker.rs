//! One VM's events from the provision runner's report lines: the runner says `== ID TITLE`
//! when a step starts (exactly the plan's ids and titles), `failed: …; rolling back …` when a
//! step failed and the rollback starts, and detail lines otherwise. The tracker turns them
//! into step start/finish and output events, times the steps, and says how the VM ended.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{millis, Event, EventSink, Kind, Source};

/// The pseudo-step the undoing of a failed run is reported under.
pub const ROLLBACK_STEP: &str = "rollback";

/// The line the runner reports when a step failed and it rolls back (`failed: {failure}` and
/// this).
const ROLLING_BACK: &str = "; rolling back this run's work";

/// Turns one VM's report lines into events. Shared between the runner's report callback, the
/// installer's line callback and the Proxmox connection's announcements (hence the `Arc`s:
/// those callbacks outlive any borrow).
pub struct VmTracker {
    sink: Arc<dyn EventSink>,
    vm: String,
    /// `(heading line, step id, title)` for every planned step.
    headings: Vec<(String, String, String)>,
    started: Instant,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The step running now and when it started.
    current: Option<(String, Instant)>,
}

impl VmTracker {
    /// A tracker for `vm`, whose plan has `steps` (id, title) in order.
    pub fn new<'s>(
        sink: Arc<dyn EventSink>,
        vm: &str,
        steps: impl IntoIterator<Item = (&'s str, &'s str)>,
    ) -> Self {
        VmTracker {
            sink,
            vm: vm.to_string(),
            headings: steps
                .into_iter()
                .map(|(id, title)| (format!("== {id} {title}"), id.to_string(), title.into()))
                .collect(),
            started: Instant::now(),
            state: Mutex::new(State::default()),
        }
    }

    /// How long since the tracker was made (the VM's part of the run).
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn emit(&self, step: Option<&str>, kind: Kind) {
        self.sink.emit(&Event::new(Some(&self.vm), step, kind));
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The step running now, if any.
    pub fn current_step(&self) -> Option<String> {
        self.state().current.as_ref().map(|(s, _)| s.clone())
    }

    /// One line of the runner's (or the rollback's) `report`.
    pub fn report(&self, line: &str) {
        if let Some((_, id, title)) = self.headings.iter().find(|(h, _, _)| h == line) {
            self.close(Ok(()));
            self.start(id, title);
        } else if let Some(failure) = line
            .strip_prefix("failed: ")
            .and_then(|l| l.strip_suffix(ROLLING_BACK))
        {
            self.close(Err(failure));
            self.start(ROLLBACK_STEP, "Undo this run's work");
        } else {
            self.output(Source::Vmctl, line.trim());
        }
    }

    /// One line of the installer's output.
    pub fn installer_line(&self, line: &str) {
        self.output(Source::Installer, line);
    }

    /// A warning about this VM.
    pub fn warning(&self, message: &str) {
        let step = self.state().current.as_ref().map(|(s, _)| s.clone());
        self.emit(
            step.as_deref(),
            Kind::Warning {
                message: message.to_string(),
            },
        );
    }

    /// Starts step `id` (closing none: callers close first).
    pub fn start(&self, id: &str, title: &str) {
        self.state().current = Some((id.to_string(), Instant::now()));
        self.emit(
            Some(id),
            Kind::StepStart {
                title: title.to_string(),
            },
        );
    }

    /// Ends the step running now, if any: a success, or a failure with its reason.
    pub fn close(&self, result: Result<(), &str>) {
        let Some((id, since)) = self.state().current.take() else {
            return;
        };
        self.emit(
            Some(&id),
            Kind::StepFinish {
                success: result.is_ok(),
                duration_ms: millis(since.elapsed()),
                error: result.err().map(str::to_string),
            },
        );
    }

    fn output(&self, source: Source, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        let step = self.state().current.as_ref().map(|(s, _)| s.clone());
        self.emit(
            step.as_deref(),
            Kind::Output {
                source,
                line: line.to_string(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::Collect;
    use super::*;

    fn collect() -> (Arc<Collect>, Arc<dyn EventSink>) {
        let c = Arc::new(Collect::default());
        (c.clone(), c)
    }

    fn kinds(c: &Collect) -> Vec<String> {
        c.0.lock()
            .unwrap()
            .iter()
            .map(|e| {
                let v: serde_json::Value = serde_json::from_str(&e.to_json_line()).unwrap();
                format!(
                    "{} {} {}",
                    v["kind"].as_str().unwrap(),
                    v["step"].as_str().unwrap_or("-"),
                    v.get("success")
                        .or(v.get("line"))
                        .or(v.get("title"))
                        .map(|x| x.to_string())
                        .unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn headings_start_steps_details_are_output_and_a_failure_opens_the_rollback() {
        let (c, sink) = collect();
        let t = VmTracker::new(sink, "web", [("clone", "Clone"), ("install", "Install")]);
        t.report("== clone Clone");
        t.report("   address 127.0.0.110");
        t.report("== install Install");
        t.installer_line("### Installing NixOS ###");
        t.report("failed: step install: it broke; rolling back this run's work");
        t.report("   destroyed VM 110 `web`");
        t.close(Ok(()));
        assert_eq!(
            kinds(&c),
            [
                "step_start clone \"Clone\"",
                "output clone \"address 127.0.0.110\"",
                "step_finish clone true",
                "step_start install \"Install\"",
                "output install \"### Installing NixOS ###\"",
                "step_finish install false",
                "step_start rollback \"Undo this run's work\"",
                "output rollback \"destroyed VM 110 `web`\"",
                "step_finish rollback true",
            ]
        );
        let failed = c.0.lock().unwrap()[5].clone();
        assert_eq!(
            failed.kind,
            Kind::StepFinish {
                success: false,
                duration_ms: match failed.kind {
                    Kind::StepFinish { duration_ms, .. } => duration_ms,
                    _ => unreachable!(),
                },
                error: Some("step install: it broke".into())
            }
        );
    }

    #[test]
    fn a_line_that_only_looks_like_a_heading_is_output() {
        let (c, sink) = collect();
        let t = VmTracker::new(sink, "web", [("clone", "Clone")]);
        t.report("== clone Clone the other way");
        t.report("== verify Verify");
        assert_eq!(
            kinds(&c),
            [
                "output - \"== clone Clone the other way\"",
                "output - \"== verify Verify\""
            ]
        );
    }
}
