//! Bounded property test: random truncations and byte edits of the fixtures never panic the
//! parser, the evaluator, the model readers or the checks, and the tree stays lossless.

use crate::support;

use crate::support::mutate::{apply, mutation};

use proptest::prelude::*;
use rowan::ast::AstNode;
use vmctl::check::check_fleet;
use vmctl::model::fleet::{Fleet, NixRole};
use vmctl::syntax::{parse, NoImports};

fn corpus() -> Vec<String> {
    let mut out = Vec::new();
    for dir in ["real-world/hosts", "real-world/vms", "eval"] {
        for e in std::fs::read_dir(support::fixture(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "nix") {
                out.push(std::fs::read_to_string(p).unwrap());
            }
        }
    }
    out.push(std::fs::read_to_string(support::repo().join("vms/definitions.nix")).unwrap());
    out.push(std::fs::read_to_string(support::repo().join("hosts.nix")).unwrap());
    out
}

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
    let text = std::fs::read_to_string(support::repo().join("vms/definitions.nix")).unwrap();
    for end in (0..text.len())
        .filter(|i| text.is_char_boundary(*i))
        .step_by(7)
    {
        run_everything(&text[..end]);
    }
}
