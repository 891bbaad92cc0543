//! Scalars: quoted scalars and their escapes, literal and folded block scalars, and the
//! checks that keep a single-line scalar on one line.

use super::{NodeId, NodeKind, Parser, Scalar, ScalarStyle, R};
impl<'a> Parser<'a> {
    /// `:` followed by a space or the line's end.
    pub(super) fn is_value_indicator(&self, p: usize) -> bool {
        matches!(
            self.b.get(p + 1),
            None | Some(b' ') | Some(b'\t') | Some(b'\n') | Some(b'\r')
        )
    }

    /// A single-line scalar must not be followed by a deeper line: that would be a multi-line
    /// plain scalar or an indentation error, both outside the subset.
    pub(super) fn no_continuation(&self, id: NodeId, n: isize) -> R<()> {
        let li = self.line_of(self.nodes[id].span.start);
        if let Some(j) = self.next_content_line(li) {
            let line = self.lines[j];
            let deeper = if n >= 0 {
                line.indent as isize > n
            } else {
                line.indent > self.column(self.nodes[id].span.start)
            };
            if deeper && self.is_doc_marker(&line).is_none() {
                return self.err(line.content, "multi-line plain scalars or unexpected indentation are not supported; put the value on one line");
            }
        }
        Ok(())
    }

    pub(super) fn quoted(&self, q: usize) -> R<(String, usize)> {
        let quote = self.b[q];
        let line_end = self.line_end_of(q);
        let mut out = String::new();
        let mut i = q + 1;
        while i < line_end {
            let ch = self.b[i];
            if quote == b'\'' {
                if ch == b'\'' {
                    if self.b.get(i + 1) == Some(&b'\'') {
                        out.push('\'');
                        i += 2;
                        continue;
                    }
                    return Ok((out, i + 1));
                }
            } else if ch == b'"' {
                return Ok((out, i + 1));
            } else if ch == b'\\' {
                let esc = *self.b.get(i + 1).unwrap_or(&b' ');
                let simple = match esc {
                    b'\\' => Some('\\'),
                    b'"' => Some('"'),
                    b'/' => Some('/'),
                    b'n' => Some('\n'),
                    b't' => Some('\t'),
                    b'r' => Some('\r'),
                    b'0' => Some('\0'),
                    b' ' => Some(' '),
                    _ => None,
                };
                if let Some(s) = simple {
                    out.push(s);
                    i += 2;
                    continue;
                }
                let width = match esc {
                    b'x' => 2,
                    b'u' => 4,
                    b'U' => 8,
                    _ => return self.err(i, "unsupported escape in a double-quoted scalar"),
                };
                let hex = self.t.get(i + 2..i + 2 + width).unwrap_or("");
                let ch = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                match ch {
                    Some(c) => out.push(c),
                    None => return self.err(i, "invalid escape in a double-quoted scalar"),
                }
                i += 2 + width;
                continue;
            }
            let ch = self.t[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
        }
        self.err(q, "quoted scalars spanning several lines are not supported")
    }

    pub(super) fn parse_block_scalar(&mut self, q: usize, n: isize) -> R<NodeId> {
        let style = if self.b[q] == b'|' {
            ScalarStyle::Literal
        } else {
            ScalarStyle::Folded
        };
        let mut p = q + 1;
        let mut chomp = b'c';
        let mut explicit = None;
        while p < self.line_end_of(q) && !matches!(self.b[p], b' ' | b'#') {
            match self.b[p] {
                b'-' | b'+' => chomp = self.b[p],
                d @ b'1'..=b'9' => explicit = Some((d - b'0') as usize),
                _ => return self.err(p, "invalid block scalar header"),
            }
            p += 1;
        }
        self.expect_line_end(p, "the block scalar header")?;
        let header_line = self.line_of(q);
        let parent = n.max(0) as usize;
        let mut indent = explicit.map(|d| parent + d);
        let mut content_lines = Vec::new();
        let mut j = header_line + 1;
        while j < self.lines.len() {
            let line = self.lines[j];
            let blank = line.content == line.end;
            if blank {
                content_lines.push(j);
                j += 1;
                continue;
            }
            let ind = *indent.get_or_insert(line.indent);
            if (line.indent as isize) <= n || line.indent < ind {
                break;
            }
            content_lines.push(j);
            j += 1;
        }
        while let Some(&last) = content_lines.last() {
            if self.lines[last].content == self.lines[last].end {
                content_lines.pop();
            } else {
                break;
            }
        }
        let indent = indent.unwrap_or(parent + 1);
        let texts: Vec<&str> = content_lines
            .iter()
            .map(|&j| {
                let l = self.lines[j];
                if l.end - l.start >= indent {
                    &self.t[l.start + indent..l.end]
                } else {
                    ""
                }
            })
            .collect();
        let mut value = String::new();
        match style {
            ScalarStyle::Literal => value = texts.join("\n"),
            _ => {
                // Folding: a single line break becomes a space, blank lines become newlines.
                let mut pending_blank = 0;
                for (i, s) in texts.iter().enumerate() {
                    if s.is_empty() {
                        pending_blank += 1;
                        continue;
                    }
                    if i > 0 {
                        if pending_blank > 0 {
                            value.push_str(&"\n".repeat(pending_blank));
                        } else if !s.starts_with(' ') {
                            value.push(' ');
                        } else {
                            value.push('\n');
                        }
                    }
                    pending_blank = 0;
                    value.push_str(s);
                }
            }
        }
        // Clip and keep keep the last line break, when there is one: a file that ends inside
        // the scalar, with no final newline, has none to keep (as libyaml and go-yaml read it).
        let last_break = content_lines
            .last()
            .is_some_and(|&j| self.lines[j].end < self.t.len());
        if last_break && chomp != b'-' {
            value.push('\n');
        }
        let end = content_lines
            .last()
            .map(|&j| self.lines[j].end)
            .unwrap_or(p.min(self.line_end_of(q)));
        Ok(self.push(
            NodeKind::Scalar(Scalar {
                style,
                value,
                block_indent: Some(indent),
            }),
            q..end.max(q + 1),
            None,
        ))
    }
}
