//! On a terminal: one live line per VM (spinner, VM, step, the step's elapsed time), the
//! output of the running step folded under it (its last lines, shown while the step runs and
//! cleared when it succeeds; kept on screen when it fails), and the summary table at the end.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{duration, summary};
use crate::exec::events::{Event, EventSink, Kind};

/// How many of the running step's last output lines are shown under its VM's line.
const FOLD_LINES: usize = 3;
/// How many of a failed step's last output lines stay on screen.
const KEEP_LINES: usize = 200;

pub struct Terminal {
    mp: MultiProgress,
    vms: Mutex<Vec<VmView>>,
}

/// What the screen shows of one VM.
struct VmView {
    vm: String,
    line: ProgressBar,
    fold: Vec<ProgressBar>,
    /// The running step's output, its last [`KEEP_LINES`].
    output: VecDeque<String>,
}

impl Terminal {
    pub fn stderr() -> Self {
        Self::with(ProgressDrawTarget::stderr())
    }

    pub fn with(target: ProgressDrawTarget) -> Self {
        Terminal {
            mp: MultiProgress::with_draw_target(target),
            vms: Mutex::new(Vec::new()),
        }
    }

    fn view<'v>(&self, vms: &'v mut Vec<VmView>, vm: &str) -> &'v mut VmView {
        if let Some(i) = vms.iter().position(|v| v.vm == vm) {
            return &mut vms[i];
        }
        let style = ProgressStyle::with_template("{spinner} {prefix}  {wide_msg} {elapsed:>5}")
            .expect("a valid template");
        let line = self
            .mp
            .add(ProgressBar::new_spinner().with_style(style))
            .with_prefix(vm.to_string());
        line.enable_steady_tick(Duration::from_millis(100));
        vms.push(VmView {
            vm: vm.to_string(),
            line,
            fold: Vec::new(),
            output: VecDeque::new(),
        });
        vms.last_mut().expect("just pushed")
    }

    fn clear_fold(&self, v: &mut VmView) {
        for b in v.fold.drain(..) {
            b.finish_and_clear();
            self.mp.remove(&b);
        }
    }

    fn push_output(&self, v: &mut VmView, line: &str) {
        if v.output.len() == KEEP_LINES {
            v.output.pop_front();
        }
        v.output.push_back(line.to_string());
        if v.fold.len() < FOLD_LINES.min(v.output.len()) {
            let after = v.fold.last().unwrap_or(&v.line).clone();
            let style = ProgressStyle::with_template("    │ {wide_msg}").expect("a valid template");
            let b = self
                .mp
                .insert_after(&after, ProgressBar::new_spinner().with_style(style));
            v.fold.push(b);
        }
        let shown = v.output.len().min(v.fold.len());
        let last = v.output.iter().skip(v.output.len() - shown);
        for (bar, text) in v.fold.iter().zip(last) {
            bar.set_message(text.clone());
        }
    }
}

impl EventSink for Terminal {
    fn emit(&self, e: &Event) {
        let mut vms = self.vms.lock().unwrap_or_else(|e| e.into_inner());
        let step = e.step.as_deref().unwrap_or("-");
        match (&e.kind, e.vm.as_deref()) {
            (Kind::StepStart { title }, Some(vm)) => {
                let v = self.view(&mut vms, vm);
                self.clear_fold(v);
                v.output.clear();
                v.line.set_message(format!("{step}: {title}"));
                v.line.reset_elapsed();
            }
            (
                Kind::StepFinish {
                    success,
                    error,
                    duration_ms,
                    ..
                },
                Some(vm),
            ) => {
                let v = self.view(&mut vms, vm);
                self.clear_fold(v);
                if !success {
                    // A failed step's output stays: it is what says why.
                    for l in &v.output {
                        let _ = self.mp.println(format!("  {vm} {step} │ {l}"));
                    }
                    let _ = self.mp.println(format!(
                        "✗ {vm} {step} failed after {}: {}",
                        duration(*duration_ms),
                        error.as_deref().unwrap_or("(no reason given)")
                    ));
                }
                v.output.clear();
            }
            (Kind::Output { line, .. }, Some(vm)) => {
                let v = self.view(&mut vms, vm);
                self.push_output(v, line);
            }
            (Kind::Warning { message }, vm) => {
                let _ = self
                    .mp
                    .println(format!("warning: {}: {message}", vm.unwrap_or("run")));
            }
            (
                Kind::Finished {
                    duration_ms,
                    results,
                    ..
                },
                _,
            ) => {
                for mut v in vms.drain(..) {
                    self.clear_fold(&mut v);
                    v.line.finish_and_clear();
                    self.mp.remove(&v.line);
                }
                let _ = self.mp.clear();
                crate::render::stdio::err(&summary(results, *duration_ms));
            }
            // Per-VM kinds always name their VM (exec::events::VmTracker).
            (_, None) => {}
        }
    }
}

impl Drop for Terminal {
    /// A run that ends without `finished` (an error before it) leaves no spinner behind.
    fn drop(&mut self) {
        let vms = self.vms.get_mut().unwrap_or_else(|e| e.into_inner());
        for v in vms.drain(..) {
            for b in &v.fold {
                b.finish_and_clear();
            }
            v.line.finish_and_clear();
        }
        let _ = self.mp.clear();
    }
}
