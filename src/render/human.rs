//! Human output through miette: the source snippet, the exact span, notes and help.

use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};

use crate::check::{Diagnostic, Severity};
use crate::syntax::{SourceDb, Span};

#[derive(Debug)]
struct Report {
    message: String,
    severity: miette::Severity,
    help: Option<String>,
    source: NamedSource<String>,
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

fn named_source(db: &SourceDb, span: Span) -> NamedSource<String> {
    NamedSource::new(
        db.path(span.file).display().to_string(),
        db.text(span.file).to_string(),
    )
    .with_language("nix")
}

fn report(db: &SourceDb, d: &Diagnostic) -> Report {
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
                source: named_source(db, n.span),
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
        source: named_source(db, d.span),
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
    for d in diags {
        handler
            .render_report(&mut out, &report(db, d))
            .expect("rendering to a String cannot fail");
    }
    out
}
