//! Every `vmctl ops` subcommand, found by walking its clap tree: one that changes the cluster
//! prints, with `--dry-run`, exactly the remote command it would send and connects nowhere;
//! one that only reads is listed as such. A new subcommand fails here until it is added.

use clap::CommandFactory;

use crate::support::{pve::Pve, text};

/// Each mutating subcommand: its arguments (before `--dry-run`) and the exact command line
/// it must print.
const DRY_RUNS: &[(&str, &[&str], &str)] = &[
    // Reads: the read-only commands they would send.
    (
        "list",
        &[],
        "pvesh get /cluster/resources --type vm --output-format json\n",
    ),
    ("status", &["104"], "qm status 104\n"),
    ("config", &["104"], "qm config 104\n"),
    (
        "get-ip",
        &["104"],
        "qm config 104\nqm guest cmd 104 network-get-interfaces\nip neigh show\n",
    ),
    ("storage", &[], "pvesm status\n"),
    (
        "next-vmid",
        &[],
        "pvesh get /cluster/resources --type vm --output-format json\n",
    ),
    ("snapshot list", &["104"], "qm listsnapshot 104\n"),
    (
        "clone",
        &[
            "9001",
            "110",
            "test-automation",
            "--linked",
            "--pool",
            "fleet",
        ],
        "qm clone 9001 110 --name test-automation --pool fleet\n",
    ),
    (
        "configure",
        &["110", "4", "8192", "--set", "ciuser=root"],
        "qm set 110 --cores 4 --memory 8192 --ciuser root\n",
    ),
    (
        "create-disk",
        &["110", "50G", "local-lvm", "scsi1"],
        "qm set 110 --scsi1 local-lvm:50\n",
    ),
    (
        "resize",
        &["110", "scsi0", "+10G"],
        "qm resize 110 scsi0 +10G\n",
    ),
    (
        "restore-vma",
        &[
            "/var/lib/vz/dump/vzdump-qemu-110.vma.zst",
            "110",
            "local-lvm",
        ],
        "qmrestore /var/lib/vz/dump/vzdump-qemu-110.vma.zst 110 --storage local-lvm\n",
    ),
    ("serial-socket", &["110"], "qm set 110 --serial0 socket\n"),
    ("start", &["110"], "qm start 110\n"),
    ("stop", &["110"], "qm stop 110\n"),
    ("shutdown", &["110"], "qm shutdown 110\n"),
    ("template", &["110"], "qm template 110\n"),
    (
        "destroy",
        &["110", "--confirm", "test-automation"],
        "qm destroy 110 --purge 1\n",
    ),
    (
        "snapshot create",
        &["110", "before-upgrade", "--vmstate"],
        "qm snapshot 110 before-upgrade --vmstate 1\n",
    ),
    (
        "snapshot rollback",
        &["110", "before-upgrade"],
        "qm rollback 110 before-upgrade\n",
    ),
    (
        "snapshot delete",
        &["110", "before-upgrade"],
        "qm delsnapshot 110 before-upgrade\n",
    ),
    (
        "migrate",
        &["110", "pve2", "--online"],
        "pvesh create /nodes/prom/qemu/110/migrate --target pve2 --online 1\n",
    ),
    ("protect", &["110", "on"], "qm set 110 --protection 1\n"),
];

/// Subcommands without `--dry-run`: they read, or wait, or attach a console.
const READ_ONLY: &[&str] = &["console", "wait-ssh"];

/// The leaf subcommands under `cmd`, as space-separated paths.
fn leaves(cmd: &clap::Command, prefix: &str, out: &mut Vec<(String, bool)>) {
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let path = format!("{prefix}{}", sub.get_name()).trim().to_string();
        if sub.has_subcommands() {
            leaves(sub, &format!("{path} "), out);
        } else {
            let dry = sub.get_arguments().any(|a| a.get_long() == Some("dry-run"));
            out.push((path, dry));
        }
    }
}

#[test]
fn every_ops_subcommand_is_covered_and_each_dry_run_prints_its_command() {
    let cli = vmctl::cli::Cli::command();
    let ops = cli.find_subcommand("ops").expect("vmctl has `ops`");
    let mut all = Vec::new();
    leaves(ops, "", &mut all);
    let mut missing = Vec::new();
    for (path, dry) in &all {
        let listed = if *dry {
            DRY_RUNS.iter().any(|(p, ..)| p == path)
        } else {
            READ_ONLY.contains(&path.as_str())
        };
        if !listed {
            missing.push(format!(
                "`vmctl ops {path}` ({}) is not in this test",
                if *dry {
                    "has --dry-run"
                } else {
                    "no --dry-run"
                }
            ));
        }
    }
    // And nothing listed here is gone (or lost its --dry-run).
    for (p, ..) in DRY_RUNS {
        if !all.iter().any(|(q, dry)| q == p && *dry) {
            missing.push(format!("`{p}` is listed with --dry-run but has none"));
        }
    }
    for p in READ_ONLY {
        if !all.iter().any(|(q, dry)| q == p && !*dry) {
            missing.push(format!("`{p}` is listed as read-only but is not"));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));

    let pve = Pve::start();
    let before = pve.sshd.accepted_connections();
    for (path, args, expected) in DRY_RUNS {
        let mut argv: Vec<&str> = path.split(' ').collect();
        argv.extend_from_slice(args);
        argv.push("--dry-run");
        let out = pve.vmctl_ops(&argv);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{argv:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout), *expected, "{argv:?}");
    }
    assert_eq!(
        pve.sshd.accepted_connections(),
        before,
        "a dry run connected"
    );
    assert!(pve.read("argv.jsonl").is_none(), "a dry run ran something");
}
