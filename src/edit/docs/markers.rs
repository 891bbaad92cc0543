//! The `<!-- vmctl:begin NAME -->` / `<!-- vmctl:end NAME -->` markers of machines.md: writing
//! them, and finding the sections they delimit (broken markers are an error).

use std::ops::Range;

use super::DocsError;
use crate::text::LineIndex;

pub(super) fn begin_marker(name: &str) -> String {
    format!("<!-- vmctl:begin {name} -->")
}

pub(super) fn end_marker(name: &str) -> String {
    format!("<!-- vmctl:end {name} -->")
}

/// A marker pair found in the file: byte ranges of the begin line, the body and the end line
/// (each line range includes its line break).
#[derive(Debug, Clone)]
pub(super) struct Block {
    pub(super) name: String,
    pub(super) begin_line: Range<usize>,
    pub(super) body: Range<usize>,
    pub(super) end_line: Range<usize>,
    pub(super) line: usize,
}

pub(super) fn marker(line: &str) -> Option<(bool, &str)> {
    let t = line.trim();
    let inner = t.strip_prefix("<!--")?.strip_suffix("-->")?.trim();
    if let Some(n) = inner.strip_prefix("vmctl:begin ") {
        Some((true, n.trim()))
    } else {
        inner.strip_prefix("vmctl:end ").map(|n| (false, n.trim()))
    }
}

pub(super) fn scan(text: &str) -> Result<Vec<Block>, DocsError> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut open: Option<(String, Range<usize>, usize)> = None;
    for (i, Range { start: pos, end }) in LineIndex::new(text).lines().enumerate() {
        let line_no = i + 1;
        let line = &text[pos..end];
        if let Some((is_begin, name)) = marker(line) {
            match (is_begin, &open) {
                (true, None) => {
                    if let Some(b) = blocks.iter().find(|b| b.name == name) {
                        return Err(DocsError::Duplicate {
                            name: name.into(),
                            line: line_no,
                            first: b.line,
                        });
                    }
                    open = Some((name.to_string(), pos..end, line_no));
                }
                (true, Some((outer, _, _))) => {
                    return Err(DocsError::Nested {
                        outer: outer.clone(),
                        inner: name.into(),
                        line: line_no,
                    })
                }
                (false, Some((open_name, _, _))) if open_name == name => {
                    let (name, begin_line, line) = open.take().expect("open");
                    blocks.push(Block {
                        name,
                        body: begin_line.end..pos,
                        begin_line,
                        end_line: pos..end,
                        line,
                    });
                }
                (false, _) => {
                    return Err(DocsError::UnexpectedEnd {
                        name: name.into(),
                        line: line_no,
                    })
                }
            }
        }
    }
    if let Some((name, _, line)) = open {
        return Err(DocsError::Unclosed { name, line });
    }
    Ok(blocks)
}
