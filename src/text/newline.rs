//! Newline style: a file written with CRLF line breaks keeps them where vmctl inserts lines.

use super::TextEdit;

/// The line break a text uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Newline {
    Lf,
    Crlf,
}

impl Newline {
    /// CRLF when any line of `text` ends in `\r\n`: such a file was written for Windows, and
    /// inserting bare LFs would leave it with mixed line endings.
    pub fn of(text: &str) -> Newline {
        if text.contains("\r\n") {
            Newline::Crlf
        } else {
            Newline::Lf
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Newline::Lf => "\n",
            Newline::Crlf => "\r\n",
        }
    }

    /// `s` with every line break (LF or CRLF) written in this style.
    pub fn convert(self, s: &str) -> String {
        match self {
            Newline::Lf => s.replace("\r\n", "\n"),
            Newline::Crlf => s.replace("\r\n", "\n").replace('\n', "\r\n"),
        }
    }

    /// Makes the text `edits` insert into `text` follow `text`'s newline style, so edits can
    /// be written with `\n` whatever the file uses.
    pub fn follow(text: &str, edits: &mut [TextEdit]) {
        let style = Newline::of(text);
        if style == Newline::Crlf {
            for e in edits {
                e.insert = style.convert(&e.insert);
            }
        }
    }
}
