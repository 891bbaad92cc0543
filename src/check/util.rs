//! Helpers shared by the checks: pointing into definitions.nix, turning the model's reading
//! issues into diagnostics, a rename fix.

use super::{Applicability, Diagnostic, Fix, Rule};
use crate::model::fleet::{Fleet, NixFile};
use crate::model::read::Issue;
use crate::model::{Definitions, TextRange};
use crate::syntax::{FileId, Span};
use crate::text::TextEdit;

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

/// Every reading issue of the fleet's files, with its file.
pub(super) fn issues(fleet: &Fleet) -> impl Iterator<Item = (&NixFile, &Issue)> {
    fleet
        .files
        .iter()
        .flat_map(|f| f.issues.iter().map(move |i| (f, i)))
}

/// Reports the issues `pick` selects as diagnostics of `rule`, in the words their reader
/// chose ([`Issue::said`]).
pub(super) fn report_said(
    fleet: &Fleet,
    rule: &'static Rule,
    out: &mut Vec<Diagnostic>,
    pick: impl Fn(&NixFile, &Issue) -> bool,
) {
    for (_, issue) in issues(fleet).filter(|(f, i)| pick(f, i)) {
        if let Some((span, message, help)) = issue.said() {
            let d = Diagnostic::new(rule, span, message);
            out.push(match help {
                Some(help) => d.help(help),
                None => d,
            });
        }
    }
}

/// Renames the field whose name is at `span` from `field` to `to`: Unsafe, since the name may
/// be an annotation its author meant.
pub(super) fn rename_fix(span: Span, field: &str, to: &str) -> Fix {
    Fix {
        message: format!("rename `{field}` to `{to}`"),
        applicability: Applicability::Unsafe,
        edits: vec![TextEdit::replace(
            span.range.start().into(),
            span.range.end().into(),
            to.to_string(),
        )],
    }
}
