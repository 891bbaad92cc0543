//! Bounded property test: random truncations and byte edits of the fixtures never panic the
//! parser, the evaluator, the model readers or the checks, and the tree stays lossless.

mod util;

use proptest::prelude::*;
use rowan::ast::AstNode;
use vmctl::check::check_fleet;
use vmctl::model::fleet::{Fleet, NixRole};
use vmctl::syntax::{parse, NoImports};

fn corpus() -> Vec<String> {
    let mut out = Vec::new();
    for dir in ["real-world/hosts", "real-world/vms", "eval"] {
        for e in std::fs::read_dir(util::fixture(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "nix") {
                out.push(std::fs::read_to_string(p).unwrap());
            }
        }
    }
    out.push(std::fs::read_to_string(util::repo().join("vms/definitions.nix")).unwrap());
    out.push(std::fs::read_to_string(util::repo().join("hosts.nix")).unwrap());
    out
}

/// Bytes that are likely to change the structure: delimiters, quotes, interpolation.
const INTERESTING: &[u8] = b"{}[]();=\"'$\\.:,@?#/*+-!<>|&\n 0a_";

fn run_everything(text: &str) {
    let (root, _) = parse(text);
    assert_eq!(root.syntax().to_string(), text, "the tree is lossless");
    for role in [NixRole::Definitions, NixRole::Hosts, NixRole::Other] {
        let mut fleet = Fleet::default();
        fleet.add_nix("/fuzz/vms/definitions.nix", text, role, &NoImports);
        fleet.host_dirs = Some(Default::default());
        let _ = check_fleet(&fleet);
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), prop::sample::select(INTERESTING))
            .prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<usize>(), prop::sample::select(INTERESTING))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
    ]
}

fn apply(text: &str, muts: &[Mutation]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for m in muts {
        let len = bytes.len().max(1);
        match *m {
            Mutation::Truncate(i) => bytes.truncate(i % len),
            Mutation::Replace(i, b) => {
                if !bytes.is_empty() {
                    let i = i % bytes.len();
                    bytes[i] = b;
                }
            }
            Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Mutation::Delete(i, n) => {
                if !bytes.is_empty() {
                    let i = i % bytes.len();
                    let end = (i + n).min(bytes.len());
                    bytes.drain(i..end);
                }
            }
        }
    }
    // Byte edits can split a UTF-8 sequence; the tools read files as UTF-8 text.
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400)) })]

    #[test]
    fn mutated_fixtures_never_panic(idx in any::<prop::sample::Index>(), muts in prop::collection::vec(mutation(), 1..6)) {
        let corpus = corpus();
        let text = apply(&corpus[idx.index(corpus.len())], &muts);
        run_everything(&text);
    }
}

#[test]
fn every_prefix_of_the_demo_definitions_is_handled() {
    let text = std::fs::read_to_string(util::repo().join("vms/definitions.nix")).unwrap();
    for end in (0..text.len())
        .filter(|i| text.is_char_boundary(*i))
        .step_by(7)
    {
        run_everything(&text[..end]);
    }
}
