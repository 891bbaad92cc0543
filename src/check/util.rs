//! Helpers shared by the checks: pointing into definitions.nix, and turning the model's
//! reading issues into diagnostics.

use super::{Diagnostic, Rule};
use crate::model::fleet::{Fleet, NixRole};
use crate::model::read::Issue;
use crate::model::{Definitions, TextRange};
use crate::syntax::{FileId, Span};

/// definitions.nix's model, and the file its ranges point into.
pub(super) struct Defs<'a> {
    pub file: FileId,
    pub defs: &'a Definitions,
}

impl Defs<'_> {
    /// A range of definitions.nix as a span.
    pub fn span(&self, range: TextRange) -> Span {
        Span::new(self.file, range)
    }
}

/// The fleet's definitions.nix, when it has one.
pub(super) fn definitions(fleet: &Fleet) -> Option<Defs<'_>> {
    let (file, defs) = fleet.definitions_file()?;
    Some(Defs {
        file: file.file,
        defs,
    })
}

/// Every `Unsupported` issue of the files of this role, as diagnostics of `rule`.
pub(super) fn report_unsupported(
    fleet: &Fleet,
    role: NixRole,
    rule: &'static Rule,
    out: &mut Vec<Diagnostic>,
) {
    for f in fleet.files.iter().filter(|f| f.role == role) {
        for issue in &f.issues {
            if let Issue::Unsupported { span, message } = issue {
                out.push(Diagnostic::new(rule, *span, message.clone()));
            }
        }
    }
}

/// Every `MissingPath` issue whose `error` flag is `error`, as diagnostics of `rule`.
pub(super) fn report_missing_paths(
    fleet: &Fleet,
    error: bool,
    rule: &'static Rule,
    out: &mut Vec<Diagnostic>,
) {
    for f in &fleet.files {
        for issue in &f.issues {
            if let Issue::MissingPath {
                span,
                message,
                help,
                error: e,
            } = issue
            {
                if *e == error {
                    out.push(Diagnostic::new(rule, *span, message.clone()).help(help.clone()));
                }
            }
        }
    }
}
