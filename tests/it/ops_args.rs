//! Every `ops` argument is checked before anything connects: out-of-range VMIDs, names, disks,
//! sizes, snapshot names, counts and flags in a value's place are refused at parse time; a
//! property test throws random strings (and `--dry-run` anywhere) at every mutating command
//! and checks that none of them ever opens a connection. Secrets given with `--set` are shown
//! as `<redacted>` in dry runs and errors.

use crate::support::pve;
use crate::support::{squash, text};

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use pve::Pve;

/// TCP connections sshd saw (it logs each with LogLevel VERBOSE; the harness's readiness
/// probe is one of them).
fn connections(pve: &Pve) -> usize {
    pve.sshd.log_text().matches("Connection from").count()
}

/// True when anything connected to sshd after the harness's own probe.
fn any_connection(pve: &Pve, baseline: usize) -> bool {
    connections(pve) > baseline || pve.sshd.accepted_connections() > 0
}

#[test]
fn invalid_arguments_are_refused_before_anything_runs() {
    let pve = Pve::start();
    let baseline = connections(&pve);
    let long = "a".repeat(41);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["start", "99"], "out of Proxmox's range"),
        (vec!["start", "1000000000"], "is not a VMID"),
        (vec!["stop", "0110"], "without leading zeros"),
        (
            vec!["clone", "9001", "111", "web_1"],
            "is not a valid VM name",
        ),
        (
            vec!["clone", "9001", "111", "web", "1bad"],
            "is not a storage ID",
        ),
        (
            vec!["clone", "9001", "111", "web", "--target", "a.b"],
            "is not a node name",
        ),
        (vec!["configure", "110", "0", "2048"], "is not a core count"),
        (vec!["configure", "110", "2", "0"], "is not a memory size"),
        (
            vec!["configure", "110", "2", "2048", "--set", "Bad=1"],
            "is not a `qm set` option",
        ),
        (vec!["create-disk", "110", "512M"], "is not whole GiB"),
        (
            vec!["create-disk", "110", "10G", "nvmeprom", "scsi31"],
            "is not a disk",
        ),
        (vec!["resize", "110", "net0", "+1G"], "is not a disk"),
        (vec!["resize", "110", "scsi0", "1X"], "is not a size"),
        (
            vec!["snapshot", "create", "110", "pre.1"],
            "is not a snapshot name",
        ),
        (
            vec!["snapshot", "create", "110", &long],
            "is not a snapshot name",
        ),
        (
            vec!["snapshot", "rollback", "110", "1st"],
            "is not a snapshot name",
        ),
        (vec!["migrate", "110", "prom 2"], "is not a node name"),
        (vec!["restore-vma", "a\nb", "120"], "is not an archive path"),
        (vec!["next-vmid", "50"], "out of Proxmox's range"),
        (
            vec!["wait-ssh", "127.0.0.1", "0"],
            "is not a number of seconds",
        ),
        (
            vec!["stop", "110", "--lock-retries", "1000"],
            "is not a retry count",
        ),
        (
            vec!["stop", "110", "--lock-backoff-ms", "0"],
            "is not a backoff",
        ),
        // A flag after `--` becomes a value: refused, never a real operation.
        (
            vec!["snapshot", "create", "110", "--", "--dry-run"],
            "looks like an option",
        ),
        (
            vec!["clone", "9001", "111", "--", "--dry-run"],
            "looks like an option",
        ),
        (
            vec!["clone", "9001", "111", "web", "--", "--dry-run"],
            "looks like an option",
        ),
        (
            vec!["create-disk", "110", "10G", "nvmeprom", "--", "--dry-run"],
            "looks like an option",
        ),
        (
            vec!["restore-vma", "--", "--dry-run", "120"],
            "looks like an option",
        ),
        (
            vec![
                "snapshot",
                "create",
                "110",
                "pre",
                "--description=--dry-run",
            ],
            "looks like an option",
        ),
    ];
    for (args, want) in cases {
        let out = pve.vmctl_ops(&args);
        let err = text(&out.stderr);
        // 2: clap refused it while parsing; 1: `--set`, which vmctl parses itself so that a
        // malformed secret is never echoed. Either way before the fleet's host is contacted.
        assert!(matches!(out.status.code(), Some(1 | 2)), "{args:?}: {err}");
        assert!(
            squash(&err).contains(&squash(want)),
            "{args:?}: `{want}` not in {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert!(!any_connection(&pve, baseline), "{}", pve.sshd.log_text());
    assert!(pve.read("argv.jsonl").is_none());
}

#[test]
fn a_readonly_clone_source_is_allowed_only_for_the_template() {
    let pve = Pve::start();
    let baseline = connections(&pve);
    let out = pve.vmctl_ops(&["clone", "104", "110", "test-automation", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("refusing to clone VM 104 (doc1)"));
    let out = pve.vmctl_ops(&["clone", "9001", "110", "test-automation", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!any_connection(&pve, baseline));
}

#[test]
fn secrets_in_set_are_redacted_in_dry_runs_errors_and_progress() {
    let pve = Pve::start();
    let secret = "hunter2-Sup3r";
    let set = format!("cipassword={secret}");
    let args = [
        "configure",
        "110",
        "2",
        "2048",
        "--set",
        &set,
        "--set",
        "ciuser=root",
    ];
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let out = pve.vmctl_ops(&dry);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "qm set 110 --cores 2 --memory 2048 --cipassword <redacted> --ciuser root\n"
    );
    // A malformed --set is refused without echoing it (it may be a password without its key).
    let out = pve.vmctl_ops(&["configure", "110", "2", "2048", "--set", secret]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("invalid value for --set: expected KEY=VALUE"),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&out.stderr).contains(secret), "{}", text(&out.stderr));
    // For real: Proxmox rejects it and echoes the value; vmctl shows neither.
    pve.set_faults(&format!(
        r#"[{{"match":"qm set 110","action":"fail","message":"400 cipassword: value '{secret}' is invalid","exit":2}}]"#
    ));
    let out = pve.vmctl_ops(&args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        !err.contains(secret) && !text(&out.stdout).contains(secret),
        "{err}"
    );
    assert!(squash(&err).contains("--cipassword<redacted>"), "{err}");
    assert!(squash(&err).contains("value'<redacted>'isinvalid"), "{err}");
    // The argv that reached Proxmox was the real one.
    assert_eq!(pve.argv_log()[0][8], secret);
}

/// Values for positional arguments: valid ones (so some commands get through to a dry run),
/// hostile shell text, unicode, and flag-looking words.
fn value() -> impl Strategy<Value = String> {
    let valid = prop::sample::select(vec![
        "110",
        "104",
        "9001",
        "555",
        "111",
        "scsi0",
        "+1G",
        "10G",
        "pre",
        "prom2",
        "nvmeprom",
        "2",
        "2048",
        "/var/lib/vz/dump/a.vma",
        "web",
        "on",
        "off",
        "test-automation",
    ])
    .prop_map(str::to_string);
    prop_oneof![
        4 => valid,
        2 => "[-+*?;&|<>$`'\" \\\\\\n\\t()a-z0-9=.:/]{0,12}",
        2 => "\\PC{0,10}",
        2 => "--?[a-z][a-z-]{0,10}",
        1 => Just("--dry-run".to_string()),
        1 => Just("--".to_string()),
    ]
}

#[test]
fn random_arguments_with_dry_run_anywhere_never_connect() {
    let pve = Pve::start();
    let baseline = connections(&pve);
    // Each command with arguments that pass; the strategy replaces some of them with random
    // values, drops or adds one, and puts `--dry-run` (and maybe `--`) anywhere among them.
    let commands: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["clone"],
            vec!["9001", "110", "test-automation", "nvmeprom"],
        ),
        (vec!["configure"], vec!["110", "2", "2048"]),
        (vec!["create-disk"], vec!["110", "10G", "nvmeprom", "scsi1"]),
        (vec!["resize"], vec!["110", "scsi0", "+1G"]),
        (
            vec!["restore-vma"],
            vec!["/var/lib/vz/dump/a.vma", "110", "nvmeprom"],
        ),
        (vec!["serial-socket"], vec!["110"]),
        (vec!["start"], vec!["110"]),
        (vec!["stop"], vec!["110"]),
        (vec!["shutdown"], vec!["110"]),
        (vec!["template"], vec!["110"]),
        (vec!["destroy"], vec!["110"]),
        (vec!["snapshot", "create"], vec!["110", "pre"]),
        (vec!["snapshot", "rollback"], vec!["110", "pre"]),
        (vec!["snapshot", "delete"], vec!["110", "pre"]),
        (vec!["migrate"], vec!["110", "prom2"]),
        (vec!["protect"], vec!["110", "on"]),
    ];
    let n = commands.len();
    let stats = std::cell::RefCell::new((0usize, 0usize, 0usize));
    let mut runner = TestRunner::new(Config {
        cases: 240,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        0..n,
        prop::sample::select(vec!["110", "104", "109", "9001", "555"]),
        prop::collection::vec(prop::option::weighted(0.4, value()), 5),
        0..3usize,
        any::<prop::sample::Index>(),
        prop::option::of(any::<prop::sample::Index>()),
        prop::option::weighted(0.5, value()),
        any::<bool>(),
    );
    runner
        .run(
            &strategy,
            |(which, vmid, random, len_delta, dry_at, dashdash_at, confirm, unlisted)| {
                let (sub, valid) = &commands[which];
                // Usually the command's own arity (one fewer or one more now and then).
                let len = match len_delta {
                    0 if !valid.is_empty() => valid.len() - 1,
                    2 => valid.len() + 1,
                    _ => valid.len(),
                };
                let mut values: Vec<String> = (0..len)
                    .map(|i| match (&random[i], valid.get(i)) {
                        (Some(r), _) => r.clone(),
                        // The VMID varies: managed, readonly, the template, unlisted.
                        (None, Some(&"110")) => vmid.to_string(),
                        (None, Some(v)) => v.to_string(),
                        (None, None) => "110".to_string(),
                    })
                    .collect();
                if let Some(at) = dashdash_at {
                    let i = at.index(values.len() + 1);
                    values.insert(i, "--".into());
                }
                let i = dry_at.index(values.len() + 1);
                values.insert(i, "--dry-run".into());
                let confirm = confirm.unwrap_or_else(|| "test-automation".into());
                let mut args: Vec<String> = sub.iter().map(|s| s.to_string()).collect();
                if sub[0] == "destroy" {
                    args.push(format!("--confirm={confirm}"));
                }
                if unlisted {
                    args.push("--unlisted".into());
                }
                args.extend(values);
                let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                let out = pve.vmctl_ops(&argv);
                prop_assert!(
                    !any_connection(&pve, baseline),
                    "{argv:?} connected: {}",
                    text(&out.stderr)
                );
                prop_assert!(pve.read("argv.jsonl").is_none(), "{argv:?} ran something");
                let stdout = text(&out.stdout);
                let mut s = stats.borrow_mut();
                match out.status.code() {
                    Some(0) if stdout.contains("Usage:") => {}
                    Some(0) => {
                        s.0 += 1;
                        prop_assert!(
                            stdout.lines().all(|l| l.starts_with("qm ")
                                || l.starts_with("qmrestore ")
                                || l.starts_with("pvesh create /nodes/")),
                            "{argv:?} printed {stdout}"
                        );
                    }
                    Some(1) => s.1 += 1,
                    Some(2) => s.2 += 1,
                    other => prop_assert!(false, "{argv:?} ended with {other:?}"),
                }
                Ok(())
            },
        )
        .unwrap();
    let (dry, fenced, invalid) = *stats.borrow();
    // The property is only worth something if all three outcomes happen.
    assert!(
        dry >= 5 && fenced >= 5 && invalid >= 50,
        "{dry} dry runs, {fenced} fenced, {invalid} invalid"
    );
    assert!(!Path::new(&pve.state.join("argv.jsonl")).exists());
}

#[test]
fn an_out_of_range_proxmox_port_is_an_error_not_a_default() {
    let pve = Pve::start();
    let baseline = connections(&pve);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("vms")).unwrap();
    for port in ["70000", "0", "-22"] {
        std::fs::write(
            dir.path().join("vms/definitions.nix"),
            format!("{{ proxmox = {{ host = \"prom.lan\"; port = {port}; }}; }}"),
        )
        .unwrap();
        let out = pve.ops_cmd(dir.path()).arg("list").output().unwrap();
        let err = squash(&text(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "port {port}: {err}");
        assert!(
            err.contains("DF007")
                && err.contains(&format!("`proxmox.port`is{port},notaTCPport(1to65535)")),
            "port {port}: {err}"
        );
    }
    assert!(!any_connection(&pve, baseline));
}
