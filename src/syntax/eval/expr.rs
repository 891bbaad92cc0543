//! Expressions: the evaluator's dispatch over node kinds, and function application.

use std::path::PathBuf;
use std::rc::Rc;

use rnix::ast::UnaryOpKind;

use super::{Closure, EvalErrorKind, Evaluator, ScopeId, Thunk, ThunkId, Val, Vars, MAX_DEPTH, V};
use crate::syntax::ast::{ExprId, Kind, Opt, Param, NONE};
use crate::syntax::{FileId, Span};
impl Evaluator<'_> {
    pub(super) fn eval(&mut self, expr: ExprId, scope: ScopeId, file: FileId) -> Val {
        if self.depth >= MAX_DEPTH {
            let span = self.span(file, self.ast(file).node(expr).range);
            return self.dynamic(span, "nested too deeply for static evaluation");
        }
        self.depth += 1;
        let v = self.eval_inner(expr, scope, file);
        self.depth -= 1;
        v
    }

    fn eval_opt(&mut self, expr: Opt, scope: ScopeId, file: FileId, span: Span) -> Val {
        if expr == NONE {
            Val { v: V::Error, span }
        } else {
            self.eval(expr, scope, file)
        }
    }

    fn eval_inner(&mut self, expr: ExprId, scope: ScopeId, file: FileId) -> Val {
        let node = self.ast(file).node(expr);
        let span = self.span(file, node.range);
        match node.kind {
            Kind::Int(Some(n)) => Val { v: V::Int(n), span },
            Kind::Int(None) => {
                self.error(EvalErrorKind::Type, span, "integer literal is out of range")
            }
            Kind::Float(f) => Val {
                v: V::Float(f),
                span,
            },
            Kind::Uri => Val {
                v: V::Str(self.db.text(file)[node.range].into()),
                span,
            },
            Kind::Str { .. } => self.eval_str(expr, scope, file, span),
            Kind::Path { kind, parts } => self.eval_path(kind, parts, scope, file, span),
            Kind::Ident(name) => self.lookup(name, scope, span),
            Kind::Paren(e) => self.eval_opt(e, scope, file, span),
            Kind::List { items } => {
                let ast = self.ast_rc(file);
                let items: Vec<ThunkId> = ast.items[items.range()]
                    .iter()
                    .map(|&item| self.new_thunk(Thunk::Expr(item, scope, file)))
                    .collect();
                Val {
                    v: V::List(Rc::new(items)),
                    span,
                }
            }
            Kind::AttrSet { rec, entries } => {
                if rec {
                    let inner = self.new_scope(Some(scope));
                    match self.build_attrs(entries, inner, scope, file) {
                        Ok(attrs) => {
                            let attrs = Rc::new(attrs);
                            self.scopes[inner as usize].vars = Vars::Attrs(attrs.clone());
                            Val {
                                v: V::Attrs(attrs),
                                span,
                            }
                        }
                        Err(reason) => self.dynamic(span, &reason),
                    }
                } else {
                    match self.build_attrs(entries, scope, scope, file) {
                        Ok(attrs) => Val {
                            v: V::Attrs(Rc::new(attrs)),
                            span,
                        },
                        Err(reason) => self.dynamic(span, &reason),
                    }
                }
            }
            Kind::LetIn { entries, body } => {
                let inner = self.new_scope(Some(scope));
                match self.build_attrs(entries, inner, scope, file) {
                    Ok(attrs) => {
                        self.scopes[inner as usize].vars = Vars::Attrs(Rc::new(attrs));
                        self.eval_opt(body, inner, file, span)
                    }
                    Err(reason) => self.dynamic(span, &reason),
                }
            }
            Kind::LegacyLet => self.dynamic(
                span,
                "the legacy `let { … }` syntax is not evaluated statically",
            ),
            Kind::With { ns, body } => {
                if ns == NONE {
                    return Val { v: V::Error, span };
                }
                let nst = self.new_thunk(Thunk::Expr(ns, scope, file));
                let inner = self.new_scope(Some(scope));
                self.scopes[inner as usize].with = Some(nst);
                self.eval_opt(body, inner, file, span)
            }
            Kind::Select {
                expr: e,
                path,
                default,
            } => self.eval_select(e, path, default, scope, file, span),
            Kind::HasAttr { expr: e, path } => {
                let (mut cur, path) = match self.path_start(e, path, scope, file, span) {
                    Ok(start) => start,
                    Err(v) => return v,
                };
                for i in path.range() {
                    let attr = self.ast(file).attrs[i];
                    let name = match self.attr_name(attr, scope, file) {
                        Ok(Some(n)) => n,
                        Ok(None) => {
                            return Val {
                                v: V::Bool(false),
                                span,
                            }
                        }
                        Err(reason) => return self.dynamic(span, &reason),
                    };
                    match &cur.v {
                        V::Attrs(a) => match a.get(&name) {
                            Some(&(_, t)) => cur = self.force(t),
                            None => {
                                return Val {
                                    v: V::Bool(false),
                                    span,
                                }
                            }
                        },
                        V::Dynamic(_) | V::Error => {
                            return self.dynamic(span, "tests a set that is not known statically")
                        }
                        _ => {
                            return Val {
                                v: V::Bool(false),
                                span,
                            }
                        }
                    }
                }
                Val {
                    v: V::Bool(true),
                    span,
                }
            }
            Kind::BinOp { op, lhs, rhs } => match op {
                Some(op) if lhs != NONE && rhs != NONE => {
                    self.eval_binop(op, lhs, rhs, scope, file, span)
                }
                _ => Val { v: V::Error, span },
            },
            Kind::UnaryOp { op, expr: e } => {
                if e == NONE {
                    return Val { v: V::Error, span };
                }
                let v = self.eval(e, scope, file);
                match (op, &v.v) {
                    (_, V::Dynamic(_)) | (_, V::Error) => Val { v: v.v, span },
                    (Some(UnaryOpKind::Invert), V::Bool(b)) => Val {
                        v: V::Bool(!b),
                        span,
                    },
                    (Some(UnaryOpKind::Negate), V::Int(i)) => match i.checked_neg() {
                        Some(n) => Val { v: V::Int(n), span },
                        None => self.error(EvalErrorKind::Type, span, "integer overflow"),
                    },
                    (Some(UnaryOpKind::Negate), V::Float(f)) => Val {
                        v: V::Float(-f),
                        span,
                    },
                    _ => self
                        .type_error(&v.v, span, |t| format!("cannot apply this operator to {t}")),
                }
            }
            Kind::IfElse { cond, then, els } => {
                if cond == NONE {
                    return Val { v: V::Error, span };
                }
                let branch = match self.eval_condition(cond, scope, file, span) {
                    Ok(true) => then,
                    Ok(false) => els,
                    Err(v) => return v,
                };
                self.eval_opt(branch, scope, file, span)
            }
            Kind::Assert { cond, body } => {
                if cond != NONE {
                    let cv = self.eval(cond, scope, file);
                    if let V::Bool(false) = cv.v {
                        return self.error(EvalErrorKind::Assertion, cv.span, "assertion failed");
                    }
                }
                self.eval_opt(body, scope, file, span)
            }
            Kind::Lambda { param, body } => Val {
                v: V::Lambda(Closure {
                    param,
                    body,
                    scope,
                    file,
                }),
                span,
            },
            Kind::Apply { func, arg } => {
                if func == NONE || arg == NONE {
                    return Val { v: V::Error, span };
                }
                let fv = self.eval(func, scope, file);
                let argt = self.new_thunk(Thunk::Expr(arg, scope, file));
                self.apply(fv, argt, span)
            }
            Kind::CurPos => self.dynamic(span, "`__curPos` is not evaluated statically"),
            Kind::Error => Val { v: V::Error, span },
        }
    }

    fn apply(&mut self, f: Val, arg: ThunkId, span: Span) -> Val {
        match f.v {
            V::Lambda(clo) => self.call_lambda(clo, arg, span),
            V::Import => {
                let a = self.force(arg);
                let path: PathBuf = match &a.v {
                    V::Path(p) => p.to_path_buf(),
                    V::Str(s) if s.starts_with('/') => PathBuf::from(&**s),
                    V::Dynamic(_) | V::Error => {
                        return self.dynamic(span, "imports a path that is not known statically")
                    }
                    other => {
                        return self.type_error(other, a.span, |t| format!("cannot import {t}"));
                    }
                };
                self.import(&path, span)
            }
            V::Dynamic(_) => self.dynamic(span, "calls a function that is not known statically"),
            V::Error => Val { v: V::Error, span },
            other => self.type_error(&other, f.span, |t| {
                format!("attempt to call something which is not a function but {t}")
            }),
        }
    }

    fn call_lambda(&mut self, clo: Closure, arg: ThunkId, span: Span) -> Val {
        let file = clo.file;
        let inner = self.new_scope(Some(clo.scope));
        if clo.param == NONE {
            return Val { v: V::Error, span };
        }
        let param = self.ast(file).params[clo.param as usize];
        match param {
            Param::Ident(name) => {
                if let Some(name) = name {
                    self.bind(inner, name, arg);
                }
            }
            Param::Pattern {
                bind,
                formals,
                ellipsis,
            } => {
                if let Some(name) = bind {
                    self.bind(inner, name, arg);
                }
                let av = self.force(arg);
                let known = match &av.v {
                    V::Attrs(a) => Some(a.clone()),
                    V::Dynamic(_) | V::Error => None,
                    other => {
                        return self.type_error(other, av.span, |t| {
                            format!("value is {t} while a set was expected")
                        });
                    }
                };
                let mut names = Vec::with_capacity(formals.len as usize);
                for i in formals.range() {
                    let formal = self.ast(file).formals[i];
                    let name = formal.name;
                    names.push(name);
                    let t = match (&known, formal.default) {
                        (Some(a), _) if a.contains_key(&name) => a[&name].1,
                        (Some(_), def) if def != NONE => {
                            self.new_thunk(Thunk::Expr(def, inner, file))
                        }
                        (Some(_), _) => {
                            let n = self.name(name).to_string();
                            return self.error(
                                EvalErrorKind::Argument,
                                span,
                                format!("function called without required argument `{n}`"),
                            );
                        }
                        (None, _) => self.new_thunk(Thunk::Select(arg, name, span)),
                    };
                    self.bind(inner, name, t);
                }
                if let (Some(a), false) = (&known, ellipsis) {
                    if let Some(extra) = a.keys().find(|k| !names.contains(k)) {
                        let extra = self.name(*extra).to_string();
                        return self.error(
                            EvalErrorKind::Argument,
                            span,
                            format!("function called with unexpected argument `{extra}`"),
                        );
                    }
                }
            }
        }
        if clo.body == NONE {
            return Val { v: V::Error, span };
        }
        let mut v = self.eval(clo.body, inner, file);
        // The call site is where a user looks for the value (e.g. `mkVm { … }`).
        if matches!(v.v, V::Dynamic(_)) {
            v.span = span;
        }
        v
    }
}
