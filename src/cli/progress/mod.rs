//! How a run's events (`exec::events`) reach people and scripts: on a terminal, one live
//! progress line per VM with the installer's output folded under its step and a summary
//! table at the end; without a terminal, plain timestamped lines; with `--json`, versioned
//! JSON Lines on stdout (docs/events.md) and the human view on stderr.

mod json;
mod plain;
mod terminal;

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use json::JsonLines;
pub use plain::Plain;
pub use terminal::Terminal;

use crate::exec::events::{Event, EventSink, Tee, VmResult, VmTracker};
use crate::exec::proxmox::QmProxmox;
use crate::exec::remote::Remote;

/// The sink of a run: JSON Lines on stdout when `json`, and on stderr the live view when it
/// is a terminal (not `TERM=dumb`), plain lines when it is not, nothing with `--quiet`.
pub fn sink(json: bool) -> Arc<dyn EventSink> {
    let human: Option<Box<dyn EventSink>> = if crate::cli::ui::is_quiet() {
        None
    } else if std::io::stderr().is_terminal()
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
    {
        Some(Box::new(Terminal::stderr()))
    } else {
        Some(Box::new(Plain::stderr()))
    };
    let mut sinks: Vec<Box<dyn EventSink>> = Vec::new();
    if json {
        sinks.push(Box::new(JsonLines::stdout()));
    }
    sinks.extend(human);
    Arc::new(Tee(sinks))
}

/// What a run that did not fail says last: its result line, or a side note (already
/// provisioned) that belongs on stderr.
pub struct LastWords {
    pub text: String,
    pub side_note: bool,
}

/// Ends a run: emits `finished` with every VM's result, clears the live view, then says the
/// last words. Stdout gets the result line, except with `--json`, whose stdout holds the events
/// only: then the line, and a failure's report, go to stderr and the failure's exit code is
/// returned (the error is in `finished`, with no error object after the events). Without
/// `--json` a failure is returned for the CLI to report as any other.
pub fn finish(
    sink: Arc<dyn EventSink>,
    started: Instant,
    results: Vec<VmResult>,
    json: bool,
    outcome: miette::Result<LastWords>,
) -> miette::Result<u8> {
    sink.emit(&Event::finished(started.elapsed(), results));
    // The terminal view goes before the last words, so nothing is drawn over them.
    drop(sink);
    match outcome {
        Ok(w) if json || w.side_note => crate::render::stdio::err(&format!("{}\n", w.text)),
        Ok(w) => println!("{}", w.text),
        Err(report) if json => {
            crate::render::stdio::err(&format!("{report:?}\n"));
            return Ok(crate::cli::exit::code_of(&report));
        }
        Err(report) => return Err(report),
    }
    Ok(0)
}

/// A failure as events carry it: the report's message and its causes, `: `-joined (the
/// `message` of the `--json` error object, docs/cli.md).
pub fn error_text(report: &miette::Report) -> String {
    report
        .chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// The Proxmox connection's announcements (each command line as it is sent, each lock retry)
/// as the VM's events, under the step that sends them, instead of lines of their own on
/// stderr that a live view would draw over.
pub fn announce<R: Remote>(p: QmProxmox<R>, tracker: &Arc<VmTracker>) -> QmProxmox<R> {
    let target = p.remote().target();
    let (sent, retry) = (tracker.clone(), tracker.clone());
    p.with_on_send(Box::new(move |line| {
        sent.report(&format!("running on {target}: {line}"))
    }))
    .with_reporter(Box::new(move |m| {
        retry.warning(&format!("proxmox lock: {m}"))
    }))
}

/// A duration as people read it: `850ms`, `12.4s`, `3m05s`.
pub fn duration(ms: u64) -> String {
    let d = Duration::from_millis(ms);
    if ms < 1000 {
        format!("{ms}ms")
    } else if d.as_secs() < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

/// The summary table printed when a run ends: one row per VM (result, VMID, time, and the
/// commit, the error or the journal left behind), then the run's total.
pub fn summary(results: &[VmResult], total_ms: u64) -> String {
    let rows: Vec<[String; 5]> = results
        .iter()
        .map(|r| {
            let detail = match (&r.error, &r.commit, &r.journal) {
                (Some(e), _, Some(j)) => format!("{e} (journal {j})"),
                (Some(e), _, None) => e.clone(),
                (None, Some(c), _) => format!("commit {}", &c[..c.len().min(12)]),
                (None, None, Some(j)) => format!("journal {j}"),
                (None, None, None) => String::new(),
            };
            [
                r.vm.clone(),
                r.status.as_str().to_string(),
                r.vmid.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
                duration(r.duration_ms),
                detail,
            ]
        })
        .collect();
    let head = ["VM", "RESULT", "VMID", "TIME", "DETAIL"].map(String::from);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&head).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&head).chain(&rows) {
        let mut line = String::new();
        for (w, cell) in widths.iter().zip(row) {
            line.push_str(&format!("{cell:<w$}  "));
        }
        line.push_str(&row[4]);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let failed = results.iter().filter(|r| !r.status.is_success()).count();
    out.push_str(&format!(
        "{} VM{}, {} failed, in {}\n",
        results.len(),
        if results.len() == 1 { "" } else { "s" },
        failed,
        duration(total_ms)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::events::Status;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(12_449), "12.4s");
        assert_eq!(duration(185_000), "3m05s");
    }

    #[test]
    fn summary_aligns_its_columns_and_counts_failures() {
        let r = |vm: &str, status, commit: Option<&str>, error: Option<&str>| VmResult {
            vm: vm.into(),
            status,
            vmid: Some(110),
            commit: commit.map(Into::into),
            error: error.map(Into::into),
            journal: None,
            duration_ms: 12_400,
        };
        let table = summary(
            &[
                r(
                    "test-automation",
                    Status::Done,
                    Some("0123456789abcdef0123"),
                    None,
                ),
                r("b", Status::Failed, None, Some("step install: it broke")),
            ],
            13_000,
        );
        assert_eq!(
            table,
            "VM               RESULT  VMID  TIME   DETAIL\n\
             test-automation  done    110   12.4s  commit 0123456789ab\n\
             b                failed  110   12.4s  step install: it broke\n\
             2 VMs, 1 failed, in 13.0s\n"
        );
    }
}
