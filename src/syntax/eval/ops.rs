//! Operators: logical, `//`, `++`, arithmetic, comparison and Nix's deep equality.

use std::path::Path;
use std::rc::Rc;

use rnix::ast::BinOpKind;
use rustc_hash::FxBuildHasher;

use super::{normalize, type_name, Attrs, EvalErrorKind, Evaluator, ScopeId, ThunkId, Val, V};
use crate::syntax::ast::ExprId;
use crate::syntax::{FileId, Span};
impl Evaluator<'_> {
    /// A condition (`if`, `&&`, `||`, `->`): its Boolean, or the value to give instead (a
    /// dynamic value, an error already reported, or the type error reported now).
    pub(super) fn eval_condition(
        &mut self,
        e: ExprId,
        scope: ScopeId,
        file: FileId,
        span: Span,
    ) -> Result<bool, Val> {
        let v = self.eval(e, scope, file);
        match v.v {
            V::Bool(b) => Ok(b),
            V::Dynamic(_) => {
                Err(self.dynamic(span, "depends on a condition that is not known statically"))
            }
            V::Error => Err(Val { v: V::Error, span }),
            ref other => Err(self.type_error(other, v.span, |t| {
                format!("value is {t} while a Boolean was expected")
            })),
        }
    }

    pub(super) fn eval_binop(
        &mut self,
        op: BinOpKind,
        l: ExprId,
        r: ExprId,
        scope: ScopeId,
        file: FileId,
        span: Span,
    ) -> Val {
        use BinOpKind as K;
        // Logical operators short-circuit, as in Nix.
        if matches!(op, K::And | K::Or | K::Implication) {
            let lb = match self.eval_condition(l, scope, file, span) {
                Ok(b) => b,
                Err(v) => return v,
            };
            let short = match op {
                K::And if !lb => Some(false),
                K::Or if lb => Some(true),
                K::Implication if !lb => Some(true),
                _ => None,
            };
            if let Some(x) = short {
                return Val {
                    v: V::Bool(x),
                    span,
                };
            }
            return match self.eval_condition(r, scope, file, span) {
                Ok(x) => Val {
                    v: V::Bool(x),
                    span,
                },
                Err(v) => v,
            };
        }
        let lv = self.eval(l, scope, file);
        let rv = self.eval(r, scope, file);
        if matches!(lv.v, V::Error) || matches!(rv.v, V::Error) {
            return Val { v: V::Error, span };
        }
        if matches!(op, K::Equal | K::NotEqual) {
            return match self.equal(&lv, &rv, 0) {
                Some(eq) => Val {
                    v: V::Bool(eq == (op == K::Equal)),
                    span,
                },
                None => self.dynamic(span, "compares values that are not known statically"),
            };
        }
        if matches!(lv.v, V::Dynamic(_)) || matches!(rv.v, V::Dynamic(_)) {
            return self.dynamic(span, "an operand is not known statically");
        }
        let type_err = |this: &mut Self, what: &str| {
            let (lt, rt) = (type_name(&lv.v), type_name(&rv.v));
            this.error(
                EvalErrorKind::Type,
                span,
                format!("cannot {what} {lt} and {rt}"),
            )
        };
        match op {
            K::Update => match (&lv.v, &rv.v) {
                (V::Attrs(a), V::Attrs(b)) => {
                    // Sized for both sides up front: no rehash while the right side goes in.
                    let mut m = Attrs::with_capacity_and_hasher(a.len() + b.len(), FxBuildHasher);
                    m.extend(a.iter().map(|(k, v)| (*k, *v)));
                    for (k, v) in b.iter() {
                        m.insert(*k, *v);
                    }
                    Val {
                        v: V::Attrs(Rc::new(m)),
                        span,
                    }
                }
                _ => type_err(self, "merge with `//`"),
            },
            K::Concat => match (&lv.v, &rv.v) {
                (V::List(a), V::List(b)) => {
                    let mut items = (**a).clone();
                    items.extend(b.iter().copied());
                    Val {
                        v: V::List(Rc::new(items)),
                        span,
                    }
                }
                _ => type_err(self, "concatenate with `++`"),
            },
            K::Add => match (&lv.v, &rv.v) {
                (V::Str(a), V::Str(b)) => Val {
                    v: V::Str(format!("{a}{b}").into()),
                    span,
                },
                (V::Path(a), V::Str(b)) => {
                    let p = normalize(Path::new(&format!("{}{b}", a.display())));
                    Val {
                        v: V::Path(p.into()),
                        span,
                    }
                }
                (V::Path(a), V::Path(b)) => {
                    let p = normalize(Path::new(&format!("{}{}", a.display(), b.display())));
                    Val {
                        v: V::Path(p.into()),
                        span,
                    }
                }
                (V::Str(_), V::Path(_)) => {
                    self.dynamic(span, "adding a path to a string copies it to the Nix store")
                }
                _ => self
                    .arith(op, &lv, &rv, span)
                    .unwrap_or_else(|| type_err(self, "add")),
            },
            K::Sub | K::Mul | K::Div => self
                .arith(op, &lv, &rv, span)
                .unwrap_or_else(|| type_err(self, "do arithmetic on")),
            K::Less | K::LessOrEq | K::More | K::MoreOrEq => {
                let ord = match (&lv.v, &rv.v) {
                    (V::Int(a), V::Int(b)) => a.partial_cmp(b),
                    (V::Float(a), V::Float(b)) => a.partial_cmp(b),
                    (V::Int(a), V::Float(b)) => (*a as f64).partial_cmp(b),
                    (V::Float(a), V::Int(b)) => a.partial_cmp(&(*b as f64)),
                    (V::Str(a), V::Str(b)) => a.partial_cmp(b),
                    (V::Path(a), V::Path(b)) => a.partial_cmp(b),
                    _ => return type_err(self, "compare"),
                };
                let Some(ord) = ord else {
                    return Val {
                        v: V::Bool(false),
                        span,
                    };
                };
                use std::cmp::Ordering::*;
                let x = match op {
                    K::Less => ord == Less,
                    K::LessOrEq => ord != Greater,
                    K::More => ord == Greater,
                    _ => ord != Less,
                };
                Val {
                    v: V::Bool(x),
                    span,
                }
            }
            _ => self.dynamic(span, "this operator is not evaluated statically"),
        }
    }

    fn arith(&mut self, op: BinOpKind, l: &Val, r: &Val, span: Span) -> Option<Val> {
        use BinOpKind as K;
        let v = match (&l.v, &r.v) {
            (V::Int(a), V::Int(b)) => {
                if op == K::Div && *b == 0 {
                    return Some(self.error(
                        EvalErrorKind::DivisionByZero,
                        span,
                        "division by zero",
                    ));
                }
                let res = match op {
                    K::Add => a.checked_add(*b),
                    K::Sub => a.checked_sub(*b),
                    K::Mul => a.checked_mul(*b),
                    _ => a.checked_div(*b),
                };
                match res {
                    Some(n) => V::Int(n),
                    None => return Some(self.error(EvalErrorKind::Type, span, "integer overflow")),
                }
            }
            (V::Int(_) | V::Float(_), V::Int(_) | V::Float(_)) => {
                let f = |v: &V| match v {
                    V::Int(i) => *i as f64,
                    V::Float(x) => *x,
                    _ => unreachable!(),
                };
                let (a, b) = (f(&l.v), f(&r.v));
                if op == K::Div && b == 0.0 {
                    return Some(self.error(
                        EvalErrorKind::DivisionByZero,
                        span,
                        "division by zero",
                    ));
                }
                V::Float(match op {
                    K::Add => a + b,
                    K::Sub => a - b,
                    K::Mul => a * b,
                    _ => a / b,
                })
            }
            _ => return None,
        };
        Some(Val { v, span })
    }

    /// Deep equality as Nix defines it; `None` when a part is not known statically.
    fn equal(&mut self, a: &Val, b: &Val, depth: u32) -> Option<bool> {
        if depth > 64 {
            return None;
        }
        Some(match (&a.v, &b.v) {
            (V::Dynamic(_) | V::Error, _) | (_, V::Dynamic(_) | V::Error) => return None,
            (V::Null, V::Null) => true,
            (V::Bool(x), V::Bool(y)) => x == y,
            (V::Int(x), V::Int(y)) => x == y,
            (V::Float(x), V::Float(y)) => x == y,
            (V::Int(x), V::Float(y)) | (V::Float(y), V::Int(x)) => (*x as f64) == *y,
            (V::Str(x), V::Str(y)) => x == y,
            (V::Path(x), V::Path(y)) => x == y,
            (V::List(x), V::List(y)) => {
                if x.len() != y.len() {
                    return Some(false);
                }
                for (p, q) in x.iter().zip(y.iter()) {
                    let (pv, qv) = (self.force(*p), self.force(*q));
                    if !self.equal(&pv, &qv, depth + 1)? {
                        return Some(false);
                    }
                }
                true
            }
            (V::Attrs(x), V::Attrs(y)) => {
                if x.len() != y.len() || x.keys().any(|k| !y.contains_key(k)) {
                    return Some(false);
                }
                let pairs: Vec<(ThunkId, ThunkId)> =
                    x.iter().map(|(k, (_, t))| (*t, y[k].1)).collect();
                for (p, q) in pairs {
                    let (pv, qv) = (self.force(p), self.force(q));
                    if !self.equal(&pv, &qv, depth + 1)? {
                        return Some(false);
                    }
                }
                true
            }
            (V::Lambda(_) | V::Import, _) | (_, V::Lambda(_) | V::Import) => false,
            _ => false,
        })
    }
}
