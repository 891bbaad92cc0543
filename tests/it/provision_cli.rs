//! `vmctl provision` through the built binary on a copy of the demo fleet: the dry run plans
//! offline with zero SSH connections and zero file changes, prints every command line and diff,
//! and its JSON parses; refusals name what to do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::{copy_dir, repo, text, unwrapped, vmctl_cmd, write_script};

/// The demo fleet with every file provisioning reads (definitions, hosts.nix, .sops.yaml,
/// secrets, docs, hosts/ and the template).
pub(crate) fn fleet() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for d in ["vms", "hosts", "hosts-template", "secrets"] {
        copy_dir(&repo().join(d), &dir.path().join(d));
    }
    for f in ["hosts.nix", ".sops.yaml", "docs/machines.md"] {
        let to = dir.path().join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(repo().join(f), to).unwrap();
    }
    dir
}

/// Every file under `dir` with its bytes (directories as empty entries).
pub(crate) fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            if p.is_dir() {
                out.insert(rel.join(""), Vec::new());
                stack.push(p);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Runs vmctl in `fleet` with `ssh`, `nixos-anywhere` and `git` on PATH replaced by scripts
/// that log their use to `log` and fail: any connection attempt shows up there.
fn run_guarded(fleet: &Path, bin: &Path, log: &Path, args: &[&str]) -> Output {
    for tool in ["ssh", "nixos-anywhere", "git", "sops"] {
        write_script(
            &bin.join(tool),
            &format!(
                "#!/bin/sh\necho \"{tool} $*\" >> '{}'\nexit 255\n",
                log.display()
            ),
        );
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    vmctl_cmd()
        .current_dir(fleet)
        .env("PATH", path)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn dry_run_offline_plans_with_no_connection_and_changes_no_file() {
    let fleet = fleet();
    let tools = tempfile::tempdir().unwrap();
    let log = tools.path().join("calls.log");
    let before = snapshot(fleet.path());
    let args = ["provision", "test-automation", "--dry-run", "--offline"];
    let out = run_guarded(fleet.path(), tools.path(), &log, &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for want in [
        "1. [clone]",
        "$ qm clone 9001 110 --name test-automation --full 1 --storage nvmeprom",
        "--sshkeys .vmctl-sshkeys-110.pub --ipconfig0 'ip=dhcp' --ciupgrade 0",
        "$ rm -f -- .vmctl-sshkeys-110.pub",
        "$ qm start 110",
        "+++ b/hosts.nix",
        "+++ b/.sops.yaml",
        "$ nixos-anywhere --flake '.#test-automation' --extra-files '<DIR>'",
        "| feat(vms): provision test-automation (VMID 110)",
        "| VMID: 110",
        "note: offline",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in\n{stdout}");
    }
    let json = run_guarded(
        fleet.path(),
        tools.path(),
        &log,
        &[&args[..], &["--json"]].concat(),
    );
    assert!(json.status.success(), "{}", text(&json.stderr));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["name"], "test-automation");
    assert_eq!(v["vmid"], 110);
    assert_eq!(v["offline"], true);
    assert_eq!(v["steps"].as_array().unwrap().len(), 11);
    assert_eq!(
        v["commands"][0],
        "qm clone 9001 110 --name test-automation --full 1 --storage nvmeprom"
    );
    assert_eq!(v["changes"][0]["file"], "hosts.nix");
    // The secrets the run re-keys are known before it: listed, and in the commit message.
    assert_eq!(
        v["rekeyed_secrets"],
        serde_json::json!(["secrets/common.yaml"])
    );
    assert!(
        v["commit_message"]
            .as_str()
            .unwrap()
            .contains("Files:\n  hosts.nix\n  .sops.yaml\n  secrets/common.yaml\n"),
        "{}",
        v["commit_message"]
    );
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["written"], false);
    // Zero connections, zero processes of the tools, zero file changes (no .vmctl/ either).
    assert!(
        !log.exists(),
        "tools were run: {}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert_eq!(snapshot(fleet.path()), before);
}

#[test]
fn refusals_say_what_to_do() {
    let fleet = fleet();
    let tools = tempfile::tempdir().unwrap();
    let log = tools.path().join("calls.log");
    let run = |args: &[&str]| run_guarded(fleet.path(), tools.path(), &log, args);
    // Each refusal fails and says why, in words the user can act on.
    let refused = |args: &[&str], says: &str| {
        let out = run(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            unwrapped(&out.stderr).contains(says),
            "{}",
            unwrapped(&out.stderr)
        );
    };
    let offline = |name: &'static str, phases: Option<&'static str>| {
        let mut args = vec!["provision", name, "--dry-run", "--offline"];
        args.extend(phases.iter().flat_map(|p| ["--phases", p]));
        args
    };
    refused(&offline("doc1", None), "imported VM");
    refused(
        &offline("test-automaton", None),
        "did you mean `test-automation`",
    );
    // --offline plans only: a real run needs the cluster.
    refused(&["provision", "test-automation", "--offline"], "--dry-run");
    // --phases that skip a step that never ran, or name no phase: refused before anything.
    refused(
        &offline("test-automation", Some("keys,install")),
        "--phases skips step `clone`",
    );
    refused(
        &offline("test-automation", Some("infra,bogus")),
        "`bogus` is not a phase or step",
    );
    let out = run(&offline("test-automation", Some("infra")));
    assert!(out.status.success(), "{}", unwrapped(&out.stderr));
    // Nothing to resume or roll back.
    refused(&["provision", "test-automation", "--resume"], "no journal");
    assert!(!log.exists(), "{}", std::fs::read_to_string(&log).unwrap());
}

#[test]
fn help_teaches_every_argument_with_examples() {
    let out = vmctl_cmd().args(["provision", "--help"]).output().unwrap();
    let help = text(&out.stdout);
    for want in [
        "Examples:",
        "vmctl provision test-automation --dry-run --offline",
        "--resume",
        "--rollback",
        "--keep-on-failure",
        "--no-commit",
        "--json",
        "--phases",
        "--phases keys,install,integrate",
    ] {
        assert!(help.contains(want), "missing {want:?} in\n{help}");
    }
}
