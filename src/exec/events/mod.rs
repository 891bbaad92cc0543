//! The events of a provisioning run of one VM or many: each VM's steps starting and finishing,
//! the installer's output, warnings, and the run's end with every VM's result.
//!
//! Exec code emits [`Event`]s into an [`EventSink`]; the CLI's sinks (`cli::progress`) draw
//! them as live progress lines on a terminal, as plain timestamped lines, or as JSON Lines.
//! The serialized form is a public interface, versioned by [`VERSION`]: docs/events.md and
//! docs/events.schema.json describe it, and a test validates real output against the schema.

mod clock;
mod lines;
mod tracker;

use serde::Serialize;

pub use clock::{now_rfc3339, rfc3339};
pub use lines::run_lines;
pub use tracker::{VmTracker, ROLLBACK_STEP};

/// The schema version every event carries. A new kind or a new field keeps it; removing or
/// renaming a field, changing a field's type or meaning, or removing a kind raises it
/// (docs/events.md, "Versioning").
pub const VERSION: u32 = 1;

/// One thing that happened during a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// [`VERSION`].
    pub version: u32,
    /// When it happened: RFC 3339, UTC, milliseconds (`2026-11-30T01:02:03.456Z`).
    pub time: String,
    /// The VM it is about; absent on `finished`, which is about the whole run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm: Option<String>,
    /// The step it is about (`clone`, `install`, …, or `rollback`), when it is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(flatten)]
    pub kind: Kind,
}

/// What happened, with what only that kind carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Kind {
    /// A step of a VM started.
    StepStart { title: String },
    /// A step of a VM ended; `error` says why when it failed.
    StepFinish {
        success: bool,
        duration_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// One line of output under a step: the installer's (`source: installer`) or a detail
    /// vmctl found (`source: vmctl`, e.g. the address it discovered).
    Output { source: Source, line: String },
    /// Something the user should know that does not stop the VM.
    Warning { message: String },
    /// The run ended: whether every VM succeeded, and each one's result.
    Finished {
        success: bool,
        duration_ms: u64,
        results: Vec<VmResult>,
    },
}

/// Who printed an output line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Installer,
    Vmctl,
}

/// How one VM's part of the run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmResult {
    pub vm: String,
    pub status: Status,
    /// The VMID the plan gave it, once known.
    pub vmid: Option<u32>,
    /// The commit that integrated it, when one was made.
    pub commit: Option<String>,
    /// Why it failed (status `failed`), else null.
    pub error: Option<String>,
    /// The journal a failed or partial run left to resume or roll back from; null when
    /// nothing of this run is left to undo.
    pub journal: Option<String>,
    pub duration_ms: u64,
}

/// A VM's end state in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every step ran.
    Done,
    /// The VM was already provisioned: nothing ran.
    NothingToDo,
    /// `--phases` ran the steps it selected; the journal holds the rest.
    Partial,
    /// `--rollback` undid an interrupted run.
    RolledBack,
    /// It failed (and was rolled back unless the journal says otherwise).
    Failed,
}

impl Status {
    /// Whether this end counts as success for the run's `finished.success`.
    pub fn is_success(self) -> bool {
        !matches!(self, Status::Failed)
    }

    /// The word the human summary shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::NothingToDo => "nothing to do",
            Status::Partial => "partial",
            Status::RolledBack => "rolled back",
            Status::Failed => "failed",
        }
    }
}

/// Hears a run's events. Many VMs report from their own threads, so a sink is shared: it
/// orders what it writes itself (one event is one line, never interleaved with another).
pub trait EventSink: Send + Sync {
    fn emit(&self, event: &Event);
}

/// A sink that forwards every event to several (the JSON Lines on stdout and the human view
/// on stderr).
pub struct Tee(pub Vec<Box<dyn EventSink>>);

impl EventSink for Tee {
    fn emit(&self, event: &Event) {
        for s in &self.0 {
            s.emit(event);
        }
    }
}

/// A sink that keeps every event, for tests and for callers that read them back.
#[derive(Default)]
pub struct Collect(pub std::sync::Mutex<Vec<Event>>);

impl EventSink for Collect {
    fn emit(&self, event: &Event) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event.clone());
    }
}

impl Event {
    /// An event of `kind` about `vm` and `step`, stamped now.
    pub fn new(vm: Option<&str>, step: Option<&str>, kind: Kind) -> Event {
        Event {
            version: VERSION,
            time: now_rfc3339(),
            vm: vm.map(str::to_string),
            step: step.map(str::to_string),
            kind,
        }
    }

    /// The run's last event, from every VM's result.
    pub fn finished(duration: std::time::Duration, results: Vec<VmResult>) -> Event {
        Event::new(
            None,
            None,
            Kind::Finished {
                success: results.iter().all(|r| r.status.is_success()),
                duration_ms: millis(duration),
                results,
            },
        )
    }

    /// The event as one line of JSON (no newline).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("an event serializes")
    }
}

/// A duration in whole milliseconds, saturating.
pub fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_serializes_flat_with_its_kind_tag() {
        let e = Event {
            version: 1,
            time: "2026-11-30T01:02:03.456Z".into(),
            vm: Some("web".into()),
            step: Some("install".into()),
            kind: Kind::Output {
                source: Source::Installer,
                line: "### Installing NixOS ###".into(),
            },
        };
        assert_eq!(
            e.to_json_line(),
            r####"{"version":1,"time":"2026-11-30T01:02:03.456Z","vm":"web","step":"install","kind":"output","source":"installer","line":"### Installing NixOS ###"}"####
        );
    }

    #[test]
    fn finished_fails_when_any_vm_failed() {
        let r = |status| VmResult {
            vm: "a".into(),
            status,
            vmid: Some(110),
            commit: None,
            error: None,
            journal: None,
            duration_ms: 5,
        };
        let ok = Event::finished(
            Default::default(),
            vec![r(Status::Done), r(Status::Partial)],
        );
        assert!(matches!(ok.kind, Kind::Finished { success: true, .. }));
        let bad = Event::finished(Default::default(), vec![r(Status::Done), r(Status::Failed)]);
        assert!(matches!(bad.kind, Kind::Finished { success: false, .. }));
        let text = bad.to_json_line();
        assert!(!text.contains("\"vm\":null"), "{text}");
        assert!(text.contains("\"status\":\"failed\""), "{text}");
    }
}
