//! Every command that has `--json` (found in the clap tree, so a new one is covered or fails
//! here until it has arguments below), run against a copy of the demo fleet, dry-run where it
//! changes something: one JSON shape (docs/cli.md), every path relative to the fleet root, no
//! temp directory leaking, and the error object on stdout when a `--json` call fails.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use clap::CommandFactory;
use serde_json::Value;

use crate::support::pve::{self, Pve};
use crate::support::secrets::NEWVM;
use crate::support::{copy_dir, demo_fleet, repo, text, vmctl_cmd};

/// Every subcommand path (`["ops", "stop"]`) whose command has a `--json` flag, or lint's
/// `--format json`.
fn json_commands() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        let has = cmd.get_arguments().any(|a| {
            a.get_id() == "json"
                || (a.get_id() == "format"
                    && a.get_possible_values()
                        .iter()
                        .any(|v| v.get_name() == "json"))
        });
        if has {
            out.push(path.clone());
        }
        for sub in cmd.get_subcommands() {
            path.push(sub.get_name().to_string());
            walk(sub, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(&vmctl::cli::Cli::command(), &mut Vec::new(), &mut out);
    out
}

/// The rest of each command line: real names of the demo fleet, `--dry-run` wherever the
/// command changes something. `KEYS` stands for the fleet's `keys/new` directory.
fn arguments() -> BTreeMap<&'static str, Vec<&'static str>> {
    let dry = "--dry-run";
    BTreeMap::from([
        ("lint", vec!["--format", "json", "--no-nix"]),
        ("keys to-age", vec!["KEY"]),
        ("keys fingerprint", vec!["KEY"]),
        ("keys generate", vec!["--out", "KEYS", dry]),
        ("hosts add", vec!["test-automation", "--key", "KEY", dry]),
        // doc1's own key: another would contradict its .sops.yaml recipient (refused, FL002).
        ("hosts set-key", vec!["doc1", "--key", DOC1_KEY, dry]),
        ("hosts remove", vec!["igpu", dry]),
        ("sops add-recipient", vec!["test-automation", NEWVM, dry]),
        ("sops remove-recipient", vec!["igpu", dry]),
        (
            "sops add-host-rule",
            vec!["test-automation", "--recipient", NEWVM, dry],
        ),
        ("scaffold", vec!["test-automation", dry]),
        (
            "destroy",
            vec![
                "test-automation",
                "--confirm",
                "test-automation",
                dry,
                "--offline",
            ],
        ),
        ("docs", vec![dry]),
        ("provision", vec!["test-automation", dry, "--offline"]),
        // The simulated Proxmox host's own sshd stands in for the VM's (PVE_PORT).
        (
            "post-provision",
            vec![
                "test-automation",
                "127.0.0.1",
                "110",
                "--port",
                "PVE_PORT",
                dry,
            ],
        ),
        ("template create", vec![dry]),
        ("known-hosts", vec![]),
        ("rebuild", vec!["test-automation", dry]),
        ("snapshot create", vec!["s1", dry]),
        ("backup", vec!["test-automation", dry]),
        ("backups", vec!["test-automation"]),
        ("migrate", vec!["test-automation", "prom2", dry]),
        (
            "restore",
            vec![
                "test-automation",
                "--from",
                "local:backup/vzdump-qemu-110-2026_01_01-00_00_00.vma.zst",
                "--as",
                "ta2",
                dry,
            ],
        ),
        ("snapshot list", vec![]),
        (
            "snapshot rollback",
            vec!["s1", "--confirm", "test-automation", dry],
        ),
        ("snapshot delete", vec!["s1", dry]),
        ("secrets rekey", vec![dry]),
        ("secrets check", vec![]),
        ("secrets rotate", vec![dry]),
        ("ops list", vec![]),
        ("status", vec![]),
        ("apply", vec!["--all", dry]),
        ("import", vec!["doc1", "104", dry]),
        ("ops status", vec!["110"]),
        ("ops config", vec!["110"]),
        ("ops clone", vec!["9001", "110", "test-automation", dry]),
        ("ops configure", vec!["110", "2", "2048", dry]),
        ("ops create-disk", vec!["110", "10G", dry]),
        ("ops resize", vec!["110", "scsi0", "+1G", dry]),
        (
            "ops restore-vma",
            vec!["/var/lib/vz/dump/a.vma", "110", dry],
        ),
        ("ops serial-socket", vec!["110", dry]),
        ("ops start", vec!["110", dry]),
        ("ops stop", vec!["110", dry]),
        ("ops shutdown", vec!["110", dry]),
        ("ops template", vec!["110", dry]),
        (
            "ops destroy",
            vec!["110", "--confirm", "test-automation", dry],
        ),
        ("ops get-ip", vec!["110"]),
        ("ops storage", vec![]),
        ("ops next-vmid", vec![]),
        ("ops snapshot create", vec!["110", "s1", dry]),
        ("ops snapshot list", vec!["110"]),
        ("ops snapshot rollback", vec!["110", "s1", dry]),
        ("ops snapshot delete", vec!["110", "s1", dry]),
        ("ops migrate", vec!["110", "prom2", dry]),
        ("ops protect", vec!["110", "on", dry]),
    ])
}

const DOC1_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMlLRoQ0HoeSXd9Rbb9WB51hQUGkEPeKZvmAsJFjg/wH";

/// The demo fleet with its sops config and secrets (what `secrets` and `sops` read).
fn fleet() -> tempfile::TempDir {
    let dir = demo_fleet();
    std::fs::copy(repo().join(".sops.yaml"), dir.path().join(".sops.yaml")).unwrap();
    copy_dir(&repo().join("secrets"), &dir.path().join("secrets"));
    dir
}

/// The fields that name a file, in any object of the output.
const PATH_FIELDS: &[&str] = &[
    "file",
    "path",
    "dir",
    "config",
    "private_key_file",
    "public_key_file",
];

/// Every (field, string) pair of `v`, recursively.
fn strings<'a>(v: &'a Value, field: &'a str, out: &mut Vec<(&'a str, &'a str)>) {
    match v {
        Value::String(s) => out.push((field, s)),
        Value::Array(a) => a.iter().for_each(|x| strings(x, field, out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| strings(x, k, out)),
        _ => {}
    }
}

/// Checks one command's output against the shape of docs/cli.md.
fn check_shape(name: &str, args: &[&str], v: &Value, root: &Path) {
    let mut all = Vec::new();
    strings(v, "", &mut all);
    let root_s = root.display().to_string();
    for (field, s) in &all {
        assert!(
            !s.contains(&root_s),
            "{name}: `{field}` leaks the fleet's absolute path: {s}"
        );
        // Lint's `file` is relative to the working directory, as compilers print it (its
        // documented schema); every other path is relative to the fleet root.
        if PATH_FIELDS.contains(field) {
            let climbs = name != "lint" && s.starts_with("../");
            assert!(
                !s.starts_with('/') && !climbs,
                "{name}: `{field}` is not relative to the fleet root: {s}"
            );
        }
    }
    if !args.contains(&"--dry-run") {
        return;
    }
    // A command that changes something: `dry_run` always, then the file-change shape or the
    // cluster-change shape.
    assert_eq!(v["dry_run"], true, "{name}: {v}");
    if name.starts_with("ops ")
        || name == "template create"
        || name == "rebuild"
        || name.starts_with("snapshot ")
        || name == "backup"
        || name == "restore"
        || name == "apply"
    {
        for field in ["commands", "notes"] {
            assert!(v[field].is_array(), "{name}: no `{field}` array: {v}");
        }
        assert!(v["output"].is_string(), "{name}: {v}");
        assert!(
            !v["commands"].as_array().unwrap().is_empty(),
            "{name}: a dry run names its command: {v}"
        );
        return;
    }
    assert_eq!(v["written"], false, "{name}: a dry run writes nothing: {v}");
    let changes = v["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: no `changes` array: {v}"));
    for c in changes {
        for field in ["file", "action", "summary"] {
            assert!(
                c[field].is_string(),
                "{name}: change without `{field}`: {c}"
            );
        }
        assert_eq!(c["written"], false, "{name}: {c}");
        assert!(c["diff"].is_string() || c["diff"].is_null(), "{name}: {c}");
    }
}

/// The error object of a failed `--json` call, with the process's exit code in it.
fn check_error(what: &str, out: &Output) {
    let code = out.status.code().unwrap();
    assert_ne!(code, 0, "{what} did not fail: {}", text(&out.stdout));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: stdout is not one JSON value ({e}): {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    let e = &v["error"];
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {v}"
    );
    assert!(e["code"].is_string() || e["code"].is_null(), "{what}: {v}");
    assert!(e["help"].is_string() || e["help"].is_null(), "{what}: {v}");
    assert_eq!(
        e["exit"], code,
        "{what}: the object's exit is the process's: {v}"
    );
    assert!(
        !text(&out.stderr).is_empty(),
        "{what}: people still read stderr"
    );
}

#[test]
fn every_json_output_has_one_shape_and_relative_paths() {
    pve::require_tools();
    let commands = json_commands();
    assert!(
        commands.len() >= 30,
        "the clap walk found only {commands:?}"
    );
    let table = arguments();
    let fleet = fleet();
    let root = fleet.path().canonicalize().unwrap();
    let key = crate::support::new_public_key(Some("root@test"));
    let keys_dir = root.join("keys/new");
    let pve = Pve::start();
    pve.seed_demo();
    pve.write_conf(
        110,
        "agent: 1\ncores: 2\nmemory: 2048\nname: test-automation\n\
         net0: virtio=BC:24:11:00:01:10,bridge=vmbr0\nscsi0: nvmeprom:vm-110-disk-0,size=20G\n",
    );
    pve.write("agent/110.json", r#"["192.168.1.50/24"]"#);
    pve.write("running/110", "1\n");
    // Run from a subdirectory: a path shown relative to the working directory would start
    // with `../` and fail the check.
    let cwd = root.join("hosts");
    // rebuild needs a host whose key hosts.nix pins: a second copy that has one.
    let pinned = self::fleet();
    let hosts_nix = pinned.path().join("hosts.nix");
    let h = std::fs::read_to_string(&hosts_nix).unwrap();
    let entry = format!(
        "  test-automation = {{ hostname = \"test-automation\"; publicKey = \"{key}\"; }};\n}}\n"
    );
    std::fs::write(
        &hosts_nix,
        h.trim_end().strip_suffix('}').unwrap().to_string() + &entry,
    )
    .unwrap();
    let mut ran = 0;
    for path in &commands {
        let name = path.join(" ");
        let Some(args) = table.get(name.as_str()) else {
            panic!("`vmctl {name}` has --json: add its arguments to the table in cli_json.rs");
        };
        let args: Vec<String> = args
            .iter()
            .map(|a| match *a {
                "KEY" => key.clone(),
                "KEYS" => keys_dir.display().to_string(),
                "PVE_PORT" => pve.sshd.addr.port().to_string(),
                a => a.to_string(),
            })
            .collect();
        let mut cmd: Command = if path[0] == "ops" {
            let mut c = pve.ops_cmd(&root);
            c.args(&path[1..]);
            c
        } else {
            let mut c = vmctl_cmd();
            if path[0] == "snapshot" {
                // `vmctl snapshot NAME ACTION`: the VM's name comes before the action.
                c.args(["snapshot", "test-automation", &path[1]]);
                c.envs(pve.vmctl_env());
            } else {
                c.args(path);
            }
            if path[0] == "post-provision"
                || path[0] == "status"
                || path[0] == "apply"
                || path[0] == "import"
            {
                c.envs(pve.vmctl_env());
            }
            if path[0] == "backups" {
                c.envs(pve.vmctl_env());
            }
            if path[0] == "rebuild" {
                c.arg("--fleet").arg(pinned.path());
            }
            c
        };
        if name != "lint" {
            cmd.arg("--json");
        }
        let out = cmd
            .args(&args)
            .current_dir(&cwd)
            .env("VMCTL_NO_NIX", "1")
            .output()
            .unwrap();
        let shown = format!("vmctl {name} {}", args.join(" "));
        // `secrets rotate` without an identity fails per file, which its JSON reports.
        // `status` exits 1 when a VM drifted, which its JSON reports.
        let allowed: &[i32] = if name == "secrets rotate" || name == "status" {
            &[0, 1]
        } else {
            &[0]
        };
        assert!(
            allowed.contains(&out.status.code().unwrap()),
            "{shown}: exit {:?}\n{}\n{}",
            out.status.code(),
            text(&out.stdout),
            text(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{shown}: not one JSON value ({e}):\n{}", text(&out.stdout))
        });
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        check_shape(&name, &arg_refs, &v, &root);
        ran += 1;
    }
    assert_eq!(ran, commands.len());
    // A real change with --json: one object naming the command the cluster accepted.
    let out = pve
        .ops_cmd(&root)
        .args(["stop", "110", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dry_run"], false, "{v}");
    assert_eq!(v["commands"], serde_json::json!(["qm stop 110"]), "{v}");
    let out = pve
        .ops_cmd(&root)
        .args(["status", "110", "--json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "stopped", "the stop was sent: {v}");
    assert!(
        !keys_dir.exists(),
        "keys generate --dry-run wrote {}",
        keys_dir.display()
    );
    // Nothing of the fleet changed: every call was a dry run or a read.
    assert_eq!(
        std::fs::read_to_string(root.join("hosts.nix")).unwrap(),
        std::fs::read_to_string(repo().join("hosts.nix")).unwrap()
    );
}

#[test]
fn a_failing_json_call_prints_the_error_object_on_stdout() {
    let fleet = fleet();
    let root = fleet.path();
    let run = |args: &[&str]| {
        vmctl_cmd()
            .current_dir(root)
            .args(args)
            .env("VMCTL_NO_NIX", "1")
            .output()
            .unwrap()
    };
    // A usage error, for every command with --json: exit 2.
    for path in json_commands() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        if args == ["lint"] {
            args.extend(["--format", "json"]);
        } else {
            args.push("--json");
        }
        args.push("--no-such-option");
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        check_error(&format!("{args:?}"), &out);
    }
    // Refusals and failures while running: exit 1.
    let refusals: &[&[&str]] = &[
        &["hosts", "remove", "nosuch", "--json"],
        &["ops", "stop", "104", "--dry-run", "--json"],
        &["scaffold", "nosuch", "--json", "--dry-run"],
    ];
    for args in refusals {
        let out = run(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&out.stderr)
        );
        check_error(&format!("{args:?}"), &out);
    }
    // Input that cannot be read: exit 2, with the same object.
    for args in [
        &["keys", "fingerprint", "not-a-key-file", "--json"][..],
        &["secrets", "check", "--json", "--config", "no-such.yaml"],
    ] {
        let out = run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        check_error(&format!("{args:?}"), &out);
    }
    // Lint reports unreadable input as exit 2, with the same object.
    let out = run(&["lint", "no/such/file.nix", "--format", "json"]);
    check_error("lint of a missing file", &out);
    assert_eq!(out.status.code(), Some(2));
}
