//! A lossless scanner for the block-YAML subset `.sops.yaml` files are written in.
//!
//! It does not build a new text: it records, for every node, the byte span it occupies in the
//! original, so edits are computed as [`crate::edit::TextEdit`]s and every byte outside them
//! stays as the user wrote it. The subset: block mappings and sequences (also sequences not
//! indented under their key), plain, quoted, literal and folded scalars, flow sequences of
//! scalars and aliases, anchors, aliases, merge keys, comments anywhere. Anything else (tags,
//! complex keys, multi-line plain scalars, several documents) is an error that names the line,
//! so callers refuse instead of guessing. Flow mappings are kept as opaque nodes.

use std::ops::Range;

/// Index of a node in [`Doc::nodes`].
pub type NodeId = usize;

/// Why the text is outside the supported subset (or not YAML at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ScanError {
    pub message: String,
    pub offset: usize,
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub name: String,
    /// The `&name` text.
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarStyle {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    pub style: ScalarStyle,
    /// The scalar's value as a YAML parser reads it.
    pub value: String,
    /// For block scalars: the indentation (in spaces) of the content lines.
    pub block_indent: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqItem {
    /// Block sequences: offset of the `-`. Flow sequences: offset of the item.
    pub dash: usize,
    pub node: NodeId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seq {
    pub flow: bool,
    /// Block: column of the `-`s. Flow: column of `[`.
    pub column: usize,
    pub items: Vec<SeqItem>,
    /// Flow: offset of the closing `]`.
    pub close: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub key_span: Range<usize>,
    pub value: NodeId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Map {
    /// Column of the keys.
    pub column: usize,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// An empty value (`key:` with nothing under it).
    Null,
    Scalar(Scalar),
    Alias(String),
    Seq(Seq),
    Map(Map),
    /// A flow mapping: spanned, not looked into.
    Opaque,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    /// From the node's anchor (if any) to its last character, trailing comments excluded.
    pub span: Range<usize>,
    pub anchor: Option<Anchor>,
    /// A `# comment` on the same line right after a single-line node (text after `#`, trimmed).
    pub comment: Option<String>,
}

/// A scanned document: the text and its nodes with spans.
#[derive(Debug, Clone)]
pub struct Doc {
    pub text: String,
    pub nodes: Vec<Node>,
    pub root: Option<NodeId>,
    /// Every anchor definition in document order (duplicates kept: lint reports them).
    pub anchors: Vec<(String, NodeId)>,
    /// Every alias node in document order.
    pub aliases: Vec<NodeId>,
}

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
    lines: Vec<Line>,
    nodes: Vec<Node>,
    anchors: Vec<(String, NodeId)>,
    aliases: Vec<NodeId>,
}

type R<T> = Result<T, ScanError>;

impl Doc {
    /// Scans `text`. Fails on anything outside the supported subset.
    pub fn parse(text: &str) -> Result<Doc, ScanError> {
        let mut p = Parser::new(text)?;
        let root = p.parse_document()?;
        Ok(Doc {
            text: text.to_string(),
            nodes: p.nodes,
            root,
            anchors: p.anchors,
            aliases: p.aliases,
        })
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    /// The node an alias points at (the latest definition before it), or the node itself.
    pub fn resolve(&self, id: NodeId) -> Option<NodeId> {
        match &self.nodes[id].kind {
            NodeKind::Alias(name) => self.anchor_before(name, self.nodes[id].span.start),
            _ => Some(id),
        }
    }

    /// The latest definition of anchor `name` that starts before `offset`.
    pub fn anchor_before(&self, name: &str, offset: usize) -> Option<NodeId> {
        self.anchors
            .iter()
            .filter(|(n, id)| n == name && self.nodes[*id].span.start < offset)
            .map(|(_, id)| *id)
            .next_back()
    }

    pub fn map(&self, id: NodeId) -> Option<&Map> {
        match &self.nodes[id].kind {
            NodeKind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn seq(&self, id: NodeId) -> Option<&Seq> {
        match &self.nodes[id].kind {
            NodeKind::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn scalar(&self, id: NodeId) -> Option<&Scalar> {
        match &self.nodes[id].kind {
            NodeKind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The value of `key` in mapping `map` (the entry itself, aliases not followed).
    pub fn get<'d>(&'d self, map: NodeId, key: &str) -> Option<&'d Entry> {
        self.map(map)?.entries.iter().find(|e| e.key == key)
    }

    /// Offset of the start of the line holding `offset`.
    pub fn line_start(&self, offset: usize) -> usize {
        // Bytes, not chars: `offset` may be the last byte of a multi-byte character.
        self.text.as_bytes()[..offset]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
    }

    /// Offset just after the newline ending the line that holds `offset` (or the text's end).
    pub fn line_end(&self, offset: usize) -> usize {
        self.text.as_bytes()[offset..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.text.len(), |i| offset + i + 1)
    }

    /// 1-based line number of `offset`.
    pub fn line_number(&self, offset: usize) -> usize {
        self.text.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// Every node id in the subtree of `id` (aliases not followed), `id` first.
    pub fn descendants(&self, id: NodeId) -> Vec<NodeId> {
        let mut out = vec![id];
        let mut i = 0;
        while i < out.len() {
            match &self.nodes[out[i]].kind {
                NodeKind::Seq(s) => out.extend(s.items.iter().map(|it| it.node)),
                NodeKind::Map(m) => out.extend(m.entries.iter().map(|e| e.value)),
                _ => {}
            }
            i += 1;
        }
        out
    }
}

impl<'a> Parser<'a> {
    fn new(t: &'a str) -> R<Self> {
        let b = t.as_bytes();
        let mut lines = Vec::new();
        let mut start = 0;
        while start < t.len() || (start == t.len() && lines.is_empty()) {
            let nl = t[start..].find('\n').map_or(t.len(), |i| start + i);
            let mut end = nl;
            if end > start && b[end - 1] == b'\r' {
                end -= 1;
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
            if nl == t.len() {
                break;
            }
            start = nl + 1;
        }
        Ok(Parser {
            t,
            b,
            lines,
            nodes: Vec::new(),
            anchors: Vec::new(),
            aliases: Vec::new(),
        })
    }

    fn error_at(t: &str, offset: usize, message: impl Into<String>) -> ScanError {
        // Bytes: an error may point into the middle of a multi-byte character.
        let b = t.as_bytes();
        let offset = offset.min(b.len());
        let line_start = b[..offset]
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |i| i + 1);
        ScanError {
            message: message.into(),
            offset,
            line: b[..offset].iter().filter(|&&c| c == b'\n').count() + 1,
            column: String::from_utf8_lossy(&b[line_start..offset])
                .chars()
                .count()
                + 1,
        }
    }

    fn err<T>(&self, offset: usize, message: impl Into<String>) -> R<T> {
        Err(Self::error_at(self.t, offset, message))
    }

    fn line_of(&self, offset: usize) -> usize {
        match self.lines.binary_search_by(|l| l.start.cmp(&offset)) {
            Ok(i) => i,
            Err(i) => i - 1,
        }
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
                let id = self.push(NodeKind::Alias(self.t[q + 1..e].to_string()), q..e, None);
                self.nodes[id].comment = self.trailing_comment(e);
                self.no_continuation(id, n)?;
                Ok(id)
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
                let id = self.push(
                    NodeKind::Scalar(Scalar {
                        style,
                        value,
                        block_indent: None,
                    }),
                    q..end,
                    None,
                );
                self.nodes[id].comment = self.trailing_comment(end);
                self.no_continuation(id, n)?;
                Ok(id)
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
                let id = self.push(
                    NodeKind::Scalar(Scalar {
                        style: ScalarStyle::Plain,
                        value,
                        block_indent: None,
                    }),
                    q..end,
                    None,
                );
                self.nodes[id].comment = self.trailing_comment(end);
                self.no_continuation(id, n)?;
                Ok(id)
            }
        }
    }

    /// `:` followed by a space or the line's end.
    fn is_value_indicator(&self, p: usize) -> bool {
        matches!(
            self.b.get(p + 1),
            None | Some(b' ') | Some(b'\t') | Some(b'\n') | Some(b'\r')
        )
    }

    /// A single-line scalar must not be followed by a deeper line: that would be a multi-line
    /// plain scalar or an indentation error, both outside the subset.
    fn no_continuation(&self, id: NodeId, n: isize) -> R<()> {
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

    fn quoted(&self, q: usize) -> R<(String, usize)> {
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

    fn parse_block_map(&mut self, first_key: usize) -> R<NodeId> {
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
            let last = self.last_line(value, colon);
            let Some(j) = self.next_content_line(last) else {
                break;
            };
            let line = self.lines[j];
            if self.is_doc_marker(&line).is_some() || line.indent < column {
                break;
            }
            if line.indent > column {
                return self.err(line.content, "unexpected indentation");
            }
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

    fn parse_block_seq(&mut self, first_dash: usize) -> R<NodeId> {
        let column = self.column(first_dash);
        let mut items = Vec::new();
        let mut dash = first_dash;
        loop {
            let node = self.parse_node(dash + 1, column as isize, Ctx::SeqItem)?;
            items.push(SeqItem { dash, node });
            let last = self.last_line(node, dash);
            let Some(j) = self.next_content_line(last) else {
                break;
            };
            let line = self.lines[j];
            if self.is_doc_marker(&line).is_some() || line.indent < column {
                break;
            }
            if line.indent > column {
                return self.err(line.content, "unexpected indentation");
            }
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

    fn parse_flow_seq(&mut self, open: usize) -> R<NodeId> {
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

    fn skip_flow_map(&self, open: usize) -> R<usize> {
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

    fn parse_block_scalar(&mut self, q: usize, n: isize) -> R<NodeId> {
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
        if !texts.is_empty() {
            match chomp {
                b'-' => {}
                _ => value.push('\n'),
            }
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
