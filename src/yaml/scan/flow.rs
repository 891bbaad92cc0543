//! Flow collections: sequences of scalars and aliases, and flow mappings kept opaque.

use super::{Anchor, NodeId, NodeKind, Parser, Scalar, ScalarStyle, Seq, SeqItem, R};
impl<'a> Parser<'a> {
    /// Skips spaces, newlines and comments inside a flow collection.
    fn flow_skip(&self, mut p: usize) -> usize {
        loop {
            while p < self.b.len() && matches!(self.b[p], b' ' | b'\n' | b'\r' | b'\t') {
                p += 1;
            }
            if p < self.b.len() && self.b[p] == b'#' {
                while p < self.b.len() && self.b[p] != b'\n' {
                    p += 1;
                }
                continue;
            }
            return p;
        }
    }

    pub(super) fn parse_flow_seq(&mut self, open: usize) -> R<NodeId> {
        let column = self.column(open);
        let mut items = Vec::new();
        let mut p = self.flow_skip(open + 1);
        loop {
            if p >= self.b.len() {
                return self.err(open, "unterminated flow sequence");
            }
            if self.b[p] == b']' {
                break;
            }
            let item_start = p;
            let mut anchor = None;
            if self.b[p] == b'&' {
                let e = self.name_end(p)?;
                anchor = Some(Anchor {
                    name: self.t[p + 1..e].to_string(),
                    span: p..e,
                });
                p = self.flow_skip(e);
            }
            let (kind, end) = match self.b[p] {
                b'*' => {
                    let e = self.name_end(p)?;
                    (NodeKind::Alias(self.t[p + 1..e].to_string()), e)
                }
                b'"' | b'\'' => {
                    let (value, e) = self.quoted(p)?;
                    let style = if self.b[p] == b'"' {
                        ScalarStyle::DoubleQuoted
                    } else {
                        ScalarStyle::SingleQuoted
                    };
                    (
                        NodeKind::Scalar(Scalar {
                            style,
                            value,
                            block_indent: None,
                        }),
                        e,
                    )
                }
                b'[' | b'{' => return self.err(p, "nested flow collections are not supported"),
                b',' => return self.err(p, "empty entry in a flow sequence"),
                _ => {
                    let mut e = p;
                    while e < self.b.len()
                        && !matches!(self.b[e], b',' | b']' | b'\n' | b'\r')
                        && !(self.b[e] == b'#' && matches!(self.b[e - 1], b' ' | b'\t'))
                    {
                        if self.b[e] == b':'
                            && matches!(self.b.get(e + 1), Some(b' ') | Some(b',') | Some(b']'))
                        {
                            return self.err(e, "mappings inside flow sequences are not supported");
                        }
                        e += 1;
                    }
                    let v = self.t[p..e].trim_end();
                    (
                        NodeKind::Scalar(Scalar {
                            style: ScalarStyle::Plain,
                            value: v.to_string(),
                            block_indent: None,
                        }),
                        p + v.len(),
                    )
                }
            };
            let id = self.push(kind, item_start..end, anchor);
            items.push(SeqItem {
                dash: item_start,
                node: id,
            });
            p = self.flow_skip(end);
            match self.b.get(p) {
                Some(b',') => p = self.flow_skip(p + 1),
                Some(b']') => break,
                _ => {
                    return self.err(
                        p.min(self.b.len().saturating_sub(1)),
                        "expected `,` or `]` in a flow sequence",
                    )
                }
            }
        }
        Ok(self.push(
            NodeKind::Seq(Seq {
                flow: true,
                column,
                items,
                close: Some(p),
            }),
            open..p + 1,
            None,
        ))
    }

    pub(super) fn skip_flow_map(&self, open: usize) -> R<usize> {
        let mut depth = 0usize;
        let mut p = open;
        while p < self.b.len() {
            match self.b[p] {
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(p + 1);
                    }
                }
                b'"' | b'\'' => {
                    let (_, e) = self.quoted(p)?;
                    p = e;
                    continue;
                }
                b'#' if self.b[p - 1] == b' ' => {
                    while p < self.b.len() && self.b[p] != b'\n' {
                        p += 1;
                    }
                    continue;
                }
                _ => {}
            }
            p += 1;
        }
        self.err(open, "unterminated flow mapping")
    }
}
