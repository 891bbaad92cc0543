//! Static evaluator for the Nix subset fleet files use.
//!
//! It evaluates literals (strings, indented strings, paths, numbers), lists, attribute sets
//! with nested attribute paths and `rec`, `let … in`, `inherit` and `inherit (e)`, string
//! interpolation, `//`, `++`, arithmetic and comparisons, `if`, `assert`, `with` over a known
//! set, functions defined in the files themselves, and `import` of relative paths. Everything
//! else (builtins, `pkgs`, `lib`, functions passed in from outside) becomes an opaque
//! [`ValueKind::Dynamic`] carrying its span, so callers can fall back to a real Nix
//! evaluation for exactly the values they need.
//!
//! Evaluation is lazy inside (thunks in an arena, so `rec` and `let` behave as in Nix) and
//! strict at the end: the result is a fully forced [`Value`] tree.

use rustc_hash::{FxBuildHasher, FxHashMap};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use indexmap::IndexMap;
use rnix::ast::{self, AstToken, HasEntry, InterpolPart};
use rowan::ast::AstNode;
use rowan::TextRange;

use super::value::{AttrEntry, AttrSet, Value, ValueKind};
use super::{parse, FileId, SourceDb, Span, SyntaxError};

/// Reads files that `import` asks for. The evaluator itself never touches the filesystem.
pub trait Loader {
    /// The text of `path`, or a message saying why it cannot be read.
    fn load(&self, path: &Path) -> Result<String, String>;
}

/// A loader that refuses every import (pure evaluation of one file).
pub struct NoImports;

impl Loader for NoImports {
    fn load(&self, path: &Path) -> Result<String, String> {
        Err(format!(
            "imports are not available here ({})",
            path.display()
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvalErrorKind {
    UndefinedVariable,
    DuplicateAttribute,
    MissingAttribute,
    Type,
    Import,
    InfiniteRecursion,
    Assertion,
    DivisionByZero,
    Argument,
}

/// An error Nix itself would raise when evaluating this expression.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalError {
    pub kind: EvalErrorKind,
    pub span: Span,
    pub message: String,
    /// A related location, e.g. the first definition of a duplicated attribute.
    pub related: Option<(Span, String)>,
}

/// The result of evaluating a file: its value, evaluation errors and the syntax errors of
/// every file read on the way (the root file and its imports).
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub value: Value,
    pub errors: Vec<EvalError>,
    pub syntax_errors: Vec<(FileId, SyntaxError)>,
}

/// Evaluates the file `file` of `db`; imported files are added to `db` through `loader`.
pub fn evaluate(db: &mut SourceDb, file: FileId, loader: &dyn Loader) -> Evaluation {
    let mut ev = Evaluator {
        db,
        loader,
        thunks: Vec::new(),
        scopes: Vec::new(),
        errors: Vec::new(),
        syntax_errors: Vec::new(),
        imports: FxHashMap::default(),
        depth: 0,
    };
    let root = ev.load_file(file);
    let val = ev.force(root);
    let value = ev.force_deep(&val, 0);
    Evaluation {
        value,
        errors: ev.errors,
        syntax_errors: ev.syntax_errors,
    }
}

type ThunkId = u32;
type ScopeId = u32;

/// Deepest nesting of evaluation before giving up with a dynamic value (guards the stack).
const MAX_DEPTH: u32 = 400;

#[derive(Clone)]
struct Val {
    v: V,
    span: Span,
}

type Attrs = IndexMap<Rc<str>, (Span, ThunkId), FxBuildHasher>;
type Slots = IndexMap<Rc<str>, Slot, FxBuildHasher>;

#[derive(Clone)]
enum V {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Path(Rc<Path>),
    List(Rc<Vec<ThunkId>>),
    Attrs(Rc<Attrs>),
    Lambda(Rc<Closure>),
    Import,
    Dynamic(Rc<str>),
    Error,
}

struct Closure {
    lambda: ast::Lambda,
    scope: ScopeId,
    file: FileId,
}

enum Thunk {
    Expr(ast::Expr, ScopeId, FileId),
    Select(ThunkId, Rc<str>, Span),
    Forcing(Span),
    Done(Val),
}

struct ScopeData {
    vars: FxHashMap<Rc<str>, ThunkId>,
    parent: Option<ScopeId>,
    with: Option<ThunkId>,
}

struct Evaluator<'a> {
    db: &'a mut SourceDb,
    loader: &'a dyn Loader,
    thunks: Vec<Thunk>,
    scopes: Vec<ScopeData>,
    errors: Vec<EvalError>,
    syntax_errors: Vec<(FileId, SyntaxError)>,
    imports: FxHashMap<PathBuf, ThunkId>,
    depth: u32,
}

/// One slot of an attribute set under construction (nested attribute paths merge here).
enum Slot {
    Leaf {
        key: Span,
        thunk: ThunkId,
        literal: Option<(ast::AttrSet, ScopeId)>,
    },
    Nested {
        key: Span,
        node: Span,
        entries: Slots,
    },
}

impl Slot {
    fn key(&self) -> Span {
        match self {
            Slot::Leaf { key, .. } | Slot::Nested { key, .. } => *key,
        }
    }
}

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

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

impl Evaluator<'_> {
    fn span(&self, file: FileId, range: TextRange) -> Span {
        Span { file, range }
    }

    fn new_thunk(&mut self, t: Thunk) -> ThunkId {
        self.thunks.push(t);
        self.thunks.len() as ThunkId - 1
    }

    fn done(&mut self, v: V, span: Span) -> ThunkId {
        self.new_thunk(Thunk::Done(Val { v, span }))
    }

    fn new_scope(&mut self, parent: Option<ScopeId>) -> ScopeId {
        self.scopes.push(ScopeData {
            vars: FxHashMap::default(),
            parent,
            with: None,
        });
        self.scopes.len() as ScopeId - 1
    }

    fn error(&mut self, kind: EvalErrorKind, span: Span, message: impl Into<String>) -> Val {
        self.errors.push(EvalError {
            kind,
            span,
            message: message.into(),
            related: None,
        });
        Val { v: V::Error, span }
    }

    fn dynamic(&self, span: Span, reason: &str) -> Val {
        Val {
            v: V::Dynamic(reason.into()),
            span,
        }
    }

    /// Parses a file already in the db and returns a thunk for its value.
    fn load_file(&mut self, file: FileId) -> ThunkId {
        let text = self.db.get(file).text.clone();
        let (root, errors) = parse(&text);
        self.syntax_errors
            .extend(errors.into_iter().map(|e| (file, e)));
        let scope = self.new_scope(None);
        match root.expr() {
            Some(expr) => self.new_thunk(Thunk::Expr(expr, scope, file)),
            None => {
                let span = self.span(file, TextRange::empty(0.into()));
                self.new_thunk(Thunk::Done(Val { v: V::Error, span }))
            }
        }
    }

    fn force(&mut self, t: ThunkId) -> Val {
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
            Thunk::Expr(e, scope, file) => self.eval(&e, scope, file),
            Thunk::Select(src, name, span) => {
                let from = self.force(src);
                self.select_one(from, &name, span)
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
                range: e.syntax().text_range(),
            },
            Thunk::Select(_, _, s) | Thunk::Forcing(s) => *s,
            Thunk::Done(v) => v.span,
        }
    }

    fn lookup(&mut self, name: &str, scope: ScopeId, span: Span) -> Val {
        let mut cur = Some(scope);
        while let Some(s) = cur {
            if let Some(&t) = self.scopes[s as usize].vars.get(name) {
                return self.force(t);
            }
            cur = self.scopes[s as usize].parent;
        }
        // Not bound lexically: try the `with` scopes, innermost first.
        let mut cur = Some(scope);
        let mut unknown_with = false;
        while let Some(s) = cur {
            if let Some(ns) = self.scopes[s as usize].with {
                let nsv = self.force(ns);
                match &nsv.v {
                    V::Attrs(a) => {
                        if let Some(&(_, t)) = a.get(name) {
                            return self.force(t);
                        }
                    }
                    _ => unknown_with = true,
                }
            }
            cur = self.scopes[s as usize].parent;
        }
        match name {
            "true" => Val {
                v: V::Bool(true),
                span,
            },
            "false" => Val {
                v: V::Bool(false),
                span,
            },
            "null" => Val { v: V::Null, span },
            "import" => Val { v: V::Import, span },
            _ if unknown_with => self.dynamic(
                span,
                "may come from a `with` whose set is not known statically",
            ),
            _ if is_dynamic_global(name) => {
                self.dynamic(span, &format!("uses the builtin `{name}`"))
            }
            _ => self.error(
                EvalErrorKind::UndefinedVariable,
                span,
                format!("undefined variable `{name}`"),
            ),
        }
    }

    fn eval(&mut self, expr: &ast::Expr, scope: ScopeId, file: FileId) -> Val {
        if self.depth >= MAX_DEPTH {
            let span = self.span(file, expr.syntax().text_range());
            return self.dynamic(span, "nested too deeply for static evaluation");
        }
        self.depth += 1;
        let v = self.eval_inner(expr, scope, file);
        self.depth -= 1;
        v
    }

    fn eval_inner(&mut self, expr: &ast::Expr, scope: ScopeId, file: FileId) -> Val {
        let span = self.span(file, expr.syntax().text_range());
        match expr {
            ast::Expr::Literal(lit) => match lit.kind() {
                ast::LiteralKind::Integer(i) => match i.value() {
                    Ok(n) => Val { v: V::Int(n), span },
                    Err(_) => {
                        self.error(EvalErrorKind::Type, span, "integer literal is out of range")
                    }
                },
                ast::LiteralKind::Float(f) => Val {
                    v: V::Float(f.value().unwrap_or(f64::NAN)),
                    span,
                },
                ast::LiteralKind::Uri(u) => Val {
                    v: V::Str(u.syntax().text().into()),
                    span,
                },
            },
            ast::Expr::Str(s) => self.eval_str(s, scope, file, span),
            ast::Expr::PathAbs(_)
            | ast::Expr::PathRel(_)
            | ast::Expr::PathHome(_)
            | ast::Expr::PathSearch(_) => self.eval_path(expr, scope, file, span),
            ast::Expr::Ident(id) => {
                let name = id
                    .ident_token()
                    .map(|t| t.text().to_string())
                    .unwrap_or_default();
                self.lookup(&name, scope, span)
            }
            ast::Expr::Paren(p) => match p.expr() {
                Some(e) => self.eval(&e, scope, file),
                None => Val { v: V::Error, span },
            },
            ast::Expr::Root(r) => match r.expr() {
                Some(e) => self.eval(&e, scope, file),
                None => Val { v: V::Error, span },
            },
            ast::Expr::List(l) => {
                let items: Vec<ThunkId> = l
                    .items()
                    .map(|item| self.new_thunk(Thunk::Expr(item, scope, file)))
                    .collect();
                Val {
                    v: V::List(Rc::new(items)),
                    span,
                }
            }
            ast::Expr::AttrSet(set) => {
                if set.rec_token().is_some() {
                    let inner = self.new_scope(Some(scope));
                    match self.build_attrs(set, inner, scope, file) {
                        Ok(attrs) => {
                            let vars = attrs.iter().map(|(k, (_, t))| (k.clone(), *t)).collect();
                            self.scopes[inner as usize].vars = vars;
                            Val {
                                v: V::Attrs(Rc::new(attrs)),
                                span,
                            }
                        }
                        Err(reason) => self.dynamic(span, &reason),
                    }
                } else {
                    match self.build_attrs(set, scope, scope, file) {
                        Ok(attrs) => Val {
                            v: V::Attrs(Rc::new(attrs)),
                            span,
                        },
                        Err(reason) => self.dynamic(span, &reason),
                    }
                }
            }
            ast::Expr::LetIn(l) => {
                let inner = self.new_scope(Some(scope));
                match self.build_attrs(l, inner, scope, file) {
                    Ok(attrs) => {
                        let vars = attrs.iter().map(|(k, (_, t))| (k.clone(), *t)).collect();
                        self.scopes[inner as usize].vars = vars;
                        match l.body() {
                            Some(b) => self.eval(&b, inner, file),
                            None => Val { v: V::Error, span },
                        }
                    }
                    Err(reason) => self.dynamic(span, &reason),
                }
            }
            ast::Expr::LegacyLet(_) => self.dynamic(
                span,
                "the legacy `let { … }` syntax is not evaluated statically",
            ),
            ast::Expr::With(w) => {
                let Some(ns) = w.namespace() else {
                    return Val { v: V::Error, span };
                };
                let nst = self.new_thunk(Thunk::Expr(ns, scope, file));
                let inner = self.new_scope(Some(scope));
                self.scopes[inner as usize].with = Some(nst);
                match w.body() {
                    Some(b) => self.eval(&b, inner, file),
                    None => Val { v: V::Error, span },
                }
            }
            ast::Expr::Select(sel) => self.eval_select(sel, scope, file, span),
            ast::Expr::HasAttr(h) => {
                let Some(e) = h.expr() else {
                    return Val { v: V::Error, span };
                };
                let mut cur = self.eval(&e, scope, file);
                let Some(path) = h.attrpath() else {
                    return Val { v: V::Error, span };
                };
                for attr in path.attrs() {
                    let name = match self.attr_name(&attr, scope, file) {
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
                        V::Attrs(a) => match a.get(name.as_str()) {
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
            ast::Expr::BinOp(b) => self.eval_binop(b, scope, file, span),
            ast::Expr::UnaryOp(u) => {
                let Some(e) = u.expr() else {
                    return Val { v: V::Error, span };
                };
                let v = self.eval(&e, scope, file);
                match (u.operator(), &v.v) {
                    (_, V::Dynamic(_)) | (_, V::Error) => Val { v: v.v, span },
                    (Some(ast::UnaryOpKind::Invert), V::Bool(b)) => Val {
                        v: V::Bool(!b),
                        span,
                    },
                    (Some(ast::UnaryOpKind::Negate), V::Int(i)) => match i.checked_neg() {
                        Some(n) => Val { v: V::Int(n), span },
                        None => self.error(EvalErrorKind::Type, span, "integer overflow"),
                    },
                    (Some(ast::UnaryOpKind::Negate), V::Float(f)) => Val {
                        v: V::Float(-f),
                        span,
                    },
                    _ => {
                        let t = type_name(&v.v);
                        self.error(
                            EvalErrorKind::Type,
                            span,
                            format!("cannot apply this operator to {t}"),
                        )
                    }
                }
            }
            ast::Expr::IfElse(i) => {
                let Some(c) = i.condition() else {
                    return Val { v: V::Error, span };
                };
                let cv = self.eval(&c, scope, file);
                let branch = match cv.v {
                    V::Bool(true) => i.body(),
                    V::Bool(false) => i.else_body(),
                    V::Dynamic(_) => {
                        return self
                            .dynamic(span, "depends on a condition that is not known statically")
                    }
                    V::Error => return Val { v: V::Error, span },
                    ref other => {
                        let t = type_name(other);
                        return self.error(
                            EvalErrorKind::Type,
                            cv.span,
                            format!("value is {t} while a Boolean was expected"),
                        );
                    }
                };
                match branch {
                    Some(b) => self.eval(&b, scope, file),
                    None => Val { v: V::Error, span },
                }
            }
            ast::Expr::Assert(a) => {
                if let Some(c) = a.condition() {
                    let cv = self.eval(&c, scope, file);
                    if let V::Bool(false) = cv.v {
                        return self.error(EvalErrorKind::Assertion, cv.span, "assertion failed");
                    }
                }
                match a.body() {
                    Some(b) => self.eval(&b, scope, file),
                    None => Val { v: V::Error, span },
                }
            }
            ast::Expr::Lambda(l) => Val {
                v: V::Lambda(Rc::new(Closure {
                    lambda: l.clone(),
                    scope,
                    file,
                })),
                span,
            },
            ast::Expr::Apply(app) => {
                let (Some(f), Some(arg)) = (app.lambda(), app.argument()) else {
                    return Val { v: V::Error, span };
                };
                let fv = self.eval(&f, scope, file);
                let argt = self.new_thunk(Thunk::Expr(arg, scope, file));
                self.apply(fv, argt, span)
            }
            ast::Expr::CurPos(_) => self.dynamic(span, "`__curPos` is not evaluated statically"),
            ast::Expr::Error(_) => Val { v: V::Error, span },
        }
    }

    fn apply(&mut self, f: Val, arg: ThunkId, span: Span) -> Val {
        match f.v {
            V::Lambda(clo) => self.call_lambda(&clo, arg, span),
            V::Import => {
                let a = self.force(arg);
                let path: PathBuf = match &a.v {
                    V::Path(p) => p.to_path_buf(),
                    V::Str(s) if s.starts_with('/') => PathBuf::from(&**s),
                    V::Dynamic(_) | V::Error => {
                        return self.dynamic(span, "imports a path that is not known statically")
                    }
                    other => {
                        let t = type_name(other);
                        return self.error(
                            EvalErrorKind::Type,
                            a.span,
                            format!("cannot import {t}"),
                        );
                    }
                };
                self.import(&path, span)
            }
            V::Dynamic(_) => self.dynamic(span, "calls a function that is not known statically"),
            V::Error => Val { v: V::Error, span },
            other => {
                let t = type_name(&other);
                self.error(
                    EvalErrorKind::Type,
                    f.span,
                    format!("attempt to call something which is not a function but {t}"),
                )
            }
        }
    }

    fn call_lambda(&mut self, clo: &Closure, arg: ThunkId, span: Span) -> Val {
        let file = clo.file;
        let inner = self.new_scope(Some(clo.scope));
        match clo.lambda.param() {
            Some(ast::Param::IdentParam(p)) => {
                if let Some(name) = p.ident().and_then(|i| i.ident_token()) {
                    self.scopes[inner as usize]
                        .vars
                        .insert(name.text().into(), arg);
                }
            }
            Some(ast::Param::Pattern(p)) => {
                if let Some(name) = p
                    .pat_bind()
                    .and_then(|b| b.ident())
                    .and_then(|i| i.ident_token())
                {
                    self.scopes[inner as usize]
                        .vars
                        .insert(name.text().into(), arg);
                }
                let av = self.force(arg);
                let known = match &av.v {
                    V::Attrs(a) => Some(a.clone()),
                    V::Dynamic(_) | V::Error => None,
                    other => {
                        let t = type_name(other);
                        return self.error(
                            EvalErrorKind::Type,
                            av.span,
                            format!("value is {t} while a set was expected"),
                        );
                    }
                };
                let mut formals = Vec::new();
                for entry in p.pat_entries() {
                    let Some(tok) = entry.ident().and_then(|i| i.ident_token()) else {
                        continue;
                    };
                    let name: Rc<str> = tok.text().into();
                    formals.push(name.clone());
                    let t = match (&known, entry.default()) {
                        (Some(a), _) if a.contains_key(&name) => a[&name].1,
                        (Some(_), Some(def)) => self.new_thunk(Thunk::Expr(def, inner, file)),
                        (Some(_), None) => {
                            return self.error(
                                EvalErrorKind::Argument,
                                span,
                                format!("function called without required argument `{name}`"),
                            )
                        }
                        (None, _) => self.new_thunk(Thunk::Select(arg, name.clone(), span)),
                    };
                    self.scopes[inner as usize].vars.insert(name, t);
                }
                if let (Some(a), None) = (&known, p.ellipsis_token()) {
                    if let Some(extra) = a.keys().find(|k| !formals.contains(k)) {
                        let extra = extra.clone();
                        return self.error(
                            EvalErrorKind::Argument,
                            span,
                            format!("function called with unexpected argument `{extra}`"),
                        );
                    }
                }
            }
            None => return Val { v: V::Error, span },
        }
        match clo.lambda.body() {
            Some(b) => {
                let mut v = self.eval(&b, inner, file);
                // The call site is where a user looks for the value (e.g. `mkVm { … }`).
                if matches!(v.v, V::Dynamic(_)) {
                    v.span = span;
                }
                v
            }
            None => Val { v: V::Error, span },
        }
    }

    fn import(&mut self, path: &Path, span: Span) -> Val {
        let mut path = normalize(path);
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

    fn eval_str(&mut self, s: &ast::Str, scope: ScopeId, file: FileId, span: Span) -> Val {
        if !well_formed_parts(s.syntax()) {
            return Val { v: V::Error, span };
        }
        let mut out = String::new();
        for part in s.normalized_parts() {
            match part {
                InterpolPart::Literal(text) => out.push_str(&text),
                InterpolPart::Interpolation(i) => {
                    let Some(e) = i.expr() else {
                        return Val { v: V::Error, span };
                    };
                    let v = self.eval(&e, scope, file);
                    match &v.v {
                        V::Str(s) => out.push_str(s),
                        V::Path(_) => {
                            return self
                                .dynamic(span, "interpolating a path copies it to the Nix store")
                        }
                        V::Dynamic(_) => {
                            return self
                                .dynamic(span, "interpolates a value that is not known statically")
                        }
                        V::Error => return Val { v: V::Error, span },
                        V::Attrs(a)
                            if a.contains_key("outPath") || a.contains_key("__toString") =>
                        {
                            return self.dynamic(
                                span,
                                "interpolates a derivation or a set with `__toString`",
                            )
                        }
                        other => {
                            let t = type_name(other);
                            return self.error(
                                EvalErrorKind::Type,
                                v.span,
                                format!("cannot coerce {t} to a string"),
                            );
                        }
                    }
                }
            }
        }
        Val {
            v: V::Str(out.into()),
            span,
        }
    }

    fn eval_path(&mut self, expr: &ast::Expr, scope: ScopeId, file: FileId, span: Span) -> Val {
        if !well_formed_parts(expr.syntax()) {
            return Val { v: V::Error, span };
        }
        let path = match expr {
            ast::Expr::PathAbs(p) => Some(p.parts()),
            ast::Expr::PathRel(p) => Some(p.parts()),
            ast::Expr::PathHome(_) => {
                return self.dynamic(span, "a `~/` path depends on the user's home")
            }
            ast::Expr::PathSearch(_) => {
                return self.dynamic(span, "a `<…>` path depends on NIX_PATH")
            }
            _ => None,
        };
        let mut text = String::new();
        for part in path.unwrap_or_default() {
            match part {
                InterpolPart::Literal(c) => text.push_str(c.text()),
                InterpolPart::Interpolation(i) => {
                    let Some(e) = i.expr() else {
                        return Val { v: V::Error, span };
                    };
                    let v = self.eval(&e, scope, file);
                    match &v.v {
                        V::Str(s) => text.push_str(s),
                        V::Dynamic(_) | V::Error => {
                            return self
                                .dynamic(span, "a path built from a value not known statically")
                        }
                        other => {
                            let t = type_name(other);
                            return self.error(
                                EvalErrorKind::Type,
                                v.span,
                                format!("cannot coerce {t} to a string"),
                            );
                        }
                    }
                }
            }
        }
        let resolved = if text.starts_with('/') {
            normalize(Path::new(&text))
        } else {
            let base = self
                .db
                .path(file)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            normalize(&base.join(&text))
        };
        Val {
            v: V::Path(resolved.into()),
            span,
        }
    }

    /// The name an attribute key stands for; `Ok(None)` for `${null}` keys, which Nix skips.
    fn attr_name(
        &mut self,
        attr: &ast::Attr,
        scope: ScopeId,
        file: FileId,
    ) -> Result<Option<String>, String> {
        match attr {
            ast::Attr::Ident(i) => Ok(Some(
                i.ident_token()
                    .map(|t| t.text().to_string())
                    .unwrap_or_default(),
            )),
            ast::Attr::Str(s) => {
                let span = self.span(file, s.syntax().text_range());
                let v = self.eval_str(s, scope, file, span);
                match v.v {
                    V::Str(s) => Ok(Some(s.to_string())),
                    _ => Err(
                        "an attribute name is computed from a value not known statically".into(),
                    ),
                }
            }
            ast::Attr::Dynamic(d) => {
                let Some(e) = d.expr() else {
                    return Err("an attribute name is missing".into());
                };
                let v = self.eval(&e, scope, file);
                match v.v {
                    V::Str(s) => Ok(Some(s.to_string())),
                    V::Null => Ok(None),
                    _ => Err(
                        "an attribute name is computed from a value not known statically".into(),
                    ),
                }
            }
        }
    }

    /// Builds the entries of a set or `let`: values are evaluated in `value_scope` (the set's
    /// own scope for `rec` and `let`), inherits and dynamic names in `outer`.
    fn build_attrs(
        &mut self,
        node: &impl HasEntry,
        value_scope: ScopeId,
        outer: ScopeId,
        file: FileId,
    ) -> Result<Attrs, String> {
        let mut slots = Slots::default();
        self.fill_slots(node, &mut slots, value_scope, outer, file)?;
        Ok(self.finish_slots(slots))
    }

    fn fill_slots(
        &mut self,
        node: &impl HasEntry,
        slots: &mut Slots,
        value_scope: ScopeId,
        outer: ScopeId,
        file: FileId,
    ) -> Result<(), String> {
        for entry in node.entries() {
            match entry {
                ast::Entry::Inherit(inh) => {
                    let from = inh
                        .from()
                        .and_then(|f| f.expr())
                        .map(|e| self.new_thunk(Thunk::Expr(e, outer, file)));
                    for attr in inh.attrs() {
                        let key = self.span(file, attr.syntax().text_range());
                        let Some(name) = self.attr_name(&attr, outer, file)? else {
                            continue;
                        };
                        let name: Rc<str> = name.into();
                        let thunk = match (from, &attr) {
                            (Some(src), _) => self.new_thunk(Thunk::Select(src, name.clone(), key)),
                            (None, ast::Attr::Ident(id)) => self.new_thunk(Thunk::Expr(
                                ast::Expr::Ident(id.clone()),
                                outer,
                                file,
                            )),
                            (None, _) => {
                                let v = self.lookup(&name, outer, key);
                                self.new_thunk(Thunk::Done(v))
                            }
                        };
                        self.insert_leaf(slots, name, key, thunk, None);
                    }
                }
                ast::Entry::AttrpathValue(apv) => {
                    let Some(path) = apv.attrpath() else { continue };
                    let Some(value) = apv.value() else { continue };
                    let mut names = Vec::new();
                    let mut skip = false;
                    for attr in path.attrs() {
                        let key = self.span(file, attr.syntax().text_range());
                        match self.attr_name(&attr, outer, file)? {
                            Some(n) => names.push((Rc::<str>::from(n), key)),
                            None => skip = true,
                        }
                    }
                    if skip || names.is_empty() {
                        continue;
                    }
                    let node_span = self.span(file, apv.syntax().text_range());
                    let (last, prefix) = names.split_last().expect("non-empty");
                    // Walk (and create) the nested sets of `a.b.c = …;`.
                    let mut cur: &mut Slots = slots;
                    for (n, key) in prefix {
                        if let Some(Slot::Leaf { .. }) = cur.get(n) {
                            self.expand_leaf(cur, n)?;
                        }
                        let slot = cur.entry(n.clone()).or_insert_with(|| Slot::Nested {
                            key: *key,
                            node: node_span,
                            entries: Slots::default(),
                        });
                        match slot {
                            Slot::Nested { entries, .. } => cur = entries,
                            Slot::Leaf { key: first, .. } => {
                                let first = *first;
                                self.duplicate(n, *key, first);
                                return Ok(());
                            }
                        }
                    }
                    let (name, key) = last.clone();
                    let literal = match &value {
                        ast::Expr::AttrSet(s) if s.rec_token().is_none() => {
                            Some((s.clone(), value_scope))
                        }
                        _ => None,
                    };
                    if let (Some(Slot::Nested { .. }), Some((set, sc))) = (cur.get(&name), &literal)
                    {
                        // `a.b = 1; a = { c = 2; };` merges into one set, as Nix does.
                        let (set, sc) = (set.clone(), *sc);
                        if let Some(Slot::Nested { entries, .. }) = cur.get_mut(&name) {
                            let mut taken = std::mem::take(entries);
                            self.fill_slots(&set, &mut taken, sc, sc, file)?;
                            if let Some(Slot::Nested { entries, .. }) = cur.get_mut(&name) {
                                *entries = taken;
                            }
                        }
                        continue;
                    }
                    let thunk = self.new_thunk(Thunk::Expr(value, value_scope, file));
                    self.insert_leaf(cur, name, key, thunk, literal);
                }
            }
        }
        Ok(())
    }

    /// Turns a leaf holding a literal set into a nested slot so more paths can merge into it.
    fn expand_leaf(&mut self, slots: &mut Slots, name: &Rc<str>) -> Result<(), String> {
        let Some(Slot::Leaf {
            key,
            literal: Some((set, sc)),
            ..
        }) = slots.get(name)
        else {
            return Ok(());
        };
        let (key, set, sc) = (*key, set.clone(), *sc);
        let file = key.file;
        let node = self.span(file, set.syntax().text_range());
        let mut entries = Slots::default();
        self.fill_slots(&set, &mut entries, sc, sc, file)?;
        slots.insert(name.clone(), Slot::Nested { key, node, entries });
        Ok(())
    }

    fn insert_leaf(
        &mut self,
        slots: &mut Slots,
        name: Rc<str>,
        key: Span,
        thunk: ThunkId,
        literal: Option<(ast::AttrSet, ScopeId)>,
    ) {
        if let Some(existing) = slots.get(&name) {
            let first = existing.key();
            self.duplicate(&name, key, first);
            return;
        }
        slots.insert(
            name,
            Slot::Leaf {
                key,
                thunk,
                literal,
            },
        );
    }

    fn duplicate(&mut self, name: &str, key: Span, first: Span) {
        self.errors.push(EvalError {
            kind: EvalErrorKind::DuplicateAttribute,
            span: key,
            message: format!("attribute `{name}` is already defined"),
            related: Some((first, "first defined here".into())),
        });
    }

    fn finish_slots(&mut self, slots: Slots) -> Attrs {
        let mut out = Attrs::with_capacity_and_hasher(slots.len(), FxBuildHasher);
        for (name, slot) in slots {
            match slot {
                Slot::Leaf { key, thunk, .. } => {
                    out.insert(name, (key, thunk));
                }
                Slot::Nested { key, node, entries } => {
                    let inner = self.finish_slots(entries);
                    let t = self.done(V::Attrs(Rc::new(inner)), node);
                    out.insert(name, (key, t));
                }
            }
        }
        out
    }

    fn select_one(&mut self, from: Val, name: &str, span: Span) -> Val {
        match &from.v {
            V::Attrs(a) => match a.get(name) {
                Some(&(_, t)) => self.force(t),
                None => self.error(
                    EvalErrorKind::MissingAttribute,
                    span,
                    format!("attribute `{name}` missing"),
                ),
            },
            V::Dynamic(_) => self.dynamic(span, "selects from a set that is not known statically"),
            V::Error => Val { v: V::Error, span },
            other => {
                let t = type_name(other);
                self.error(
                    EvalErrorKind::Type,
                    span,
                    format!("value is {t} while a set was expected"),
                )
            }
        }
    }

    fn eval_select(&mut self, sel: &ast::Select, scope: ScopeId, file: FileId, span: Span) -> Val {
        let Some(e) = sel.expr() else {
            return Val { v: V::Error, span };
        };
        let mut cur = self.eval(&e, scope, file);
        let Some(path) = sel.attrpath() else {
            return Val { v: V::Error, span };
        };
        for attr in path.attrs() {
            let key = self.span(file, attr.syntax().text_range());
            let name = match self.attr_name(&attr, scope, file) {
                Ok(Some(n)) => n,
                Ok(None) => return self.error(EvalErrorKind::Type, key, "attribute name is null"),
                Err(reason) => return self.dynamic(span, &reason),
            };
            match &cur.v {
                V::Attrs(a) => match a.get(name.as_str()) {
                    Some(&(_, t)) => cur = self.force(t),
                    None => {
                        return match sel.default_expr() {
                            Some(d) => self.eval(&d, scope, file),
                            None => self.error(
                                EvalErrorKind::MissingAttribute,
                                key,
                                format!("attribute `{name}` missing"),
                            ),
                        }
                    }
                },
                V::Dynamic(_) => {
                    return self.dynamic(span, "selects from a set that is not known statically")
                }
                V::Error => return Val { v: V::Error, span },
                _ if sel.default_expr().is_some() => {
                    let d = sel.default_expr().expect("checked");
                    return self.eval(&d, scope, file);
                }
                other => {
                    let t = type_name(other);
                    return self.error(
                        EvalErrorKind::Type,
                        cur.span,
                        format!("value is {t} while a set was expected"),
                    );
                }
            }
        }
        cur
    }

    fn eval_binop(&mut self, b: &ast::BinOp, scope: ScopeId, file: FileId, span: Span) -> Val {
        use ast::BinOpKind as K;
        let (Some(l), Some(r), Some(op)) = (b.lhs(), b.rhs(), b.operator()) else {
            return Val { v: V::Error, span };
        };
        // Logical operators short-circuit, as in Nix.
        if matches!(op, K::And | K::Or | K::Implication) {
            let lv = self.eval(&l, scope, file);
            let lb = match lv.v {
                V::Bool(x) => x,
                V::Dynamic(_) => {
                    return self
                        .dynamic(span, "depends on a condition that is not known statically")
                }
                V::Error => return Val { v: V::Error, span },
                ref other => {
                    let t = type_name(other);
                    return self.error(
                        EvalErrorKind::Type,
                        lv.span,
                        format!("value is {t} while a Boolean was expected"),
                    );
                }
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
            let rv = self.eval(&r, scope, file);
            return match rv.v {
                V::Bool(x) => Val {
                    v: V::Bool(x),
                    span,
                },
                V::Dynamic(_) => {
                    self.dynamic(span, "depends on a condition that is not known statically")
                }
                V::Error => Val { v: V::Error, span },
                ref other => {
                    let t = type_name(other);
                    self.error(
                        EvalErrorKind::Type,
                        rv.span,
                        format!("value is {t} while a Boolean was expected"),
                    )
                }
            };
        }
        let lv = self.eval(&l, scope, file);
        let rv = self.eval(&r, scope, file);
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
                    let mut m = (**a).clone();
                    for (k, v) in b.iter() {
                        m.insert(k.clone(), *v);
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

    fn arith(&mut self, op: ast::BinOpKind, l: &Val, r: &Val, span: Span) -> Option<Val> {
        use ast::BinOpKind as K;
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

    /// Forces `val` completely into a public [`Value`].
    fn force_deep(&mut self, val: &Val, depth: u32) -> Value {
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
            V::Str(s) => ValueKind::String(s.to_string()),
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
                        k.to_string(),
                        AttrEntry {
                            key_span: *key_span,
                            value,
                        },
                    );
                }
                ValueKind::Attrs(AttrSet { entries })
            }
            V::Lambda(_) | V::Import => ValueKind::Lambda,
            V::Dynamic(r) => ValueKind::Dynamic(r.to_string()),
            V::Error => ValueKind::Error,
        };
        Value { kind, span }
    }
}

/// True when every child node of a string or path is an interpolation. rnix's `parts()`
/// panics on the error nodes a broken file can put there, so those are checked first.
fn well_formed_parts(node: &rnix::SyntaxNode) -> bool {
    node.children()
        .all(|c| c.kind() == rnix::SyntaxKind::NODE_INTERPOL)
}

fn type_name(v: &V) -> &'static str {
    match v {
        V::Null => "null",
        V::Bool(_) => "a Boolean",
        V::Int(_) => "an integer",
        V::Float(_) => "a float",
        V::Str(_) => "a string",
        V::Path(_) => "a path",
        V::List(_) => "a list",
        V::Attrs(_) => "a set",
        V::Lambda(_) | V::Import => "a function",
        V::Dynamic(_) => "a dynamic value",
        V::Error => "an error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval_json(src: &str) -> (Option<serde_json::Value>, Vec<String>) {
        let mut db = SourceDb::new();
        let f = db.add("/fleet/test.nix", src);
        let ev = evaluate(&mut db, f, &NoImports);
        let mut errs: Vec<String> = ev.errors.iter().map(|e| e.message.clone()).collect();
        errs.extend(ev.syntax_errors.iter().map(|(_, e)| e.message.clone()));
        (ev.value.to_json(), errs)
    }

    fn check(src: &str, expect: serde_json::Value) {
        let (v, errs) = eval_json(src);
        assert!(errs.is_empty(), "unexpected errors for {src}: {errs:?}");
        assert_eq!(v, Some(expect), "{src}");
    }

    fn check_err(src: &str, expect: &str) {
        let (_, errs) = eval_json(src);
        assert!(
            errs.iter().any(|e| e.contains(expect)),
            "{src}: expected `{expect}` in {errs:?}"
        );
    }

    use serde_json::json;

    #[test]
    fn literals_and_strings() {
        check(
            r#"{ a = 1; b = -2; c = 1.5; d = "x\ny\${z}"; e = true; f = null; }"#,
            json!({"a":1,"b":-2,"c":1.5,"d":"x\ny${z}","e":true,"f":null}),
        );
        check("''\n    one\n      two\n  ''", json!("one\n  two\n"));
        check(r#"let x = "a"; in "${x}-${x}b""#, json!("a-ab"));
        check("''a ''${b} '''c''", json!("a ${b} ''c"));
    }

    #[test]
    fn sets_paths_rec_let_inherit() {
        check(
            "{ a.b.c = 1; a.b.d = 2; a.e = 3; }",
            json!({"a":{"b":{"c":1,"d":2},"e":3}}),
        );
        check("{ a = { b = 1; }; a.c = 2; }", json!({"a":{"b":1,"c":2}}));
        check("{ a.c = 2; a = { b = 1; }; }", json!({"a":{"b":1,"c":2}}));
        check("rec { a = 1; b = a + 1; }", json!({"a":1,"b":2}));
        check(
            "let a = 1; b = { inherit a; }; in b // { c = 2; }",
            json!({"a":1,"c":2}),
        );
        check(
            "let s = { x = 1; y = 2; }; in { inherit (s) x y; }",
            json!({"x":1,"y":2}),
        );
        check(
            "let self = { a = 1; b = self.a; }; in self",
            json!({"a":1,"b":1}),
        );
        check(
            r#"let n = "k"; in { ${n} = 1; "${n}2" = 2; ${null} = 3; }"#,
            json!({"k":1,"k2":2}),
        );
    }

    #[test]
    fn operators_functions_with() {
        check("[ 1 ] ++ [ 2 3 ]", json!([1, 2, 3]));
        check("{ a = 1; } // { a = 2; b = 3; }", json!({"a":2,"b":3}));
        check("let f = x: { v = x * 2; }; in f 21", json!({"v":42}));
        check(
            "let f = { a, b ? a + 1, ... }@args: [ a b args.c ]; in f { a = 1; c = 9; }",
            json!([1, 2, 9]),
        );
        check("with { x = 5; }; x + 1", json!(6));
        check("let x = 1; in with { x = 5; }; x", json!(1));
        check("if 1 < 2 && !false then \"y\" else \"n\"", json!("y"));
        check("{ a = { b = 1; }; }.a.c or 7", json!(7));
        check("{ x = 1; } ? x", json!(true));
        check(
            "[ (1 == 1.0) ({ a = [ 1 ]; } == { a = [ 1 ]; }) (7 / 2) ]",
            json!([true, true, 3]),
        );
    }

    #[test]
    fn dynamic_values_keep_their_span() {
        let src = "{ a = pkgs.hello; b = builtins.toString 1; c = 1; }";
        let mut db = SourceDb::new();
        let f = db.add("/t.nix", src);
        let ev = evaluate(&mut db, f, &NoImports);
        let attrs = ev.value.as_attrs().unwrap();
        // `pkgs` is undefined here: an error; builtins are dynamic.
        assert!(matches!(attrs.get("a").unwrap().kind, ValueKind::Error));
        let b = attrs.get("b").unwrap();
        assert!(matches!(b.kind, ValueKind::Dynamic(_)));
        assert_eq!(&src[b.span.range], "builtins.toString 1");
        assert_eq!(attrs.get("c").unwrap().as_int(), Some(1));
        assert_eq!(ev.errors.len(), 1);
        assert_eq!(&src[ev.errors[0].span.range], "pkgs");
    }

    #[test]
    fn errors_nix_would_raise() {
        check_err("{ a = 1; a = 2; }", "attribute `a` is already defined");
        check_err("{ a.b = 1; a = 2; }", "attribute `a` is already defined");
        check_err("let x = y; in x", "undefined variable `y`");
        check_err("let x = x; in x", "infinite recursion");
        check_err("1 + \"a\"", "cannot add an integer and a string");
        check_err("\"${1}\"", "cannot coerce an integer to a string");
        check_err("{ a = 1; }.b", "attribute `b` missing");
        check_err("1 / 0", "division by zero");
        check_err("({ a }: a) { b = 1; }", "without required argument `a`");
        check_err("({ a }: a) { a = 1; b = 1; }", "unexpected argument `b`");
    }

    #[test]
    fn imports_resolve_relative_to_the_importing_file() {
        struct Files;
        impl Loader for Files {
            fn load(&self, path: &Path) -> Result<String, String> {
                match path.to_str().unwrap() {
                    "/fleet/vms/common.nix" => Ok("{ cores = 2; }".into()),
                    "/fleet/vms/lib/default.nix" => Ok("{ mk = x: x // { made = true; }; }".into()),
                    p => Err(format!("no such file {p}")),
                }
            }
        }
        let mut db = SourceDb::new();
        let f = db.add(
            "/fleet/vms/definitions.nix",
            "let c = import ./common.nix; l = import ./lib; in l.mk c",
        );
        let ev = evaluate(&mut db, f, &Files);
        assert!(ev.errors.is_empty(), "{:?}", ev.errors);
        assert_eq!(ev.value.to_json(), Some(json!({"cores":2,"made":true})));
        // The value keeps the span of the imported file.
        let cores = ev.value.as_attrs().unwrap().get("cores").unwrap();
        assert_eq!(db.path(cores.span.file), Path::new("/fleet/vms/common.nix"));
        let mut db = SourceDb::new();
        let f = db.add("/fleet/x.nix", "import ./missing.nix");
        let ev = evaluate(&mut db, f, &Files);
        assert_eq!(ev.errors[0].kind, EvalErrorKind::Import);
    }
}
