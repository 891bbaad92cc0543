//! Every rule of the registry against two fleets: one where it fires (`tests/fixtures/lint/CODE`,
//! shared with the snapshots of `lint_codes`) and one where it stays silent
//! (`tests/fixtures/rules/NAME/silent`, the same fleet with the fault put right, which lints
//! clean); and every rule lives in `src/check/NAME.rs`, its name in snake case.

use crate::lint_codes::lint_fixture;
use crate::support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use vmctl::check::rules;

/// Rules that no fixture fleet can make fire, with the reason. Each one here is a rule whose
/// firing is tested only in unit tests; keep the list short.
const NO_FIXTURE: &[(&str, &str)] = &[];

/// Files of `src/check/` that hold no rule: the registry and helpers shared by several rules.
const NOT_RULES: &[&str] = &["mod.rs", "util.rs", "sops_file.rs", "fix.rs"];

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> BTreeSet<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn every_rule_fires_on_one_fixture_and_stays_silent_on_another() {
    let mut missing = Vec::new();
    let mut failures = Vec::new();
    for rule in rules() {
        if NO_FIXTURE.iter().any(|(code, _)| *code == rule.code) {
            continue;
        }
        let fires = support::fixture("lint").join(rule.code);
        let silent = support::fixture("rules").join(rule.name).join("silent");
        for dir in [&fires, &silent] {
            if !dir.is_dir() {
                missing.push(dir.strip_prefix(support::repo()).unwrap().to_path_buf());
            }
        }
        if !fires.is_dir() || !silent.is_dir() {
            continue;
        }
        // The silent fleet is the firing one put right, not an empty directory where nothing
        // can fire: it keeps every file the firing one has.
        let lost: Vec<_> = files(&fires).difference(&files(&silent)).cloned().collect();
        assert!(
            lost.is_empty(),
            "{}: the silent fixture lacks {lost:?} of the firing one",
            rule.name
        );
        let (_, fired) = lint_fixture(&fires);
        if !fired.contains(&rule.code) {
            failures.push(format!(
                "{} ({}) does not fire: {fired:?}",
                rule.code, rule.name
            ));
        }
        // Clean, not only quiet on this rule: another fault (a syntax error above all) could
        // keep the rule quiet for the wrong reason.
        let (rendered, quiet) = lint_fixture(&silent);
        if !quiet.is_empty() {
            failures.push(format!(
                "{} ({}): its silent fixture is not clean:\n{rendered}",
                rule.code, rule.name
            ));
        }
    }
    assert!(missing.is_empty(), "fixtures missing: {missing:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rules_without_fixtures_are_few_and_known() {
    assert!(NO_FIXTURE.len() <= 3, "{NO_FIXTURE:?}");
    for (code, reason) in NO_FIXTURE {
        assert!(vmctl::check::rule(code).is_some(), "{code} is not a rule");
        assert!(!reason.is_empty(), "{code} needs a reason");
    }
}

#[test]
fn every_silent_fixture_belongs_to_a_rule() {
    let names: BTreeSet<&str> = rules().iter().map(|r| r.name).collect();
    for e in std::fs::read_dir(support::fixture("rules")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            names.contains(name.as_str()),
            "tests/fixtures/rules/{name} is no rule's name"
        );
    }
}

/// `src/check/NAME.rs` holds the rule NAME (snake case) and only it; every other file there is
/// the registry or a shared helper.
#[test]
fn each_rule_file_is_named_after_its_rule() {
    let dir = support::repo().join("src/check");
    let mut unclaimed: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rs") && !NOT_RULES.contains(&n.as_str()))
        .collect();
    for rule in rules() {
        let file = format!("{}.rs", rule.name.replace('-', "_"));
        let Ok(text) = std::fs::read_to_string(dir.join(&file)) else {
            panic!(
                "rule {} ({}) is not in src/check/{file}",
                rule.code, rule.name
            );
        };
        for field in [
            format!("code: \"{}\",", rule.code),
            format!("name: \"{}\",", rule.name),
        ] {
            assert!(text.contains(&field), "src/check/{file} lacks `{field}`");
        }
        assert_eq!(
            text.matches("code: \"").count(),
            1,
            "src/check/{file} holds more than one rule"
        );
        unclaimed.remove(&file);
    }
    assert!(
        unclaimed.is_empty(),
        "files in src/check/ that are no rule's: {unclaimed:?} (a helper goes in NOT_RULES)"
    );
}
