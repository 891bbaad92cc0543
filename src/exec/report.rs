//! What the imperative shell says on stderr besides its errors: notes, progress and the lint
//! findings a refusal shows. The CLI passes one [`Reporter`] built from `-q` and `--color`, so
//! these lines follow the same flags as the CLI's own (exec keeps no global state for it).

use crate::check::Diagnostic;
use crate::syntax::SourceDb;

/// How side messages and rendered findings reach stderr: `quiet` drops notes and progress
/// (findings only when they are notes), `color` colours the findings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reporter {
    pub quiet: bool,
    pub color: bool,
    /// The caller goes on when the findings stop a step (a best-effort fleet load), so they
    /// are notes, not the reason of an error: silent with `quiet`.
    pub findings_are_notes: bool,
}

impl Reporter {
    /// The same reporter for a step whose refusal the caller will not stop on.
    pub fn findings_as_notes(self) -> Self {
        Reporter {
            findings_are_notes: true,
            ..self
        }
    }

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

    /// Lint findings rendered as `vmlint` shows them, on stderr. Shown even when quiet (they
    /// are the reason of the error that follows) unless they are notes.
    pub fn findings(&self, db: &SourceDb, diagnostics: &[Diagnostic]) {
        if self.quiet && self.findings_are_notes {
            return;
        }
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
