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

mod attrs;
mod expr;
mod ops;
mod strings;
mod thunk;

use rustc_hash::{FxBuildHasher, FxHashMap};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use indexmap::IndexMap;
use rowan::{TextRange, TextSize};

use super::ast::{Ast, ExprId, Interner, Kind, Opt, Sym};
use super::value::Value;
use super::{parse, FileId, SourceDb, Span, SyntaxError};

/// Why a [`Loader`] gave no text for a path: its message, shown after "cannot import `PATH`".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(pub String);

/// Reads files that `import` asks for. The evaluator itself never touches the filesystem.
pub trait Loader {
    /// The text of `path`, or why it cannot be read.
    fn load(&self, path: &Path) -> Result<String, LoadError>;

    /// Whether `path` may be read at all. An import of a path that may not is a dynamic value
    /// (unknown, not an error): a fleet's evaluation stays inside the fleet.
    fn allows(&self, _path: &Path) -> bool {
        true
    }
}

/// A loader that refuses every import (pure evaluation of one file).
pub struct NoImports;

impl Loader for NoImports {
    fn load(&self, path: &Path) -> Result<String, LoadError> {
        Err(LoadError(format!(
            "imports are not available here ({})",
            path.display()
        )))
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

/// Which parser builds the arena [`Ast`]. Both give the same tree for a file the fast parser
/// accepts; `Rnix` exists so the benchmark can show what the fast parser saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AstParser {
    /// The hand-written fast parser, falling back to rnix for files it declines (the default).
    Fast,
    /// rnix and [`super::lower`] for every file.
    Rnix,
}

impl AstParser {
    /// `Rnix` when the environment says `VMCTL_PARSER=rnix`, `Fast` otherwise; read once.
    pub fn from_env() -> AstParser {
        static CHOICE: std::sync::OnceLock<AstParser> = std::sync::OnceLock::new();
        *CHOICE.get_or_init(|| match std::env::var("VMCTL_PARSER") {
            Ok(v) if v == "rnix" => AstParser::Rnix,
            _ => AstParser::Fast,
        })
    }
}

/// Parses `text` into an [`Ast`]: the fast parser when it accepts the text (then there are
/// no syntax errors), rnix and [`super::lower`] otherwise (with rnix's syntax errors).
pub fn parse_ast(text: &str, names: &mut Interner) -> (Ast, Vec<SyntaxError>) {
    parse_ast_with(text, names, AstParser::from_env())
}

/// [`parse_ast`] with the parser chosen by the caller instead of the environment.
pub fn parse_ast_with(
    text: &str,
    names: &mut Interner,
    parser: AstParser,
) -> (Ast, Vec<SyntaxError>) {
    if parser == AstParser::Fast {
        if let Some(ast) = super::fast::parse(text, names) {
            return (ast, Vec::new());
        }
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
    evaluate_with(db, file, loader, AstParser::from_env())
}

/// [`evaluate`] with the parser chosen by the caller instead of the environment.
pub fn evaluate_with(
    db: &mut SourceDb,
    file: FileId,
    loader: &dyn Loader,
    parser: AstParser,
) -> Evaluation {
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
        parser,
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
    parser: AstParser,
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

    fn error(&mut self, kind: EvalErrorKind, span: Span, message: impl Into<String>) -> Val {
        self.errors.push(EvalError {
            kind,
            span,
            message: message.into(),
            related: None,
        });
        Val { v: V::Error, span }
    }

    /// A type error about a value of `found`'s type: `message` gets the type's name.
    fn type_error(&mut self, found: &V, span: Span, message: impl FnOnce(&str) -> String) -> Val {
        let message = message(type_name(found));
        self.error(EvalErrorKind::Type, span, message)
    }

    fn dynamic(&self, span: Span, reason: &str) -> Val {
        Val {
            v: V::Dynamic(reason.into()),
            span,
        }
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
    use crate::syntax::ValueKind;

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
    fn rnix_only_and_fast_path_evaluate_the_demo_fleet_alike() {
        let text = include_str!("../../../vms/definitions.nix");
        let run = |parser| {
            let mut db = SourceDb::new();
            let f = db.add("/fleet/vms/definitions.nix", text);
            evaluate_with(&mut db, f, &NoImports, parser)
        };
        let (fast, rnix) = (run(AstParser::Fast), run(AstParser::Rnix));
        // The demo fleet must take the fast path, or this compares rnix with itself.
        let mut names = Interner::new();
        assert!(crate::syntax::fast::parse(text, &mut names).is_some());
        assert!(fast.errors.is_empty() && fast.syntax_errors.is_empty());
        assert!(fast
            .value
            .to_json()
            .is_some_and(|v| v["managed"].is_object()));
        assert_eq!(fast.value, rnix.value);
        assert_eq!(fast.errors, rnix.errors);
        assert_eq!(fast.syntax_errors, rnix.syntax_errors);
    }

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

    /// Nix's parser merges two set literals bound to one name (checked with Nix 2.8).
    #[test]
    fn two_set_literals_for_one_name_merge() {
        check(
            "{ a = { x = 1; }; a = { y = 2; }; }",
            json!({"a": {"x": 1, "y": 2}}),
        );
        check(
            "{ a = { x = 1; }; a.y = 2; a = { z = 3; }; }",
            json!({"a": {"x": 1, "y": 2, "z": 3}}),
        );
        // A set that is not a literal is no merge: Nix says "already defined".
        check_err(
            "let b = { x = 1; }; in { a = b; a = { y = 2; }; }",
            "attribute `a` is already defined",
        );
    }

    #[test]
    fn errors_nix_would_raise() {
        check_err("{ a = 1; a = 2; }", "attribute `a` is already defined");
        check_err(
            "{ a = { x = 1; }; a = { x = 2; }; }",
            "attribute `x` is already defined",
        );
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
            fn load(&self, path: &Path) -> Result<String, LoadError> {
                match path.to_str().unwrap() {
                    "/fleet/vms/common.nix" => Ok("{ cores = 2; }".into()),
                    "/fleet/vms/lib/default.nix" => Ok("{ mk = x: x // { made = true; }; }".into()),
                    p => Err(LoadError(format!("no such file {p}"))),
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
