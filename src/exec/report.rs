//! What the imperative shell says on stderr besides its errors: notes, progress and the lint
//! findings a refusal shows. The CLI passes one [`Reporter`] built from `-q` and `--color`, so
//! these lines follow the same flags as the CLI's own (exec keeps no global state for it).

use crate::check::Diagnostic;
use crate::syntax::SourceDb;

/// How side messages and rendered findings reach stderr: `quiet` drops notes and progress
/// (never findings or errors), `color` colours the findings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reporter {
    pub quiet: bool,
    pub color: bool,
}

impl Reporter {
    /// `note: MSG` on stderr, unless quiet.
    pub fn note(&self, msg: &str) {
        self.info(&format!("note: {msg}"));
    }

    /// A progress line on stderr, unless quiet.
    pub fn info(&self, msg: &str) {
        if !self.quiet {
            crate::render::stdio::err(&format!("{msg}\n"));
        }
    }

    /// Lint findings rendered as `vmlint` shows them, on stderr. Shown even when quiet: they
    /// are the reason of the error that follows.
    pub fn findings(&self, db: &SourceDb, diagnostics: &[Diagnostic]) {
        crate::render::stdio::err(&crate::render::human::render(db, diagnostics, self.color));
    }

    /// Shows `errors` and returns the refusal that counts them ("N error(s)", placed in the
    /// message by `message`), with `help`.
    pub fn refuse(
        &self,
        db: &SourceDb,
        errors: &[Diagnostic],
        message: impl FnOnce(String) -> String,
        help: &'static str,
    ) -> miette::Report {
        self.findings(db, errors);
        let count = format!(
            "{} error{}",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        );
        miette::miette!(help = help, "{}", message(count))
    }
}
