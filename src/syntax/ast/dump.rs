//! A canonical text dump of an [`Ast`], so trees built by different producers can be compared.

use std::fmt::Write as _;

use super::{Ast, AttrKind, Entry, Interner, Kind, Opt, Param, Part, Slice, NONE};

impl Ast {
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
