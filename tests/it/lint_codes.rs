//! One minimal fleet per diagnostic code: the code fires, and its human and JSON renderings
//! are snapshotted (tests/it/snapshots/it__lint_codes__CODE.snap).

use crate::support;

use std::path::Path;

use vmctl::check::rules;
use vmctl::exec::lint::{lint, NixFallback};
use vmctl::model::fleet::NixRole;
use vmctl::render;

/// Lints a fixture fleet; with real Nix when the fixture has a `.nix-fallback` file (the codes
/// about the fallback itself), without otherwise. The files given by path (`.lint-paths`) are
/// read as the kind `.lint-as` names (`definitions`, `hosts`, `nix`), as `vmlint --as` does.
pub(crate) fn lint_fixture(dir: &Path) -> (String, Vec<&'static str>) {
    let nix = if dir.join(".nix-fallback").exists() {
        support::require_tool("nix-instantiate");
        NixFallback::Use("nix-instantiate".into())
    } else {
        NixFallback::Off
    };
    // A fixture about files given by path lists them in `.lint-paths`.
    let paths: Vec<std::path::PathBuf> = std::fs::read_to_string(dir.join(".lint-paths"))
        .map(|s| s.lines().map(Into::into).collect())
        .unwrap_or_default();
    let role = std::fs::read_to_string(dir.join(".lint-as"))
        .ok()
        .map(|kind| match kind.trim() {
            "definitions" => NixRole::Definitions,
            "hosts" => NixRole::Hosts,
            "nix" => NixRole::Other,
            other => panic!("{}: unknown kind `{other}` in .lint-as", dir.display()),
        });
    let run = lint(&paths, role, dir, &nix).expect("fixture fleet loads");
    let human = render::human::render(&run.fleet.db, &run.diagnostics, false);
    let json = render::json::render(&run.fleet.db, &run.diagnostics);
    let codes = run.diagnostics.iter().map(|d| d.code()).collect();
    (format!("{human}\n---- json ----\n{json}\n"), codes)
}

#[test]
fn every_code_has_a_fixture_that_triggers_it() {
    let mut missing = Vec::new();
    for rule in rules() {
        let dir = support::fixture("lint").join(rule.code);
        if !dir.is_dir() {
            missing.push(rule.code);
            continue;
        }
        let (rendered, codes) = lint_fixture(&dir);
        assert!(
            codes.contains(&rule.code),
            "fixture {} does not trigger it; got {codes:?}",
            rule.code
        );
        // Messages from Nix name absolute paths.
        let repo = support::repo().display().to_string();
        insta::with_settings!({ filters => vec![(repo.as_str(), "[REPO]")] }, {
            insta::assert_snapshot!(rule.code, rendered);
        });
    }
    assert!(
        missing.is_empty(),
        "rules without a fixture in tests/fixtures/lint/: {missing:?}"
    );
}

#[test]
fn the_nix_fallback_fills_dynamic_values() {
    support::require_tool("nix-instantiate");
    let dir = support::fixture("lint/NX002");
    let run = lint(&[], None, &dir, &NixFallback::Use("nix-instantiate".into())).unwrap();
    let codes: Vec<_> = run.diagnostics.iter().map(|d| d.code()).collect();
    assert!(
        !codes.contains(&"NX002"),
        "nix evaluated `builtins.mul 4 1024`; got {codes:?}"
    );
    let (_, defs) = run.fleet.definitions_file().unwrap();
    assert_eq!(defs.vm_by_name("web").unwrap().memory, Some(4096));
    // The filled value keeps the span of the dynamic expression.
    let (file, _) = run.fleet.definitions_file().unwrap();
    let mem = file
        .eval
        .value
        .as_attrs()
        .unwrap()
        .get("managed")
        .unwrap()
        .as_attrs()
        .unwrap()
        .get("web")
        .unwrap()
        .as_attrs()
        .unwrap()
        .get("memory")
        .unwrap()
        .clone();
    assert_eq!(
        &run.fleet.db.text(file.file)[mem.span.range],
        "builtins.mul 4 1024"
    );
}
