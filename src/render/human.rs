//! Human output through miette: the source snippet, the exact span, notes and help.

use std::fmt;

use std::collections::HashMap;
use std::sync::Arc;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    SourceCode, SourceSpan, SpanContents,
};

use super::LineIndex;

use crate::check::{Diagnostic, Severity};
use crate::syntax::{FileId, SourceDb, Span};

#[derive(Debug)]
struct Report {
    message: String,
    severity: miette::Severity,
    help: Option<String>,
    source: Window,
    labels: Vec<LabeledSpan>,
    related: Vec<Report>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(
                self.related.iter().map(|r| r as &dyn miette::Diagnostic),
            ))
        }
    }
}

fn source_span(span: Span) -> SourceSpan {
    let start = usize::from(span.range.start());
    (start, usize::from(span.range.len())).into()
}

/// The lines of a file around a diagnostic's spans, with their place in the file.
///
/// miette finds lines by scanning its source from the start; handing it only this window
/// keeps rendering linear when a large file has thousands of diagnostics.
#[derive(Debug)]
struct Window {
    name: String,
    text: Arc<str>,
    start: usize,
    end: usize,
    /// 0-based line number of `start`.
    line: usize,
}

impl SourceCode for Window {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let local_offset = span
            .offset()
            .checked_sub(self.start)
            .ok_or(MietteError::OutOfBounds)?;
        let local = SourceSpan::new(local_offset.into(), span.len());
        let window: &'a str = &self.text[self.start..self.end];
        let inner = window.read_span(&local, before, after)?;
        let ispan = inner.span();
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            SourceSpan::new((ispan.offset() + self.start).into(), ispan.len()),
            inner.line() + self.line,
            inner.column(),
            inner.line_count() + self.line,
        )))
    }
}

/// Context lines kept around the spans (miette shows one; a margin keeps it safe).
const MARGIN_LINES: usize = 3;

fn window(
    db: &SourceDb,
    lines: &mut HashMap<FileId, LineIndex>,
    file: FileId,
    spans: &[Span],
) -> Window {
    let text: Arc<str> = db.get(file).text.clone();
    let idx = lines.entry(file).or_insert_with(|| LineIndex::new(&text));
    let lo = spans
        .iter()
        .map(|s| usize::from(s.range.start()))
        .min()
        .unwrap_or(0);
    let hi = spans
        .iter()
        .map(|s| usize::from(s.range.end()))
        .max()
        .unwrap_or(0);
    let first = idx.line(lo).saturating_sub(MARGIN_LINES);
    let last = idx.line(hi.min(text.len())) + MARGIN_LINES + 1;
    Window {
        name: db.path(file).display().to_string(),
        start: idx.line_start(first, text.len()),
        end: idx.line_start(last, text.len()),
        line: first,
        text,
    }
}

fn report(db: &SourceDb, lines: &mut HashMap<FileId, LineIndex>, d: &Diagnostic) -> Report {
    let mut labels = vec![LabeledSpan::new_primary_with_span(
        None,
        source_span(d.span),
    )];
    let mut related = Vec::new();
    for n in &d.notes {
        if n.span.file == d.span.file {
            labels.push(LabeledSpan::new_with_span(
                Some(n.message.clone()),
                source_span(n.span),
            ));
        } else {
            related.push(Report {
                message: n.message.clone(),
                severity: miette::Severity::Advice,
                help: None,
                source: window(db, lines, n.span.file, &[n.span]),
                labels: vec![LabeledSpan::new_with_span(None, source_span(n.span))],
                related: Vec::new(),
            });
        }
    }
    Report {
        // The code goes in the headline (`× [VM001] …`), where a reader looks for it.
        message: format!("[{}] {}", d.code(), d.message),
        severity: match d.severity() {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Info => miette::Severity::Advice,
        },
        help: d.help.clone(),
        source: {
            let same_file: Vec<Span> = std::iter::once(d.span)
                .chain(d.notes.iter().map(|n| n.span))
                .filter(|s| s.file == d.span.file)
                .collect();
            window(db, lines, d.span.file, &same_file)
        },
        labels,
        related,
    }
}

/// Renders diagnostics for a terminal (`color`) or for plain text (logs, snapshots).
pub fn render(db: &SourceDb, diags: &[Diagnostic], color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false);
    let mut out = String::new();
    let mut lines = HashMap::new();
    for d in diags {
        handler
            .render_report(&mut out, &report(db, &mut lines, d))
            .expect("rendering to a String cannot fail");
    }
    out
}
