//! A compact arena AST of Nix expressions: what the static evaluator walks instead of rowan.
//!
//! Nodes live in one `Vec` and refer to each other by `u32` index; lists of children (list
//! items, bindings, attribute paths, string parts, formals) are ranges into side tables, so a
//! [`Node`] is `Copy` and evaluating it never touches an allocator. Every node keeps the
//! [`TextRange`] rnix would give it, so spans stay byte-identical to the rnix-based evaluator.
//! Two producers build it: [`super::fast`] (a hand-written parser for well-formed files) and
//! [`super::lower`] (rnix's tree, for everything else, including files with syntax errors).

mod dump;
mod strings;

use std::rc::Rc;

use rnix::ast::{BinOpKind, UnaryOpKind};
use rowan::TextRange;
use rustc_hash::FxHashMap;

pub use self::strings::{normalize_parts, unescape, RawPart};

/// Index of a node in [`Ast::nodes`].
pub type ExprId = u32;

/// An optional child: [`NONE`] where rnix's tree has none (only in files with syntax errors).
pub type Opt = u32;

/// The missing child.
pub const NONE: Opt = u32::MAX;

/// An interned name (identifier or attribute name), global to one [`Interner`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sym(pub u32);

/// Interns names so sets and scopes hash and compare `u32`s, not strings.
#[derive(Debug, Default)]
pub struct Interner {
    map: FxHashMap<Rc<str>, Sym>,
    names: Vec<Rc<str>>,
}

impl Interner {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn intern(&mut self, name: &str) -> Sym {
        if let Some(&s) = self.map.get(name) {
            return s;
        }
        let rc: Rc<str> = name.into();
        let s = Sym(self.names.len() as u32);
        self.names.push(rc.clone());
        self.map.insert(rc, s);
        s
    }

    pub fn resolve(&self, s: Sym) -> &str {
        &self.names[s.0 as usize]
    }

    /// The name as a shared string (no copy).
    pub fn resolve_rc(&self, s: Sym) -> &Rc<str> {
        &self.names[s.0 as usize]
    }
}

/// A range of a side table: `start..start + len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Slice {
    pub start: u32,
    pub len: u32,
}

impl Slice {
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..(self.start + self.len) as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    Abs,
    Rel,
    Home,
    Search,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// An rnix error node (or a string/path whose parts are malformed): evaluates to an error.
    Error,
    /// An integer literal; `None` when it does not fit in 64 bits.
    Int(Option<i64>),
    Float(f64),
    /// A URI literal: its value is its text.
    Uri,
    /// A string; `parts` index [`Ast::parts`], already unescaped and de-indented.
    Str {
        parts: Slice,
    },
    Path {
        kind: PathKind,
        parts: Slice,
    },
    Ident(Sym),
    CurPos,
    Paren(Opt),
    /// List items index [`Ast::items`].
    List {
        items: Slice,
    },
    AttrSet {
        rec: bool,
        entries: Slice,
    },
    LetIn {
        entries: Slice,
        body: Opt,
    },
    LegacyLet,
    With {
        ns: Opt,
        body: Opt,
    },
    /// `path` indexes [`Ast::attrs`]; `None` when rnix has no attribute path.
    Select {
        expr: Opt,
        path: Option<Slice>,
        default: Opt,
    },
    HasAttr {
        expr: Opt,
        path: Option<Slice>,
    },
    BinOp {
        op: Option<BinOpKind>,
        lhs: Opt,
        rhs: Opt,
    },
    UnaryOp {
        op: Option<UnaryOpKind>,
        expr: Opt,
    },
    IfElse {
        cond: Opt,
        then: Opt,
        els: Opt,
    },
    Assert {
        cond: Opt,
        body: Opt,
    },
    /// `param` indexes [`Ast::params`] ([`NONE`] when missing).
    Lambda {
        param: Opt,
        body: Opt,
    },
    Apply {
        func: Opt,
        arg: Opt,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node {
    pub range: TextRange,
    pub kind: Kind,
}

/// A part of a string or path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Literal text: `start..end` in [`Ast::strbuf`].
    Lit { start: u32, end: u32 },
    /// `${…}`; [`NONE`] when the interpolation is empty in a broken file.
    Interp(Opt),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrKind {
    Ident(Sym),
    /// A string key; the node is a [`Kind::Str`] (or [`Kind::Error`]).
    Str(ExprId),
    /// `${…}`.
    Dynamic(Opt),
}

/// One attribute of an attribute path or an `inherit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub range: TextRange,
    pub kind: AttrKind,
}

/// A binding of a set or `let`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// `inherit (from) attrs;` (`from` is [`NONE`] without parentheses).
    Inherit { from: Opt, attrs: Slice },
    /// `path = value;`; `range` is the whole binding.
    Value {
        range: TextRange,
        path: Slice,
        value: ExprId,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    Ident(Option<Sym>),
    /// `{ formals, ... }@bind`; `formals` index [`Ast::formals`].
    Pattern {
        bind: Option<Sym>,
        formals: Slice,
        ellipsis: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Formal {
    pub name: Sym,
    pub default: Opt,
}

/// One file's expression tree.
#[derive(Debug, Default)]
pub struct Ast {
    pub nodes: Vec<Node>,
    pub items: Vec<ExprId>,
    pub entries: Vec<Entry>,
    pub attrs: Vec<Attr>,
    pub parts: Vec<Part>,
    pub strbuf: String,
    pub params: Vec<Param>,
    pub formals: Vec<Formal>,
    /// The file's expression ([`NONE`] for an empty or unparsable file).
    pub root: Opt,
}

impl Ast {
    pub fn push(&mut self, range: TextRange, kind: Kind) -> ExprId {
        self.nodes.push(Node { range, kind });
        self.nodes.len() as ExprId - 1
    }

    pub fn node(&self, id: ExprId) -> Node {
        self.nodes[id as usize]
    }

    pub fn lit(&self, start: u32, end: u32) -> &str {
        &self.strbuf[start as usize..end as usize]
    }

    /// Appends literal text and returns its part.
    pub fn push_lit(&mut self, text: &str) -> Part {
        let start = self.strbuf.len() as u32;
        self.strbuf.push_str(text);
        Part::Lit {
            start,
            end: self.strbuf.len() as u32,
        }
    }
}
