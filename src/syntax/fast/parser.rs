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

    /// `next (op next)*`, left-associative: `||`, `&&`, `+ -`, `* /`. Generic, so each level
    /// compiles to its own loop as when written out.
    #[inline(always)]
    fn left_assoc(
        &mut self,
        next: impl Fn(&mut Self) -> Option<ExprId>,
        op: impl Fn(T) -> Option<BinOpKind>,
    ) -> Option<ExprId> {
        let mut lhs = next(self)?;
        while let Some(o) = op(self.peek()) {
            self.bump();
            let rhs = next(self)?;
            lhs = self.binop(lhs, o, rhs);
        }
        Some(lhs)
    }

    /// `next (op next)?`, not associative: `==`, `<` (`a == b == c` is left for rnix to
    /// report).
    #[inline(always)]
    fn non_assoc(
        &mut self,
        next: impl Fn(&mut Self) -> Option<ExprId>,
        op: impl Fn(T) -> Option<BinOpKind>,
    ) -> Option<ExprId> {
        let lhs = next(self)?;
        let Some(o) = op(self.peek()) else {
            return Some(lhs);
        };
        self.bump();
        let rhs = next(self)?;
        Some(self.binop(lhs, o, rhs))
    }

    /// `next (op this)?`, right-associative: `->`, `//`, `++`.
    #[inline(always)]
    fn right_assoc(
        &mut self,
        next: impl Fn(&mut Self) -> Option<ExprId>,
        token: T,
        op: BinOpKind,
        this: impl Fn(&mut Self) -> Option<ExprId>,
    ) -> Option<ExprId> {
        let lhs = next(self)?;
        if self.peek() != token {
            return Some(lhs);
        }
        self.bump();
        let rhs = this(self)?;
        Some(self.binop(lhs, op, rhs))
    }

    /// `op e` for a prefix operator, `e` at the operator's own level (`!!a`, `--a`).
    fn prefix(
        &mut self,
        op: UnaryOpKind,
        this: impl Fn(&mut Self) -> Option<ExprId>,
    ) -> Option<ExprId> {
        let start = self.start();
        self.bump();
        let e = this(self)?;
        Some(self.node(
            start,
            Kind::UnaryOp {
                op: Some(op),
                expr: e,
            },
        ))
    }

    fn parse_implication(&mut self) -> Option<ExprId> {
        self.right_assoc(
            Self::parse_or,
            T::Implication,
            BinOpKind::Implication,
            Self::parse_implication,
        )
    }

    #[inline(always)]
    fn parse_or(&mut self) -> Option<ExprId> {
        self.left_assoc(Self::parse_and, |t| (t == T::OrOr).then_some(BinOpKind::Or))
    }

    #[inline(always)]
    fn parse_and(&mut self) -> Option<ExprId> {
        self.left_assoc(Self::parse_equal, |t| {
            (t == T::AndAnd).then_some(BinOpKind::And)
        })
    }

    #[inline(always)]
    fn parse_equal(&mut self) -> Option<ExprId> {
        self.non_assoc(Self::parse_compare, |t| match t {
            T::Equal => Some(BinOpKind::Equal),
            T::NotEqual => Some(BinOpKind::NotEqual),
            _ => None,
        })
    }

    #[inline(always)]
    fn parse_compare(&mut self) -> Option<ExprId> {
        self.non_assoc(Self::parse_merge, |t| match t {
            T::Less => Some(BinOpKind::Less),
            T::LessEq => Some(BinOpKind::LessOrEq),
            T::More => Some(BinOpKind::More),
            T::MoreEq => Some(BinOpKind::MoreOrEq),
            _ => None,
        })
    }

    fn parse_merge(&mut self) -> Option<ExprId> {
        self.right_assoc(
            Self::parse_invert,
            T::Update,
            BinOpKind::Update,
            Self::parse_merge,
        )
    }

    fn parse_invert(&mut self) -> Option<ExprId> {
        if self.peek() == T::Invert {
            return self.prefix(UnaryOpKind::Invert, Self::parse_invert);
        }
        self.parse_add()
    }

    #[inline(always)]
    fn parse_add(&mut self) -> Option<ExprId> {
        self.left_assoc(Self::parse_mul, |t| match t {
            T::Add => Some(BinOpKind::Add),
            T::Sub => Some(BinOpKind::Sub),
            _ => None,
        })
    }

    #[inline(always)]
    fn parse_mul(&mut self) -> Option<ExprId> {
        self.left_assoc(Self::parse_concat, |t| match t {
            T::Mul => Some(BinOpKind::Mul),
            T::Div => Some(BinOpKind::Div),
            _ => None,
        })
    }

    fn parse_concat(&mut self) -> Option<ExprId> {
        self.right_assoc(
            Self::parse_hasattr,
            T::Concat,
            BinOpKind::Concat,
            Self::parse_concat,
        )
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
            return self.prefix(UnaryOpKind::Negate, Self::parse_negate);
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
