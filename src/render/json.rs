//! `--format json`: one object per diagnostic, with 1-based line/column ranges.
//!
//! The schema is documented in `docs/json-output.md`; it is ours, not miette's.

use serde::Serialize;

use std::collections::HashMap;

use crate::check::Diagnostic;
use crate::syntax::{FileId, SourceDb, Span};
use crate::text::LineIndex;

#[derive(Debug, Serialize, PartialEq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
    pub offset: usize,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Range {
    pub start: Position,
    pub end: Position,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct JsonNote {
    pub file: String,
    pub range: Range,
    pub message: String,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct JsonDiagnostic {
    pub code: &'static str,
    pub severity: &'static str,
    pub message: String,
    pub file: String,
    pub range: Range,
    pub notes: Vec<JsonNote>,
    pub help: Option<String>,
    /// The suggested change, when the rule computes one (`vmlint --fix` applies it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<JsonFix>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct JsonFix {
    pub message: String,
    /// `safe`, `unsafe` (applied by `--unsafe-fixes` only) or `display-only`.
    pub applicability: &'static str,
    pub edits: Vec<JsonEdit>,
}

/// Replace `range` of `file` with `content`.
#[derive(Debug, Serialize, PartialEq)]
pub struct JsonEdit {
    pub file: String,
    pub range: Range,
    pub content: String,
}

fn range(db: &SourceDb, lines: &mut HashMap<FileId, LineIndex>, span: Span) -> Range {
    let text = db.text(span.file);
    let idx = lines
        .entry(span.file)
        .or_insert_with(|| LineIndex::new(text));
    let pos = |o| {
        let (line, column) = idx.line_col(text, usize::from(o));
        Position {
            line,
            column,
            offset: usize::from(o),
        }
    };
    Range {
        start: pos(span.range.start()),
        end: pos(span.range.end()),
    }
}

pub fn to_json(db: &SourceDb, diags: &[Diagnostic]) -> Vec<JsonDiagnostic> {
    let mut lines = HashMap::new();
    let mut out = Vec::with_capacity(diags.len());
    for d in diags {
        let mut notes = Vec::with_capacity(d.notes.len());
        for n in &d.notes {
            notes.push(JsonNote {
                file: db.path(n.span.file).display().to_string(),
                range: range(db, &mut lines, n.span),
                message: n.message.clone(),
            });
        }
        out.push(JsonDiagnostic {
            code: d.code(),
            severity: d.severity().as_str(),
            message: d.message.clone(),
            file: db.path(d.span.file).display().to_string(),
            range: range(db, &mut lines, d.span),
            notes,
            help: d.help.clone(),
            fix: d.fix.as_ref().map(|f| JsonFix {
                message: f.message.clone(),
                applicability: f.applicability.as_str(),
                edits: f
                    .edits
                    .iter()
                    .map(|e| JsonEdit {
                        file: db.path(d.span.file).display().to_string(),
                        range: range(
                            db,
                            &mut lines,
                            Span::new(
                                d.span.file,
                                rowan::TextRange::new(
                                    (e.start as u32).into(),
                                    (e.end as u32).into(),
                                ),
                            ),
                        ),
                        content: e.insert.clone(),
                    })
                    .collect(),
            }),
        });
    }
    out
}

/// The JSON array `vmlint --format json` prints, pretty-printed.
pub fn render(db: &SourceDb, diags: &[Diagnostic]) -> String {
    serde_json::to_string_pretty(&to_json(db, diags)).expect("diagnostics serialize")
}
