//! Human output through miette: the source snippet, the exact span, notes and help.

use std::fmt;

use std::collections::HashMap;
use std::sync::Arc;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    SourceCode, SourceSpan, SpanContents,
};

use crate::text::LineIndex;

use crate::check::{Diagnostic, Severity};
use crate::syntax::{FileId, SourceDb, Span};

#[derive(Debug)]
struct Report {
    message: String,
    severity: miette::Severity,
    help: Option<String>,
    /// `None` when the source cannot be shown (a line too long to print).
    source: Option<Window>,
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
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.source.as_ref()?;
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
/// Longest line shown in a snippet: a longer one (a minified or generated file, one 5 MB
/// string) is pointed at by line and column instead, so output stays bounded.
const MAX_LINE_BYTES: usize = 4096;
/// Most lines of a span underlined; a longer span is shown by its first line.
const MAX_SPAN_LINES: usize = 12;

/// `span` cut to its first line when it covers more than [`MAX_SPAN_LINES`].
fn fit(span: Span, idx: &LineIndex, text_len: usize) -> Span {
    let start = usize::from(span.range.start()).min(text_len);
    let end = usize::from(span.range.end()).min(text_len);
    let (first, last) = (idx.line(start), idx.line(end));
    if last - first < MAX_SPAN_LINES {
        return span;
    }
    let line_end = idx.line_start(first + 1).saturating_sub(1).max(start);
    Span::new(
        span.file,
        rowan::TextRange::new((start as u32).into(), (line_end as u32).into()),
    )
}

/// `path:line:column` of a span's start.
fn location(db: &SourceDb, lines: &mut HashMap<FileId, LineIndex>, span: Span) -> String {
    let text = db.text(span.file);
    let idx = lines
        .entry(span.file)
        .or_insert_with(|| LineIndex::new(text));
    let (line, col) = idx.line_col(text, usize::from(span.range.start()));
    format!("{}:{line}:{col}", db.path(span.file).display())
}

fn window(
    db: &SourceDb,
    lines: &mut HashMap<FileId, LineIndex>,
    file: FileId,
    spans: &[Span],
) -> Option<Window> {
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
    let too_long =
        (first..last).any(|l| idx.line_start(l + 1) - idx.line_start(l) > MAX_LINE_BYTES);
    if too_long {
        return None;
    }
    Some(Window {
        name: db.path(file).display().to_string(),
        start: idx.line_start(first),
        end: idx.line_start(last),
        line: first,
        text,
    })
}

fn report(db: &SourceDb, lines: &mut HashMap<FileId, LineIndex>, d: &Diagnostic) -> Report {
    let mut fitted = |s: Span| {
        let text = db.text(s.file);
        let idx = lines.entry(s.file).or_insert_with(|| LineIndex::new(text));
        fit(s, idx, text.len())
    };
    let primary = fitted(d.span);
    let notes: Vec<(Span, &str)> = d
        .notes
        .iter()
        .map(|n| (fitted(n.span), n.message.as_str()))
        .collect();
    let same_file: Vec<Span> = std::iter::once(primary)
        .chain(notes.iter().map(|(s, _)| *s))
        .filter(|s| s.file == d.span.file)
        .collect();
    let source = window(db, lines, d.span.file, &same_file);
    // The code goes in the headline (`× [VM001] …`), where a reader looks for it.
    let mut message = format!("[{}] {}", d.code(), d.message);
    if source.is_none() {
        message.push_str(&format!(" (at {})", location(db, lines, d.span)));
    }
    let mut labels = vec![LabeledSpan::new_primary_with_span(
        None,
        source_span(primary),
    )];
    let mut related = Vec::new();
    for (span, note) in notes {
        if span.file == d.span.file && source.is_some() {
            labels.push(LabeledSpan::new_with_span(
                Some(note.to_string()),
                source_span(span),
            ));
        } else {
            let source = window(db, lines, span.file, &[span]);
            let message = match source {
                Some(_) => note.to_string(),
                None => format!("{note} (at {})", location(db, lines, span)),
            };
            related.push(Report {
                message,
                severity: miette::Severity::Advice,
                help: None,
                source,
                labels: vec![LabeledSpan::new_with_span(None, source_span(span))],
                related: Vec::new(),
            });
        }
    }
    Report {
        message,
        severity: match d.severity() {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Info => miette::Severity::Advice,
        },
        help: d.help.clone(),
        source,
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
