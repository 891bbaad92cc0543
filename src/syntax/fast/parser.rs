//! Expressions: `let`/`with`/`if`/`assert`, the operator precedence ladder, application
//! and the simple expressions (literals, lists, sets, lambdas, selections).

use rnix::ast::{BinOpKind, UnaryOpKind};

use super::lexer::T;
use super::{slice, Parser, MAX_DEPTH};
use crate::syntax::ast::{ExprId, Kind, Param, PathKind, NONE};
impl<'s> Parser<'s, '_> {
    pub(super) fn parse_expr(&mut self) -> Option<ExprId> {
        if self.depth >= MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        let out = self.parse_expr_inner();
        self.depth -= 1;
        out
    }

    fn parse_expr_inner(&mut self) -> Option<ExprId> {
        match self.peek() {
            T::Let => {
                let start = self.start();
                self.bump();
                if self.peek() == T::LBrace {
                    return None;
                }
                let entries = self.parse_set(T::In)?;
                let body = self.parse_expr()?;
                Some(self.node(start, Kind::LetIn { entries, body }))
            }
            T::With => {
                let start = self.start();
                self.bump();
                let ns = self.parse_expr()?;
                self.expect(T::Semi)?;
                let body = self.parse_expr()?;
                Some(self.node(start, Kind::With { ns, body }))
            }
            T::If => {
                let start = self.start();
                self.bump();
                let cond = self.parse_expr()?;
                self.expect(T::Then)?;
                let then = self.parse_expr()?;
                self.expect(T::Else)?;
                let els = self.parse_expr()?;
                Some(self.node(start, Kind::IfElse { cond, then, els }))
            }
            T::Assert => {
                let start = self.start();
                self.bump();
                let cond = self.parse_expr()?;
                self.expect(T::Semi)?;
                let body = self.parse_expr()?;
                Some(self.node(start, Kind::Assert { cond, body }))
            }
            _ => self.parse_implication(),
        }
    }

    fn binop(&mut self, lhs: ExprId, op: BinOpKind, rhs: ExprId) -> ExprId {
        let start = self.node_start(lhs);
        self.node(
            start,
            Kind::BinOp {
                op: Some(op),
                lhs,
                rhs,
            },
        )
    }

    fn parse_implication(&mut self) -> Option<ExprId> {
        let lhs = self.parse_or()?;
        if self.peek() == T::Implication {
            self.bump();
            let rhs = self.parse_implication()?;
            return Some(self.binop(lhs, BinOpKind::Implication, rhs));
        }
        Some(lhs)
    }

    #[inline(always)]
    fn parse_or(&mut self) -> Option<ExprId> {
        let mut lhs = self.parse_and()?;
        while self.peek() == T::OrOr {
            self.bump();
            let rhs = self.parse_and()?;
            lhs = self.binop(lhs, BinOpKind::Or, rhs);
        }
        Some(lhs)
    }

    #[inline(always)]
    fn parse_and(&mut self) -> Option<ExprId> {
        let mut lhs = self.parse_equal()?;
        while self.peek() == T::AndAnd {
            self.bump();
            let rhs = self.parse_equal()?;
            lhs = self.binop(lhs, BinOpKind::And, rhs);
        }
        Some(lhs)
    }

    #[inline(always)]
    fn parse_equal(&mut self) -> Option<ExprId> {
        let lhs = self.parse_compare()?;
        let op = match self.peek() {
            T::Equal => BinOpKind::Equal,
            T::NotEqual => BinOpKind::NotEqual,
            _ => return Some(lhs),
        };
        self.bump();
        let rhs = self.parse_compare()?;
        Some(self.binop(lhs, op, rhs))
    }

    #[inline(always)]
    fn parse_compare(&mut self) -> Option<ExprId> {
        let lhs = self.parse_merge()?;
        let op = match self.peek() {
            T::Less => BinOpKind::Less,
            T::LessEq => BinOpKind::LessOrEq,
            T::More => BinOpKind::More,
            T::MoreEq => BinOpKind::MoreOrEq,
            _ => return Some(lhs),
        };
        self.bump();
        let rhs = self.parse_merge()?;
        Some(self.binop(lhs, op, rhs))
    }

    fn parse_merge(&mut self) -> Option<ExprId> {
        let lhs = self.parse_invert()?;
        if self.peek() == T::Update {
            self.bump();
            let rhs = self.parse_merge()?;
            return Some(self.binop(lhs, BinOpKind::Update, rhs));
        }
        Some(lhs)
    }

    fn parse_invert(&mut self) -> Option<ExprId> {
        if self.peek() == T::Invert {
            let start = self.start();
            self.bump();
            let e = self.parse_invert()?;
            return Some(self.node(
                start,
                Kind::UnaryOp {
                    op: Some(UnaryOpKind::Invert),
                    expr: e,
                },
            ));
        }
        self.parse_add()
    }

    #[inline(always)]
    fn parse_add(&mut self) -> Option<ExprId> {
        let mut lhs = self.parse_mul()?;
        loop {
            let op = match self.peek() {
                T::Add => BinOpKind::Add,
                T::Sub => BinOpKind::Sub,
                _ => return Some(lhs),
            };
            self.bump();
            let rhs = self.parse_mul()?;
            lhs = self.binop(lhs, op, rhs);
        }
    }

    #[inline(always)]
    fn parse_mul(&mut self) -> Option<ExprId> {
        let mut lhs = self.parse_concat()?;
        loop {
            let op = match self.peek() {
                T::Mul => BinOpKind::Mul,
                T::Div => BinOpKind::Div,
                _ => return Some(lhs),
            };
            self.bump();
            let rhs = self.parse_concat()?;
            lhs = self.binop(lhs, op, rhs);
        }
    }

    fn parse_concat(&mut self) -> Option<ExprId> {
        let lhs = self.parse_hasattr()?;
        if self.peek() == T::Concat {
            self.bump();
            let rhs = self.parse_concat()?;
            return Some(self.binop(lhs, BinOpKind::Concat, rhs));
        }
        Some(lhs)
    }

    #[inline(always)]
    fn parse_hasattr(&mut self) -> Option<ExprId> {
        let mut e = self.parse_negate()?;
        while self.peek() == T::Question {
            self.bump();
            let path = self.parse_attrpath()?;
            let start = self.node_start(e);
            e = self.node(
                start,
                Kind::HasAttr {
                    expr: e,
                    path: Some(path),
                },
            );
        }
        Some(e)
    }

    fn parse_negate(&mut self) -> Option<ExprId> {
        if self.peek() == T::Sub {
            let start = self.start();
            self.bump();
            let e = self.parse_negate()?;
            return Some(self.node(
                start,
                Kind::UnaryOp {
                    op: Some(UnaryOpKind::Negate),
                    expr: e,
                },
            ));
        }
        self.parse_fn()
    }

    #[inline(always)]
    fn parse_fn(&mut self) -> Option<ExprId> {
        let mut f = self.parse_simple()?;
        while matches!(
            self.peek(),
            T::Rec
                | T::LBrace
                | T::LBrack
                | T::LParen
                | T::StrStart
                | T::Ident
                | T::Int
                | T::Float
                | T::Uri
                | T::PathAbs
                | T::PathRel
                | T::PathHome
                | T::PathSearch
        ) {
            let arg = self.parse_simple()?;
            let start = self.node_start(f);
            f = self.node(start, Kind::Apply { func: f, arg });
        }
        Some(f)
    }

    fn parse_simple(&mut self) -> Option<ExprId> {
        if self.depth >= MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        let out = self.parse_simple_inner();
        self.depth -= 1;
        out
    }

    fn parse_simple_inner(&mut self) -> Option<ExprId> {
        let t = self.peek();
        if t == T::Eof {
            return None;
        }
        let start = self.start();
        let e = match t {
            T::LParen => {
                self.bump();
                let e = self.parse_expr()?;
                self.expect(T::RParen)?;
                self.node(start, Kind::Paren(e))
            }
            T::Rec => {
                self.bump();
                self.expect(T::LBrace)?;
                let entries = self.parse_set(T::RBrace)?;
                self.node(start, Kind::AttrSet { rec: true, entries })
            }
            T::LBrace => {
                let pattern = matches!(
                    (self.peek_at(1), self.peek_at(2)),
                    (T::Ident, T::Comma)
                        | (T::Ident, T::Question)
                        | (T::Ident, T::RBrace)
                        | (T::Ellipsis, T::RBrace)
                        | (T::RBrace, T::Colon)
                        | (T::RBrace, T::At)
                );
                self.bump();
                if pattern {
                    let param = self.parse_pattern(None)?;
                    self.expect(T::Colon)?;
                    let body = self.parse_expr()?;
                    self.node(start, Kind::Lambda { param, body })
                } else {
                    let entries = self.parse_set(T::RBrace)?;
                    self.node(
                        start,
                        Kind::AttrSet {
                            rec: false,
                            entries,
                        },
                    )
                }
            }
            T::LBrack => {
                self.bump();
                let base = self.s_items.len();
                loop {
                    match self.peek() {
                        T::RBrack => break,
                        T::Eof => return None,
                        _ => {
                            let e = self.parse_simple()?;
                            self.s_items.push(e);
                        }
                    }
                }
                self.bump();
                let s = self.ast.items.len();
                self.ast.items.extend(self.s_items.drain(base..));
                let items = slice(s, self.ast.items.len());
                self.node(start, Kind::List { items })
            }
            T::StrStart => self.parse_string()?,
            T::PathAbs | T::PathRel | T::PathHome | T::PathSearch => {
                let tok = self.bump();
                let (kind, lit) = match t {
                    T::PathAbs => (PathKind::Abs, true),
                    T::PathRel => (PathKind::Rel, true),
                    T::PathHome => (PathKind::Home, false),
                    _ => (PathKind::Search, false),
                };
                let s = self.ast.parts.len();
                if lit {
                    let part = self.ast.push_lit(self.text(tok));
                    self.ast.parts.push(part);
                }
                let parts = slice(s, self.ast.parts.len());
                self.node(start, Kind::Path { kind, parts })
            }
            T::Int => {
                let tok = self.bump();
                let v = self.text(tok).parse::<i64>().ok();
                self.node(start, Kind::Int(v))
            }
            T::Float => {
                let tok = self.bump();
                let v = self.text(tok).parse::<f64>().unwrap_or(f64::NAN);
                self.node(start, Kind::Float(v))
            }
            T::Uri => {
                self.bump();
                self.node(start, Kind::Uri)
            }
            T::Ident => match self.peek_at(1) {
                T::Colon => {
                    let tok = self.bump();
                    let name = self.names.intern(self.text(tok));
                    self.bump();
                    self.ast.params.push(Param::Ident(Some(name)));
                    let param = self.ast.params.len() as u32 - 1;
                    let body = self.parse_expr()?;
                    self.node(start, Kind::Lambda { param, body })
                }
                T::At => {
                    let tok = self.bump();
                    let name = self.names.intern(self.text(tok));
                    self.bump();
                    self.expect(T::LBrace)?;
                    let param = self.parse_pattern(Some(name))?;
                    self.expect(T::Colon)?;
                    let body = self.parse_expr()?;
                    self.node(start, Kind::Lambda { param, body })
                }
                _ => {
                    let tok = self.bump();
                    let text = self.text(tok);
                    if text == "__curPos" {
                        self.node(start, Kind::CurPos)
                    } else {
                        let name = self.names.intern(text);
                        self.node(start, Kind::Ident(name))
                    }
                }
            },
            _ => return None,
        };
        match self.peek() {
            T::Dot => {
                self.bump();
                let path = self.parse_attrpath()?;
                let default = if self.peek() == T::Or {
                    self.bump();
                    self.parse_simple()?
                } else {
                    NONE
                };
                Some(self.node(
                    start,
                    Kind::Select {
                        expr: e,
                        path: Some(path),
                        default,
                    },
                ))
            }
            // `x or` applies `x` to a variable named `or`: left to rnix.
            T::Or => None,
            _ => Some(e),
        }
    }
}
