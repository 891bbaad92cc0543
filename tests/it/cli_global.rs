//! The global options every command understands (issue 9, "one command-line convention"):
//! `--color` with NO_COLOR and CLICOLOR_FORCE, `-q/--quiet`, `-v/--verbose` and `--no-nix`,
//! each placed before or after the subcommand.

use std::path::Path;
use std::process::Output;

use crate::support::{demo_fleet, text, vmctl_cmd, vmlint_cmd, write_script};

const ESC: &str = "\u{1b}[";

/// A fleet with one error (two VMs sharing VMID 110) for coloured lint output.
fn broken_fleet(dir: &Path) {
    std::fs::create_dir_all(dir.join("vms")).unwrap();
    std::fs::write(
        dir.join("vms/definitions.nix"),
        "{\n  proxmox = { host = \"pve.lan\"; };\n  managed.a = { vmid = 110; cores = 1; memory = 1024; disk = \"8G\"; };\n  managed.b = { vmid = 110; cores = 1; memory = 1024; disk = \"8G\"; };\n}\n",
    )
    .unwrap();
}

fn lint(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = vmctl_cmd();
    c.arg("--fleet").arg(dir).args(args);
    c.env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn color_follows_the_flag_then_no_color_then_clicolor_force() {
    let dir = tempfile::tempdir().unwrap();
    broken_fleet(dir.path());
    let coloured = |args: &[&str], env: &[(&str, &str)]| {
        let out = lint(dir.path(), args, env);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        text(&out.stdout).contains(ESC)
    };
    // stdout is a pipe here: auto means no colour unless forced.
    assert!(!coloured(&["lint", "--no-nix"], &[]));
    assert!(coloured(&["lint", "--no-nix", "--color", "always"], &[]));
    assert!(
        coloured(&["--color", "always", "lint", "--no-nix"], &[]),
        "before the subcommand"
    );
    assert!(coloured(&["lint", "--no-nix"], &[("CLICOLOR_FORCE", "1")]));
    assert!(!coloured(&["lint", "--no-nix"], &[("CLICOLOR_FORCE", "0")]));
    assert!(
        !coloured(
            &["lint", "--no-nix"],
            &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]
        ),
        "NO_COLOR wins over CLICOLOR_FORCE"
    );
    assert!(!coloured(
        &["lint", "--no-nix", "--color", "never"],
        &[("CLICOLOR_FORCE", "1")]
    ));
    assert!(coloured(
        &["lint", "--no-nix", "--color", "always"],
        &[("NO_COLOR", "1")]
    ));
    // vmlint reads the same flag.
    let out = vmlint_cmd()
        .args(["--no-nix", "--color", "always"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(text(&out.stdout).contains(ESC));
}

#[test]
fn color_drives_the_error_report_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let report = |color: &str| {
        let out = vmctl_cmd()
            .current_dir(dir.path())
            .args(["--color", color, "docs", "--dry-run"])
            .env_remove("NO_COLOR")
            .output()
            .unwrap();
        // No fleet: vmctl cannot act (docs/cli.md, "Exit codes").
        assert_eq!(out.status.code(), Some(2));
        let err = text(&out.stderr);
        assert!(err.contains("no fleet found"), "{err}");
        err.contains(ESC)
    };
    assert!(report("always"));
    assert!(!report("never"));
}

#[test]
fn quiet_keeps_errors_and_data_and_drops_the_rest() {
    let fleet = demo_fleet();
    let f = fleet.path();
    let run = |args: &[&str]| {
        vmctl_cmd()
            .arg("--fleet")
            .arg(f)
            .args(args)
            .output()
            .unwrap()
    };
    // lint's summary line is a side message.
    let loud = run(&["lint", "--no-nix"]);
    assert!(
        text(&loud.stderr).contains("vmlint: checked"),
        "{}",
        text(&loud.stderr)
    );
    let quiet = run(&["lint", "--no-nix", "-q"]);
    assert_eq!(quiet.status.code(), Some(0));
    assert_eq!(text(&quiet.stderr), "");
    // A dry run's diff is the data asked for and stays; notes go.
    let quiet = run(&["--quiet", "hosts", "remove", "igpu", "--dry-run"]);
    assert_eq!(quiet.status.code(), Some(0), "{}", text(&quiet.stderr));
    assert!(
        text(&quiet.stdout).contains("-  igpu"),
        "{}",
        text(&quiet.stdout)
    );
    // Errors are never quieted.
    let failed = run(&["-q", "hosts", "remove", "nosuch"]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(text(&failed.stderr).contains("nosuch"));
    // -q and -v contradict each other: a usage error.
    assert_eq!(run(&["-q", "-v", "lint"]).status.code(), Some(2));
}

#[test]
fn verbose_shows_the_files_read_and_the_time_taken() {
    let fleet = demo_fleet();
    let out = vmctl_cmd()
        .arg("--fleet")
        .arg(fleet.path())
        .args(["hosts", "remove", "igpu", "--dry-run", "-v"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    for line in [
        "read vms/definitions.nix",
        "read hosts.nix",
        "vmctl: exit 0 after",
    ] {
        assert!(err.contains(line), "`{line}` missing from:\n{err}");
    }
    let plain = vmctl_cmd()
        .arg("--fleet")
        .arg(fleet.path())
        .args(["hosts", "remove", "igpu", "--dry-run"])
        .output()
        .unwrap();
    assert!(!text(&plain.stderr).contains("read vms/definitions.nix"));
    // vmlint -v names what it read too.
    let out = vmlint_cmd()
        .args(["--no-nix", "-v"])
        .arg(fleet.path())
        .output()
        .unwrap();
    assert!(
        text(&out.stderr).contains("definitions.nix"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn verbose_shows_every_remote_command_line() {
    crate::support::pve::require_tools();
    let pve = crate::support::pve::Pve::start();
    pve.seed_demo();
    let out = pve.vmctl_ops(&["list", "-v"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("ssh ") && l.contains("pvesh get /cluster/resources")),
        "{err}"
    );
    let out = pve.vmctl_ops(&["list"]);
    assert!(
        !text(&out.stderr).contains("pvesh get"),
        "{}",
        text(&out.stderr)
    );
    // A secret on the command line is redacted in the verbose line too.
    pve.write_conf(
        110,
        "cores: 2\nmemory: 2048\nname: test-automation\nscsi0: nvmeprom:vm-110-disk-0,size=20G\n",
    );
    let out = pve.vmctl_ops(&[
        "configure",
        "110",
        "2",
        "2048",
        "--set",
        "cipassword=hunter2",
        "-v",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("ssh ") && l.contains("qm set 110") && l.contains("<redacted>")),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

/// A fleet whose memory only Nix can compute, and a `nix-instantiate` on PATH that records
/// each call in `calls` (and answers like a failed evaluation).
fn fleet_needing_nix(dir: &Path) -> (std::ffi::OsString, std::path::PathBuf) {
    std::fs::create_dir_all(dir.join("vms")).unwrap();
    std::fs::write(
        dir.join("vms/definitions.nix"),
        "{\n  proxmox = { host = \"pve.lan\"; };\n  managed.web = { vmid = 110; cores = 2; memory = builtins.add 1024 1024; disk = \"20G\"; };\n}\n",
    )
    .unwrap();
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = dir.join("nix-calls");
    write_script(
        &bin.join("nix-instantiate"),
        &format!("#!/bin/sh\necho called >> '{}'\nexit 1\n", calls.display()),
    );
    let path = std::env::join_paths(
        std::iter::once(bin).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    (path, calls)
}

#[test]
fn no_nix_is_global_and_honoured_by_every_command_that_loads_the_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let (path, calls) = fleet_needing_nix(dir.path());
    let run = |args: &[&str]| {
        let _ = std::fs::remove_file(&calls);
        let out = vmctl_cmd()
            .current_dir(dir.path())
            .args(args)
            .env("PATH", &path)
            .env_remove("VMCTL_NO_NIX")
            .output()
            .unwrap();
        (out, calls.exists())
    };
    for cmd in [
        &["lint"][..],
        &["docs", "--dry-run"],
        &["scaffold", "web", "--dry-run"],
        &["hosts", "remove", "web", "--dry-run"],
        &["ops", "stop", "110", "--dry-run"],
    ] {
        let (out, called) = run(cmd);
        assert!(
            called,
            "{cmd:?} without --no-nix asks Nix: {}",
            text(&out.stderr)
        );
        let after: Vec<&str> = cmd.iter().copied().chain(["--no-nix"]).collect();
        let (out, called) = run(&after);
        assert!(
            !called,
            "{after:?} ran nix-instantiate: {}",
            text(&out.stderr)
        );
        let before: Vec<&str> = ["--no-nix"]
            .into_iter()
            .chain(cmd.iter().copied())
            .collect();
        let (_, called) = run(&before);
        assert!(!called, "{before:?} ran nix-instantiate");
    }
    // vmlint has it too.
    let _ = std::fs::remove_file(&calls);
    vmlint_cmd()
        .arg("--no-nix")
        .arg(dir.path())
        .env("PATH", &path)
        .env_remove("VMCTL_NO_NIX")
        .output()
        .unwrap();
    assert!(!calls.exists());
}

/// A copy of the demo fleet with .sops.yaml and one error (a truncated key of a host no
/// command here touches) in hosts.nix.
fn fleet_with_an_error() -> tempfile::TempDir {
    let fleet = demo_fleet();
    std::fs::copy(
        crate::support::repo().join(".sops.yaml"),
        fleet.path().join(".sops.yaml"),
    )
    .unwrap();
    let hosts = fleet.path().join("hosts.nix");
    let text = std::fs::read_to_string(&hosts).unwrap().replacen(
        "\n{\n",
        "\n{\n  broken = { publicKey = \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO8VKyhz\"; };\n",
        1,
    );
    assert!(
        text.contains("broken ="),
        "hosts.nix has no top-level `{{` line"
    );
    std::fs::write(&hosts, text).unwrap();
    fleet
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    vmctl_cmd()
        .current_dir(dir)
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env("VMCTL_NO_NIX", "1")
        .output()
        .unwrap()
}

#[test]
fn quiet_silences_the_notes_of_the_shell() {
    let fleet = fleet_with_an_error();
    // The edit gate's note about errors the edit does not touch.
    let gate_note = "note: the fleet files still have 1 error";
    let out = run_in(fleet.path(), &["hosts", "remove", "igpu", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(gate_note),
        "{}",
        text(&out.stderr)
    );
    let out = run_in(
        fleet.path(),
        &["-q", "hosts", "remove", "igpu", "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("note:"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("igpu"),
        "the data asked for stays"
    );
    // `secrets` goes on with default paths when the fleet does not load: the fleet's
    // findings are a note then, silent with -q.
    let out = run_in(fleet.path(), &["secrets", "check"]);
    assert!(
        text(&out.stderr).contains("[HS001]"),
        "{}",
        text(&out.stderr)
    );
    let out = run_in(fleet.path(), &["-q", "secrets", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    // The secrets file selection's note about a missing secrets directory.
    std::fs::write(
        fleet.path().join("hosts.nix"),
        crate::support::read_repo("hosts.nix"),
    )
    .unwrap();
    let dir_note = "note: the secrets directory";
    let out = run_in(fleet.path(), &["secrets", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(dir_note),
        "{}",
        text(&out.stderr)
    );
    let out = run_in(fleet.path(), &["secrets", "check", "--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("note:"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn color_drives_the_findings_the_shell_renders() {
    let fleet = fleet_with_an_error();
    let bad_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO8VKyhzx";
    // The edit gate refuses a truncated key and shows the finding; the fleet load of `ops`
    // refuses a fleet with an error and shows it.
    let cases: [(&[&str], &str); 2] = [
        (
            &["hosts", "set-key", "doc1", "--key", bad_key, "--dry-run"],
            "would make the fleet files invalid",
        ),
        (&["ops", "stop", "110", "--dry-run"], "the fleet files have"),
    ];
    for (args, refusal) in cases {
        for (color, want) in [("always", true), ("never", false)] {
            let mut all = vec!["--color", color];
            all.extend_from_slice(args);
            let out = run_in(fleet.path(), &all);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{all:?}: {err}");
            assert!(err.contains(refusal), "{all:?}: {err}");
            assert!(
                err.contains("[HS001]"),
                "{all:?}: the finding is shown: {err}"
            );
            assert_eq!(err.contains(ESC), want, "{all:?}: {err}");
        }
    }
}

#[test]
fn vmlint_follows_the_same_color_and_verbosity_rules_as_vmctl_lint() {
    let dir = tempfile::tempdir().unwrap();
    broken_fleet(dir.path());
    // Flags, environment, whether the findings are coloured.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], bool);
    let cases: [Case; 5] = [
        (&[], &[("CLICOLOR_FORCE", "1")], true),
        (&[], &[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")], false),
        (&["--color", "never"], &[("CLICOLOR_FORCE", "1")], false),
        (&["--color", "always"], &[("NO_COLOR", "1")], true),
        (&[], &[], false),
    ];
    for (flags, env, coloured) in cases {
        let mut lint = vmctl_cmd();
        lint.args(["lint", "--no-nix"]).args(flags).arg(dir.path());
        let mut vmlint = vmlint_cmd();
        vmlint.arg("--no-nix").args(flags).arg(dir.path());
        for c in [&mut lint, &mut vmlint] {
            c.env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
            for (k, v) in env {
                c.env(k, v);
            }
        }
        let (a, b) = (lint.output().unwrap(), vmlint.output().unwrap());
        assert_eq!(b.status.code(), Some(1), "{flags:?} {env:?}");
        assert_eq!(text(&b.stdout).contains(ESC), coloured, "{flags:?} {env:?}");
        assert_eq!(
            text(&a.stdout),
            text(&b.stdout),
            "vmctl lint and vmlint differ"
        );
    }
    let run = |flags: &[&str]| {
        vmlint_cmd()
            .arg("--no-nix")
            .args(flags)
            .arg(dir.path())
            .output()
            .unwrap()
    };
    // -q drops the summary and keeps the findings and the exit code.
    let loud = run(&[]);
    assert!(text(&loud.stderr).contains("vmlint: checked"));
    let quiet = run(&["-q"]);
    assert_eq!(quiet.status.code(), Some(1));
    assert_eq!(text(&quiet.stderr), "");
    assert_eq!(text(&quiet.stdout), text(&loud.stdout));
    // -v names the files read; -q with -v is a usage error.
    let verbose = run(&["--verbose"]);
    assert!(
        text(&verbose.stderr).contains("read "),
        "{}",
        text(&verbose.stderr)
    );
    assert!(!text(&loud.stderr).contains("read "));
    assert_eq!(run(&["-q", "-v"]).status.code(), Some(2));
}

#[test]
fn quiet_silences_the_wait_for_the_fleet_lock() {
    let fleet = demo_fleet();
    // Another vmctl holds the fleet lock (the same advisory lock vmctl takes).
    std::fs::create_dir_all(fleet.path().join(".vmctl")).unwrap();
    let held = std::fs::File::create(fleet.path().join(".vmctl/lock")).unwrap();
    held.lock().unwrap();
    let waiting = "waiting for another vmctl to finish changing the fleet";
    for (flags, says) in [(&[][..], true), (&["-q"][..], false)] {
        let out = vmctl_cmd()
            .arg("--fleet")
            .arg(fleet.path())
            .args(flags)
            .args(["hosts", "remove", "igpu"])
            .env("VMCTL_LOCK_TIMEOUT", "2")
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flags:?}: {err}");
        assert!(
            err.contains("another vmctl is changing this fleet"),
            "{err}"
        );
        assert_eq!(err.contains(waiting), says, "{flags:?}: {err}");
    }
    drop(held);
}
