//! The global output options (`--color`, `-q/--quiet`, `-v/--verbose`, `--no-nix`) and the
//! helpers every command prints its side messages through, so one flag quiets all of them.

use std::ffi::OsString;
use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, AtomicI8, Ordering};

use clap::{ArgAction, Args, ValueEnum};

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Color {
    /// Colour a terminal, unless NO_COLOR is set; CLICOLOR_FORCE=1 colours a pipe too.
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl Color {
    /// Whether output going to a stream that `is_terminal` (or not) gets colour, with the
    /// conventions read from the process environment.
    pub fn enabled(self, is_terminal: bool) -> bool {
        self.decide(
            is_terminal,
            std::env::var_os("NO_COLOR"),
            std::env::var_os("CLICOLOR_FORCE"),
        )
    }

    /// The decision itself: an explicit `always`/`never` wins; then a non-empty NO_COLOR
    /// (no-color.org) turns colour off, since a user who asked for none must never get it;
    /// then CLICOLOR_FORCE other than `0` turns it on; else colour only on a terminal.
    pub fn decide(
        self,
        is_terminal: bool,
        no_color: Option<OsString>,
        force: Option<OsString>,
    ) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto if no_color.is_some_and(|v| !v.is_empty()) => false,
            Color::Auto if force.is_some_and(|v| !v.is_empty() && v != "0") => true,
            Color::Auto => is_terminal,
        }
    }

    /// Colour of what goes to stdout.
    pub fn stdout(self) -> bool {
        self.enabled(std::io::stdout().is_terminal())
    }

    /// Colour of what goes to stderr (error reports).
    pub fn stderr(self) -> bool {
        self.enabled(std::io::stderr().is_terminal())
    }
}

/// Output options every command (and `vmlint`) understands.
#[derive(Debug, Clone, Default, Args)]
pub struct Ui {
    /// When to colour output: `auto` (a terminal, unless NO_COLOR is set; CLICOLOR_FORCE=1
    /// forces colour into a pipe), `always` or `never`.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = Color::Auto)]
    pub color: Color,
    /// Print only errors and the data asked for: no notes, progress or summaries on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more on stderr: every remote command line (secrets redacted), the fleet files
    /// read and the time taken. Repeatable.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Never run nix-instantiate for values the static evaluator cannot determine, in every
    /// command that reads the fleet (also: VMCTL_NO_NIX=1). When it runs, Nix may read only
    /// the fleet directory and is stopped after VMCTL_NIX_TIMEOUT seconds (default 10).
    #[arg(long, global = true)]
    pub no_nix: bool,
}

/// -1 quiet, 0 normal, 1 and more verbose. Process-wide because side messages come from
/// every layer of the shell; set once by [`Ui::install`] before a command runs.
static LEVEL: AtomicI8 = AtomicI8::new(0);

/// Whether reports on stderr get colour, decided once by [`Ui::install`].
static STDERR_COLOR: AtomicBool = AtomicBool::new(false);

impl Ui {
    /// Makes these options take effect for the rest of the process: the verbosity of the
    /// helpers below, and `--no-nix` as VMCTL_NO_NIX=1, which every fleet load reads (the
    /// command runs single-threaded up to here, and a child process inherits the choice).
    pub fn install(&self) {
        let level = if self.quiet {
            -1
        } else {
            i8::try_from(self.verbose).unwrap_or(i8::MAX)
        };
        LEVEL.store(level, Ordering::Relaxed);
        STDERR_COLOR.store(self.color.stderr(), Ordering::Relaxed);
        if self.no_nix {
            std::env::set_var("VMCTL_NO_NIX", "1");
        }
    }
}

/// Whether diagnostics and reports written to stderr are coloured (`--color`).
pub fn stderr_color() -> bool {
    STDERR_COLOR.load(Ordering::Relaxed)
}

/// The reporter exec code prints its notes and findings through: `-q` and `--color` as given.
pub fn reporter() -> crate::exec::report::Reporter {
    crate::exec::report::Reporter {
        quiet: is_quiet(),
        color: stderr_color(),
        findings_are_notes: false,
    }
}

/// True with `--quiet`.
pub fn is_quiet() -> bool {
    LEVEL.load(Ordering::Relaxed) < 0
}

/// True with `-v` or more.
pub fn is_verbose() -> bool {
    LEVEL.load(Ordering::Relaxed) > 0
}

/// A side message on stderr (progress, a summary, what to do next); silent with `--quiet`.
pub fn info(msg: &str) {
    if !is_quiet() {
        crate::render::stdio::err(&format!("{msg}\n"));
    }
}

/// `note: MSG` on stderr; silent with `--quiet`.
pub fn note(msg: &str) {
    info(&format!("note: {msg}"));
}

/// A detail shown only with `-v`.
pub fn detail(msg: &str) {
    if is_verbose() {
        crate::render::stdio::err(&format!("{msg}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_follows_flag_then_no_color_then_force_then_terminal() {
        let s = |v: &str| Some(OsString::from(v));
        assert!(Color::Always.decide(false, s("1"), None));
        assert!(!Color::Never.decide(true, None, s("1")));
        assert!(!Color::Auto.decide(true, s("1"), None), "NO_COLOR");
        assert!(
            Color::Auto.decide(true, s(""), None),
            "an empty NO_COLOR is unset"
        );
        assert!(!Color::Auto.decide(true, s("1"), s("1")), "NO_COLOR wins");
        assert!(Color::Auto.decide(false, None, s("1")), "CLICOLOR_FORCE");
        assert!(!Color::Auto.decide(false, None, s("0")));
        assert!(Color::Auto.decide(true, None, None));
        assert!(!Color::Auto.decide(false, None, None));
    }
}
