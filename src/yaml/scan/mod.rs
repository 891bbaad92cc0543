//! A lossless scanner for the block-YAML subset `.sops.yaml` files are written in.
//!
//! It does not build a new text: it records, for every node, the byte span it occupies in the
//! original, so edits are computed as [`crate::text::TextEdit`]s and every byte outside them
//! stays as the user wrote it. The subset: block mappings and sequences (also sequences not
//! indented under their key), plain, quoted, literal and folded scalars, flow sequences of
//! scalars and aliases, anchors, aliases, merge keys, comments anywhere. Anything else (tags,
//! complex keys, multi-line plain scalars, several documents) is an error that names the line,
//! so callers refuse instead of guessing. Flow mappings are kept as opaque nodes.

mod block;
mod flow;
mod scalar;
mod tree;

use std::ops::Range;

use crate::text::{line_col, LineIndex};

pub use self::tree::{
    Anchor, Doc, Entry, Map, Node, NodeId, NodeKind, Scalar, ScalarStyle, ScanError, Seq, SeqItem,
};

#[derive(Debug, Clone, Copy)]
struct Line {
    start: usize,
    /// End of the line's text, before `\n` (and before a `\r`).
    end: usize,
    indent: usize,
    content: usize,
    /// Blank or only a comment.
    trivia: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    MapValue,
    SeqItem,
}

struct Parser<'a> {
    t: &'a str,
    b: &'a [u8],
    /// The scanner's view of each line of the [`LineIndex`]: where its content begins.
    lines: Vec<Line>,
    index: LineIndex,
    nodes: Vec<Node>,
    anchors: Vec<(String, NodeId)>,
    aliases: Vec<NodeId>,
}

type R<T> = Result<T, ScanError>;

impl<'a> Parser<'a> {
    fn new(t: &'a str) -> R<Self> {
        let b = t.as_bytes();
        let index = LineIndex::new(t);
        let mut lines = Vec::new();
        for Range { start, mut end } in index.lines() {
            for brk in [b'\n', b'\r'] {
                if end > start && b[end - 1] == brk {
                    end -= 1;
                }
            }
            let mut content = start;
            while content < end && b[content] == b' ' {
                content += 1;
            }
            let trivia = content == end || b[content] == b'#';
            if !trivia && b[content] == b'\t' {
                return Err(Self::error_at(
                    t,
                    content,
                    "tabs are not allowed in YAML indentation",
                ));
            }
            lines.push(Line {
                start,
                end,
                indent: content - start,
                content,
                trivia,
            });
        }
        Ok(Parser {
            t,
            b,
            lines,
            index,
            nodes: Vec::new(),
            anchors: Vec::new(),
            aliases: Vec::new(),
        })
    }

    fn error_at(t: &str, offset: usize, message: impl Into<String>) -> ScanError {
        let offset = offset.min(t.len());
        let (line, column) = line_col(t, offset);
        ScanError {
            message: message.into(),
            offset,
            line,
            column,
        }
    }

    fn err<T>(&self, offset: usize, message: impl Into<String>) -> R<T> {
        Err(Self::error_at(self.t, offset, message))
    }

    fn line_of(&self, offset: usize) -> usize {
        // The end of a text with a final line break is on the line that break ends.
        self.index.line(offset).min(self.lines.len() - 1)
    }

    fn column(&self, offset: usize) -> usize {
        offset - self.lines[self.line_of(offset)].start
    }

    fn next_content_line(&self, after: usize) -> Option<usize> {
        (after + 1..self.lines.len()).find(|&j| !self.lines[j].trivia)
    }

    /// The end of the anchor or alias name after the `&` or `*` at `p`. Names are limited to
    /// what libyaml and Go's yaml.v3 (which sops uses) accept: letters, digits, `-`, `_`.
    fn name_end(&self, p: usize) -> R<usize> {
        let mut e = p + 1;
        while e < self.b.len()
            && (self.b[e].is_ascii_alphanumeric() || matches!(self.b[e], b'-' | b'_'))
        {
            e += 1;
        }
        let ends_well = e == self.b.len()
            || self.b[e].is_ascii_whitespace()
            || matches!(self.b[e], b',' | b']' | b'}');
        if e == p + 1 || !ends_well {
            return self.err(
                p,
                "anchor and alias names may only hold letters, digits, `-` and `_`",
            );
        }
        Ok(e)
    }

    fn skip_spaces(&self, mut p: usize) -> usize {
        // Tabs may separate tokens within a line (never indent one).
        while p < self.b.len() && matches!(self.b[p], b' ' | b'\t') {
            p += 1;
        }
        p
    }

    fn line_end_of(&self, p: usize) -> usize {
        self.lines[self.line_of(p)].end
    }

    /// True when only spaces and maybe a comment follow `p` on its line.
    fn rest_is_empty(&self, p: usize) -> bool {
        let q = self.skip_spaces(p);
        q >= self.line_end_of(p) || self.b[q] == b'#'
    }

    /// The comment after `p` on its line, when only spaces precede it.
    fn trailing_comment(&self, p: usize) -> Option<String> {
        let q = self.skip_spaces(p);
        let end = self.line_end_of(p);
        (q < end && self.b[q] == b'#').then(|| self.t[q + 1..end].trim().to_string())
    }

    fn expect_line_end(&self, p: usize, what: &str) -> R<()> {
        if self.rest_is_empty(p) {
            Ok(())
        } else {
            self.err(self.skip_spaces(p), format!("unexpected text after {what}"))
        }
    }

    fn push(&mut self, kind: NodeKind, span: Range<usize>, anchor: Option<Anchor>) -> NodeId {
        let id = self.nodes.len();
        if let Some(a) = &anchor {
            self.anchors.push((a.name.clone(), id));
        }
        if matches!(kind, NodeKind::Alias(_)) {
            self.aliases.push(id);
        }
        self.nodes.push(Node {
            kind,
            span,
            anchor,
            comment: None,
        });
        id
    }

    /// A plain or quoted scalar on one line: its trailing comment is kept, and the next line
    /// may not continue it (multi-line plain and quoted scalars are outside the subset).
    fn push_scalar(
        &mut self,
        style: ScalarStyle,
        value: String,
        span: Range<usize>,
        n: isize,
    ) -> R<NodeId> {
        let scalar = Scalar {
            style,
            value,
            block_indent: None,
        };
        self.push_one_line(NodeKind::Scalar(scalar), span, n)
    }

    /// A node that ends on its first line (a flow scalar or an alias), in a collection
    /// indented `n`.
    fn push_one_line(&mut self, kind: NodeKind, span: Range<usize>, n: isize) -> R<NodeId> {
        let end = span.end;
        let id = self.push(kind, span, None);
        self.nodes[id].comment = self.trailing_comment(end);
        self.no_continuation(id, n)?;
        Ok(id)
    }

    fn is_dash_at(&self, p: usize) -> bool {
        self.b.get(p) == Some(&b'-')
            && matches!(
                self.b.get(p + 1),
                None | Some(b' ') | Some(b'\t') | Some(b'\n') | Some(b'\r')
            )
    }

    fn is_doc_marker(&self, line: &Line) -> Option<&'a str> {
        let s = &self.t[line.start..line.end];
        for m in ["---", "..."] {
            if s == m || (s.starts_with(m) && s[3..].starts_with([' ', '\t'])) {
                return Some(m);
            }
        }
        None
    }

    fn parse_document(&mut self) -> R<Option<NodeId>> {
        let j = (0..self.lines.len()).find(|&k| !self.lines[k].trivia);
        let Some(mut j) = j else { return Ok(None) };
        while self.b[self.lines[j].content] == b'%' {
            match self.next_content_line(j) {
                Some(k) => j = k,
                None => return Ok(None),
            }
        }
        if let Some(m) = self.is_doc_marker(&self.lines[j]) {
            if m == "..." {
                return self.err(
                    self.lines[j].start,
                    "document end marker before any content",
                );
            }
            let after = self.lines[j].start + 3;
            if !self.rest_is_empty(after) {
                return self.err(after, "content on the `---` line is not supported");
            }
            match self.next_content_line(j) {
                Some(k) => j = k,
                None => return Ok(None),
            }
        }
        let line = self.lines[j];
        let root = self.parse_inline(line.content, -1)?;
        let last = self.last_line(root, line.content);
        if let Some(k) = self.next_content_line(last) {
            let line = self.lines[k];
            match self.is_doc_marker(&line) {
                Some("...") if self.next_content_line(k).is_none() => {}
                Some(_) => {
                    return self.err(
                        line.start,
                        "several YAML documents in one file are not supported",
                    )
                }
                None => {
                    return self.err(line.content, "unexpected content (check the indentation)")
                }
            }
        }
        Ok(Some(root))
    }

    /// The line holding the node's last character (or `fallback`'s line for empty nodes).
    fn last_line(&self, id: NodeId, fallback: usize) -> usize {
        let span = &self.nodes[id].span;
        let at = if span.end > span.start {
            span.end - 1
        } else {
            fallback
        };
        self.line_of(at.max(fallback))
    }

    /// A node whose properties start at `p` (just after `- `, `key:` or at a line's content);
    /// `n` is the indentation of the parent collection (-1 at the root).
    fn parse_node(&mut self, p: usize, n: isize, ctx: Ctx) -> R<NodeId> {
        let mut q = self.skip_spaces(p);
        let start = q;
        let mut anchor = None;
        if self.b.get(q) == Some(&b'&') && q < self.line_end_of(p) {
            let e = self.name_end(q)?;
            anchor = Some(Anchor {
                name: self.t[q + 1..e].to_string(),
                span: q..e,
            });
            q = self.skip_spaces(e);
        }
        if q < self.line_end_of(p) && self.b[q] == b'!' {
            return self.err(q, "YAML tags are not supported here");
        }
        if self.rest_is_empty(q) {
            let li = self.line_of(p);
            let next = self.next_content_line(li).map(|j| self.lines[j]);
            if let Some(line) = next {
                let deeper = line.indent as isize > n;
                let compact_seq = ctx == Ctx::MapValue
                    && line.indent as isize == n
                    && self.is_dash_at(line.content);
                if (deeper || compact_seq) && self.is_doc_marker(&line).is_none() {
                    let id = self.parse_inline(line.content, n)?;
                    if let Some(a) = anchor {
                        if self.nodes[id].anchor.is_some() {
                            return self.err(a.span.start, "two anchors on one node");
                        }
                        self.anchors.push((a.name.clone(), id));
                        self.nodes[id].span.start = a.span.start;
                        self.nodes[id].anchor = Some(a);
                    }
                    return Ok(id);
                }
            }
            let end = anchor.as_ref().map_or(start, |a| a.span.end);
            let id = self.push(NodeKind::Null, start..end, anchor);
            self.nodes[id].comment = self.trailing_comment(end);
            return Ok(id);
        }
        let id = self.parse_inline(q, n)?;
        if let Some(a) = anchor {
            if matches!(self.nodes[id].kind, NodeKind::Map(_)) {
                return self.err(
                    a.span.start,
                    "an anchor on a mapping key is not supported; put the anchor on its own line",
                );
            }
            self.anchors.push((a.name.clone(), id));
            self.nodes[id].span.start = a.span.start;
            self.nodes[id].anchor = Some(a);
        }
        Ok(id)
    }

    /// Content starting at `q` (no properties): a block collection, a scalar, an alias.
    fn parse_inline(&mut self, q: usize, n: isize) -> R<NodeId> {
        let c = self.b[q];
        let line_end = self.line_end_of(q);
        match c {
            b'*' => {
                let e = self.name_end(q)?;
                let after = self.skip_spaces(e);
                if self.b.get(after) == Some(&b':') {
                    return self.err(q, "an alias as a mapping key is not supported");
                }
                self.expect_line_end(e, "the alias")?;
                self.push_one_line(NodeKind::Alias(self.t[q + 1..e].to_string()), q..e, n)
            }
            b'-' if self.is_dash_at(q) => self.parse_block_seq(q),
            b'[' => {
                let id = self.parse_flow_seq(q)?;
                let end = self.nodes[id].span.end;
                let after = self.skip_spaces(end);
                if self.b.get(after) == Some(&b':') {
                    return self.err(q, "a flow sequence as a mapping key is not supported");
                }
                self.expect_line_end(end, "the flow sequence")?;
                self.nodes[id].comment = self.trailing_comment(end);
                Ok(id)
            }
            b'{' => {
                let end = self.skip_flow_map(q)?;
                self.expect_line_end(end, "the flow mapping")?;
                let id = self.push(NodeKind::Opaque, q..end, None);
                self.nodes[id].comment = self.trailing_comment(end);
                Ok(id)
            }
            b'|' | b'>' => self.parse_block_scalar(q, n),
            b'"' | b'\'' => {
                let (value, end) = self.quoted(q)?;
                let after = self.skip_spaces(end);
                if self.b.get(after) == Some(&b':') && self.is_value_indicator(after) {
                    return self.parse_block_map(q);
                }
                self.expect_line_end(end, "the quoted scalar")?;
                let style = if c == b'"' {
                    ScalarStyle::DoubleQuoted
                } else {
                    ScalarStyle::SingleQuoted
                };
                self.push_scalar(style, value, q..end, n)
            }
            b'?' if matches!(
                self.b.get(q + 1),
                None | Some(b' ') | Some(b'\t') | Some(b'\n')
            ) =>
            {
                self.err(q, "complex mapping keys (`? `) are not supported")
            }
            b'%' | b'@' | b'`' | b'!' | b'&' => {
                self.err(q, format!("`{}` cannot start a plain scalar", c as char))
            }
            _ => {
                // A plain scalar, or the first key of a block mapping.
                let mut e = q;
                let mut is_key = false;
                while e < line_end {
                    let ch = self.b[e];
                    if ch == b':' && self.is_value_indicator(e) {
                        is_key = true;
                        break;
                    }
                    if ch == b'#' && e > q && matches!(self.b[e - 1], b' ' | b'\t') {
                        break;
                    }
                    e += 1;
                }
                if is_key {
                    return self.parse_block_map(q);
                }
                let value = self.t[q..e].trim_end().to_string();
                let end = q + value.len();
                self.push_scalar(ScalarStyle::Plain, value, q..end, n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(doc: &Doc) -> Vec<String> {
        doc.nodes
            .iter()
            .map(|n| {
                let k = match &n.kind {
                    NodeKind::Null => "null".to_string(),
                    NodeKind::Scalar(s) => format!("scalar {:?}", s.value),
                    NodeKind::Alias(a) => format!("*{a}"),
                    NodeKind::Seq(s) => {
                        format!("seq{} {}", if s.flow { " flow" } else { "" }, s.items.len())
                    }
                    NodeKind::Map(m) => format!(
                        "map {}",
                        m.entries
                            .iter()
                            .map(|e| e.key.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                    NodeKind::Opaque => "opaque".to_string(),
                };
                match &n.anchor {
                    Some(a) => format!("&{} {k}", a.name),
                    None => k,
                }
            })
            .collect()
    }

    #[test]
    fn compact_and_indented_sequences() {
        let doc = Doc::parse("a:\n- x\n- &y y # why\nb:\n  - *y\n").unwrap();
        assert_eq!(
            kinds(&doc),
            [
                "scalar \"x\"",
                "&y scalar \"y\"",
                "seq 2",
                "*y",
                "seq 1",
                "map a,b"
            ]
        );
        assert_eq!(doc.nodes[1].comment.as_deref(), Some("why"));
        assert_eq!(doc.resolve(3), Some(1));
    }

    #[test]
    fn anchored_maps_merge_keys_and_flow() {
        let doc = Doc::parse(
            "k:\n  - &h\n    age:\n    - &a age1x\n  - &all\n    <<: [*h]\nr: [*a, b]\n",
        )
        .unwrap();
        let root = doc.root.unwrap();
        let k = doc.get(root, "k").unwrap().value;
        let items = &doc.seq(k).unwrap().items;
        assert_eq!(doc.nodes[items[0].node].anchor.as_ref().unwrap().name, "h");
        assert!(doc.get(items[1].node, "<<").is_some());
        let r = doc.get(root, "r").unwrap().value;
        assert!(doc.seq(r).unwrap().flow);
    }

    #[test]
    fn folded_scalars_fold() {
        let doc = Doc::parse("- age: >-\n    a,\n    b\n").unwrap();
        let s = doc.nodes.iter().find_map(|n| match &n.kind {
            NodeKind::Scalar(s) if s.style == ScalarStyle::Folded => Some(s.value.clone()),
            _ => None,
        });
        assert_eq!(s.as_deref(), Some("a, b"));
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        for bad in [
            "a: !tag x\n",
            "a: b\n  c: d\n",
            "a:\n  - x\n   - y\n",
            "a: one\n  two\n",
            "? a\n: b\n",
            "a: 1\n---\nb: 2\n",
            "a: \"x\n  y\"\n",
            "a: 1\na: 2\n",
        ] {
            assert!(Doc::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn comments_blank_lines_and_document_marker() {
        let doc = Doc::parse(
            "---\n# c\ncreation_rules:\n  - # first\n    path_regex: x\n\n    age: y # tail\n",
        )
        .unwrap();
        assert_eq!(
            kinds(&doc),
            [
                "scalar \"x\"",
                "scalar \"y\"",
                "map path_regex,age",
                "seq 1",
                "map creation_rules"
            ]
        );
    }
}
