//! Differential test of the static evaluator against the real Nix (Debian's nix-bin): for
//! every fixture Nix file that `nix-instantiate --eval --strict --json` evaluates offline, our
//! evaluator must produce the same JSON.

use crate::support;

use vmctl::exec::lint::FsLoader;
use vmctl::syntax::{evaluate, SourceDb};

/// JSON equality where numbers compare by value (Nix prints `1.0e3` as `1000`).
fn json_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn static_evaluation_matches_nix_instantiate() {
    support::require_tool("nix-instantiate");
    let mut files = Vec::new();
    for dir in [
        "tests/fixtures/eval",
        "tests/fixtures/real-world",
        "tests/fixtures/lint",
        "vms",
    ] {
        support::nix_files(&support::repo().join(dir), &mut files);
    }
    files.push(support::repo().join("hosts.nix"));
    let mut compared = Vec::new();
    let mut mismatches = Vec::new();
    for f in &files {
        // These fixtures exist to show the dynamic-value warning and the Nix fallback's
        // refusal: they call a builtin on purpose.
        if f.ends_with("lint/NX002/vms/definitions.nix")
            || f.ends_with("lint/NX005/vms/definitions.nix")
        {
            continue;
        }
        let Ok(expected) = support::nix_eval_json(f) else {
            continue;
        };
        let mut db = SourceDb::new();
        let id = db.add(f.clone(), std::fs::read_to_string(f).unwrap());
        let ev = evaluate(&mut db, id, &FsLoader);
        match ev.value.to_json() {
            Some(ours) if json_eq(&ours, &expected) => compared.push(f.clone()),
            ours => mismatches.push(format!(
                "{}:\n  nix:  {expected}\n  ours: {}\n  first unknown: {:?}",
                f.display(),
                ours.map(|o| o.to_string())
                    .unwrap_or_else(|| "(not fully static)".into()),
                ev.value.first_unknown().map(|v| &v.kind)
            )),
        }
    }
    assert!(
        mismatches.is_empty(),
        "static evaluation differs from Nix:\n{}",
        mismatches.join("\n")
    );
    // The suite must really compare something: the eval fixtures, the demo fleet, the
    // real-world hosts files that evaluate offline, and the lint fixtures without errors.
    assert!(
        compared.len() >= 25,
        "only {} files compared: {compared:?}",
        compared.len()
    );
}
