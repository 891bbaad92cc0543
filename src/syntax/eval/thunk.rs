//! The thunk arena: scopes, forcing, variable lookup, the files read and the final deep force.

use std::path::Path;
use std::rc::Rc;

use indexmap::IndexMap;
use rowan::TextRange;
use rustc_hash::{FxBuildHasher, FxHashMap};

use super::{
    normalize, parse_ast_with, EvalErrorKind, Evaluator, ScopeData, ScopeId, Thunk, ThunkId, Val,
    Vars, MAX_DEPTH, V,
};
use crate::syntax::ast::{Sym, NONE};
use crate::syntax::value::{AttrEntry, AttrSet, Value, ValueKind};
use crate::syntax::{FileId, Span};
/// Names Nix provides globally whose values the static evaluator does not model.
fn is_dynamic_global(name: &str) -> bool {
    name.starts_with("__")
        || matches!(
            name,
            "builtins"
                | "derivation"
                | "derivationStrict"
                | "abort"
                | "throw"
                | "map"
                | "toString"
                | "baseNameOf"
                | "dirOf"
                | "isNull"
                | "removeAttrs"
                | "fetchTarball"
                | "fetchGit"
                | "fetchTree"
                | "fetchMercurial"
                | "fromTOML"
                | "placeholder"
                | "scopedImport"
        )
}

impl Evaluator<'_> {
    pub(super) fn new_thunk(&mut self, t: Thunk) -> ThunkId {
        self.thunks.push(t);
        self.thunks.len() as ThunkId - 1
    }

    pub(super) fn done(&mut self, v: V, span: Span) -> ThunkId {
        self.new_thunk(Thunk::Done(Val { v, span }))
    }

    pub(super) fn new_scope(&mut self, parent: Option<ScopeId>) -> ScopeId {
        self.scopes.push(ScopeData {
            vars: Vars::Map(FxHashMap::default()),
            parent,
            with: None,
        });
        self.scopes.len() as ScopeId - 1
    }

    pub(super) fn bind(&mut self, scope: ScopeId, name: Sym, t: ThunkId) {
        if let Vars::Map(m) = &mut self.scopes[scope as usize].vars {
            m.insert(name, t);
        }
    }

    /// Parses a file already in the db and returns a thunk for its value.
    pub(super) fn load_file(&mut self, file: FileId) -> ThunkId {
        let text = self.db.get(file).text.clone();
        let (ast, errors) = parse_ast_with(&text, &mut self.names, self.parser);
        self.syntax_errors
            .extend(errors.into_iter().map(|e| (file, e)));
        let root = ast.root;
        // Roughly one thunk per node: reserving up front avoids the copies (and the freed
        // copies an allocator keeps around) of doubling a large arena.
        self.thunks.reserve(ast.nodes.len());
        let idx = file.0 as usize;
        if self.asts.len() <= idx {
            self.asts.resize(idx + 1, None);
        }
        self.asts[idx] = Some(Rc::new(ast));
        let scope = self.new_scope(None);
        if root == NONE {
            let span = self.span(file, TextRange::empty(0.into()));
            self.new_thunk(Thunk::Done(Val { v: V::Error, span }))
        } else {
            self.new_thunk(Thunk::Expr(root, scope, file))
        }
    }

    pub(super) fn force(&mut self, t: ThunkId) -> Val {
        let idx = t as usize;
        match &self.thunks[idx] {
            Thunk::Done(v) => return v.clone(),
            Thunk::Forcing(span) => {
                let span = *span;
                return self.error(
                    EvalErrorKind::InfiniteRecursion,
                    span,
                    "infinite recursion: this value depends on itself",
                );
            }
            _ => {}
        }
        let placeholder = Thunk::Forcing(self.thunk_span(t));
        let thunk = std::mem::replace(&mut self.thunks[idx], placeholder);
        let val = match thunk {
            Thunk::Expr(e, scope, file) => self.eval(e, scope, file),
            Thunk::Ident(name, scope, span) => {
                if self.depth >= MAX_DEPTH {
                    self.dynamic(span, "nested too deeply for static evaluation")
                } else {
                    self.depth += 1;
                    let v = self.lookup(name, scope, span);
                    self.depth -= 1;
                    v
                }
            }
            Thunk::Select(src, name, span) => {
                let from = self.force(src);
                self.select_one(from, name, span)
            }
            Thunk::Done(_) | Thunk::Forcing(_) => unreachable!("handled above"),
        };
        self.thunks[idx] = Thunk::Done(val.clone());
        val
    }

    fn thunk_span(&self, t: ThunkId) -> Span {
        match &self.thunks[t as usize] {
            Thunk::Expr(e, _, f) => Span {
                file: *f,
                range: self.ast(*f).node(*e).range,
            },
            Thunk::Ident(_, _, s) | Thunk::Select(_, _, s) | Thunk::Forcing(s) => *s,
            Thunk::Done(v) => v.span,
        }
    }

    pub(super) fn lookup(&mut self, name: Sym, scope: ScopeId, span: Span) -> Val {
        let mut cur = Some(scope);
        while let Some(s) = cur {
            let sd = &self.scopes[s as usize];
            if let Some(t) = sd.vars.get(name) {
                return self.force(t);
            }
            cur = sd.parent;
        }
        // Not bound lexically: try the `with` scopes, innermost first.
        let mut cur = Some(scope);
        let mut unknown_with = false;
        while let Some(s) = cur {
            if let Some(ns) = self.scopes[s as usize].with {
                let nsv = self.force(ns);
                match &nsv.v {
                    V::Attrs(a) => {
                        if let Some(&(_, t)) = a.get(&name) {
                            return self.force(t);
                        }
                    }
                    _ => unknown_with = true,
                }
            }
            cur = self.scopes[s as usize].parent;
        }
        let wk = &self.wk;
        if name == wk.true_ {
            return Val {
                v: V::Bool(true),
                span,
            };
        }
        if name == wk.false_ {
            return Val {
                v: V::Bool(false),
                span,
            };
        }
        if name == wk.null {
            return Val { v: V::Null, span };
        }
        if name == wk.import {
            return Val { v: V::Import, span };
        }
        if unknown_with {
            return self.dynamic(
                span,
                "may come from a `with` whose set is not known statically",
            );
        }
        let n = self.name(name).to_string();
        if is_dynamic_global(&n) {
            return self.dynamic(span, &format!("uses the builtin `{n}`"));
        }
        self.error(
            EvalErrorKind::UndefinedVariable,
            span,
            format!("undefined variable `{n}`"),
        )
    }

    pub(super) fn import(&mut self, path: &Path, span: Span) -> Val {
        let mut path = normalize(path);
        if !self.loader.allows(&path) {
            return Val {
                v: V::Dynamic("imports a file outside the fleet directory".into()),
                span,
            };
        }
        // `import ./dir` reads ./dir/default.nix (a directory cannot be read as a file).
        if path.extension().is_none_or(|e| e != "nix") && self.loader.load(&path).is_err() {
            path = path.join("default.nix");
        }
        if let Some(&t) = self.imports.get(&path) {
            return self.force(t);
        }
        let text = match self.loader.load(&path) {
            Ok(t) => t,
            Err(msg) => {
                return self.error(
                    EvalErrorKind::Import,
                    span,
                    format!("cannot import `{}`: {msg}", path.display()),
                )
            }
        };
        let file = self.db.add(path.clone(), text);
        let t = self.load_file(file);
        self.imports.insert(path, t);
        self.force(t)
    }

    /// Forces `val` completely into a public [`Value`].
    pub(super) fn force_deep(&mut self, val: &Val, depth: u32) -> Value {
        let span = val.span;
        if depth > MAX_DEPTH {
            return Value {
                kind: ValueKind::Dynamic("nested too deeply for static evaluation".into()),
                span,
            };
        }
        let kind = match &val.v {
            V::Null => ValueKind::Null,
            V::Bool(b) => ValueKind::Bool(*b),
            V::Int(i) => ValueKind::Int(*i),
            V::Float(f) => ValueKind::Float(*f),
            // `String::from(&str)`, not `to_string()`: on `Rc<str>` that goes through `Display`.
            V::Str(s) => ValueKind::String(String::from(&**s)),
            V::Path(p) => ValueKind::Path(p.to_path_buf()),
            V::List(items) => {
                let items = items.clone();
                let mut out = Vec::with_capacity(items.len());
                for t in items.iter() {
                    let v = self.force(*t);
                    out.push(self.force_deep(&v, depth + 1));
                }
                ValueKind::List(out)
            }
            V::Attrs(a) => {
                let a = a.clone();
                let mut entries = IndexMap::with_capacity_and_hasher(a.len(), FxBuildHasher);
                for (k, (key_span, t)) in a.iter() {
                    let v = self.force(*t);
                    let value = self.force_deep(&v, depth + 1);
                    entries.insert(
                        self.names.resolve(*k).to_string(),
                        AttrEntry {
                            key_span: *key_span,
                            value,
                        },
                    );
                }
                ValueKind::Attrs(AttrSet { entries })
            }
            V::Lambda(_) | V::Import => ValueKind::Lambda,
            V::Dynamic(r) => ValueKind::Dynamic(String::from(&**r)),
            V::Error => ValueKind::Error,
        };
        Value { kind, span }
    }
}
