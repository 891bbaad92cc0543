//! Lines of a text: the index from byte offsets to lines and columns, and the helpers layout
//! policies are written in (line bounds, indentation, blank lines).
//!
//! Every function takes byte offsets and works on bytes, so an offset inside a multi-byte
//! character (a parser may point at one) never panics; columns round such an offset down to
//! the character's start.

use std::ops::Range;

/// Line starts of a text, for O(log n) line/column lookups (a file with thousands of
/// diagnostics must not be rescanned for each).
#[derive(Debug, Clone)]
pub struct LineIndex {
    /// Offset of every line's first byte; the first is 0. A text ending in a line break has an
    /// empty last line starting at its length (where an offset at the very end is).
    starts: Vec<usize>,
    len: usize,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex {
            starts,
            len: text.len(),
        }
    }

    /// 0-based line of a byte offset (an offset past the end counts as the end).
    pub fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset.min(self.len)) - 1
    }

    /// Byte offset where a 0-based line starts (the text's length past the last line).
    pub fn line_start(&self, line: usize) -> usize {
        self.starts.get(line).copied().unwrap_or(self.len)
    }

    /// 1-based line and column (in Unicode scalar values) of a byte offset of `text`, the
    /// text this index was built from.
    pub fn line_col(&self, text: &str, offset: usize) -> (usize, usize) {
        debug_assert_eq!(text.len(), self.len, "a line index of another text");
        let offset = floor_char_boundary(text, offset);
        let line = self.line(offset);
        let col = text[self.starts[line]..offset].chars().count() + 1;
        (line + 1, col)
    }

    /// Every line as the byte range it covers, its line break included. A final line break
    /// ends the last line rather than starting an empty one; an empty text has one empty line.
    pub fn lines(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        let ends = self.starts.iter().skip(1).copied().chain(
            // The text after the last line break, unless there is none (and the text is not
            // empty: then that empty text is the one line).
            (self.starts.last() != Some(&self.len) || self.len == 0).then_some(self.len),
        );
        self.starts.iter().copied().zip(ends).map(|(s, e)| s..e)
    }
}

fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// 1-based line and column (in Unicode scalar values) of a byte offset. For many lookups in
/// one text, build a [`LineIndex`] instead.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset);
    let start = line_start(text, offset);
    (
        line_number(text, offset),
        text[start..offset].chars().count() + 1,
    )
}

/// 1-based line of a byte offset (an offset past the end counts as the end).
pub fn line_number(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Offset of the first byte of the line holding `offset`.
pub fn line_start(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1)
}

/// Offset of the `\n` ending the line holding `offset` (the text's length on the last line).
/// A `\r` before the `\n` is part of the line.
pub fn line_end(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[offset..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(text.len(), |i| offset + i)
}

/// Offset just after the line break ending the line holding `offset` (the text's length on
/// the last line).
pub fn next_line_start(text: &str, offset: usize) -> usize {
    (line_end(text, offset) + 1).min(text.len())
}

/// The spaces and tabs between the start of `pos`'s line and `pos`, when only those precede
/// `pos` on its line.
pub fn leading_indent(text: &str, pos: usize) -> Option<&str> {
    let prefix = &text[line_start(text, pos)..pos];
    prefix
        .bytes()
        .all(|b| b == b' ' || b == b'\t')
        .then_some(prefix)
}

/// How many spaces a line starts with (YAML indents with spaces only).
pub fn indent_width(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// True when a line (without its `\n`) holds only spaces and tabs, and maybe the `\r` of a
/// CRLF line break.
pub fn is_blank(line: &str) -> bool {
    line.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r'))
}
