//! The module graph of src/: no import cycle between modules, and no layer importing a higher
//! one (the layer rule of docs/architecture.md), read from the source's own `crate::` and
//! `super::` paths.
//!
//! Nodes are second-level modules (`exec::fleet`, `check::duplicate_vmid`; a top-level
//! module's own `mod.rs` is the node `exec`), and, separately, top-level layers. An edge is any
//! path in code (a `use` or an inline `crate::a::b::f()`) from one node to another; comments and
//! string literals are not code. Test modules count too: a test that needs a higher layer
//! belongs in tests/it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::support::repo;

/// The layers, lowest first; a module may import its own layer and lower ones only. `keys`,
/// `secrets` and `proxmox` are pure libraries between the model and the checks: every layer
/// above may use them, and they use only what lies below.
const LAYERS: &[&[&str]] = &[
    &["text"],
    &["syntax", "yaml"],
    &["model"],
    &["keys", "secrets", "proxmox"],
    &["check"],
    &["render", "edit"],
    &["plan"],
    &["exec"],
    &["cli", "lsp"],
];

fn rank(top: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&top))
}

/// One source file: its module path (`["exec", "lint"]` for src/exec/lint/mod.rs) and text.
struct Source {
    file: String,
    module: Vec<String>,
    text: String,
}

fn sources() -> Vec<Source> {
    let src = repo().join("src");
    let mut out = Vec::new();
    walk(&src, &src, &mut out);
    assert!(
        out.len() > 50,
        "expected the whole of src/, found {} files",
        out.len()
    );
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<Source>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            // The binaries are crates of their own that use the library by name.
            if p.file_name().is_some_and(|n| n == "bin") && dir == root {
                continue;
            }
            walk(root, &p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let rel = p.strip_prefix(root).unwrap();
            let mut module: Vec<String> = rel
                .iter()
                .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            out.push(Source {
                file: rel.display().to_string(),
                module,
                text: std::fs::read_to_string(&p).unwrap(),
            });
        }
    }
}

/// `text` with comments, string literals and char literals blanked (newlines kept), so a path
/// in a doc comment or a message is not an import.
fn code_only(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !b[..i]
                .last()
                .is_some_and(|p| p.is_alphanumeric() || *p == '_')
        {
            // A raw string: r"…", r#"…"#, …
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            for &ch in &b[i..j.min(b.len())] {
                out.push(blank(ch));
            }
            i = j;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{1b}', '"'); otherwise a lifetime.
            let end = if next == Some('\\') {
                (i + 2..b.len().min(i + 12)).find(|&k| b[k] == '\'')
            } else if b.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(e) => {
                    for _ in i..=e {
                        out.push(' ');
                    }
                    i = e + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Every absolute module path (segments after `crate`) the code of a file refers to.
fn references(source: &Source) -> Vec<Vec<String>> {
    let code = code_only(&source.text);
    let tokens = tokenize(&code);
    let mut out = Vec::new();
    // Inline `mod NAME { … }` blocks: `super` inside them is the file's module.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].as_str();
        match t {
            "{" => depth += 1,
            "}" => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            "mod" if tokens.get(i + 2).map(String::as_str) == Some("{") => {
                inline.push((tokens[i + 1].clone(), depth));
            }
            _ => {}
        }
        let here: Vec<String> = source
            .module
            .iter()
            .cloned()
            .chain(inline.iter().map(|(n, _)| n.clone()))
            .collect();
        if t == "use" {
            // A whole use tree, to its `;`.
            let end = (i..tokens.len())
                .find(|&k| tokens[k] == ";")
                .unwrap_or(tokens.len());
            for path in expand_use(&tokens[i + 1..end]) {
                if let Some(abs) = absolute(&path, &here, true) {
                    out.push(abs);
                }
            }
            i = end;
            continue;
        }
        if (t == "crate" || t == "super")
            && tokens.get(i + 1).map(String::as_str) == Some("::")
            && !(i > 0 && tokens[i - 1] == "::")
        {
            let mut path = vec![t.to_string()];
            let mut k = i + 1;
            while tokens.get(k).map(String::as_str) == Some("::")
                && tokens.get(k + 1).is_some_and(|s| is_ident(s))
            {
                path.push(tokens[k + 1].clone());
                k += 2;
            }
            if let Some(abs) = absolute(&path, &here, false) {
                out.push(abs);
            }
            i = k;
            continue;
        }
        i += 1;
    }
    out
}

fn is_ident(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

fn tokenize(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push("::".into());
            i += 2;
        } else if c.is_whitespace() {
            i += 1;
        } else {
            out.push(c.to_string());
            i += 1;
        }
    }
    out
}

/// The paths of a use tree's tokens: `crate::a::{b, c::{d, e}}` is three paths.
fn expand_use(tokens: &[String]) -> Vec<Vec<String>> {
    fn tree(tokens: &[String], i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        let mut path = prefix;
        while *i < tokens.len() {
            let t = tokens[*i].as_str();
            match t {
                "::" => *i += 1,
                "{" => {
                    *i += 1;
                    loop {
                        tree(tokens, i, path.clone(), out);
                        match tokens.get(*i).map(String::as_str) {
                            Some(",") => *i += 1,
                            Some("}") => {
                                *i += 1;
                                return;
                            }
                            _ => return,
                        }
                        if tokens.get(*i).map(String::as_str) == Some("}") {
                            *i += 1;
                            return;
                        }
                    }
                }
                "," | "}" => break,
                "as" => *i += 2,
                "*" => *i += 1,
                _ => {
                    path.push(t.to_string());
                    *i += 1;
                }
            }
        }
        out.push(path);
    }
    let mut out = Vec::new();
    let mut i = 0;
    // `pub use`, `pub(crate) use`: the visibility came before `use`.
    tree(tokens, &mut i, Vec::new(), &mut out);
    out
}

/// `path` resolved against the module `here` it is written in: segments after `crate`, or
/// `None` for an external crate (or a name in scope, which is not an import of a module).
fn absolute(path: &[String], here: &[String], in_use: bool) -> Option<Vec<String>> {
    let first = path.first()?.as_str();
    let mut base: Vec<String> = match first {
        "crate" => Vec::new(),
        "super" | "self" => here.to_vec(),
        // Relative `use child::x` in a module: a path into the module itself.
        _ if in_use => return None,
        _ => return None,
    };
    let mut rest = path;
    if first == "crate" {
        rest = &path[1..];
    } else {
        while let Some(s) = rest.first() {
            match s.as_str() {
                "super" => {
                    base.pop()?;
                }
                "self" => {}
                _ => break,
            }
            rest = &rest[1..];
        }
    }
    base.extend(rest.iter().cloned());
    // `use crate::model::{self, …}` names the module itself.
    if base.last().is_some_and(|s| s == "self") {
        base.pop();
    }
    Some(base)
}

/// The node a module path lies in: its first two segments when the second names a module of
/// src/, else the top-level module alone.
fn node(path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<String> {
    let top = path.first()?;
    match path.get(1) {
        Some(second) if modules.contains(&vec![top.clone(), second.clone()]) => {
            Some(format!("{top}::{second}"))
        }
        _ => Some(top.clone()),
    }
}

type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// `from -> to -> files that make the edge`, for second-level nodes and for top-level layers.
fn graphs() -> (Graph, Graph) {
    let sources = sources();
    let modules: BTreeSet<Vec<String>> = sources.iter().map(|s| s.module.clone()).collect();
    let mut second = Graph::new();
    let mut top = Graph::new();
    for s in &sources {
        let Some(from) = node(&s.module, &modules) else {
            continue;
        };
        for r in references(s) {
            let Some(to) = node(&r, &modules) else {
                continue;
            };
            if to != from {
                second
                    .entry(from.clone())
                    .or_default()
                    .entry(to.clone())
                    .or_default()
                    .insert(s.file.clone());
            }
            let (ft, tt) = (&s.module[0], &r[0]);
            if ft != tt {
                top.entry(ft.clone())
                    .or_default()
                    .entry(tt.clone())
                    .or_default()
                    .insert(s.file.clone());
            }
        }
    }
    (second, top)
}

/// Every cycle's nodes, one list per strongly connected component with more than one node
/// (Tarjan), each sorted; empty when the graph is acyclic.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(st: &mut State<'a>, v: &'a str) {
        st.index.insert(v, st.next);
        st.low.insert(v, st.next);
        st.next += 1;
        st.stack.push(v);
        st.on_stack.insert(v);
        if let Some(succ) = st.edges.get(v) {
            for w in succ {
                let w = w.as_str();
                if !st.index.contains_key(w) {
                    visit(st, w);
                    let l = st.low[w].min(st.low[v]);
                    st.low.insert(v, l);
                } else if st.on_stack.contains(w) {
                    let l = st.index[w].min(st.low[v]);
                    st.low.insert(v, l);
                }
            }
        }
        if st.low[v] == st.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = st.stack.pop() {
                st.on_stack.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            let self_loop = st.edges.get(v).is_some_and(|s| s.contains(v));
            if comp.len() > 1 || self_loop {
                comp.sort();
                st.out.push(comp);
            }
        }
    }
    let mut st = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    let nodes: BTreeSet<&str> = edges
        .iter()
        .flat_map(|(k, v)| std::iter::once(k.as_str()).chain(v.iter().map(String::as_str)))
        .collect();
    for n in nodes {
        if !st.index.contains_key(n) {
            visit(&mut st, n);
        }
    }
    st.out.sort();
    st.out
}

fn plain(g: &Graph) -> BTreeMap<String, BTreeSet<String>> {
    g.iter()
        .map(|(k, v)| (k.clone(), v.keys().cloned().collect()))
        .collect()
}

/// A readable account of each cycle: its nodes and, for every edge inside it, the files that
/// make it.
fn explain(g: &Graph, found: &[Vec<String>]) -> String {
    let mut s = String::new();
    for comp in found {
        s.push_str(&format!("cycle between {}:\n", comp.join(", ")));
        for from in comp {
            for (to, files) in g.get(from).into_iter().flatten() {
                if comp.contains(to) {
                    let files: Vec<&str> = files.iter().map(String::as_str).collect();
                    s.push_str(&format!("  {from} -> {to} ({})\n", files.join(", ")));
                }
            }
        }
    }
    s
}

#[test]
fn no_import_cycle_between_second_level_modules() {
    let (second, _) = graphs();
    assert!(
        second.contains_key("exec::fleet") && second.contains_key("cli::ops"),
        "the graph missed modules it must see: {:?}",
        second.keys().collect::<Vec<_>>()
    );
    let found = cycles(&plain(&second));
    assert!(found.is_empty(), "{}", explain(&second, &found));
}

#[test]
fn no_import_cycle_between_top_level_layers() {
    let (_, top) = graphs();
    let found = cycles(&plain(&top));
    assert!(found.is_empty(), "{}", explain(&top, &found));
}

#[test]
fn no_layer_imports_a_higher_one() {
    let (_, top) = graphs();
    let mut bad = Vec::new();
    for (from, tos) in &top {
        let Some(rf) = rank(from) else {
            bad.push(format!(
                "{from} is in no layer: add it to LAYERS (and docs/architecture.md)"
            ));
            continue;
        };
        for (to, files) in tos {
            match rank(to) {
                Some(rt) if rt > rf => {
                    let files: Vec<&str> = files.iter().map(String::as_str).collect();
                    bad.push(format!(
                        "{from} imports the higher layer {to} ({})",
                        files.join(", ")
                    ))
                }
                Some(_) => {}
                None => bad.push(format!("{to} is in no layer: add it to LAYERS")),
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

// The finder itself: it must see a cycle where there is one, or the tests above prove nothing.

fn graph(edges: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, b) in edges {
        g.entry(a.to_string()).or_default().insert(b.to_string());
    }
    g
}

#[test]
fn the_cycle_finder_finds_a_two_node_and_a_longer_cycle() {
    let g = graph(&[
        ("exec::fleet", "exec::lint"),
        ("exec::lint", "exec::fleet"),
        ("a", "b"),
        ("b", "c"),
        ("c", "a"),
        ("c", "d"),
    ]);
    assert_eq!(
        cycles(&g),
        vec![
            vec!["a".to_string(), "b".into(), "c".into()],
            vec!["exec::fleet".to_string(), "exec::lint".into()],
        ]
    );
}

#[test]
fn the_cycle_finder_accepts_a_diamond() {
    let g = graph(&[("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]);
    assert!(cycles(&g).is_empty());
}

#[test]
fn references_resolve_use_trees_super_and_inline_paths_but_not_comments_or_strings() {
    let s = Source {
        file: "exec/fleet.rs".into(),
        module: vec!["exec".into(), "fleet".into()],
        text: r#"//! Mentions crate::cli::x in a comment.
use crate::model::{self, fleet::{Fleet, NixRole}, Hosts as H};
pub(crate) use super::lint::load;
fn f() -> &'static str {
    let _c = '"';
    let _ = crate::check::check_fleet(x);
    "crate::render::human"
}
/* crate::plan::ops */
mod tests {
    use super::*;
}
"#
        .into(),
    };
    let got: BTreeSet<String> = references(&s).iter().map(|p| p.join("::")).collect();
    let want: BTreeSet<String> = [
        "model",
        "model::fleet::Fleet",
        "model::fleet::NixRole",
        "model::Hosts",
        "exec::lint::load",
        "check::check_fleet",
        "exec::fleet",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(got, want);
}

// The size rule and the map in docs/architecture.md.

#[test]
fn no_source_file_is_over_600_lines() {
    let long: Vec<String> = sources()
        .iter()
        .filter(|s| s.text.lines().count() > 600)
        .map(|s| format!("src/{} has {} lines", s.file, s.text.lines().count()))
        .collect();
    assert!(
        long.is_empty(),
        "split these along their own seams (issue 9): {long:?}"
    );
}

/// The doc's layer table names every top-level module, so a new layer cannot appear unmapped.
#[test]
fn the_architecture_doc_maps_every_layer() {
    let doc = std::fs::read_to_string(repo().join("docs/architecture.md")).unwrap();
    let missing: Vec<String> = LAYERS
        .iter()
        .flat_map(|l| l.iter())
        .filter(|m| !doc.contains(&format!("`{m}/`")))
        .map(|m| m.to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "docs/architecture.md has no row for {missing:?}"
    );
    let dirs: BTreeSet<String> = std::fs::read_dir(repo().join("src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && !p.ends_with("bin"))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let layered: BTreeSet<String> = LAYERS
        .iter()
        .flat_map(|l| l.iter())
        .map(|m| m.to_string())
        .collect();
    assert_eq!(
        dirs, layered,
        "every directory of src/ is a layer of LAYERS"
    );
}

/// Every path the "where a new thing goes" recipes name exists (for a `<placeholder>` path, the
/// directory that holds it), so the recipes follow the code when it moves.
#[test]
fn the_recipes_name_files_that_exist() {
    let doc = std::fs::read_to_string(repo().join("docs/architecture.md")).unwrap();
    let start = doc
        .find("## Where a new thing goes")
        .expect("docs/architecture.md has its recipes section");
    let section = &doc[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let paths = recipe_paths(section);
    assert!(paths.len() >= 15, "the recipes name files: {paths:?}");
    let missing: Vec<&String> = paths
        .iter()
        .filter(|p| {
            let p = p.as_str();
            let check = match p.find('<') {
                Some(i) => &p[..p[..i].rfind('/').map_or(0, |s| s + 1)],
                None => p,
            };
            !repo().join(check).exists()
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the recipes name paths that do not exist: {missing:?}"
    );
}

/// Backticked words in `text` that start with `src/`, `tests/` or `docs/` (up to a space).
fn recipe_paths(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|t| t.split_whitespace().next())
        .filter(|t| ["src/", "tests/", "docs/"].iter().any(|r| t.starts_with(r)))
        .map(|t| t.trim_end_matches(['.', ',', ';', ')']).to_string())
        .collect()
}

#[test]
fn recipe_paths_are_the_backticked_repository_paths() {
    let text = "a `src/check/<rule_name>.rs` and `docs/x.md` not `vmctl lint` nor \
                `cargo run > docs/d.md` but `tests/it/a.rs`";
    assert_eq!(
        recipe_paths(text),
        ["src/check/<rule_name>.rs", "docs/x.md", "tests/it/a.rs"]
    );
}
