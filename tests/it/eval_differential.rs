//! Differential test of the static evaluator against the real Nix (Debian's nix-bin): every
//! fixture Nix file is given to `nix-instantiate --eval --strict --json`. Where Nix evaluates
//! it, our evaluator must produce the same JSON; where Nix refuses it, ours must refuse it too,
//! for the same reason and (for errors in the file) at the position Nix names.

use crate::support;

use vmctl::exec::lint::FsLoader;
use vmctl::syntax::{evaluate, SourceDb, ValueKind};

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

/// The fixtures Nix refuses here, with the start of its message. Any other file must
/// evaluate: a new fixture lands in one list or the other, never in neither.
const REFUSED_BY_NIX: &[(&str, &str)] = &[
    ("tests/fixtures/eval/lib/default.nix", FUNCTION),
    ("tests/fixtures/lint/DF004/vms/definitions.nix", FUNCTION),
    (
        "tests/fixtures/lint/NX001/vms/definitions.nix",
        "syntax error",
    ),
    (
        "tests/fixtures/lint/NX003/vms/definitions.nix",
        "undefined variable 'bsae'",
    ),
    (
        "tests/fixtures/lint/NX004/vms/definitions.nix",
        "attribute 'vmid' already defined",
    ),
    ("tests/fixtures/lint/SP011/hosts/web1/default.nix", FUNCTION),
    ("tests/fixtures/lint/VM020/vms/definitions.nix", SEARCH_PATH),
    (
        "tests/fixtures/real-world/hosts/nebulis-proxmox_nixos_inventory.nix",
        "syntax error",
    ),
    (
        "tests/fixtures/real-world/vms/23b00t_nixos_vms_definitions.nix",
        FUNCTION,
    ),
    (
        "tests/fixtures/real-world/vms/JulienMalka_snowfield_machines_jacques_default.nix",
        FUNCTION,
    ),
    (
        "tests/fixtures/real-world/vms/TUM-DSE_doctor-cluster-config_modules_doctor-VMs.nix",
        FUNCTION,
    ),
];

const FUNCTION: &str = "cannot convert a function to JSON";
/// `<nixpkgs/lib>`: there is no search path offline; the static evaluator calls the value
/// dynamic (lint then asks Nix, which says the same).
const SEARCH_PATH: &str = "was not found in the Nix search path";

/// Files Nix evaluates that call a builtin on purpose (the dynamic-value warning and the Nix
/// fallback's refusal): the static evaluator must call them dynamic, not guess a value.
const DYNAMIC: &[&str] = &[
    "tests/fixtures/lint/NX002/vms/definitions.nix",
    "tests/fixtures/lint/NX005/vms/definitions.nix",
];

/// Line and column (1-based) of a byte offset, as Nix counts them.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[test]
fn static_evaluation_matches_nix_instantiate() {
    support::require_tool("nix-instantiate");
    let root = support::repo();
    let mut files = Vec::new();
    for dir in [
        "tests/fixtures/eval",
        "tests/fixtures/real-world",
        "tests/fixtures/lint",
        "vms",
    ] {
        support::nix_files(&root.join(dir), &mut files);
    }
    files.push(root.join("hosts.nix"));
    let (mut compared, mut refused, mut dynamic, mut problems) = (0, 0, 0, Vec::new());
    for f in &files {
        let rel = f.strip_prefix(root).unwrap().to_str().unwrap();
        let text = std::fs::read_to_string(f).unwrap();
        let mut db = SourceDb::new();
        let id = db.add(f.clone(), text.clone());
        let ev = evaluate(&mut db, id, &FsLoader);
        let ours = ev.value.to_json();
        let expected_refusal = REFUSED_BY_NIX
            .iter()
            .find(|(p, _)| *p == rel)
            .map(|(_, m)| *m);
        match (support::nix_eval_json(f), expected_refusal) {
            (Ok(_), _) if DYNAMIC.contains(&rel) => {
                dynamic += 1;
                if !matches!(
                    ev.value.first_unknown().map(|v| &v.kind),
                    Some(ValueKind::Dynamic(_))
                ) {
                    problems.push(format!(
                        "{rel}: Nix calls a builtin here, ours is not dynamic: {ours:?}"
                    ));
                }
            }
            (Ok(expected), None) => match ours {
                Some(ours) if json_eq(&ours, &expected) => compared += 1,
                ours => problems.push(format!(
                    "{rel}:\n  nix:  {expected}\n  ours: {}\n  first unknown: {:?}",
                    ours.map(|o| o.to_string())
                        .unwrap_or_else(|| "(not fully static)".into()),
                    ev.value.first_unknown().map(|v| &v.kind)
                )),
            },
            (Ok(_), Some(_)) => {
                problems.push(format!("{rel}: listed as refused, but Nix evaluates it"))
            }
            (Err(e), None) => {
                problems.push(format!("{rel}: Nix refuses it and it is not listed: {e}"))
            }
            (Err(e), Some(why)) => {
                refused += 1;
                if !e.contains(why) {
                    problems.push(format!("{rel}: Nix refuses it, not with `{why}`: {e}"));
                    continue;
                }
                let nix_at = support::nix_position(&e, f);
                let problem = match why {
                    FUNCTION => (ours.is_some() || !ev.errors.is_empty())
                        .then(|| format!("ours is not a function: {ours:?} {:?}", ev.errors)),
                    SEARCH_PATH => (!matches!(
                        ev.value.first_unknown().map(|v| &v.kind),
                        Some(ValueKind::Dynamic(_))
                    ))
                    .then(|| format!("ours is not dynamic: {ours:?}")),
                    _ => {
                        // An error in the file: ours reports it where Nix does (Nix names the
                        // token it stopped at, rnix the same token; for a duplicate, Nix names
                        // the first definition, which ours shows as the related place).
                        let mine: Vec<(usize, usize)> = ev
                            .syntax_errors
                            .iter()
                            .map(|(_, s)| usize::from(s.range.start()))
                            .chain(ev.errors.iter().flat_map(|e| {
                                let related = e.related.as_ref().map(|(s, _)| s.range.start());
                                std::iter::once(e.span.range.start())
                                    .chain(related)
                                    .map(usize::from)
                            }))
                            .map(|o| line_col(&text, o))
                            .collect();
                        match nix_at {
                            None => Some(format!("no position in Nix's message: {e}")),
                            Some(at) if mine.contains(&at) => None,
                            Some(at) => Some(format!("Nix reports {at:?}, ours {mine:?}")),
                        }
                    }
                };
                if let Some(p) = problem {
                    problems.push(format!("{rel}: {p}"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "static evaluation differs from Nix:\n{}",
        problems.join("\n")
    );
    // Every file is accounted for: compared with Nix, refused by both, or dynamic by design.
    assert_eq!(
        refused,
        REFUSED_BY_NIX.len(),
        "a listed refusal has no file"
    );
    assert_eq!(
        dynamic,
        DYNAMIC.len(),
        "a listed dynamic fixture has no file"
    );
    assert_eq!(compared + refused + dynamic, files.len());
}
