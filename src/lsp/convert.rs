//! Between vmctl's byte offsets and the protocol's positions (0-based lines, UTF-16 code unit
//! columns), file paths and URIs, and vmctl's diagnostics and LSP's.

use std::path::{Path, PathBuf};

use lsp_types::{
    DiagnosticRelatedInformation, DiagnosticSeverity, Location, NumberOrString, Position, Range,
    Url,
};

use crate::check::{Diagnostic, Severity};
use crate::syntax::SourceDb;
use crate::text::LineIndex;

/// One text and its line index, for converting positions both ways.
pub struct Lines<'a> {
    text: &'a str,
    index: LineIndex,
}

/// A position that is not in the text: a line past the last one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("position {line}:{character} is outside the document ({lines} lines); the client's copy is out of date: reopen the file")]
pub struct OutOfRange {
    pub line: u32,
    pub character: u32,
    pub lines: usize,
}

impl<'a> Lines<'a> {
    pub fn new(text: &'a str) -> Self {
        Lines {
            text,
            index: LineIndex::new(text),
        }
    }

    /// The line count as the protocol sees it: a text ending in a line break has an empty last
    /// line, where the end of the document is.
    fn line_count(&self) -> usize {
        self.index.line(self.text.len()) + 1
    }

    /// The protocol position of a byte offset (rounded down to a character boundary).
    pub fn position(&self, offset: usize) -> Position {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.index.line(offset);
        let start = self.index.line_start(line);
        let character = self.text[start..offset].encode_utf16().count();
        Position::new(line as u32, character as u32)
    }

    pub fn range(&self, start: usize, end: usize) -> Range {
        Range::new(self.position(start), self.position(end))
    }

    /// The byte offset of a protocol position. A character past the end of its line means the
    /// line's end (as the protocol says); one inside a surrogate pair, the character's start.
    /// A line past the last one is an error.
    pub fn offset(&self, pos: Position) -> Result<usize, OutOfRange> {
        let line = pos.line as usize;
        if line >= self.line_count() {
            return Err(OutOfRange {
                line: pos.line,
                character: pos.character,
                lines: self.line_count(),
            });
        }
        let start = self.index.line_start(line);
        let rest = &self.text[start..];
        let line_text = &rest[..rest.find('\n').unwrap_or(rest.len())];
        let line_text = line_text.strip_suffix('\r').unwrap_or(line_text);
        let mut units = 0usize;
        for (i, c) in line_text.char_indices() {
            let next = units + c.len_utf16();
            if next > pos.character as usize {
                return Ok(start + i);
            }
            units = next;
        }
        Ok(start + line_text.len())
    }
}

/// The file a `file://` URI names.
pub fn path_of(uri: &Url) -> Option<PathBuf> {
    if uri.scheme() != "file" {
        return None;
    }
    uri.to_file_path().ok()
}

pub fn uri_of(path: &Path) -> Option<Url> {
    Url::from_file_path(path).ok()
}

fn severity(s: Severity) -> DiagnosticSeverity {
    match s {
        Severity::Error => DiagnosticSeverity::ERROR,
        Severity::Warning => DiagnosticSeverity::WARNING,
        Severity::Info => DiagnosticSeverity::INFORMATION,
    }
}

/// vmctl's diagnostic as the protocol's: the help joins the message (editors show one text),
/// the notes become related information in whichever file they point into.
pub fn diagnostic(
    d: &Diagnostic,
    db: &SourceDb,
    root: &Path,
    lines: &Lines<'_>,
) -> lsp_types::Diagnostic {
    let mut message = d.message.clone();
    if let Some(help) = &d.help {
        message.push_str(&format!("\nhelp: {help}"));
    }
    let related: Vec<DiagnosticRelatedInformation> = d
        .notes
        .iter()
        .filter_map(|n| {
            let text = db.text(n.span.file);
            let uri = uri_of(&root.join(db.path(n.span.file)))?;
            let range =
                Lines::new(text).range(n.span.range.start().into(), n.span.range.end().into());
            Some(DiagnosticRelatedInformation {
                location: Location::new(uri, range),
                message: n.message.clone(),
            })
        })
        .collect();
    lsp_types::Diagnostic {
        range: lines.range(d.span.range.start().into(), d.span.range.end().into()),
        severity: Some(severity(d.severity())),
        code: Some(NumberOrString::String(d.code().to_string())),
        code_description: None,
        source: Some("vmctl".into()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        tags: None,
        data: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Columns count UTF-16 code units: `é` is one, `😀` (outside the BMP) two; both directions
    /// agree, and a position inside a surrogate pair or past a line's end is clamped.
    #[test]
    fn positions_are_utf16_both_ways() {
        let text = "a = \"é😀x\";\r\nb\n";
        let l = Lines::new(text);
        let x = text.find('x').unwrap();
        assert_eq!(l.position(x), Position::new(0, 8));
        assert_eq!(l.offset(Position::new(0, 8)), Ok(x));
        let emoji = text.find('😀').unwrap();
        assert_eq!(l.offset(Position::new(0, 7)), Ok(emoji), "inside the pair");
        assert_eq!(l.offset(Position::new(0, 99)), Ok(text.find('\r').unwrap()));
        assert_eq!(l.position(text.find('b').unwrap()), Position::new(1, 0));
        assert_eq!(l.offset(Position::new(2, 0)), Ok(text.len()));
        assert!(l.offset(Position::new(3, 0)).is_err());
        for (i, _) in text.char_indices() {
            if text.as_bytes()[i] != b'\n' && text.as_bytes()[i] != b'\r' {
                assert_eq!(l.offset(l.position(i)), Ok(i), "offset {i}");
            }
        }
    }
}
