//! `vmlint --format sarif` on every lint fixture, validated by Microsoft's SARIF validator
//! (`sarif-multitool validate`, installed by scripts/setup-test-tools.sh).

use std::path::PathBuf;

use crate::support;

/// The validator, or a failure naming the setup command.
fn multitool() -> PathBuf {
    let tool = std::env::var_os("VMCTL_SARIF_MULTITOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| support::repo().join(".tools/npm/node_modules/.bin/sarif-multitool"));
    assert!(
        tool.exists(),
        "Microsoft's SARIF validator is not installed: run eval \"$(./scripts/setup-test-tools.sh)\" \
         (it installs npm @microsoft/sarif-multitool into .tools/npm)"
    );
    tool
}

#[test]
fn sarif_of_every_lint_fixture_passes_microsofts_validator() {
    let tool = multitool();
    let out_dir = tempfile::tempdir().unwrap();
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(support::fixture("lint"))
        .unwrap()
        .flatten()
    {
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        let mut c = support::vmlint_cmd();
        c.current_dir(&dir).args(["--format", "sarif"]);
        // The codes about the Nix fallback need Nix; the others are checked without it.
        if !dir.join(".nix-fallback").exists() {
            c.arg("--no-nix");
        }
        if let Ok(paths) = std::fs::read_to_string(dir.join(".lint-paths")) {
            c.args(paths.lines());
        }
        if let Ok(kind) = std::fs::read_to_string(dir.join(".lint-as")) {
            c.args(["--as", kind.trim()]);
        }
        let out = c.output().unwrap();
        assert_ne!(
            out.status.code(),
            Some(2),
            "{}: {}",
            dir.display(),
            support::text(&out.stderr)
        );
        let log: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        // Every fixture's code is among the results, with its rule's metadata.
        let code = dir.file_name().unwrap().to_str().unwrap();
        if code.len() == 5 {
            let run = &log["runs"][0];
            let results = run["results"].as_array().unwrap();
            let hit = results
                .iter()
                .find(|r| r["ruleId"] == code)
                .unwrap_or_else(|| panic!("{code}: {log}"));
            let rule = &run["tool"]["driver"]["rules"][hit["ruleIndex"].as_u64().unwrap() as usize];
            assert_eq!(rule["id"], code);
            assert!(rule["help"]["markdown"]
                .as_str()
                .unwrap()
                .contains("## Why"));
        }
        let path = out_dir.path().join(format!("{code}.sarif"));
        std::fs::write(&path, &out.stdout).unwrap();
        logs.push(path);
    }
    assert!(logs.len() > 40, "{logs:?}");
    let report = out_dir.path().join("validation.sarif");
    let out = std::process::Command::new(&tool)
        .arg("validate")
        .args(&logs)
        .arg("-o")
        .arg(&report)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        support::text(&out.stdout),
        support::text(&out.stderr)
    );
    let found: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    // Errors and warnings both fail, except SARIF2005 (no `informationUri`: vmctl has no
    // public web page to name).
    let problems: Vec<String> = found["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ruleId"] != "SARIF2005" && r["level"] != "note")
        .map(|r| r.to_string())
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
}
