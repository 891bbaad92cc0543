//! The scanned tree: nodes with their byte spans, and the queries callers make of it.

use std::ops::Range;

use super::Parser;
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
