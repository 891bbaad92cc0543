//! rnix's tree → [`Ast`]: the fallback path, used for files the fast parser declines (syntax
//! errors, rare constructs). It keeps every quirk the rowan-based evaluator had: a missing
//! child becomes [`NONE`], an rnix error node (or a string with an error inside) becomes
//! [`Kind::Error`], and bindings without a path or a value are dropped, as the evaluator
//! skipped them.

use rnix::ast::{self, HasEntry, InterpolPart};
use rowan::ast::AstNode;

use super::ast::{
    Ast, Attr, AttrKind, Entry, Formal, Interner, Kind, Opt, Param, Part, PathKind, Slice, Sym,
    NONE,
};

/// Deepest nesting lowered; deeper expressions become [`Kind::Error`]. rnix bounds only some of
/// its recursion (10,000 `[` parse into a tree 10,000 levels deep), and lowering recurses once
/// per level, so without this a pathological file overflows the stack.
pub const MAX_DEPTH: u32 = 400;

/// Lowers the expression of `root` (if any).
pub fn lower(root: &rnix::Root, names: &mut Interner) -> Ast {
    lower_bounded(root, names).0
}

/// Lowers the expression of `root`, with the range of the first expression cut off for being
/// nested deeper than [`MAX_DEPTH`], if any (the caller reports it).
pub fn lower_bounded(root: &rnix::Root, names: &mut Interner) -> (Ast, Option<rowan::TextRange>) {
    let mut l = Lower {
        ast: Ast::default(),
        names,
        depth: 0,
        too_deep: None,
    };
    l.ast.root = match root.expr() {
        Some(e) => l.expr(&e),
        None => NONE,
    };
    (l.ast, l.too_deep)
}

struct Lower<'n> {
    ast: Ast,
    names: &'n mut Interner,
    depth: u32,
    too_deep: Option<rowan::TextRange>,
}

/// True when every child node of a string or path is an interpolation. rnix's `parts()`
/// panics on the error nodes a broken file can put there, so those are checked first.
fn well_formed_parts(node: &rnix::SyntaxNode) -> bool {
    node.children()
        .all(|c| c.kind() == rnix::SyntaxKind::NODE_INTERPOL)
}

impl Lower<'_> {
    fn opt(&mut self, e: Option<ast::Expr>) -> Opt {
        match e {
            Some(e) => self.expr(&e),
            None => NONE,
        }
    }

    fn ident_sym(&mut self, id: Option<ast::Ident>) -> Option<Sym> {
        id.and_then(|i| i.ident_token())
            .map(|t| self.names.intern(t.text()))
    }

    fn expr(&mut self, expr: &ast::Expr) -> u32 {
        if self.depth >= MAX_DEPTH {
            let range = expr.syntax().text_range();
            self.too_deep.get_or_insert(range);
            return self.ast.push(range, Kind::Error);
        }
        self.depth += 1;
        let id = self.expr_unbounded(expr);
        self.depth -= 1;
        id
    }

    fn expr_unbounded(&mut self, expr: &ast::Expr) -> u32 {
        let range = expr.syntax().text_range();
        let kind = match expr {
            ast::Expr::Literal(lit) => match lit.kind() {
                ast::LiteralKind::Integer(i) => Kind::Int(i.value().ok()),
                ast::LiteralKind::Float(f) => Kind::Float(f.value().unwrap_or(f64::NAN)),
                ast::LiteralKind::Uri(_) => Kind::Uri,
            },
            ast::Expr::Str(s) => return self.string(s),
            ast::Expr::PathAbs(_)
            | ast::Expr::PathRel(_)
            | ast::Expr::PathHome(_)
            | ast::Expr::PathSearch(_) => {
                if !well_formed_parts(expr.syntax()) {
                    Kind::Error
                } else {
                    let (kind, parts) = match expr {
                        ast::Expr::PathAbs(p) => (PathKind::Abs, p.parts()),
                        ast::Expr::PathRel(p) => (PathKind::Rel, p.parts()),
                        ast::Expr::PathHome(_) => (PathKind::Home, Vec::new()),
                        _ => (PathKind::Search, Vec::new()),
                    };
                    let mut out = Vec::with_capacity(parts.len());
                    for part in parts {
                        out.push(match part {
                            InterpolPart::Literal(c) => self.ast.push_lit(c.text()),
                            InterpolPart::Interpolation(i) => {
                                let e = self.opt(i.expr());
                                Part::Interp(e)
                            }
                        });
                    }
                    let parts = self.push_parts(out);
                    Kind::Path { kind, parts }
                }
            }
            ast::Expr::Ident(id) => Kind::Ident(self.ident(id)),
            ast::Expr::Paren(p) => Kind::Paren(self.opt(p.expr())),
            ast::Expr::Root(r) => Kind::Paren(self.opt(r.expr())),
            ast::Expr::List(l) => {
                let items: Vec<u32> = l.items().map(|i| self.expr(&i)).collect();
                let start = self.ast.items.len() as u32;
                self.ast.items.extend(items);
                Kind::List {
                    items: Slice {
                        start,
                        len: self.ast.items.len() as u32 - start,
                    },
                }
            }
            ast::Expr::AttrSet(set) => {
                let entries = self.entries(set);
                Kind::AttrSet {
                    rec: set.rec_token().is_some(),
                    entries,
                }
            }
            ast::Expr::LetIn(l) => {
                let entries = self.entries(l);
                let body = self.opt(l.body());
                Kind::LetIn { entries, body }
            }
            ast::Expr::LegacyLet(_) => Kind::LegacyLet,
            ast::Expr::With(w) => {
                let ns = self.opt(w.namespace());
                let body = self.opt(w.body());
                Kind::With { ns, body }
            }
            ast::Expr::Select(sel) => {
                let e = self.opt(sel.expr());
                let path = sel.attrpath().map(|p| self.attrpath(&p));
                let default = self.opt(sel.default_expr());
                Kind::Select {
                    expr: e,
                    path,
                    default,
                }
            }
            ast::Expr::HasAttr(h) => {
                let e = self.opt(h.expr());
                let path = h.attrpath().map(|p| self.attrpath(&p));
                Kind::HasAttr { expr: e, path }
            }
            ast::Expr::BinOp(b) => {
                let lhs = self.opt(b.lhs());
                let rhs = self.opt(b.rhs());
                Kind::BinOp {
                    op: b.operator(),
                    lhs,
                    rhs,
                }
            }
            ast::Expr::UnaryOp(u) => {
                let e = self.opt(u.expr());
                Kind::UnaryOp {
                    op: u.operator(),
                    expr: e,
                }
            }
            ast::Expr::IfElse(i) => {
                let cond = self.opt(i.condition());
                let then = self.opt(i.body());
                let els = self.opt(i.else_body());
                Kind::IfElse { cond, then, els }
            }
            ast::Expr::Assert(a) => {
                let cond = self.opt(a.condition());
                let body = self.opt(a.body());
                Kind::Assert { cond, body }
            }
            ast::Expr::Lambda(l) => {
                let param = match l.param() {
                    None => NONE,
                    Some(ast::Param::IdentParam(p)) => {
                        let s = self.ident_sym(p.ident());
                        self.ast.params.push(Param::Ident(s));
                        self.ast.params.len() as u32 - 1
                    }
                    Some(ast::Param::Pattern(p)) => {
                        let bind = self.ident_sym(p.pat_bind().and_then(|b| b.ident()));
                        let mut formals = Vec::new();
                        for entry in p.pat_entries() {
                            let Some(name) = self.ident_sym(entry.ident()) else {
                                continue;
                            };
                            let default = self.opt(entry.default());
                            formals.push(Formal { name, default });
                        }
                        let start = self.ast.formals.len() as u32;
                        self.ast.formals.extend(formals);
                        let formals = Slice {
                            start,
                            len: self.ast.formals.len() as u32 - start,
                        };
                        self.ast.params.push(Param::Pattern {
                            bind,
                            formals,
                            ellipsis: p.ellipsis_token().is_some(),
                        });
                        self.ast.params.len() as u32 - 1
                    }
                };
                let body = self.opt(l.body());
                Kind::Lambda { param, body }
            }
            ast::Expr::Apply(app) => {
                let func = self.opt(app.lambda());
                let arg = self.opt(app.argument());
                Kind::Apply { func, arg }
            }
            ast::Expr::CurPos(_) => Kind::CurPos,
            ast::Expr::Error(_) => Kind::Error,
        };
        self.ast.push(range, kind)
    }

    fn push_parts(&mut self, parts: Vec<Part>) -> Slice {
        let start = self.ast.parts.len() as u32;
        self.ast.parts.extend(parts);
        Slice {
            start,
            len: self.ast.parts.len() as u32 - start,
        }
    }

    fn string(&mut self, s: &ast::Str) -> u32 {
        let range = s.syntax().text_range();
        if !well_formed_parts(s.syntax()) {
            return self.ast.push(range, Kind::Error);
        }
        // rnix's own normalization (indentation, escapes) is the reference the fast parser's
        // copy is tested against.
        let texts: Vec<InterpolPart<String>> = s.normalized_parts();
        let mut raw_done = Vec::with_capacity(texts.len());
        for part in texts {
            raw_done.push(match part {
                InterpolPart::Literal(t) => Ok(t),
                InterpolPart::Interpolation(i) => Err(self.opt(i.expr())),
            });
        }
        let mut parts = Vec::with_capacity(raw_done.len());
        for p in raw_done {
            parts.push(match p {
                Ok(t) => self.ast.push_lit(&t),
                Err(e) => Part::Interp(e),
            });
        }
        let parts = self.push_parts(parts);
        self.ast.push(range, Kind::Str { parts })
    }

    fn attrpath(&mut self, path: &ast::Attrpath) -> Slice {
        let attrs: Vec<ast::Attr> = path.attrs().collect();
        self.attrs(attrs)
    }

    /// An identifier's name, interned (empty when rnix recovered from an error without one).
    fn ident(&mut self, id: &ast::Ident) -> Sym {
        match id.ident_token() {
            Some(t) => self.names.intern(t.text()),
            None => self.names.intern(""),
        }
    }

    fn attrs(&mut self, attrs: Vec<ast::Attr>) -> Slice {
        let mut out = Vec::with_capacity(attrs.len());
        for attr in attrs {
            let range = attr.syntax().text_range();
            let kind = match &attr {
                ast::Attr::Ident(i) => AttrKind::Ident(self.ident(i)),
                ast::Attr::Str(s) => AttrKind::Str(self.string(s)),
                ast::Attr::Dynamic(d) => AttrKind::Dynamic(self.opt(d.expr())),
            };
            out.push(Attr { range, kind });
        }
        let start = self.ast.attrs.len() as u32;
        self.ast.attrs.extend(out);
        Slice {
            start,
            len: self.ast.attrs.len() as u32 - start,
        }
    }

    fn entries(&mut self, node: &impl HasEntry) -> Slice {
        let mut out = Vec::new();
        for entry in node.entries() {
            match entry {
                ast::Entry::Inherit(inh) => {
                    let from = self.opt(inh.from().and_then(|f| f.expr()));
                    let attrs = self.attrs(inh.attrs().collect());
                    out.push(Entry::Inherit { from, attrs });
                }
                ast::Entry::AttrpathValue(apv) => {
                    // The evaluator skipped these before looking at any name.
                    let Some(path) = apv.attrpath() else { continue };
                    let Some(value) = apv.value() else { continue };
                    let path = self.attrpath(&path);
                    let value = self.expr(&value);
                    out.push(Entry::Value {
                        range: apv.syntax().text_range(),
                        path,
                        value,
                    });
                }
            }
        }
        let start = self.ast.entries.len() as u32;
        self.ast.entries.extend(out);
        Slice {
            start,
            len: self.ast.entries.len() as u32 - start,
        }
    }
}
