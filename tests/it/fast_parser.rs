//! The fast parser against rnix: on every Nix fixture of the repository it either declines or
//! builds exactly the tree rnix + lowering builds (every node, name, string part and range),
//! it accepts every well-formed fixture (so the fast path is really the one exercised), and a
//! bounded property test of random truncations and byte edits shows it never panics and never
//! accepts a text rnix finds a syntax error in.

use crate::support;

use crate::support::mutate::{apply, mutation};

use std::path::PathBuf;

use proptest::prelude::*;
use vmctl::syntax::ast::Interner;
use vmctl::syntax::{fast, lower, parse};

/// The fast parser's tree, `None` when it declines.
fn fast_dump(text: &str) -> Option<String> {
    let mut names = Interner::new();
    fast::parse(text, &mut names).map(|ast| ast.dump(&names))
}

/// rnix's tree, lowered, and whether rnix reported syntax errors.
fn rnix_dump(text: &str) -> (String, bool) {
    let (root, errors) = parse(text);
    let mut names = Interner::new();
    let ast = lower::lower(&root, &mut names);
    (ast.dump(&names), !errors.is_empty())
}

fn all_fixtures() -> Vec<PathBuf> {
    let root = support::repo();
    let mut out = Vec::new();
    support::nix_files(&root.join("tests/fixtures"), &mut out);
    support::nix_files(&root.join("vms"), &mut out);
    support::nix_files(&root.join("hosts-template"), &mut out);
    out.push(root.join("hosts.nix"));
    out.sort();
    out
}

/// Well-formed fixtures the fast parser leaves to rnix on purpose, with the construct why.
const DECLINED: &[(&str, &str)] = &[];

#[test]
fn fast_parser_matches_rnix_on_every_fixture() {
    let files = all_fixtures();
    assert!(files.len() > 50, "fixtures not found: {files:?}");
    let mut accepted = 0;
    let mut declined_ok = Vec::new();
    let mut declined_wrongly = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let rel = path
            .strip_prefix(support::repo())
            .unwrap()
            .display()
            .to_string();
        let (expected, has_errors) = rnix_dump(&text);
        match fast_dump(&text) {
            Some(got) => {
                assert!(
                    !has_errors,
                    "{rel}: the fast parser accepted a file rnix has syntax errors in"
                );
                similar_asserts(&rel, &expected, &got);
                accepted += 1;
            }
            None if has_errors => declined_ok.push(rel),
            None if DECLINED.iter().any(|(f, _)| *f == rel) => declined_ok.push(rel),
            None => declined_wrongly.push(rel),
        }
    }
    assert!(
        declined_wrongly.is_empty(),
        "the fast parser declined well-formed fixtures: {declined_wrongly:?}"
    );
    eprintln!(
        "fast parser: {accepted} fixtures accepted, declined (syntax errors or listed): {declined_ok:?}"
    );
    // The demo fleet and the evaluator's fixtures are on the fast path.
    for must in ["vms/definitions.nix", "hosts.nix"] {
        let text = std::fs::read_to_string(support::repo().join(must)).unwrap();
        assert!(fast_dump(&text).is_some(), "{must} must take the fast path");
    }
}

fn similar_asserts(rel: &str, expected: &str, got: &str) {
    if expected != got {
        let diff = similar::TextDiff::from_lines(expected, got);
        panic!(
            "{rel}: the fast parser's tree differs from rnix's (- rnix, + fast):\n{}",
            diff.unified_diff().context_radius(4)
        );
    }
}

#[test]
fn fast_parser_matches_rnix_on_tricky_snippets() {
    // Each must be accepted and equal; they cover precedence, associativity, strings, paths.
    let accepted = [
        "a: b: a + b * c - d / e ++ f ++ g",
        "!a || b && c -> d -> e",
        "-a ? b.c",
        "- -1",
        "a // b // c == d",
        "1 < 2",
        "f x y.z or w",
        "{ a, b ? 1, ... }@args: args",
        "args@{ a, ... }: a",
        "{ }: 1",
        "{ a }: a",
        "{}",
        "rec { a = 1; b = a; }",
        "let inherit (x) a b; inherit c; in a",
        "{ \"a b\" = 1; ${x} = 2; a.\"b\".${c} = 3; or = 4; }",
        "x.or",
        "\"a\\n\\t\\\"\\${b}$$c${d}e$\"",
        "''\n  a\n    b ''${x} '''\n  ${y} ''\\n\n  ''",
        "''  \n  x\n''",
        "''${a}\n  b\n''",
        "''\n''",
        "\"\"",
        "./a/b.nix",
        "../x",
        "/etc/nixos",
        "~/x",
        "<nixpkgs>",
        "<nixpkgs/lib>",
        "https://example.com/a?b=c",
        "1.5 + 2.0e3 + 0.5",
        "0123",
        "99999999999999999999",
        "__curPos",
        "a-b'c",
        "x /* c */ # c\n + y",
        "assert a; with b; if c then d else e",
        "[ 1 \"a\" (f x) { } [ ] ./p ]",
        "a.b.c or d.e",
        "({ a = 1; }).a",
        "1/2",
        "a / b",
        "a//b",
    ];
    for src in accepted {
        let (expected, has_errors) = rnix_dump(src);
        assert!(!has_errors, "snippet has rnix errors: {src:?}");
        let got = fast_dump(src).unwrap_or_else(|| panic!("fast parser declined {src:?}"));
        similar_asserts(src, &expected, &got);
    }
}

fn corpus() -> Vec<String> {
    all_fixtures()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

fn check_mutant(text: &str) {
    if let Some(got) = fast_dump(text) {
        let (expected, has_errors) = rnix_dump(text);
        assert!(
            !has_errors,
            "the fast parser accepted a text rnix has syntax errors in:\n{text}"
        );
        similar_asserts("mutant", &expected, &got);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(600)) })]

    #[test]
    fn mutated_fixtures_fast_parser_agrees_with_rnix(idx in any::<prop::sample::Index>(), muts in prop::collection::vec(mutation(), 1..6)) {
        let corpus = corpus();
        let text = apply(&corpus[idx.index(corpus.len())], &muts);
        check_mutant(&text);
    }
}

#[test]
fn every_prefix_of_the_demo_definitions_agrees() {
    let text = std::fs::read_to_string(support::repo().join("vms/definitions.nix")).unwrap();
    for end in (0..text.len()).filter(|i| text.is_char_boundary(*i)) {
        check_mutant(&text[..end]);
    }
}
