//! The fence matrix over the real sshd and the simulator, through the `vmctl` binary: values
//! vmctl cannot determine (Nix hidden from PATH), unlisted VMIDs, imported VMs without
//! `readonly` written out, and a VMID reused on the cluster by another VM. Every refusal is
//! checked to happen before any connection (sshd accepted none, the simulator saw nothing) or,
//! for the live check, with the simulator's state byte-for-byte unchanged.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::pve::Pve;
use crate::support::squash;

const PROXMOX: &str =
    r#"proxmox = { host = "prom.lan"; node = "prom"; defaultStorage = "nvmeprom"; };"#;

/// A fleet directory holding `definitions` as vms/definitions.nix and a hosts/ dir per name.
fn fleet(definitions: &str, hosts: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("vms")).unwrap();
    std::fs::write(dir.path().join("vms/definitions.nix"), definitions).unwrap();
    for h in hosts {
        std::fs::create_dir_all(dir.path().join("hosts").join(h)).unwrap();
    }
    dir
}

/// A PATH with `ssh` and nothing else: no nix-instantiate, so the Nix fallback is unavailable.
fn path_without_nix(dir: &Path) -> PathBuf {
    let bin = dir.join("bin-without-nix");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink("/usr/bin/ssh", bin.join("ssh")).unwrap();
    assert!(!bin.join("nix-instantiate").exists());
    bin
}

fn vmctl(pve: &Pve, fleet: &Path, path: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = pve.ops_cmd(fleet);
    cmd.args(args).env_remove("VMCTL_NO_NIX");
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    cmd.output().expect("run vmctl")
}

fn flat(b: &[u8]) -> String {
    let t = String::from_utf8_lossy(b);
    t.split_whitespace()
        .filter(|w| *w != "│")
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every mutating `ops` command line for `vmid` (and the console, fenced like them).
fn every_mutation(vmid: u32, name: &str) -> Vec<Vec<String>> {
    let id = vmid.to_string();
    let cmds: Vec<Vec<&str>> = vec![
        vec!["clone", "9001", &id, "x"],
        vec!["configure", &id, "2", "2048"],
        vec!["create-disk", &id, "10G"],
        vec!["resize", &id, "scsi0", "+1G"],
        vec!["restore-vma", "/var/lib/vz/dump/a.vma", &id],
        vec!["serial-socket", &id],
        vec!["start", &id],
        vec!["stop", &id],
        vec!["shutdown", &id],
        vec!["template", &id],
        vec!["destroy", &id, "--confirm", name],
        vec!["snapshot", "create", &id, "s1"],
        vec!["snapshot", "rollback", &id, "s1"],
        vec!["snapshot", "delete", &id, "s1"],
        vec!["migrate", &id, "prom2", "--online"],
        vec!["protect", &id, "off"],
        vec!["protect", &id, "on"],
        vec!["console", &id],
        vec!["stop", &id, "--dry-run"],
        vec!["start", &id, "--unlisted"],
    ];
    cmds.into_iter()
        .map(|c| c.into_iter().map(str::to_string).collect())
        .collect()
}

/// Runs every command, expects each refused with `want` in its message, and no connection.
fn refuses_all(pve: &Pve, fleet: &Path, path: Option<&Path>, cmds: &[Vec<String>], want: &[&str]) {
    for args in cmds {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = vmctl(pve, fleet, path, &args);
        let err = flat(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?} must be refused: {err}"
        );
        for w in want {
            assert!(err.contains(w), "{args:?}: `{w}` not in: {err}");
        }
        assert!(
            out.stdout.is_empty(),
            "{args:?} printed {}",
            flat(&out.stdout)
        );
    }
    assert_eq!(
        pve.sshd.accepted_connections(),
        0,
        "refused before connecting"
    );
    assert!(pve.read("argv.jsonl").is_none(), "the simulator never ran");
}

#[test]
fn an_undetermined_readonly_without_nix_makes_the_vm_readonly() {
    let pve = Pve::start();
    let before = pve.snapshot();
    // `lib` needs nixpkgs: neither vmctl's evaluator nor Nix (absent, or without nixpkgs) can
    // determine it. Without the fix, `ops stop 104` went through.
    let defs = format!(
        "let lib = import <nixpkgs/lib>; in {{ {PROXMOX}
           template = {{ vmid = 9001; name = \"NixosServerBlank\"; }};
           imported.doc1 = {{ vmid = 104; readonly = lib.mkDefault true; }};
           managed.test-automation = {{ vmid = 110; cores = 2; memory = 2048; disk = \"20G\"; }};
         }}"
    );
    let f = fleet(&defs, &["test-automation"]);
    let no_nix = path_without_nix(f.path());
    let not_protect_on = |c: &Vec<String>| c.last().is_none_or(|l| l != "on");
    refuses_all(
        &pve,
        f.path(),
        Some(&no_nix),
        &every_mutation(104, "doc1")
            .into_iter()
            // Protection on is the one change allowed on readonly VMs.
            .filter(not_protect_on)
            .collect::<Vec<_>>(),
        &["VM 104 (doc1)", "cannot be determined"],
    );
    // lint says which value and how to make it static.
    let out = crate::support::vmlint_cmd()
        .arg(f.path())
        .env("PATH", &no_nix)
        .output()
        .unwrap();
    let lint = flat(&out.stdout) + &flat(&out.stderr);
    assert!(
        lint.contains("VM020") && squash(&lint).contains("`readonly`ofimportedVM`doc1`"),
        "{lint}"
    );
    assert!(squash(&lint).contains("writeitasaliteral"), "{lint}");
    // The fence is per VM: the managed VM still works.
    let out = vmctl(&pve, f.path(), Some(&no_nix), &["stop", "110", "--dry-run"]);
    assert!(out.status.success(), "{}", flat(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "qm stop 110\n");

    // A value only Nix can compute: refused without Nix, decided by Nix when it is there.
    let defs = format!(
        "{{ {PROXMOX}
           imported.doc1 = {{ vmid = 104; readonly = builtins.head [ true ]; }};
           imported.igpu = {{ vmid = 109; readonly = builtins.head [ false ]; }};
         }}"
    );
    let f = fleet(&defs, &[]);
    let no_nix = path_without_nix(f.path());
    refuses_all(
        &pve,
        f.path(),
        Some(&no_nix),
        &every_mutation(109, "igpu")
            .into_iter()
            .filter(not_protect_on)
            .collect::<Vec<_>>(),
        &["VM 109 (igpu)", "cannot be determined"],
    );
    crate::support::require_tool("nix-instantiate");
    let out = vmctl(&pve, f.path(), None, &["stop", "109", "--dry-run"]);
    assert!(out.status.success(), "{}", flat(&out.stderr));
    let out = vmctl(&pve, f.path(), None, &["stop", "104", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(flat(&out.stderr).contains("marks it `readonly = true`"));
    assert_eq!(before, pve.snapshot());
    assert_eq!(pve.sshd.accepted_connections(), 0);
}

#[test]
fn an_undetermined_vmid_refuses_every_mutation_of_every_vm() {
    let pve = Pve::start();
    let before = pve.snapshot();
    let defs = format!(
        "{{ {PROXMOX}
           template = {{ vmid = 9001; name = \"NixosServerBlank\"; }};
           imported.doc1 = {{ vmid = 104; readonly = true; }};
           managed.test-automation = {{ vmid = 110; cores = 2; memory = 2048; disk = \"20G\"; }};
           managed.web = {{ vmid = builtins.add 100 20; cores = 2; memory = 2048; disk = \"20G\"; }};
         }}"
    );
    let f = fleet(&defs, &["test-automation", "web"]);
    let no_nix = path_without_nix(f.path());
    for (vmid, name) in [
        (110, "test-automation"),
        (104, "doc1"),
        (120, "web"),
        (555, "x"),
    ] {
        refuses_all(
            &pve,
            f.path(),
            Some(&no_nix),
            &every_mutation(vmid, name),
            &[
                &format!("VM {vmid}"),
                "managed VM `web`",
                "cannot be determined",
            ],
        );
    }
    let out = vmctl(
        &pve,
        f.path(),
        Some(&no_nix),
        &["protect", "--readonly-vms"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", flat(&out.stderr));
    assert!(flat(&out.stderr).contains("managed VM `web`"));
    // With Nix, the VMID is known (120) and the fleet works again.
    crate::support::require_tool("nix-instantiate");
    let out = vmctl(&pve, f.path(), None, &["stop", "120", "--dry-run"]);
    assert!(out.status.success(), "{}", flat(&out.stderr));
    assert_eq!(before, pve.snapshot());
    assert_eq!(pve.sshd.accepted_connections(), 0);
}

#[test]
fn unlisted_vmids_are_refused_unless_asked_for() {
    let pve = Pve::start();
    let repo = crate::support::repo();
    let cmds: Vec<Vec<String>> = every_mutation(555, "x")
        .into_iter()
        .filter(|c| !c.contains(&"--unlisted".to_string()))
        .collect();
    refuses_all(
        &pve,
        repo,
        None,
        &cmds,
        &["VM 555", "does not list it", "--unlisted"],
    );
    // Asked for: the dry run prints the command, the real run reaches Proxmox.
    let out = vmctl(
        &pve,
        repo,
        None,
        &["start", "555", "--unlisted", "--dry-run"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "qm start 555\n");
    let out = vmctl(&pve, repo, None, &["start", "555", "--unlisted"]);
    assert!(
        flat(&out.stderr).contains("VM 555 does not exist on the cluster"),
        "{}",
        flat(&out.stderr)
    );
    // `qm` here refused it; the one cluster read that follows finds it on no node.
    assert_eq!(
        pve.argv_log(),
        [
            vec!["qm", "start", "555"],
            vec![
                "pvesh",
                "get",
                "/cluster/resources",
                "--type",
                "vm",
                "--output-format",
                "json"
            ]
        ]
    );
}

#[test]
fn an_imported_vm_needs_readonly_false_written_for_destructive_operations() {
    let pve = Pve::start();
    pve.write_conf(
        105,
        "cores: 2\nmemory: 2048\nname: legacy\nscsi0: nvmeprom:vm-105-disk-0,size=8G\n",
    );
    let unwritten = format!("{{ {PROXMOX} imported.legacy = {{ vmid = 105; }}; }}");
    let f = fleet(&unwritten, &[]);
    let id = "105".to_string();
    let destructive: Vec<Vec<String>> = [
        vec!["template", &id],
        vec!["resize", &id, "scsi0", "+1G"],
        vec!["snapshot", "rollback", &id, "s1"],
        vec!["snapshot", "delete", &id, "s1"],
        vec!["migrate", &id, "prom2"],
        vec!["destroy", &id, "--confirm", "legacy"],
        vec!["template", &id, "--dry-run"],
    ]
    .into_iter()
    .map(|c| c.into_iter().map(str::to_string).collect())
    .collect();
    refuses_all(
        &pve,
        f.path(),
        None,
        &destructive[..6],
        &["VM 105 (legacy)", "readonly = false;"],
    );
    refuses_all(
        &pve,
        f.path(),
        None,
        &destructive[6..],
        &["readonly = false;"],
    );
    // Not destructive: allowed as for any listed VM.
    let out = vmctl(&pve, f.path(), None, &["snapshot", "create", "105", "s1"]);
    assert!(out.status.success(), "{}", flat(&out.stderr));

    // Written out: the destructive operations go through (resize shown for real).
    let written = format!("{{ {PROXMOX} imported.legacy = {{ vmid = 105; readonly = false; }}; }}");
    let f = fleet(&written, &[]);
    let out = vmctl(&pve, f.path(), None, &["resize", "105", "scsi0", "+1G"]);
    assert!(out.status.success(), "{}", flat(&out.stderr));
    assert!(pve.conf(105).unwrap().contains("size=9G"));
    // Destroy still needs a managed VM, whatever readonly says.
    let out = vmctl(
        &pve,
        f.path(),
        None,
        &["destroy", "105", "--confirm", "legacy"],
    );
    assert!(flat(&out.stderr).contains("does not manage it"));
    assert!(pve.conf(105).is_some());
}

#[test]
fn a_reused_vmid_never_loses_the_vm_that_holds_it() {
    let pve = Pve::start();
    let repo = crate::support::repo();
    // definitions.nix says 110 is test-automation; on the cluster it is someone else's VM.
    pve.write_conf(
        110,
        "cores: 4\nmemory: 4096\nname: someone-else\nscsi0: nvmeprom:vm-110-disk-0,size=32G\n\
         [s1]\ncores: 4\nmemory: 4096\nname: someone-else\nsnaptime: 1700000000\n",
    );
    let before = pve.snapshot();
    for args in [
        vec!["destroy", "110", "--confirm", "test-automation"],
        vec!["snapshot", "rollback", "110", "s1"],
        vec!["template", "110"],
    ] {
        let out = vmctl(&pve, repo, None, &args);
        let err = flat(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            squash(&err).contains("namesit`test-automation`")
                && squash(&err).contains("ontheclusteris`someone-else`"),
            "{args:?}: {err}"
        );
        assert!(
            !err.contains("running on"),
            "refused before it was announced: {err}"
        );
    }
    // Only reads went out; everything but the simulator's own argv log is unchanged.
    let log = pve.argv_log();
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|a| a[..2] == ["qm", "config"]), "{log:?}");
    let mut after = pve.snapshot();
    after.remove(Path::new("argv.jsonl"));
    assert_eq!(
        before, after,
        "the simulator's state is byte-for-byte unchanged"
    );

    // A template or a protected VM under a listed name is refused the same way.
    pve.write_conf(110, "name: test-automation\ntemplate: 1\n");
    let out = vmctl(
        &pve,
        repo,
        None,
        &["destroy", "110", "--confirm", "test-automation"],
    );
    assert!(flat(&out.stderr).contains("it is a template on the cluster"));
    pve.write_conf(110, "name: test-automation\nprotection: 1\n");
    let out = vmctl(&pve, repo, None, &["template", "110"]);
    assert!(flat(&out.stderr).contains("Proxmox protection is on"));
    assert!(pve.conf(110).is_some());
}

#[test]
fn protect_readonly_vms_turns_protection_on_and_list_shows_the_unprotected() {
    let pve = Pve::start();
    let repo = crate::support::repo();
    // doc1 (104) is protected in the demo cluster, igpu (109) is not.
    let out = vmctl(&pve, repo, None, &["list"]);
    let t = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(t.contains("imported (readonly, unprotected)"), "{t}");
    assert!(flat(&out.stderr).contains("readonly VMs without Proxmox protection: 109"));
    let out = vmctl(&pve, repo, None, &["list", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = |id: u64| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["vmid"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(row(104)["protected"], true);
    assert_eq!(row(109)["protected"], false);
    assert!(row(9001).get("protected").is_none());

    // A protection read that fails leaves it unknown, the list still comes.
    pve.set_faults(r#"[{"match":"qm config 109","action":"fail","message":"no","times":1}]"#);
    let out = vmctl(&pve, repo, None, &["list"]);
    assert!(out.status.success(), "{}", flat(&out.stderr));
    let t = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(t.contains("imported (readonly, protection unknown)"), "{t}");
    let out = vmctl(
        &pve,
        repo,
        None,
        &["protect", "--readonly-vms", "--dry-run"],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "qm set 104 --protection 1\nqm set 109 --protection 1\n"
    );
    let out = vmctl(&pve, repo, None, &["protect", "--readonly-vms"]);
    assert!(out.status.success(), "{}", flat(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "VM 104 (doc1): already protected\nVM 109 (igpu): protection on\n"
    );
    assert!(pve.conf(109).unwrap().contains("protection: 1"));
    let sets: Vec<_> = pve
        .argv_log()
        .into_iter()
        .filter(|a| a[1] == "set")
        .collect();
    assert_eq!(sets, [["qm", "set", "109", "--protection", "1"]]);
    // Protection off stays refused on readonly VMs.
    let out = vmctl(&pve, repo, None, &["protect", "109", "off"]);
    assert_eq!(out.status.code(), Some(1));
    let err = flat(&out.stderr);
    assert!(
        err.contains("VM 109") && err.contains("marks it `readonly = true`"),
        "{err}"
    );
    let out = vmctl(&pve, repo, None, &["list"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("unprotected"));
}
