//! `vmctl provision NAME... --jobs N` over the sandbox: the demo fleet plus three more managed
//! VMs (static 127.0.0.111–113/8, each with its `hosts/NAME` committed, as a flake needs),
//! provisioned at once against the simulator behind a real sshd, with the installer stand-in,
//! real git and the simulator's command times (times.jsonl) to tell what overlapped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::provision_sandbox::turn;
use crate::sandbox::Sandbox;
use crate::support::text;

/// The VMs of the crafted fleet: the demo's test-automation and three more.
const VMS: [(&str, u32); 4] = [
    ("test-automation", 110),
    ("vm-b", 111),
    ("vm-c", 112),
    ("vm-d", 113),
];

fn fleet(s: &Sandbox) -> PathBuf {
    s.dir.join("fleet")
}

fn git(root: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// The sandbox with the crafted fleet: `extra` VMs (name, VMID) added to definitions.nix and
/// their host configurations committed; clones take `clone_ms` in the simulator and installs
/// `install_ms` in the stand-in (tests/pve-sim/timing.rs).
fn up(extra: &[(&str, u32)], clone_ms: u32, install_ms: u32) -> Sandbox {
    let s = Sandbox::up();
    let root = fleet(&s);
    let vms: Vec<(&str, u32, Option<&str>)> = extra
        .iter()
        .map(|(name, vmid)| (*name, *vmid, None))
        .collect();
    crate::support::add_managed_vms(&root, &vms, "Provisioned with its siblings");
    let sim = s.dir.join("pve/state/sim.json");
    let mut conf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sim).unwrap()).unwrap();
    conf["clone_ms"] = clone_ms.into();
    conf["install_ms"] = install_ms.into();
    std::fs::write(&sim, conf.to_string()).unwrap();
    // The simulator logs its commands' times once the file exists.
    std::fs::write(s.dir.join("pve/state/times.jsonl"), "").unwrap();
    // machines.md as a user keeps it, regenerated for the new definitions (with a VMID two
    // VMs share `vmctl docs` refuses: the file stays as it was then).
    let _ = crate::support::vmctl(&root, &["docs"]);
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "test: more managed VMs"]);
    s
}

fn provision(s: &Sandbox, args: &[&str]) -> Output {
    let key = s.var("SANDBOX_ADMIN_KEY");
    crate::support::vmctl_cmd()
        .current_dir(fleet(s))
        .envs(s.env.iter().cloned())
        .arg("provision")
        .args(args)
        .args(["--identity", &key, "--wait", "60"])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The simulator's commands with their times: (argv, start ms, end ms).
fn times(s: &Sandbox) -> Vec<(Vec<String>, u64, u64)> {
    std::fs::read_to_string(s.dir.join("pve/state/times.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let argv = v["argv"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect();
            (
                argv,
                v["start_ms"].as_u64().unwrap(),
                v["end_ms"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Connections the Proxmox host's sshd accepted so far (its log, LogLevel VERBOSE).
fn proxmox_logins(s: &Sandbox) -> usize {
    std::fs::read_to_string(s.dir.join("pve/sshd/sshd.log"))
        .unwrap()
        .matches("Accepted publickey")
        .count()
}

/// The simulator's timeline (tests/pve-sim/timing.rs) of `what`: (VMID, start, end) seconds.
fn intervals(s: &Sandbox, what: &str) -> Vec<(u64, f64, f64)> {
    let text = std::fs::read_to_string(s.dir.join("pve/state/timeline.jsonl")).unwrap_or_default();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["what"] == what)
        .collect();
    let mut out = Vec::new();
    for start in events.iter().filter(|v| v["phase"] == "start") {
        let vmid = start["vmid"].as_u64().unwrap();
        let end = events
            .iter()
            .find(|v| v["phase"] == "end" && v["vmid"] == vmid)
            .unwrap_or_else(|| panic!("{what} of {vmid} never ended: {text}"));
        out.push((
            vmid,
            start["t"].as_f64().unwrap(),
            end["t"].as_f64().unwrap(),
        ));
    }
    out
}

fn is_clone(argv: &[String]) -> bool {
    argv.len() > 1 && argv[0] == "qm" && argv[1] == "clone"
}

/// The value after `--flag` in `argv`.
fn flag<'a>(argv: &'a [String], name: &str) -> Option<&'a str> {
    argv.iter()
        .position(|a| a == name)
        .and_then(|i| argv.get(i + 1))
        .map(String::as_str)
}

/// The lines a commit adds to and removes from `path`.
fn hunks(root: &Path, commit: &str, path: &str) -> (Vec<String>, Vec<String>) {
    let diff = git(root, &["show", "--format=", "-U0", commit, "--", path]);
    let added = diff
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .map(|l| l[1..].to_string())
        .collect();
    let removed = diff
        .lines()
        .filter(|l| l.starts_with('-') && !l.starts_with("---"))
        .map(|l| l[1..].to_string())
        .collect();
    (added, removed)
}

/// Every `recipient: age1…` of the secrets at HEAD is one .sops.yaml at HEAD lists.
fn secrets_list_only_known_recipients(root: &Path) {
    let sops = git(root, &["show", "HEAD:.sops.yaml"]);
    let mut seen = 0;
    for path in git(root, &["ls-files", "secrets"]).lines() {
        let secret = git(root, &["show", &format!("HEAD:{path}")]);
        for r in secret.lines().filter_map(|l| {
            l.trim()
                .trim_start_matches("- ")
                .strip_prefix("recipient: ")
        }) {
            seen += 1;
            assert!(
                sops.contains(r.trim()),
                "{path} at HEAD is encrypted for {r}, which .sops.yaml does not list"
            );
        }
    }
    assert!(seen > 0, "no age recipient found in the secrets at HEAD");
}

#[test]
fn four_vms_with_jobs_4_all_provisioned_one_commit_each_clones_never_overlapping() {
    let _turn = turn();
    let s = up(&VMS[1..], 300, 500);
    let root = fleet(&s);
    let base = git(&root, &["rev-parse", "HEAD"]).trim().to_string();
    let logins_before = proxmox_logins(&s);
    let out = provision(
        &s,
        &["test-automation", "vm-b", "vm-c", "vm-d", "--jobs", "4"],
    );
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "provision: {stdout}\n{}",
        text(&out.stderr)
    );
    assert_eq!(
        proxmox_logins(&s) - logins_before,
        1,
        "the run used more than one SSH connection to the Proxmox host"
    );
    for (name, vmid) in VMS {
        assert!(
            stdout.contains(&format!("{name}: provisioned VM {vmid}, commit ")),
            "{stdout}"
        );
        let status = s.pve(&format!("qm status {vmid}"));
        assert!(status.contains("running"), "{name}: {status}");
        // hosts.nix pins the key the VM's sshd presents now.
        let installed =
            std::fs::read_to_string(s.guest_file(vmid, "root/etc/ssh/ssh_host_ed25519_key.pub"))
                .unwrap();
        let b64 = installed.split_whitespace().nth(1).unwrap();
        let hosts = std::fs::read_to_string(root.join("hosts.nix")).unwrap();
        assert!(hosts.contains(b64), "{name}'s key is not in hosts.nix");
    }

    // Clones: one at a time on the storage; the other steps overlapped them.
    let log = times(&s);
    let clones: Vec<_> = log.iter().filter(|(a, _, _)| is_clone(a)).collect();
    assert_eq!(clones.len(), 4, "{clones:?}");
    for (i, (a, s1, e1)) in clones.iter().enumerate() {
        for (b, s2, e2) in &clones[i + 1..] {
            if flag(a, "--storage") == flag(b, "--storage") {
                assert!(
                    e1 <= s2 || e2 <= s1,
                    "clones overlap on one storage: {a:?} {s1}-{e1} and {b:?} {s2}-{e2}"
                );
            }
        }
    }
    let overlapped = log.iter().any(|(a, s1, e1)| {
        !is_clone(a)
            && clones.iter().any(|(c, s2, e2)| {
                flag(c, "--name").is_some_and(|n| !a.iter().any(|w| w.contains(n)))
                    && a.get(2) != c.get(3)
                    && s1 < e2
                    && s2 < e1
            })
    });
    assert!(
        overlapped,
        "no other VM's step ran while a clone did: the VMs ran one after another"
    );
    // The installs (the stand-in's timeline, tests/pve-sim/timing.rs) overlapped each other.
    let installs = intervals(&s, "install");
    assert_eq!(installs.len(), 4, "{installs:?}");
    let parallel = installs.iter().enumerate().any(|(i, (a, s1, e1))| {
        installs[i + 1..]
            .iter()
            .any(|(b, s2, e2)| a != b && s1 < e2 && s2 < e1)
    });
    assert!(parallel, "the installs ran one after another: {installs:?}");

    // Four commits on top, one per VM, each with only its own hunks.
    let commits: Vec<String> = git(&root, &["rev-list", "--reverse", &format!("{base}..HEAD")])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(commits.len(), 4, "{commits:?}");
    let mut seen = Vec::new();
    for c in &commits {
        let subject = git(&root, &["log", "-1", "--format=%s", c]);
        let (name, vmid) = VMS
            .iter()
            .find(|(n, id)| subject.trim() == format!("feat(vms): provision {n} (VMID {id})"))
            .unwrap_or_else(|| panic!("unexpected commit {subject}"));
        seen.push(*name);
        let others: Vec<&str> = VMS.iter().map(|v| v.0).filter(|n| n != name).collect();
        for path in ["hosts.nix", ".sops.yaml"] {
            let (added, removed) = hunks(&root, c, path);
            assert!(removed.is_empty(), "{subject}: {path} lost {removed:?}");
            let added = added.join("\n");
            assert!(added.contains(name), "{subject}: {path} gained {added}");
            for o in &others {
                // `vm-b` is no part of `test-automation`, nor the reverse.
                assert!(
                    !added.contains(&format!("{o} "))
                        && !added.contains(&format!("{o}\n"))
                        && !added.ends_with(o),
                    "{subject} holds {o}'s lines in {path}: {added}"
                );
            }
        }
        let files = git(&root, &["show", "--format=", "--name-only", c]);
        for f in files.lines() {
            assert!(
                !others.iter().any(|o| f.starts_with(&format!("hosts/{o}/"))),
                "{subject} commits {f}"
            );
        }
        let trailers = git(&root, &["log", "-1", "--format=%b", c]);
        assert!(trailers.contains(&format!("VMID: {vmid}")), "{trailers}");
    }
    seen.sort();
    assert_eq!(seen, ["test-automation", "vm-b", "vm-c", "vm-d"]);
    // Every other byte unchanged: the shared files only gained lines.
    for path in ["hosts.nix", ".sops.yaml", "docs/machines.md"] {
        let stat = git(&root, &["diff", "--numstat", &base, "HEAD", "--", path]);
        if let Some(line) = stat.lines().next() {
            assert_eq!(line.split_whitespace().nth(1), Some("0"), "{path}: {stat}");
        }
    }
    // The working tree is what was committed, nothing staged or left over.
    assert_eq!(
        git(&root, &["status", "--porcelain"]),
        "",
        "git is not clean"
    );
    secrets_list_only_known_recipients(&root);
}

#[test]
fn one_of_four_failing_at_install_is_rolled_back_alone() {
    let _turn = turn();
    let s = up(&VMS[1..], 100, 0);
    let root = fleet(&s);
    let base = git(&root, &["rev-parse", "HEAD"]).trim().to_string();
    // The stand-in fails vm-c's install only (its fault switch is the whole process's).
    let bin = s.dir.join("bin");
    std::fs::rename(bin.join("nixos-anywhere"), bin.join("nixos-anywhere.real")).unwrap();
    crate::support::write_script(
        &bin.join("nixos-anywhere"),
        "#!/usr/bin/env bash\ncase \" $* \" in *'#vm-c '*) export SANDBOX_INSTALLER_FAULT=fail:install ;; esac\n\
         exec \"$(dirname \"$0\")/nixos-anywhere.real\" \"$@\"\n",
    );
    let out = provision(
        &s,
        &["test-automation", "vm-b", "vm-c", "vm-d", "--jobs", "4"],
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("vm-c: failed, rolled back"), "{stdout}");
    for (name, vmid) in [VMS[0], VMS[1], VMS[3]] {
        assert!(
            stdout.contains(&format!("{name}: provisioned VM {vmid}, commit ")),
            "{stdout}"
        );
    }
    // vm-c: no VM, no trace in the fleet files, nothing left uncommitted.
    let list = s.pve("qm list");
    assert!(!list.contains(" 112 "), "{list}");
    for path in ["hosts.nix", ".sops.yaml", "docs/machines.md"] {
        let now = std::fs::read_to_string(root.join(path)).unwrap_or_default();
        let lines: Vec<&str> = now.lines().filter(|l| l.contains("vm-c")).collect();
        let before = git(&root, &["show", &format!("{base}:{path}")]);
        let lines_before: Vec<&str> = before.lines().filter(|l| l.contains("vm-c")).collect();
        assert_eq!(lines, lines_before, "{path} keeps a trace of vm-c");
    }
    assert!(!root.join(".vmctl/journal/vm-c.json").exists());
    assert_eq!(
        git(&root, &["status", "--porcelain"]),
        "",
        "git is not clean"
    );
    let subjects = git(&root, &["log", "--format=%s", &format!("{base}..HEAD")]);
    let feats: Vec<&str> = subjects
        .lines()
        .filter(|l| l.starts_with("feat(vms)"))
        .collect();
    assert_eq!(feats.len(), 3, "{subjects}");
    assert!(!feats.iter().any(|l| l.contains("vm-c")), "{subjects}");
    for l in subjects.lines().filter(|l| !l.starts_with("feat(vms)")) {
        assert_eq!(
            l,
            "chore(secrets): re-key after the failed provision of vm-c"
        );
    }
    secrets_list_only_known_recipients(&root);
}

#[test]
fn two_vms_declaring_the_same_free_vmid_are_refused_before_any_clone() {
    let _turn = turn();
    // vm-d declares vm-c's VMID 112, which the cluster does not use.
    let s = up(&[("vm-b", 111), ("vm-c", 112), ("vm-d", 112)], 0, 0);
    let root = fleet(&s);
    let out = provision(&s, &["--all", "--jobs", "4"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    for name in ["vm-c", "vm-d"] {
        assert!(
            stdout.contains(&format!("{name}: refused before anything ran: ")),
            "{stdout}"
        );
    }
    for (name, vmid) in [("test-automation", 110), ("vm-b", 111)] {
        assert!(
            stdout.contains(&format!("{name}: provisioned VM {vmid}, commit ")),
            "{stdout}"
        );
    }
    let clones: Vec<Vec<String>> = times(&s)
        .into_iter()
        .map(|(a, _, _)| a)
        .filter(|a| is_clone(a))
        .collect();
    assert_eq!(clones.len(), 2, "{clones:?}");
    assert!(
        !clones
            .iter()
            .any(|a| a.get(3).map(String::as_str) == Some("112")),
        "a clone for VMID 112: {clones:?}"
    );
    let hosts = std::fs::read_to_string(root.join("hosts.nix")).unwrap();
    assert!(
        !hosts.contains("vm-c") && !hosts.contains("vm-d"),
        "{hosts}"
    );
    assert_eq!(
        git(&root, &["status", "--porcelain"]),
        "",
        "git is not clean"
    );
}

#[test]
fn a_failed_vm_whose_recipient_a_sibling_committed_ends_with_a_rekey_commit() {
    let _turn = turn();
    let s = up(&VMS[1..3], 0, 0);
    let root = fleet(&s);
    let base = git(&root, &["rev-parse", "HEAD"]).trim().to_string();
    // vm-c boots 3 s late, so its key ceremony comes after vm-b's, whose install is slow: vm-b
    // commits the secrets re-keyed for vm-c too; then vm-c's install fails.
    std::fs::write(
        s.dir.join("pve/state/faults.json"),
        r#"[{"match": "qm start 112", "action": "delay", "ms": 3000}]"#,
    )
    .unwrap();
    let bin = s.dir.join("bin");
    std::fs::rename(bin.join("nixos-anywhere"), bin.join("nixos-anywhere.real")).unwrap();
    crate::support::write_script(
        &bin.join("nixos-anywhere"),
        "#!/usr/bin/env bash\ncase \" $* \" in\n  *'#vm-b '*) sleep 8 ;;\n  \
         *'#vm-c '*) sleep 12; export SANDBOX_INSTALLER_FAULT=fail:install ;;\nesac\n\
         exec \"$(dirname \"$0\")/nixos-anywhere.real\" \"$@\"\n",
    );
    let out = provision(&s, &["test-automation", "vm-b", "vm-c", "--jobs", "3"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("vm-c: failed, rolled back"), "{stdout}");
    assert!(
        stdout.contains("re-keyed the secrets without `vm-c` after its failed provision: commit "),
        "{stdout}"
    );
    let subjects = git(&root, &["log", "--format=%s", &format!("{base}..HEAD")]);
    assert_eq!(
        subjects.lines().next(),
        Some("chore(secrets): re-key after the failed provision of vm-c"),
        "{subjects}"
    );
    // vm-b's commit had the secrets encrypted for one recipient more than its .sops.yaml.
    let vm_b = git(
        &root,
        &[
            "log",
            "--format=%H",
            "--grep",
            "provision vm-b",
            &format!("{base}..HEAD"),
        ],
    );
    let vm_b = vm_b.trim();
    let recipients = |rev: &str| -> usize {
        git(&root, &["ls-tree", "-r", "--name-only", rev, "secrets"])
            .lines()
            .map(|p| {
                git(&root, &["show", &format!("{rev}:{p}")])
                    .lines()
                    .filter(|l| l.contains("recipient: age1"))
                    .count()
            })
            .sum()
    };
    assert!(
        recipients(vm_b) > recipients("HEAD"),
        "vm-b's commit did not hold vm-c's recipient: the case this test is about did not arise"
    );
    assert!(!std::fs::read_to_string(root.join("hosts.nix"))
        .unwrap()
        .contains("vm-c"));
    assert_eq!(
        git(&root, &["status", "--porcelain"]),
        "",
        "git is not clean"
    );
    secrets_list_only_known_recipients(&root);
}

/// A copy of the demo fleet (no git, no cluster) with `extra` managed VMs (name, VMID).
fn offline_fleet(extra: &[(&str, u32)]) -> tempfile::TempDir {
    let dir = crate::provision_cli::fleet();
    let path = dir.path().join("vms/definitions.nix");
    let defs = std::fs::read_to_string(&path).unwrap();
    let end = defs.rfind("\n  };\n}").unwrap();
    let mut new = defs.clone();
    for (name, vmid) in extra {
        new.insert_str(
            end,
            &format!(
                "\n    {name} = {{ vmid = {vmid}; cores = 1; memory = 1024; disk = \"20G\"; \
                 nixosConfig = \"{name}\"; }};"
            ),
        );
    }
    std::fs::write(&path, new).unwrap();
    dir
}

#[test]
fn a_dry_run_of_several_vms_gives_one_plan_each_as_a_json_array_and_changes_nothing() {
    let fleet = offline_fleet(&[("web", 111)]);
    let before = crate::provision_cli::snapshot(fleet.path());
    for args in [
        &["test-automation", "web"][..],
        &["--all"][..],
        &["web", "test-automation", "web"][..],
    ] {
        let out = crate::support::vmctl(
            fleet.path(),
            &[
                &["provision"][..],
                args,
                &["--dry-run", "--offline", "--json"],
            ]
            .concat(),
        );
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut names: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["test-automation", "web"], "{args:?}");
        for p in v.as_array().unwrap() {
            assert_eq!(p["offline"], true);
            assert_eq!(p["steps"].as_array().unwrap().len(), 11);
        }
    }
    assert_eq!(crate::provision_cli::snapshot(fleet.path()), before);
}

#[test]
fn a_vmid_two_vms_share_refuses_both_in_the_plan_and_the_others_are_planned() {
    let fleet = offline_fleet(&[("web", 111), ("db", 111)]);
    let out = crate::support::vmctl(
        fleet.path(),
        &["provision", "--all", "--dry-run", "--offline", "--json"],
    );
    let stdout = text(&out.stdout);
    let stderr = crate::support::unwrapped(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // stdout is the JSON alone; the refusals are on stderr.
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["test-automation"], "{stdout}");
    for name in ["web", "db"] {
        assert!(
            stderr.contains(&format!("{name}: refused before anything ran: ")),
            "{stderr}"
        );
    }
}

#[test]
fn resume_rollback_and_phases_take_one_vm_at_a_time() {
    let fleet = offline_fleet(&[("web", 111)]);
    for flag in [&["--resume"][..], &["--rollback"], &["--phases", "infra"]] {
        let out = crate::support::vmctl(
            fleet.path(),
            &[&["provision", "test-automation", "web"][..], flag].concat(),
        );
        assert!(!out.status.success(), "{flag:?}");
        let err = crate::support::unwrapped(&out.stderr);
        assert!(err.contains("one VM at a time"), "{flag:?}: {err}");
    }
}

/// `--json` on a many-VM run: stdout is the JSON Lines event stream alone, every event valid
/// against docs/events.schema.json, each VM's steps under its own name with the installer's
/// output under its `install` step, and one `finished` event with one result per VM (here one
/// provisioned and committed, one failed at install and rolled back).
#[test]
fn json_of_a_many_vm_run_is_one_event_stream_valid_against_the_schema() {
    let _turn = turn();
    let s = up(&VMS[1..2], 0, 0);
    let bin = s.dir.join("bin");
    std::fs::rename(bin.join("nixos-anywhere"), bin.join("nixos-anywhere.real")).unwrap();
    crate::support::write_script(
        &bin.join("nixos-anywhere"),
        "#!/usr/bin/env bash\ncase \" $* \" in *'#vm-b '*) export SANDBOX_INSTALLER_FAULT=fail:install ;; esac\n\
         exec \"$(dirname \"$0\")/nixos-anywhere.real\" \"$@\"\n",
    );
    let out = provision(&s, &["test-automation", "vm-b", "--jobs", "2", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let events = crate::events::events(&out);
    let (last, rest) = events.split_last().unwrap();
    assert_eq!(last["kind"], "finished", "{last}");
    assert!(rest.iter().all(|e| e["kind"] != "finished"));
    for name in ["test-automation", "vm-b"] {
        let mine: Vec<&serde_json::Value> = rest.iter().filter(|e| e["vm"] == name).collect();
        let started: Vec<&str> = mine
            .iter()
            .filter(|e| e["kind"] == "step_start")
            .map(|e| e["step"].as_str().unwrap())
            .collect();
        assert!(
            started.starts_with(&["clone", "configure"]),
            "{name}: {started:?}"
        );
        assert!(started.contains(&"install"), "{name}: {started:?}");
        assert!(
            mine.iter().any(|e| e["kind"] == "output"
                && e["source"] == "installer"
                && e["step"] == "install"),
            "{name}: no installer output under its install step"
        );
    }
    assert!(rest
        .iter()
        .all(|e| e["vm"] == "test-automation" || e["vm"] == "vm-b"));
    let results = last["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{last}");
    assert_eq!(last["success"], false, "{last}");
    let by = |n: &str| results.iter().find(|r| r["vm"] == n).unwrap().clone();
    assert_eq!(by("test-automation")["status"], "done");
    assert!(by("test-automation")["commit"].as_str().unwrap().len() >= 7);
    assert_eq!(by("vm-b")["status"], "failed");
    assert!(by("vm-b")["error"].as_str().is_some());
    // The human summary went to stderr, not into the stream.
    assert!(
        text(&out.stderr).contains("vm-b: failed, rolled back"),
        "{}",
        text(&out.stderr)
    );
}
