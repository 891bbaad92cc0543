//! Adapters from [`Diagnostic`](crate::check::Diagnostic)s to output formats: human (miette)
//! and JSON. Only this layer knows those formats.

pub mod human;
pub mod json;
pub mod stdio;

use rowan::TextSize;

/// Line starts of a text, for O(log n) line/column lookups (a file with thousands of
/// diagnostics must not be rescanned for each).
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
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
        LineIndex { starts }
    }

    /// 0-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset) - 1
    }

    /// Byte offset where a 0-based line starts (the text's length past the last line).
    pub fn line_start(&self, line: usize, text_len: usize) -> usize {
        self.starts.get(line).copied().unwrap_or(text_len)
    }

    /// 1-based line and column (in Unicode scalar values) of a byte offset.
    pub fn line_col(&self, text: &str, offset: TextSize) -> (usize, usize) {
        let mut offset = usize::from(offset).min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line(offset);
        let col = text[self.starts[line]..offset].chars().count() + 1;
        (line + 1, col)
    }
}

/// 1-based line and column (in Unicode scalar values) of a byte offset.
pub fn line_col(text: &str, offset: TextSize) -> (usize, usize) {
    let offset = usize::from(offset).min(text.len());
    let mut offset = offset;
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = text[line_start..offset].chars().count() + 1;
    (line, col)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_are_one_based_and_count_chars() {
        let t = "ab\nçd\n";
        assert_eq!(line_col(t, 0.into()), (1, 1));
        assert_eq!(line_col(t, 3.into()), (2, 1));
        assert_eq!(line_col(t, 5.into()), (2, 2), "ç is one column");
        assert_eq!(line_col(t, 7.into()), (3, 1));
        let idx = LineIndex::new(t);
        for o in 0..=t.len() {
            if t.is_char_boundary(o) {
                assert_eq!(
                    idx.line_col(t, (o as u32).into()),
                    line_col(t, (o as u32).into()),
                    "offset {o}"
                );
            }
        }
    }
}
