//! Bindings: function patterns, the entries of sets and `let`, and attribute paths.

use super::lexer::T;
use super::{range, slice, Parser};
use crate::syntax::ast::{Attr, AttrKind, Entry, Formal, Opt, Param, Slice, Sym, NONE};
impl<'s> Parser<'s, '_> {
    /// After the `{` of a pattern; `bound` is the name of a leading `name@`.
    pub(super) fn parse_pattern(&mut self, bound: Option<Sym>) -> Option<Opt> {
        let base = self.s_formals.len();
        let mut ellipsis = false;
        if self.peek() == T::RBrace {
            self.bump();
        } else {
            loop {
                match self.peek() {
                    T::RBrace => {
                        self.bump();
                        break;
                    }
                    T::Ellipsis => {
                        self.bump();
                        ellipsis = true;
                        self.expect(T::RBrace)?;
                        break;
                    }
                    T::Ident => {
                        let tok = self.bump();
                        let name = self.names.intern(self.text(tok));
                        let default = if self.peek() == T::Question {
                            self.bump();
                            self.parse_expr()?
                        } else {
                            NONE
                        };
                        self.s_formals.push(Formal { name, default });
                        if self.peek() == T::Comma {
                            self.bump();
                        } else {
                            self.expect(T::RBrace)?;
                            break;
                        }
                    }
                    _ => return None,
                }
            }
        }
        let mut bind = bound;
        if self.peek() == T::At {
            if bound.is_some() {
                return None;
            }
            self.bump();
            let tok = self.expect(T::Ident)?;
            bind = Some(self.names.intern(self.text(tok)));
        }
        let s = self.ast.formals.len();
        self.ast.formals.extend(self.s_formals.drain(base..));
        let formals = slice(s, self.ast.formals.len());
        self.ast.params.push(Param::Pattern {
            bind,
            formals,
            ellipsis,
        });
        Some(self.ast.params.len() as u32 - 1)
    }

    /// The bindings of a set or `let`, through the closing `until` token.
    pub(super) fn parse_set(&mut self, until: T) -> Option<Slice> {
        let base = self.s_entries.len();
        loop {
            let t = self.peek();
            if t == until {
                break;
            }
            match t {
                T::Eof => return None,
                T::Inherit => {
                    self.bump();
                    let from = if self.peek() == T::LParen {
                        self.bump();
                        let e = self.parse_expr()?;
                        self.expect(T::RParen)?;
                        e
                    } else {
                        NONE
                    };
                    let abase = self.s_attrs.len();
                    while self.peek() != T::Semi {
                        let a = self.parse_attr()?;
                        self.s_attrs.push(a);
                    }
                    self.bump();
                    let s = self.ast.attrs.len();
                    self.ast.attrs.extend(self.s_attrs.drain(abase..));
                    self.s_entries.push(Entry::Inherit {
                        from,
                        attrs: slice(s, self.ast.attrs.len()),
                    });
                }
                _ => {
                    let start = self.start();
                    let path = self.parse_attrpath()?;
                    self.expect(T::Assign)?;
                    let value = self.parse_expr()?;
                    self.expect(T::Semi)?;
                    self.s_entries.push(Entry::Value {
                        range: range(start, self.last_end),
                        path,
                        value,
                    });
                }
            }
        }
        self.bump();
        let s = self.ast.entries.len();
        self.ast.entries.extend(self.s_entries.drain(base..));
        Some(slice(s, self.ast.entries.len()))
    }

    pub(super) fn parse_attrpath(&mut self) -> Option<Slice> {
        let base = self.s_attrs.len();
        loop {
            let a = self.parse_attr()?;
            self.s_attrs.push(a);
            if self.peek() == T::Dot {
                self.bump();
            } else {
                break;
            }
        }
        let s = self.ast.attrs.len();
        self.ast.attrs.extend(self.s_attrs.drain(base..));
        Some(slice(s, self.ast.attrs.len()))
    }

    fn parse_attr(&mut self) -> Option<Attr> {
        match self.peek() {
            T::InterpStart => {
                let start = self.start();
                self.bump();
                let e = self.parse_expr()?;
                self.expect(T::InterpEnd)?;
                Some(Attr {
                    range: range(start, self.last_end),
                    kind: AttrKind::Dynamic(e),
                })
            }
            T::StrStart => {
                let id = self.parse_string()?;
                Some(Attr {
                    range: self.ast.nodes[id as usize].range,
                    kind: AttrKind::Str(id),
                })
            }
            T::Ident | T::Or => {
                let tok = self.bump();
                let name = self.names.intern(self.text(tok));
                Some(Attr {
                    range: range(tok.start, tok.end),
                    kind: AttrKind::Ident(name),
                })
            }
            _ => None,
        }
    }
}
