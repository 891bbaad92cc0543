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
                // Through the draw target, so it lands below what the live view left.
                let _ = self.mp.println(summary(results, *duration_ms).trim_end());
                let _ = self.mp.clear();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::events::{Status, VmResult};
    use indicatif::TermLike;
    use std::sync::Arc;

    /// A screen of 100 columns: rows of text, a cursor row, what a terminal would show.
    #[derive(Debug, Default)]
    struct Screen(Mutex<(Vec<String>, usize)>);

    impl Screen {
        fn row<T>(&self, f: impl FnOnce(&mut String) -> T) -> T {
            let mut s = self.0.lock().unwrap();
            let (rows, at) = &mut *s;
            while rows.len() <= *at {
                rows.push(String::new());
            }
            f(&mut rows[*at])
        }
        fn text(&self) -> String {
            let s = self.0.lock().unwrap();
            s.0.iter().map(|r| format!("{}\n", r.trim_end())).collect()
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            100
        }
        fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
            let mut s = self.0.lock().unwrap();
            s.1 = s.1.saturating_sub(n);
            Ok(())
        }
        fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
            self.0.lock().unwrap().1 += n;
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(s)?;
            self.0.lock().unwrap().1 += 1;
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            // As a terminal: a newline moves on, and so does a character past the last
            // column (indicatif pads a line to the width and lets it wrap).
            for c in s.chars() {
                let full = self.row(|r| r.chars().count() >= 100);
                if c == '\n' || full {
                    self.0.lock().unwrap().1 += 1;
                    self.row(String::clear);
                }
                if c != '\n' {
                    self.row(|r| r.push(c));
                }
            }
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.row(String::clear);
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[derive(Debug, Clone)]
    struct Shared(Arc<Screen>);

    impl TermLike for Shared {
        fn width(&self) -> u16 {
            self.0.width()
        }
        fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
            self.0.move_cursor_up(n)
        }
        fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
            self.0.move_cursor_down(n)
        }
        fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
            self.0.move_cursor_right(n)
        }
        fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
            self.0.move_cursor_left(n)
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.0.write_line(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.0.write_str(s)
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.0.clear_line()
        }
        fn flush(&self) -> std::io::Result<()> {
            self.0.flush()
        }
    }

    fn ev(vm: &str, step: &str, kind: Kind) -> Event {
        Event::new(Some(vm), Some(step), kind)
    }

    #[test]
    fn two_vms_at_once_a_failure_stays_a_success_goes_and_the_summary_ends_it() {
        let screen = Arc::new(Screen::default());
        let t = Terminal::with(ProgressDrawTarget::term_like(Box::new(Shared(
            screen.clone(),
        ))));
        std::thread::scope(|s| {
            for (vm, ok) in [("alpha", true), ("beta", false)] {
                let t = &t;
                s.spawn(move || {
                    t.emit(&ev(
                        vm,
                        "install",
                        Kind::StepStart {
                            title: "Install".into(),
                        },
                    ));
                    for i in 0..5 {
                        t.emit(&ev(
                            vm,
                            "install",
                            Kind::Output {
                                source: crate::exec::events::Source::Installer,
                                line: format!("{vm} says {i}"),
                            },
                        ));
                    }
                    t.emit(&ev(
                        vm,
                        "install",
                        Kind::StepFinish {
                            success: ok,
                            duration_ms: 5,
                            error: (!ok).then(|| "it broke".into()),
                        },
                    ));
                });
            }
        });
        let result = |vm: &str, status| VmResult {
            vm: vm.into(),
            status,
            vmid: Some(110),
            commit: None,
            error: (status == Status::Failed).then(|| "it broke".into()),
            journal: None,
            duration_ms: 5,
        };
        t.emit(&Event::finished(
            Duration::from_millis(9),
            vec![
                result("alpha", Status::Done),
                result("beta", Status::Failed),
            ],
        ));
        let shown = screen.text();
        for i in 0..5 {
            assert!(
                shown.contains(&format!("beta install │ beta says {i}")),
                "{shown}"
            );
            assert!(!shown.contains(&format!("alpha says {i}")), "{shown}");
        }
        assert!(
            shown.contains("✗ beta install failed after 5ms: it broke"),
            "{shown}"
        );
        assert!(!shown.contains("Install"), "a live line was left: {shown}");
        let summary = shown.find("VM     RESULT").expect("the summary");
        assert!(shown[summary..].contains("alpha  done"), "{shown}");
        assert!(shown[summary..].contains("beta   failed"), "{shown}");
        assert!(
            shown.trim_end().ends_with("2 VMs, 1 failed, in 9ms"),
            "{shown}"
        );
    }
}
