//! The pure-Nix validator (`nix/lib.nix`) against vmlint: the same codes at the same
//! `file:line:column` on every fixture fleet Nix can evaluate, and on crafted edge cases.

use std::path::Path;
use std::process::Command;

use super::support::{nix_eval_json, repo, require_tool, vmlint_cmd};

/// The codes `nix/lib.nix` implements (its header lists them).
const COVERED: &[&str] = &[
    "DF001", "DF002", "VM001", "VM002", "VM003", "VM007", "VM008", "VM009", "VM015",
];

type Finding = (String, String, u64, u64);

/// vmlint's findings of the covered codes on the fleet at `root`, run from `root`.
fn vmlint_findings(root: &Path) -> Vec<Finding> {
    let out = vmlint_cmd()
        .current_dir(root)
        .args(["--format", "json", "."])
        .env("VMCTL_NO_NIX", "1")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("vmlint json on {}: {e}", root.display()));
    let mut found: Vec<Finding> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| COVERED.contains(&d["code"].as_str().unwrap()))
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_string(),
                d["file"].as_str().unwrap().to_string(),
                d["range"]["start"]["line"].as_u64().unwrap(),
                d["range"]["start"]["column"].as_u64().unwrap(),
            )
        })
        .collect();
    found.sort();
    found
}

/// The Nix validator's findings on the fleet at `root`, or Nix's error text.
fn nix_findings(root: &Path) -> Result<Vec<Finding>, String> {
    let dir = tempfile::tempdir().unwrap();
    let expr = dir.path().join("validate.nix");
    std::fs::write(
        &expr,
        format!(
            "(import {}/nix/lib.nix).validate {{ root = {}; }}",
            repo().display(),
            root.display()
        ),
    )
    .unwrap();
    let v = nix_eval_json(&expr)?;
    let mut found: Vec<Finding> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert!(d["severity"].is_string() && d["message"].is_string(), "{d}");
            (
                d["code"].as_str().unwrap().to_string(),
                d["file"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
            )
        })
        .collect();
    found.sort();
    Ok(found)
}

/// Whether plain Nix can import the fleet's definitions.nix at all (syntax errors, undefined
/// variables and the like are vmlint's NX codes, not the validator's).
fn nix_can_import(root: &Path) -> bool {
    Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--readonly-mode"])
        .arg(root.join("vms/definitions.nix"))
        .output()
        .unwrap()
        .status
        .success()
}

fn fixture_fleets() -> Vec<std::path::PathBuf> {
    let mut out = vec![repo().to_path_buf()];
    for group in ["lint", "rules", "docheavy"] {
        let base = repo().join("tests/fixtures").join(group);
        let mut stack = vec![base];
        while let Some(d) = stack.pop() {
            if d.join("vms/definitions.nix").is_file() {
                out.push(d.clone());
            }
            for e in std::fs::read_dir(&d).unwrap().filter_map(Result::ok) {
                if e.file_type().unwrap().is_dir() && e.file_name() != "vms" {
                    stack.push(e.path());
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn nix_validator_and_vmlint_agree_on_every_fixture() {
    require_tool("nix-instantiate");
    let mut compared = 0;
    let mut codes_seen = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for root in fixture_fleets() {
        if !nix_can_import(&root) {
            continue;
        }
        let nix = match nix_findings(&root) {
            Ok(f) => f,
            Err(e) => {
                failures.push(format!("{}: the validator failed: {e}", root.display()));
                continue;
            }
        };
        let lint = vmlint_findings(&root);
        codes_seen.extend(lint.iter().map(|f| f.0.clone()));
        if nix != lint {
            failures.push(format!(
                "{}:\n  nix:    {nix:?}\n  vmlint: {lint:?}",
                root.display()
            ));
        }
        compared += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(compared >= 80, "only {compared} fixtures compared");
    let covered: std::collections::BTreeSet<String> =
        COVERED.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        codes_seen, covered,
        "every covered code fires on some fixture"
    );
}

/// Writes a fleet with this definitions.nix (and `hosts/<dir>/` for each of `dirs`).
fn fleet(defs: &str, dirs: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("vms")).unwrap();
    std::fs::write(d.path().join("vms/definitions.nix"), defs).unwrap();
    for dir in dirs {
        std::fs::create_dir_all(d.path().join("hosts").join(dir)).unwrap();
        std::fs::write(
            d.path().join("hosts").join(dir).join("configuration.nix"),
            "{ }\n",
        )
        .unwrap();
    }
    d
}

#[test]
fn nix_validator_and_vmlint_agree_on_awkward_layouts() {
    require_tool("nix-instantiate");
    let cases = [
        // Nested attribute paths, quoted names, comments between name and value, a value on
        // the next line, tabs and non-ASCII text before a value on the same line.
        r#"# fleet
{
  proxmox.host = "pve.lan";
  managed."web" = { vmid = 104; cores = 2; memory = 4096; disk = "20G"; };
  managed.api.vmid = /* the same */ 104;
  managed.api.cores = 2; managed.api.memory = "lots"; managed.api.disk = "20G";
  imported.doc1 = { purpose = "Dökümäntätiön"; readonly = "yes"; vmid =
    104; };
	imported.nas = { vmid = 42; };
  vmidRanges = { "a-range" = { start = 150; end = 120; }; b = { start = 100; end = 200; }; };
  template = { vmid = 9001; name = 7; };
}
"#,
        // A top level without `proxmox`, after a comment block; a VM that is not a set.
        r#"/* header
 */ { managed = { web = 5; _note = "not a VM"; }; settings.hostsDir = 3; }
"#,
        // `let` bindings, a managed VM whose nixosConfig names a missing directory.
        r#"let cores = 2; in {
  proxmox = { host = "h"; port = "22"; };
  managed.web = { vmid = 110; inherit cores; memory = 1024; disk = "8G"; nixosConfig = "webby"; network = { vlan = "10"; }; };
  managed.db = { vmid = 111; inherit cores; memory = 1024; disk = "8G"; tags = [ "a" 1 ]; };
}
"#,
    ];
    for (i, defs) in cases.iter().enumerate() {
        let f = fleet(defs, &["web"]);
        let nix = nix_findings(f.path()).unwrap_or_else(|e| panic!("case {i}: {e}"));
        let lint = vmlint_findings(f.path());
        assert!(!lint.is_empty(), "case {i} finds something");
        assert_eq!(nix, lint, "case {i}:\n{defs}");
    }
}

#[test]
fn check_is_true_on_the_demo_fleet_and_throws_with_locations_otherwise() {
    require_tool("nix-instantiate");
    let lib = repo().join("nix/lib.nix");
    let run = |root: &Path| {
        Command::new("nix-instantiate")
            .args(["--eval", "--strict", "--readonly-mode", "-E"])
            .arg(format!(
                "(import {}).check {{ root = {}; }}",
                lib.display(),
                root.display()
            ))
            .output()
            .unwrap()
    };
    let ok = run(repo());
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "true");

    let broken = fleet(
        "{\n  proxmox.host = \"h\";\n  imported.a = { vmid = 104; };\n}\n",
        &[],
    );
    let out = run(broken.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("vms/definitions.nix:3:12: warning[VM007]: imported VM `a` is not marked `readonly = true`"),
        "{err}"
    );
}
