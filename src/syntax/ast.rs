//! A compact arena AST of Nix expressions: what the static evaluator walks instead of rowan.
//!
//! Nodes live in one `Vec` and refer to each other by `u32` index; lists of children (list
//! items, bindings, attribute paths, string parts, formals) are ranges into side tables, so a
//! [`Node`] is `Copy` and evaluating it never touches an allocator. Every node keeps the
//! [`TextRange`] rnix would give it, so spans stay byte-identical to the rnix-based evaluator.
//! Two producers build it: [`super::fast`] (a hand-written parser for well-formed files) and
//! [`super::lower`] (rnix's tree, for everything else, including files with syntax errors).

use std::fmt::Write as _;
use std::rc::Rc;

use rnix::ast::{BinOpKind, UnaryOpKind};
use rowan::TextRange;
use rustc_hash::FxHashMap;

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

    /// A canonical text form of the tree (names resolved, every range shown), so two trees
    /// built by different producers can be compared structurally.
    pub fn dump(&self, names: &Interner) -> String {
        let mut out = String::new();
        self.dump_opt(self.root, names, 0, &mut out);
        out
    }

    fn dump_opt(&self, id: Opt, names: &Interner, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        if id == NONE {
            let _ = writeln!(out, "{pad}<none>");
            return;
        }
        let n = self.node(id);
        let r = n.range;
        let _ = write!(
            out,
            "{pad}{:?}@{}..{} ",
            kind_name(&n.kind),
            u32::from(r.start()),
            u32::from(r.end())
        );
        let d = depth + 1;
        match n.kind {
            Kind::Error | Kind::Uri | Kind::CurPos | Kind::LegacyLet => {
                let _ = writeln!(out);
            }
            Kind::Int(i) => {
                let _ = writeln!(out, "{i:?}");
            }
            Kind::Float(f) => {
                let _ = writeln!(out, "{:x}", f.to_bits());
            }
            Kind::Str { parts } => {
                let _ = writeln!(out);
                self.dump_parts(parts, names, d, out);
            }
            Kind::Path { kind, parts } => {
                let _ = writeln!(out, "{kind:?}");
                self.dump_parts(parts, names, d, out);
            }
            Kind::Ident(s) => {
                let _ = writeln!(out, "{:?}", names.resolve(s));
            }
            Kind::Paren(e) => {
                let _ = writeln!(out);
                self.dump_opt(e, names, d, out);
            }
            Kind::List { items } => {
                let _ = writeln!(out);
                for &i in &self.items[items.range()] {
                    self.dump_opt(i, names, d, out);
                }
            }
            Kind::AttrSet { rec, entries } => {
                let _ = writeln!(out, "rec={rec}");
                self.dump_entries(entries, names, d, out);
            }
            Kind::LetIn { entries, body } => {
                let _ = writeln!(out);
                self.dump_entries(entries, names, d, out);
                self.dump_opt(body, names, d, out);
            }
            Kind::With { ns, body } | Kind::Assert { cond: ns, body } => {
                let _ = writeln!(out);
                self.dump_opt(ns, names, d, out);
                self.dump_opt(body, names, d, out);
            }
            Kind::Select {
                expr,
                path,
                default,
            } => {
                let _ = writeln!(out);
                self.dump_opt(expr, names, d, out);
                self.dump_path(path, names, d, out);
                self.dump_opt(default, names, d, out);
            }
            Kind::HasAttr { expr, path } => {
                let _ = writeln!(out);
                self.dump_opt(expr, names, d, out);
                self.dump_path(path, names, d, out);
            }
            Kind::BinOp { op, lhs, rhs } => {
                let _ = writeln!(out, "{op:?}");
                self.dump_opt(lhs, names, d, out);
                self.dump_opt(rhs, names, d, out);
            }
            Kind::UnaryOp { op, expr } => {
                let _ = writeln!(out, "{op:?}");
                self.dump_opt(expr, names, d, out);
            }
            Kind::IfElse { cond, then, els } => {
                let _ = writeln!(out);
                self.dump_opt(cond, names, d, out);
                self.dump_opt(then, names, d, out);
                self.dump_opt(els, names, d, out);
            }
            Kind::Lambda { param, body } => {
                let pad2 = "  ".repeat(d);
                let _ = writeln!(out);
                if param == NONE {
                    let _ = writeln!(out, "{pad2}<no param>");
                } else {
                    match self.params[param as usize] {
                        Param::Ident(s) => {
                            let _ = writeln!(out, "{pad2}param {:?}", s.map(|s| names.resolve(s)));
                        }
                        Param::Pattern {
                            bind,
                            formals,
                            ellipsis,
                        } => {
                            let _ = writeln!(
                                out,
                                "{pad2}pattern bind={:?} ellipsis={ellipsis}",
                                bind.map(|s| names.resolve(s))
                            );
                            for f in &self.formals[formals.range()] {
                                let _ = writeln!(out, "{pad2}formal {:?}", names.resolve(f.name));
                                self.dump_opt(f.default, names, d + 1, out);
                            }
                        }
                    }
                }
                self.dump_opt(body, names, d, out);
            }
            Kind::Apply { func, arg } => {
                let _ = writeln!(out);
                self.dump_opt(func, names, d, out);
                self.dump_opt(arg, names, d, out);
            }
        }
    }

    fn dump_parts(&self, parts: Slice, names: &Interner, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        for p in &self.parts[parts.range()] {
            match *p {
                Part::Lit { start, end } => {
                    let _ = writeln!(out, "{pad}lit {:?}", self.lit(start, end));
                }
                Part::Interp(e) => {
                    let _ = writeln!(out, "{pad}interp");
                    self.dump_opt(e, names, depth + 1, out);
                }
            }
        }
    }

    fn dump_path(&self, path: Option<Slice>, names: &Interner, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        match path {
            None => {
                let _ = writeln!(out, "{pad}<no path>");
            }
            Some(p) => self.dump_attrs(p, names, depth, out),
        }
    }

    fn dump_attrs(&self, attrs: Slice, names: &Interner, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        for a in &self.attrs[attrs.range()] {
            let r = a.range;
            let _ = write!(
                out,
                "{pad}attr@{}..{} ",
                u32::from(r.start()),
                u32::from(r.end())
            );
            match a.kind {
                AttrKind::Ident(s) => {
                    let _ = writeln!(out, "{:?}", names.resolve(s));
                }
                AttrKind::Str(e) => {
                    let _ = writeln!(out, "str");
                    self.dump_opt(e, names, depth + 1, out);
                }
                AttrKind::Dynamic(e) => {
                    let _ = writeln!(out, "dynamic");
                    self.dump_opt(e, names, depth + 1, out);
                }
            }
        }
    }

    fn dump_entries(&self, entries: Slice, names: &Interner, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        for e in &self.entries[entries.range()] {
            match *e {
                Entry::Inherit { from, attrs } => {
                    let _ = writeln!(out, "{pad}inherit");
                    self.dump_opt(from, names, depth + 1, out);
                    self.dump_attrs(attrs, names, depth + 1, out);
                }
                Entry::Value { range, path, value } => {
                    let _ = writeln!(
                        out,
                        "{pad}binding@{}..{}",
                        u32::from(range.start()),
                        u32::from(range.end())
                    );
                    self.dump_attrs(path, names, depth + 1, out);
                    self.dump_opt(value, names, depth + 1, out);
                }
            }
        }
    }
}

fn kind_name(k: &Kind) -> &'static str {
    match k {
        Kind::Error => "Error",
        Kind::Int(_) => "Int",
        Kind::Float(_) => "Float",
        Kind::Uri => "Uri",
        Kind::Str { .. } => "Str",
        Kind::Path { .. } => "Path",
        Kind::Ident(_) => "Ident",
        Kind::CurPos => "CurPos",
        Kind::Paren(_) => "Paren",
        Kind::List { .. } => "List",
        Kind::AttrSet { .. } => "AttrSet",
        Kind::LetIn { .. } => "LetIn",
        Kind::LegacyLet => "LegacyLet",
        Kind::With { .. } => "With",
        Kind::Select { .. } => "Select",
        Kind::HasAttr { .. } => "HasAttr",
        Kind::BinOp { .. } => "BinOp",
        Kind::UnaryOp { .. } => "UnaryOp",
        Kind::IfElse { .. } => "IfElse",
        Kind::Assert { .. } => "Assert",
        Kind::Lambda { .. } => "Lambda",
        Kind::Apply { .. } => "Apply",
    }
}

/// Interprets the escapes of one literal part of a string, as rnix's `normalized_parts` does.
pub fn unescape(input: &str, multiline: bool, out: &mut String) {
    let mut it = input.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '"' if !multiline => break,
            '\\' if !multiline => match it.next() {
                None => break,
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some(c) => out.push(c),
            },
            '\'' if multiline => match it.next() {
                None => out.push('\''),
                Some('\'') => match it.peek() {
                    Some('\'') => {
                        it.next();
                        out.push_str("''");
                    }
                    Some('$') => {
                        it.next();
                        out.push('$');
                    }
                    Some('\\') => {
                        it.next();
                        match it.next() {
                            None => break,
                            Some('n') => out.push('\n'),
                            Some('r') => out.push('\r'),
                            Some('t') => out.push('\t'),
                            Some(c) => out.push(c),
                        }
                    }
                    _ => break,
                },
                Some(c) => {
                    out.push('\'');
                    out.push(c);
                }
            },
            c => out.push(c),
        }
    }
}

/// A raw part of a string as the tokenizer splits it: literal source text or an interpolation.
#[derive(Debug, Clone, Copy)]
pub enum RawPart<'s> {
    Lit(&'s str),
    Interp(Opt),
}

/// Turns raw string parts into [`Part`]s the way rnix's `normalized_parts` does (indentation
/// stripping for `''` strings, then unescaping), appending them to `ast.parts`.
pub fn normalize_parts(ast: &mut Ast, raw: &[RawPart<'_>], multiline: bool) -> Slice {
    let start = ast.parts.len() as u32;
    if !multiline {
        for p in raw {
            let part = match *p {
                RawPart::Lit(t) => {
                    let s = ast.strbuf.len() as u32;
                    // Without a backslash there is nothing to unescape (a content part never
                    // holds an unescaped `"`).
                    if t.as_bytes().contains(&b'\\') {
                        unescape(t, false, &mut ast.strbuf);
                    } else {
                        ast.strbuf.push_str(t);
                    }
                    Part::Lit {
                        start: s,
                        end: ast.strbuf.len() as u32,
                    }
                }
                RawPart::Interp(e) => Part::Interp(e),
            };
            ast.parts.push(part);
        }
        return Slice {
            start,
            len: ast.parts.len() as u32 - start,
        };
    }
    // First pass: the smallest indentation of any line that has content.
    let mut at_start_of_line = true;
    let mut min_indent = 1_000_000usize;
    let mut cur_indent = 0usize;
    let n = raw.len();
    let first_is_literal = matches!(raw.first(), Some(RawPart::Lit(_)));
    for (idx, p) in raw.iter().enumerate() {
        match *p {
            RawPart::Interp(_) => {
                if at_start_of_line {
                    at_start_of_line = false;
                    min_indent = min_indent.min(cur_indent);
                }
            }
            RawPart::Lit(mut text) => {
                if idx == 0 {
                    text = strip_first_line(text);
                }
                for c in text.chars() {
                    if at_start_of_line {
                        if c == ' ' {
                            cur_indent += 1;
                        } else if c == '\n' {
                            cur_indent = 0;
                        } else {
                            at_start_of_line = false;
                            min_indent = min_indent.min(cur_indent);
                        }
                    } else if c == '\n' {
                        at_start_of_line = true;
                        cur_indent = 0;
                    }
                }
            }
        }
    }
    let mut cur_dropped = 0usize;
    at_start_of_line = true;
    for (i, p) in raw.iter().enumerate() {
        match *p {
            RawPart::Interp(e) => {
                at_start_of_line = false;
                cur_dropped = 0;
                ast.parts.push(Part::Interp(e));
            }
            RawPart::Lit(mut text) => {
                if i == 0 && first_is_literal {
                    let stripped = strip_first_line(text);
                    if stripped.len() != text.len() {
                        text = stripped;
                        if text.is_empty() {
                            continue;
                        }
                    }
                }
                let mut s = String::with_capacity(text.len());
                for c in text.chars() {
                    if at_start_of_line {
                        if c == ' ' {
                            if cur_dropped >= min_indent {
                                s.push(c);
                            }
                            cur_dropped += 1;
                        } else if c == '\n' {
                            cur_dropped = 0;
                            s.push(c);
                        } else {
                            at_start_of_line = false;
                            cur_dropped = 0;
                            s.push(c);
                        }
                    } else {
                        s.push(c);
                        if c == '\n' {
                            at_start_of_line = true;
                        }
                    }
                }
                if i == n - 1 {
                    if let Some(p) = s.rfind('\n') {
                        if s[p + 1..].chars().all(|c| c == ' ') {
                            s.truncate(p + 1);
                        }
                    }
                }
                let st = ast.strbuf.len() as u32;
                unescape(&s, true, &mut ast.strbuf);
                ast.parts.push(Part::Lit {
                    start: st,
                    end: ast.strbuf.len() as u32,
                });
            }
        }
    }
    Slice {
        start,
        len: ast.parts.len() as u32 - start,
    }
}

/// Drops a first line made only of spaces (up to and including its newline).
fn strip_first_line(text: &str) -> &str {
    match text.find('\n') {
        Some(p) if text[..p].chars().all(|c| c == ' ') => &text[p + 1..],
        _ => text,
    }
}
