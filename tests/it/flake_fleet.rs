//! A user's fleet flake that takes this repository as its `vmctl` input and calls
//! `lib.mkFleet`: `nix flake check` passes on the demo fleet and fails on broken ones with the
//! code and `file:line:column`; `nix flake init -t` makes a fleet that passes its own checks.

use std::path::Path;

use super::flake::FlakeEnv;
use super::support::{demo_fleet, text, vmlint_cmd};

const USER_FLAKE: &str = r#"{
  inputs.vmctl.url = "github:vmctl/vmctl";
  outputs = { self, vmctl }: vmctl.lib.mkFleet { inherit self; };
}
"#;

/// The demo fleet as a user's flake, with `edit` applied to its definitions.nix.
fn user_fleet(edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let dir = demo_fleet();
    std::fs::write(dir.path().join("flake.nix"), USER_FLAKE).unwrap();
    let defs = dir.path().join("vms/definitions.nix");
    let text = std::fs::read_to_string(&defs).unwrap();
    let edited = edit(&text);
    std::fs::write(&defs, edited).unwrap();
    dir
}

/// The 1-based line and column where `needle` starts in definitions.nix of `dir`.
fn position(dir: &Path, needle: &str) -> (usize, usize) {
    let t = std::fs::read_to_string(dir.join("vms/definitions.nix")).unwrap();
    let at = t
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not found"));
    let line = t[..at].matches('\n').count() + 1;
    let col = at - t[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[test]
fn a_user_flake_checks_the_demo_fleet_clean() {
    let env = FlakeEnv::get();
    let fleet = user_fleet(str::to_string);
    let out = env.check_fleet(fleet.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    // nixosConfigurations: the managed VM with hosts/test-automation/ got one.
    let out = env
        .nix(fleet.path())
        .args(["eval", "--no-write-lock-file", "--json"])
        .args(["--override-input", "vmctl", &env.repo_ref()])
        .arg(format!(
            "path:{}#nixosConfigurations.test-automation.config.networking.hostName",
            fleet.path().display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "\"test-automation\"");
}

#[test]
fn a_user_flake_fails_on_broken_fleets_with_code_and_location() {
    let env = FlakeEnv::get();
    // (what is broken, the edit, the code, the text the finding points at)
    type Case = (&'static str, fn(&str) -> String, &'static str, &'static str);
    let cases: [Case; 4] = [
        (
            "duplicate VMID",
            |t| t.replace("vmid = 110;", "vmid = 104;"),
            "VM001",
            "104;\n      cores = 2;",
        ),
        (
            "missing field",
            |t| t.replace("      memory = 4096;\n", ""),
            "DF001",
            "test-automation = {",
        ),
        (
            "imported without readonly",
            |t| t.replacen("      readonly = true;\n", "", 1),
            "VM007",
            "doc1 = {",
        ),
        (
            "managed VM without hosts/<name>/",
            |t| {
                t.replace(
                    "nixosConfig = \"test-automation\";",
                    "nixosConfig = \"web\";",
                )
            },
            "VM008",
            "\"web\";",
        ),
    ];
    for (what, edit, code, at) in cases {
        let fleet = user_fleet(edit);
        let out = env.check_fleet(fleet.path());
        assert!(!out.status.success(), "{what}: nix flake check passed");
        let (line, col) = position(fleet.path(), at);
        let err = text(&out.stderr);
        let expected = format!("vms/definitions.nix:{line}:{col}: ");
        assert!(
            err.lines()
                .any(|l| l.contains(&expected) && l.contains(&format!("[{code}]"))),
            "{what}: no `{expected}…[{code}]` in:\n{err}"
        );
        // vmlint says the same.
        let lint = vmlint_cmd()
            .current_dir(fleet.path())
            .args(["--format", "json", "."])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&lint.stdout).unwrap();
        assert!(
            v.as_array().unwrap().iter().any(|d| d["code"] == code
                && d["range"]["start"]["line"] == line
                && d["range"]["start"]["column"] == col),
            "{what}: vmlint: {v}"
        );
    }
}

#[test]
fn flake_init_makes_a_fleet_that_passes_its_checks_and_vmlint() {
    let env = FlakeEnv::get();
    let dir = tempfile::tempdir().unwrap();
    let out = env
        .nix(dir.path())
        .args(["flake", "init", "-t"])
        .arg(format!("{}#default", env.repo_ref()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    for f in [
        "flake.nix",
        "vms/definitions.nix",
        "hosts.nix",
        "hosts-template/configuration.nix",
        ".sops.yaml",
        "docs/machines.md",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} was not created");
    }
    let out = env.check_fleet(dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lint = vmlint_cmd()
        .current_dir(dir.path())
        .args(["--deny-warnings", "."])
        .output()
        .unwrap();
    assert!(lint.status.success(), "{}", text(&lint.stderr));
    let docs = super::support::vmctl_in(dir.path(), &["docs", "--check"]);
    assert!(docs.status.success(), "{}", text(&docs.stderr));
}

/// The template's hosts-template/ is this repository's, byte for byte: a new fleet scaffolds
/// hosts the way vmctl's own template does.
#[test]
fn the_template_carries_the_current_hosts_template() {
    let ours = super::support::repo().join("hosts-template");
    let theirs = super::support::repo().join("templates/default/hosts-template");
    let names = |d: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&ours), names(&theirs));
    for name in names(&ours) {
        assert_eq!(
            std::fs::read(ours.join(&name)).unwrap(),
            std::fs::read(theirs.join(&name)).unwrap(),
            "templates/default/hosts-template/{} differs from hosts-template/: copy it over",
            name.to_string_lossy()
        );
    }
}
