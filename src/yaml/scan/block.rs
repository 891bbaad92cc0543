//! Block collections: mappings and sequences, delimited by indentation.

use super::{Ctx, Entry, Line, Map, NodeId, NodeKind, Parser, Seq, SeqItem, R};

impl<'a> Parser<'a> {
    /// The line after line `last` where the next entry or item of a block collection at
    /// `column` would start; `None` when the collection ends before it (the text ends, a
    /// document marker, or a line less indented).
    fn next_sibling(&self, last: usize, column: usize) -> R<Option<Line>> {
        let Some(j) = self.next_content_line(last) else {
            return Ok(None);
        };
        let line = self.lines[j];
        if self.is_doc_marker(&line).is_some() || line.indent < column {
            return Ok(None);
        }
        if line.indent > column {
            return self.err(line.content, "unexpected indentation");
        }
        Ok(Some(line))
    }

    pub(super) fn parse_block_map(&mut self, first_key: usize) -> R<NodeId> {
        let column = self.column(first_key);
        let mut entries = Vec::new();
        let mut pos = first_key;
        loop {
            let (key, key_span, colon) = if matches!(self.b[pos], b'"' | b'\'') {
                let (k, end) = self.quoted(pos)?;
                let colon = self.skip_spaces(end);
                if self.b.get(colon) != Some(&b':') || !self.is_value_indicator(colon) {
                    return self.err(pos, "expected `key: value`");
                }
                (k, pos..end, colon)
            } else {
                let line_end = self.line_end_of(pos);
                let mut e = pos;
                while e < line_end && !(self.b[e] == b':' && self.is_value_indicator(e)) {
                    if self.b[e] == b'#' && e > pos && matches!(self.b[e - 1], b' ' | b'\t') {
                        break;
                    }
                    e += 1;
                }
                if e >= line_end || self.b[e] != b':' {
                    return self.err(
                        pos,
                        "expected `key: value` (a mapping entry at this indentation)",
                    );
                }
                let k = self.t[pos..e].trim_end();
                if k.starts_with(['&', '*', '!', '[', '{', '?']) {
                    return self.err(pos, "this kind of mapping key is not supported");
                }
                (k.to_string(), pos..pos + k.len(), e)
            };
            if entries.iter().any(|e: &Entry| e.key == key) {
                return self.err(pos, format!("duplicate key `{key}`"));
            }
            let value = self.parse_node(colon + 1, column as isize, Ctx::MapValue)?;
            entries.push(Entry {
                key,
                key_span,
                value,
            });
            let Some(line) = self.next_sibling(self.last_line(value, colon), column)? else {
                break;
            };
            if self.is_dash_at(line.content) {
                return self.err(
                    line.content,
                    "a sequence item where a mapping key was expected",
                );
            }
            pos = line.content;
        }
        let span_end = entries
            .last()
            .map(|e| self.nodes[e.value].span.end.max(e.key_span.end + 1))
            .unwrap_or(first_key);
        Ok(self.push(
            NodeKind::Map(Map { column, entries }),
            first_key..span_end,
            None,
        ))
    }

    pub(super) fn parse_block_seq(&mut self, first_dash: usize) -> R<NodeId> {
        let column = self.column(first_dash);
        let mut items = Vec::new();
        let mut dash = first_dash;
        loop {
            let node = self.parse_node(dash + 1, column as isize, Ctx::SeqItem)?;
            items.push(SeqItem { dash, node });
            let Some(line) = self.next_sibling(self.last_line(node, dash), column)? else {
                break;
            };
            if !self.is_dash_at(line.content) {
                break;
            }
            dash = line.content;
        }
        let end = items
            .last()
            .map(|it| self.nodes[it.node].span.end.max(it.dash + 1))
            .unwrap_or(first_dash + 1);
        Ok(self.push(
            NodeKind::Seq(Seq {
                flow: false,
                column,
                items,
                close: None,
            }),
            first_dash..end,
            None,
        ))
    }
}
