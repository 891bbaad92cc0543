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
//! strict at the end: the result is a fully forced [`Value`] tree. It walks the arena
//! [`Ast`] (built by the fast parser, or lowered from rnix for files it declines) with
//! interned names, so the hot path neither touches rowan nor hashes strings.

use rustc_hash::{FxBuildHasher, FxHashMap};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use indexmap::IndexMap;
use rnix::ast::{BinOpKind, UnaryOpKind};
use rowan::{TextRange, TextSize};

use super::ast::{
    Ast, Attr, AttrKind, Entry, ExprId, Interner, Kind, Opt, Param, Part, PathKind, Slice, Sym,
    NONE,
};
use super::value::{AttrEntry, AttrSet, Value, ValueKind};
use super::{parse, FileId, SourceDb, Span, SyntaxError};

/// Reads files that `import` asks for. The evaluator itself never touches the filesystem.
pub trait Loader {
    /// The text of `path`, or a message saying why it cannot be read.
    fn load(&self, path: &Path) -> Result<String, String>;

    /// Whether `path` may be read at all. An import of a path that may not is a dynamic value
    /// (unknown, not an error): a fleet's evaluation stays inside the fleet.
    fn allows(&self, _path: &Path) -> bool {
        true
    }
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

/// Parses `text` into an [`Ast`]: the fast parser when it accepts the text (then there are
/// no syntax errors), rnix and [`super::lower`] otherwise (with rnix's syntax errors).
pub fn parse_ast(text: &str, names: &mut Interner) -> (Ast, Vec<SyntaxError>) {
    if let Some(ast) = super::fast::parse(text, names) {
        return (ast, Vec::new());
    }
    // rnix recurses once per nested list or set without a limit: past a depth no fleet file
    // reaches, hand it nothing rather than overflow the stack.
    if let Some(at) = super::nesting_beyond(text, super::MAX_NESTING) {
        let mut ast = Ast::default();
        ast.root = ast.push(TextRange::up_to(TextSize::of(text)), Kind::Error);
        let error = SyntaxError {
            range: TextRange::empty(TextSize::from(at as u32)),
            message: format!(
                "brackets are nested more than {} levels deep here; vmctl does not read this file",
                super::MAX_NESTING
            ),
        };
        return (ast, vec![error]);
    }
    let (root, mut errors) = parse(text);
    let (ast, too_deep) = super::lower::lower_bounded(&root, names);
    if let Some(range) = too_deep {
        errors.push(SyntaxError {
            range: rowan::TextRange::empty(range.start()),
            message: format!(
                "the expression is nested more than {} levels deep; vmctl reads no deeper",
                super::lower::MAX_DEPTH
            ),
        });
    }
    (ast, errors)
}

/// Evaluates the file `file` of `db`; imported files are added to `db` through `loader`.
pub fn evaluate(db: &mut SourceDb, file: FileId, loader: &dyn Loader) -> Evaluation {
    let mut names = Interner::new();
    let wk = WellKnown {
        true_: names.intern("true"),
        false_: names.intern("false"),
        null: names.intern("null"),
        import: names.intern("import"),
        out_path: names.intern("outPath"),
        to_string: names.intern("__toString"),
    };
    let mut ev = Evaluator {
        db,
        loader,
        thunks: Vec::new(),
        scopes: Vec::new(),
        errors: Vec::new(),
        syntax_errors: Vec::new(),
        imports: FxHashMap::default(),
        depth: 0,
        asts: Vec::new(),
        names,
        wk,
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

type Attrs = IndexMap<Sym, (Span, ThunkId), FxBuildHasher>;
type Slots = IndexMap<Sym, Slot, FxBuildHasher>;

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
    Lambda(Closure),
    Import,
    Dynamic(Rc<str>),
    Error,
}

#[derive(Clone, Copy)]
struct Closure {
    param: Opt,
    body: Opt,
    scope: ScopeId,
    file: FileId,
}

enum Thunk {
    Expr(ExprId, ScopeId, FileId),
    /// A variable looked up where it is written (`inherit x;`), with the span of the name.
    Ident(Sym, ScopeId, Span),
    Select(ThunkId, Sym, Span),
    Forcing(Span),
    Done(Val),
}

/// The variables a scope binds: a `let`/`rec` scope shares its set's table.
enum Vars {
    Map(FxHashMap<Sym, ThunkId>),
    Attrs(Rc<Attrs>),
}

impl Vars {
    fn get(&self, name: Sym) -> Option<ThunkId> {
        match self {
            Vars::Map(m) => m.get(&name).copied(),
            Vars::Attrs(a) => a.get(&name).map(|&(_, t)| t),
        }
    }
}

struct ScopeData {
    vars: Vars,
    parent: Option<ScopeId>,
    with: Option<ThunkId>,
}

/// Names the evaluator itself looks for.
struct WellKnown {
    true_: Sym,
    false_: Sym,
    null: Sym,
    import: Sym,
    out_path: Sym,
    to_string: Sym,
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
    /// The tree of each file read so far, by [`FileId`].
    asts: Vec<Option<Rc<Ast>>>,
    names: Interner,
    wk: WellKnown,
}

/// One slot of an attribute set under construction (nested attribute paths merge here).
enum Slot {
    Leaf {
        key: Span,
        thunk: ThunkId,
        literal: Option<(ExprId, ScopeId)>,
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

    fn ast(&self, file: FileId) -> &Ast {
        self.asts[file.0 as usize]
            .as_deref()
            .expect("a file is parsed before it is evaluated")
    }

    fn ast_rc(&self, file: FileId) -> Rc<Ast> {
        self.asts[file.0 as usize]
            .clone()
            .expect("a file is parsed before it is evaluated")
    }

    fn name(&self, s: Sym) -> &str {
        self.names.resolve(s)
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
            vars: Vars::Map(FxHashMap::default()),
            parent,
            with: None,
        });
        self.scopes.len() as ScopeId - 1
    }

    fn bind(&mut self, scope: ScopeId, name: Sym, t: ThunkId) {
        if let Vars::Map(m) = &mut self.scopes[scope as usize].vars {
            m.insert(name, t);
        }
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
        let (ast, errors) = parse_ast(&text, &mut self.names);
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

    fn lookup(&mut self, name: Sym, scope: ScopeId, span: Span) -> Val {
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

    fn eval(&mut self, expr: ExprId, scope: ScopeId, file: FileId) -> Val {
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
                if e == NONE {
                    return Val { v: V::Error, span };
                }
                let mut cur = self.eval(e, scope, file);
                let Some(path) = path else {
                    return Val { v: V::Error, span };
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
            Kind::IfElse { cond, then, els } => {
                if cond == NONE {
                    return Val { v: V::Error, span };
                }
                let cv = self.eval(cond, scope, file);
                let branch = match cv.v {
                    V::Bool(true) => then,
                    V::Bool(false) => els,
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
                        let t = type_name(other);
                        return self.error(
                            EvalErrorKind::Type,
                            av.span,
                            format!("value is {t} while a set was expected"),
                        );
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

    fn import(&mut self, path: &Path, span: Span) -> Val {
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

    /// Evaluates the string node `id` (a [`Kind::Str`], or [`Kind::Error`] when malformed).
    fn eval_str(&mut self, id: ExprId, scope: ScopeId, file: FileId, span: Span) -> Val {
        let Kind::Str { parts } = self.ast(file).node(id).kind else {
            return Val { v: V::Error, span };
        };
        // The common case, one literal part, needs no buffer.
        if parts.len == 1 {
            if let Part::Lit { start, end } = self.ast(file).parts[parts.start as usize] {
                let s: Rc<str> = self.ast(file).lit(start, end).into();
                return Val { v: V::Str(s), span };
            }
        }
        let mut out = String::new();
        for i in parts.range() {
            let part = self.ast(file).parts[i];
            match part {
                Part::Lit { start, end } => out.push_str(self.ast(file).lit(start, end)),
                Part::Interp(e) => {
                    if e == NONE {
                        return Val { v: V::Error, span };
                    }
                    let v = self.eval(e, scope, file);
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
                            if a.contains_key(&self.wk.out_path)
                                || a.contains_key(&self.wk.to_string) =>
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

    fn eval_path(
        &mut self,
        kind: PathKind,
        parts: Slice,
        scope: ScopeId,
        file: FileId,
        span: Span,
    ) -> Val {
        match kind {
            PathKind::Home => return self.dynamic(span, "a `~/` path depends on the user's home"),
            PathKind::Search => return self.dynamic(span, "a `<…>` path depends on NIX_PATH"),
            PathKind::Abs | PathKind::Rel => {}
        }
        let mut text = String::new();
        for i in parts.range() {
            let part = self.ast(file).parts[i];
            match part {
                Part::Lit { start, end } => text.push_str(self.ast(file).lit(start, end)),
                Part::Interp(e) => {
                    if e == NONE {
                        return Val { v: V::Error, span };
                    }
                    let v = self.eval(e, scope, file);
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
        attr: Attr,
        scope: ScopeId,
        file: FileId,
    ) -> Result<Option<Sym>, String> {
        match attr.kind {
            AttrKind::Ident(s) => Ok(Some(s)),
            AttrKind::Str(id) => {
                let span = self.span(file, self.ast(file).node(id).range);
                let v = self.eval_str(id, scope, file, span);
                match v.v {
                    V::Str(s) => Ok(Some(self.names.intern(&s))),
                    _ => Err(
                        "an attribute name is computed from a value not known statically".into(),
                    ),
                }
            }
            AttrKind::Dynamic(e) => {
                if e == NONE {
                    return Err("an attribute name is missing".into());
                }
                let v = self.eval(e, scope, file);
                match v.v {
                    V::Str(s) => Ok(Some(self.names.intern(&s))),
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
        entries: Slice,
        value_scope: ScopeId,
        outer: ScopeId,
        file: FileId,
    ) -> Result<Attrs, String> {
        if self.flat_bindings(entries, file) {
            return self.build_flat(entries, value_scope, outer, file);
        }
        let mut slots = Slots::with_capacity_and_hasher(entries.len as usize, FxBuildHasher);
        self.fill_slots(entries, &mut slots, value_scope, outer, file)?;
        Ok(self.finish_slots(slots))
    }

    /// True when no binding has a nested path (`a.b = …`) and every name is a plain
    /// identifier: then no set needs merging and the slots can be skipped.
    fn flat_bindings(&self, entries: Slice, file: FileId) -> bool {
        let ast = self.ast(file);
        ast.entries[entries.range()].iter().all(|e| match *e {
            Entry::Value { path, .. } => {
                path.len == 1 && matches!(ast.attrs[path.start as usize].kind, AttrKind::Ident(_))
            }
            Entry::Inherit { .. } => true,
        })
    }

    /// [`Self::fill_slots`] + [`Self::finish_slots`] for flat bindings: the same thunks, the
    /// same duplicate errors, in the same order, straight into the final table.
    fn build_flat(
        &mut self,
        entries: Slice,
        value_scope: ScopeId,
        outer: ScopeId,
        file: FileId,
    ) -> Result<Attrs, String> {
        let mut out = Attrs::with_capacity_and_hasher(entries.len as usize, FxBuildHasher);
        for ei in entries.range() {
            let entry = self.ast(file).entries[ei];
            match entry {
                Entry::Inherit { from, attrs } => {
                    for (name, key, thunk) in self.inherit_thunks(from, attrs, outer, file)? {
                        self.insert_flat(&mut out, name, key, thunk);
                    }
                }
                Entry::Value { path, value, .. } => {
                    let attr = self.ast(file).attrs[path.start as usize];
                    let AttrKind::Ident(name) = attr.kind else {
                        unreachable!("checked by flat_bindings")
                    };
                    let key = self.span(file, attr.range);
                    let thunk = self.new_thunk(Thunk::Expr(value, value_scope, file));
                    self.insert_flat(&mut out, name, key, thunk);
                }
            }
        }
        Ok(out)
    }

    /// The bindings of `inherit x;` / `inherit (e) x;`: names are looked up in `outer` (or
    /// selected from `e`, evaluated in `outer`) lazily, as Nix does.
    fn inherit_thunks(
        &mut self,
        from: super::ast::Opt,
        attrs: Slice,
        outer: ScopeId,
        file: FileId,
    ) -> Result<Vec<(Sym, Span, ThunkId)>, String> {
        let from = (from != NONE).then(|| self.new_thunk(Thunk::Expr(from, outer, file)));
        let mut out = Vec::with_capacity(attrs.len as usize);
        for ai in attrs.range() {
            let attr = self.ast(file).attrs[ai];
            let key = self.span(file, attr.range);
            let Some(name) = self.attr_name(attr, outer, file)? else {
                continue;
            };
            let thunk = match (from, attr.kind) {
                (Some(src), _) => self.new_thunk(Thunk::Select(src, name, key)),
                (None, AttrKind::Ident(_)) => self.new_thunk(Thunk::Ident(name, outer, key)),
                (None, _) => {
                    let v = self.lookup(name, outer, key);
                    self.new_thunk(Thunk::Done(v))
                }
            };
            out.push((name, key, thunk));
        }
        Ok(out)
    }

    fn insert_flat(&mut self, out: &mut Attrs, name: Sym, key: Span, thunk: ThunkId) {
        if let Some(&(first, _)) = out.get(&name) {
            self.duplicate(name, key, first);
            return;
        }
        out.insert(name, (key, thunk));
    }

    fn fill_slots(
        &mut self,
        entries: Slice,
        slots: &mut Slots,
        value_scope: ScopeId,
        outer: ScopeId,
        file: FileId,
    ) -> Result<(), String> {
        for ei in entries.range() {
            let entry = self.ast(file).entries[ei];
            match entry {
                Entry::Inherit { from, attrs } => {
                    for (name, key, thunk) in self.inherit_thunks(from, attrs, outer, file)? {
                        self.insert_leaf(slots, name, key, thunk, None);
                    }
                }
                Entry::Value { range, path, value } => {
                    let mut names: Vec<(Sym, Span)> = Vec::with_capacity(path.len as usize);
                    let mut skip = false;
                    for ai in path.range() {
                        let attr = self.ast(file).attrs[ai];
                        let key = self.span(file, attr.range);
                        match self.attr_name(attr, outer, file)? {
                            Some(n) => names.push((n, key)),
                            None => skip = true,
                        }
                    }
                    if skip || names.is_empty() {
                        continue;
                    }
                    let node_span = self.span(file, range);
                    let (last, prefix) = names.split_last().expect("non-empty");
                    // Walk (and create) the nested sets of `a.b.c = …;`.
                    let mut cur: &mut Slots = slots;
                    for &(n, key) in prefix {
                        if let Some(Slot::Leaf { .. }) = cur.get(&n) {
                            self.expand_leaf(cur, n)?;
                        }
                        let slot = cur.entry(n).or_insert_with(|| Slot::Nested {
                            key,
                            node: node_span,
                            entries: Slots::default(),
                        });
                        match slot {
                            Slot::Nested { entries, .. } => cur = entries,
                            Slot::Leaf { key: first, .. } => {
                                let first = *first;
                                self.duplicate(n, key, first);
                                return Ok(());
                            }
                        }
                    }
                    let (name, key) = *last;
                    let literal = match self.ast(file).node(value).kind {
                        Kind::AttrSet { rec: false, .. } => Some((value, value_scope)),
                        _ => None,
                    };
                    if let (Some(Slot::Nested { .. }), Some((set, sc))) = (cur.get(&name), literal)
                    {
                        // `a.b = 1; a = { c = 2; };` merges into one set, as Nix does.
                        let Kind::AttrSet {
                            entries: set_entries,
                            ..
                        } = self.ast(file).node(set).kind
                        else {
                            unreachable!("checked above")
                        };
                        if let Some(Slot::Nested { entries, .. }) = cur.get_mut(&name) {
                            let mut taken = std::mem::take(entries);
                            self.fill_slots(set_entries, &mut taken, sc, sc, file)?;
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
    fn expand_leaf(&mut self, slots: &mut Slots, name: Sym) -> Result<(), String> {
        let Some(Slot::Leaf {
            key,
            literal: Some((set, sc)),
            ..
        }) = slots.get(&name)
        else {
            return Ok(());
        };
        let (key, set, sc) = (*key, *set, *sc);
        let file = key.file;
        let set_node = self.ast(file).node(set);
        let node = self.span(file, set_node.range);
        let Kind::AttrSet {
            entries: set_entries,
            ..
        } = set_node.kind
        else {
            unreachable!("literal slots hold set literals")
        };
        let mut entries = Slots::default();
        self.fill_slots(set_entries, &mut entries, sc, sc, file)?;
        slots.insert(name, Slot::Nested { key, node, entries });
        Ok(())
    }

    fn insert_leaf(
        &mut self,
        slots: &mut Slots,
        name: Sym,
        key: Span,
        thunk: ThunkId,
        literal: Option<(ExprId, ScopeId)>,
    ) {
        if let Some(existing) = slots.get(&name) {
            let first = existing.key();
            self.duplicate(name, key, first);
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

    fn duplicate(&mut self, name: Sym, key: Span, first: Span) {
        let name = self.name(name).to_string();
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

    fn select_one(&mut self, from: Val, name: Sym, span: Span) -> Val {
        match &from.v {
            V::Attrs(a) => match a.get(&name) {
                Some(&(_, t)) => self.force(t),
                None => {
                    let n = self.name(name).to_string();
                    self.error(
                        EvalErrorKind::MissingAttribute,
                        span,
                        format!("attribute `{n}` missing"),
                    )
                }
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

    fn eval_select(
        &mut self,
        e: Opt,
        path: Option<Slice>,
        default: Opt,
        scope: ScopeId,
        file: FileId,
        span: Span,
    ) -> Val {
        if e == NONE {
            return Val { v: V::Error, span };
        }
        let mut cur = self.eval(e, scope, file);
        let Some(path) = path else {
            return Val { v: V::Error, span };
        };
        for ai in path.range() {
            let attr = self.ast(file).attrs[ai];
            let key = self.span(file, attr.range);
            let name = match self.attr_name(attr, scope, file) {
                Ok(Some(n)) => n,
                Ok(None) => return self.error(EvalErrorKind::Type, key, "attribute name is null"),
                Err(reason) => return self.dynamic(span, &reason),
            };
            match &cur.v {
                V::Attrs(a) => match a.get(&name) {
                    Some(&(_, t)) => cur = self.force(t),
                    None => {
                        return if default != NONE {
                            self.eval(default, scope, file)
                        } else {
                            let n = self.name(name).to_string();
                            self.error(
                                EvalErrorKind::MissingAttribute,
                                key,
                                format!("attribute `{n}` missing"),
                            )
                        }
                    }
                },
                V::Dynamic(_) => {
                    return self.dynamic(span, "selects from a set that is not known statically")
                }
                V::Error => return Val { v: V::Error, span },
                _ if default != NONE => {
                    return self.eval(default, scope, file);
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

    fn eval_binop(
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
            let lv = self.eval(l, scope, file);
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
            let rv = self.eval(r, scope, file);
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
