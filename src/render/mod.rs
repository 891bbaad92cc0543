//! Adapters from [`Diagnostic`](crate::check::Diagnostic)s to output formats: human (miette),
//! JSON and SARIF, and the provision plan's JSON. Only this layer knows those formats.

pub mod human;
pub mod json;
pub mod provision;
pub mod sarif;
pub mod stdio;

/// Counts of diagnostics by severity, for summaries and exit codes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
}

impl Counts {
    pub fn of(diags: &[crate::check::Diagnostic]) -> Self {
        use crate::check::Severity::*;
        let mut c = Counts::default();
        for d in diags {
            match d.severity() {
                Error => c.errors += 1,
                Warning => c.warnings += 1,
                Info => c.infos += 1,
            }
        }
        c
    }

    /// "2 errors, 1 warning" (or "no problems").
    pub fn summary(&self) -> String {
        let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
        let mut parts = Vec::new();
        if self.errors > 0 {
            parts.push(plural(self.errors, "error"));
        }
        if self.warnings > 0 {
            parts.push(plural(self.warnings, "warning"));
        }
        if self.infos > 0 {
            parts.push(plural(self.infos, "note"));
        }
        if parts.is_empty() {
            "no problems".into()
        } else {
            parts.join(", ")
        }
    }
}
