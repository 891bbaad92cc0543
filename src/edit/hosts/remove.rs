//! Removing a host: its own lines go, comments above it stay, groups keep their blank lines.

use std::ops::Range;

use super::locate::trivia_to_line_end;
use super::{Change, HostsDoc};
use crate::text::{is_blank, leading_indent, line_end, line_number, line_start, TextEdit};

pub(super) fn plan_remove(text: &str, doc: &HostsDoc, idx: usize) -> (Vec<TextEdit>, Change) {
    let entry = &doc.entries[idx];
    let name = entry.name.clone();
    let own_lines = leading_indent(text, entry.range.start).is_some()
        && trivia_to_line_end(text, entry.range.end).is_some();
    if !own_lines {
        let (s, e) = (entry.range.start, entry.range.end);
        let before = text[..s].len() - text[..s].trim_end_matches([' ', '\t']).len();
        let after = text[e..].len() - text[e..].trim_start_matches([' ', '\t']).len();
        let edit = if before > 0 && !text[..s - before].ends_with('\n') {
            TextEdit::delete(s - before, e)
        } else {
            TextEdit::delete(s, e + after)
        };
        return (
            vec![edit],
            Change::Removed {
                name,
                kept_comment: None,
            },
        );
    }
    let mut start = line_start(text, entry.range.start);
    let mut end = line_end(text, entry.range.end) + 1;
    // The lines around the entry, to decide about blank lines and report kept comments.
    let prev_line = (start > 0).then(|| {
        let s = line_start(text, start - 1);
        s..start - 1
    });
    let next_line = (end < text.len()).then(|| end..line_end(text, end));
    let open_line = line_start(text, doc.open)..line_end(text, doc.open);
    let close_line = line_start(text, doc.close)..line_end(text, doc.close);
    let blank = |r: &Option<Range<usize>>| r.as_ref().is_some_and(|r| is_blank(&text[r.clone()]));
    let is_brace = |r: &Option<Range<usize>>, brace: &Range<usize>| r.as_ref() == Some(brace);
    let (prev_blank, next_blank) = (blank(&prev_line), blank(&next_line));
    if next_blank && (prev_blank || is_brace(&prev_line, &open_line)) {
        end = next_line
            .as_ref()
            .map(|r| r.end + 1)
            .unwrap_or(end)
            .min(text.len());
    } else if prev_blank && is_brace(&next_line, &close_line) {
        start = prev_line.as_ref().map(|r| r.start).unwrap_or(start);
    }
    // Comment lines directly above the entry are kept; say so.
    let mut kept = None;
    let mut probe = line_start(text, entry.range.start);
    while probe > 0 {
        let s = line_start(text, probe - 1);
        let line = text[s..probe - 1].trim();
        if line.starts_with('#') || line.ends_with("*/") {
            let n = line_number(text, s);
            kept = Some(match kept {
                None => (n, n),
                Some((_, b)) => (n, b),
            });
            probe = s;
        } else {
            break;
        }
    }
    (
        vec![TextEdit::delete(start, end)],
        Change::Removed {
            name,
            kept_comment: kept,
        },
    )
}
