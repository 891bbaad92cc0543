//! Issue 8, "real files lint clean": the documentation-heavy fleets of tests/fixtures/docheavy
//! and every real-world `vms` file lint with 0 errors, and `vmctl hosts add`, `sops
//! add-recipient`, `docs` and `scaffold` succeed on a temp copy of each fleet (the binaries
//! run for real; the fleet is linted again afterwards).

use crate::support;

use std::path::Path;
use std::process::Output;

use crate::support::{copy_dir, fixture, repo, text, vmctl_in};
use vmctl::check::Severity;
use vmctl::exec::lint::{lint, NixFallback};
use vmctl::model::fleet::NixRole;

/// A fresh key for the host each fleet gains (generated for these tests; public only).
const NEW_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFNLY7rJsLqxLZ5w6dfAXCSsoRjPUVw/gUqwI0YNmibk new@host";
const NEW_AGE: &str = "age16ldgzqdq6r0mqnvv7maaegws9rrn2h9pw520k72w4z3l6fqv3gtq6p3u3h";

/// One corpus fleet and what the fleet commands do on it.
struct Case {
    dir: &'static str,
    /// The host `hosts add` and `sops add-recipient` add (a VM without a hosts.nix entry).
    new_host: &'static str,
    /// `--rule` for add-recipient when the file has more than one rule.
    rule: Option<&'static str>,
    /// The VM `scaffold` creates a directory for.
    scaffold: &'static str,
    /// Where the fleet's files are (its `settings`).
    hosts_file: &'static str,
    sops_file: &'static str,
    docs_file: &'static str,
    hosts_dir: &'static str,
}

const CASES: &[Case] = &[
    Case {
        dir: "homelab",
        new_host: "web",
        rule: Some(r"secrets/[^/]+\.yaml$"),
        scaffold: "web",
        hosts_file: "hosts.nix",
        sops_file: ".sops.yaml",
        docs_file: "docs/machines.md",
        hosts_dir: "hosts",
    },
    Case {
        dir: "words",
        new_host: "homeassistant",
        rule: None,
        scaffold: "win11",
        hosts_file: "hosts.nix",
        sops_file: ".sops.yaml",
        docs_file: "docs/machines.md",
        hosts_dir: "hosts",
    },
    Case {
        dir: "settings",
        new_host: "ci",
        rule: None,
        scaffold: "cache",
        hosts_file: "nix/hosts.nix",
        sops_file: "secrets/.sops.yaml",
        docs_file: "doc/inventory.md",
        hosts_dir: "machines",
    },
    Case {
        dir: "commented",
        new_host: "builder",
        rule: None,
        scaffold: "dns",
        hosts_file: "hosts.nix",
        sops_file: ".sops.yaml",
        docs_file: "docs/machines.md",
        hosts_dir: "hosts",
    },
];

fn ok(out: &Output, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}\n--- stdout\n{}--- stderr\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Error diagnostics of a lint of the fleet at `root` (with the real Nix fallback).
fn lint_errors(root: &Path) -> Vec<String> {
    let run = lint(
        &[root.to_path_buf()],
        None,
        root,
        &NixFallback::Use("nix-instantiate".into()),
    )
    .expect("the fleet loads");
    run.diagnostics
        .iter()
        .filter(|d| d.severity() == Severity::Error)
        .map(|d| format!("{} {}", d.code(), d.message))
        .collect()
}

#[test]
fn every_corpus_fleet_lints_with_no_errors() {
    support::require_tool("nix-instantiate");
    for case in CASES {
        let root = fixture("docheavy").join(case.dir);
        assert_eq!(lint_errors(&root), Vec::<String>::new(), "{}", case.dir);
        // The same through the binary and without Nix: the static reading alone is clean.
        let out = crate::support::vmlint_cmd()
            .args(["--no-nix", "--color", "never"])
            .arg(&root)
            .output()
            .unwrap();
        ok(&out, case.dir);
    }
}

#[test]
fn documentation_reaches_the_model_with_sensible_values() {
    let run = lint(
        &[fixture("docheavy/homelab")],
        None,
        &fixture("docheavy"),
        &NixFallback::Off,
    )
    .unwrap();
    let (_, defs) = run.fleet.definitions_file().unwrap();
    let t = defs.template.as_ref().unwrap();
    assert_eq!((t.cores, t.memory), (Some(2), Some(2048)), "template specs");
    let nas = defs.vm_by_name("nas").unwrap();
    assert_eq!((nas.cores, nas.memory), (Some(4), Some(16384)));
    assert_eq!(
        nas.disk.as_deref(),
        Some("passthrough of /dev/sdb (4x 8TB ZFS)")
    );
    assert_eq!(nas.services, ["samba", "nfs"]);
    assert_eq!(nas.status.as_deref(), Some("running, backed up"));
    let media = defs.vm_by_name("media").unwrap();
    assert_eq!(media.services, ["Jellyfin", "Sonarr", "Radarr"]);
    assert_eq!(
        media.memory,
        Some(8192),
        "`gib 8` through a let-bound function"
    );
    assert_eq!(defs.imported.len(), 3, "`_comment` is not a VM");
    assert_eq!(defs.managed.len(), 1, "`_defaults` is not a VM");
}

#[test]
fn fleet_commands_work_on_every_corpus_fleet() {
    support::require_tool("nix-instantiate");
    for case in CASES {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join(case.dir);
        copy_dir(&fixture("docheavy").join(case.dir), &root);
        // A fleet set up for vmctl has the host template (the corpus keeps only what differs).
        if !root.join("hosts-template").exists() && !root.join("templates").exists() {
            copy_dir(&repo().join("hosts-template"), &root.join("hosts-template"));
        }
        let what = |cmd: &str| format!("{}: {cmd}", case.dir);

        ok(
            &vmctl_in(&root, &["hosts", "add", case.new_host, "--key", NEW_KEY]),
            &what("hosts add"),
        );
        let hosts = std::fs::read_to_string(root.join(case.hosts_file)).unwrap();
        assert!(
            hosts.contains(&format!("{} = {{", case.new_host)),
            "{hosts}"
        );
        assert!(
            !root.join("hosts.nix").exists() || case.hosts_file == "hosts.nix",
            "no second hosts file"
        );

        let mut args = vec!["sops", "add-recipient", case.new_host];
        if let Some(rule) = case.rule {
            args.extend(["--rule", rule]);
        }
        ok(&vmctl_in(&root, &args), &what("sops add-recipient"));
        let sops = std::fs::read_to_string(root.join(case.sops_file)).unwrap();
        assert!(sops.contains(NEW_AGE), "{sops}");

        ok(&vmctl_in(&root, &["docs"]), &what("docs"));
        let docs = std::fs::read_to_string(root.join(case.docs_file)).unwrap();
        let defs = lint(std::slice::from_ref(&root), None, &root, &NixFallback::Off)
            .unwrap()
            .fleet
            .definitions_file()
            .map(|(_, d)| d.clone())
            .unwrap();
        for vm in defs.all_vms() {
            assert!(
                docs.contains(&vm.name),
                "{}: {} not in docs",
                case.dir,
                vm.name
            );
        }

        ok(
            &vmctl_in(&root, &["scaffold", case.scaffold]),
            &what("scaffold"),
        );
        let vm = defs.vm_by_name(case.scaffold).unwrap();
        assert!(
            root.join(case.hosts_dir)
                .join(vm.config_name())
                .join("configuration.nix")
                .is_file(),
            "{}: scaffolded",
            case.dir
        );

        // Every file vmctl wrote still lints clean.
        assert_eq!(
            lint_errors(&root),
            Vec::<String>::new(),
            "{} after",
            case.dir
        );
    }
}

#[test]
fn real_world_vms_files_lint_with_no_errors() {
    let dir = fixture("real-world/vms");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 3);
    for file in &files {
        // Read as a definitions file (the role they would have as vms/definitions.nix), and by
        // name through the binary.
        let run = lint(
            std::slice::from_ref(file),
            Some(NixRole::Definitions),
            &dir,
            &NixFallback::Off,
        )
        .unwrap();
        let errors: Vec<_> = run
            .diagnostics
            .iter()
            .filter(|d| d.severity() == Severity::Error)
            .map(|d| format!("{} {}", d.code(), d.message))
            .collect();
        assert_eq!(errors, Vec::<String>::new(), "{}", file.display());
        let out = crate::support::vmlint_cmd()
            .args(["--no-nix", "--color", "never", "--as", "definitions"])
            .arg(file)
            .output()
            .unwrap();
        ok(&out, &file.display().to_string());
    }
}

/// None of the real-world `vms` files is a vmctl definitions file (they are a `mkVm` list, a
/// NixOS module and a module of QEMU services), so there is no VM to scaffold; placed as a
/// fleet's vms/definitions.nix, the commands that do not need a VM still work, and scaffold
/// refuses with an error that names the VM (no panic).
#[test]
fn fleet_commands_on_real_world_vms_files() {
    for entry in std::fs::read_dir(fixture("real-world/vms")).unwrap() {
        let file = entry.unwrap().path();
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("vms")).unwrap();
        std::fs::copy(&file, root.join("vms/definitions.nix")).unwrap();
        std::fs::write(root.join("hosts.nix"), "{ }\n").unwrap();
        std::fs::write(
            root.join(".sops.yaml"),
            "creation_rules:\n  - path_regex: secrets/.*\n    age: age1aghggjl0mt8t4k872cjtdsa5rv0qqem8u044egxvxf3057dfhcjq6fwecc\n",
        )
        .unwrap();
        let name = file.display().to_string();
        ok(
            &vmctl_in(root, &["hosts", "add", "newhost", "--key", NEW_KEY]),
            &name,
        );
        ok(
            &vmctl_in(root, &["sops", "add-recipient", "newhost"]),
            &name,
        );
        ok(&vmctl_in(root, &["docs"]), &name);
        let out = vmctl_in(root, &["scaffold", "newhost"]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("newhost"),
            "{}",
            text(&out.stderr)
        );
    }
}
