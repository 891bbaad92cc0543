//! Exit codes mean the same in every command (docs/cli.md, "Exit codes"): 0 done or nothing
//! found, 1 findings, refusals and failures, 2 a command line vmctl cannot act on (and lint's
//! input it cannot read or write, no fleet). One table over the commands, run against a copy
//! of the demo fleet.

use crate::support::{copy_dir, demo_fleet, new_public_key, repo, text, vmctl_cmd};

#[test]
fn every_command_uses_the_same_exit_codes() {
    let fleet = demo_fleet();
    let root = fleet.path();
    std::fs::copy(repo().join(".sops.yaml"), root.join(".sops.yaml")).unwrap();
    copy_dir(&repo().join("secrets"), &root.join("secrets"));
    std::fs::create_dir_all(root.join("broken/vms")).unwrap();
    std::fs::write(
        root.join("broken/vms/definitions.nix"),
        "{ managed.a = { vmid = 110; }; managed.b = { vmid = 110; }; }\n",
    )
    .unwrap();
    // hosts.nix that cannot be read as text (not UTF-8: the tests may run as root, whom file
    // modes do not stop), a directory that is no fleet, and a fleet whose lock directory
    // cannot be created (a regular file stands in its way).
    let unreadable_fleet = demo_fleet();
    let unreadable = unreadable_fleet.path().display().to_string();
    std::fs::write(
        unreadable_fleet.path().join("hosts.nix"),
        b"{ a = \"\xff\"; }\n",
    )
    .unwrap();
    let no_fleet_dir = tempfile::tempdir().unwrap();
    let no_fleet = no_fleet_dir.path().display().to_string();
    let unwritable_fleet = demo_fleet();
    let unwritable = unwritable_fleet.path().display().to_string();
    std::fs::write(unwritable_fleet.path().join(".vmctl"), "in the way\n").unwrap();
    let not_a_dir = root.join("hosts.nix/keys").display().to_string();
    let key = new_public_key(Some("root@x"));
    let keys = tempfile::tempdir().unwrap();
    std::fs::write(keys.path().join("ssh_host_ed25519_key"), "not mine\n").unwrap();
    let keys_out = keys.path().display().to_string();
    // A port nothing listens on: wait-ssh gives up after its 1 s timeout.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let table: Vec<(i32, Vec<&str>)> = vec![
        // 0: done, or nothing found.
        (0, vec!["lint", "--no-nix"]),
        (0, vec!["explain", "VM001"]),
        (0, vec!["hosts", "remove", "igpu", "--dry-run"]),
        (0, vec!["keys", "fingerprint", &key]),
        (0, vec!["ops", "stop", "110", "--dry-run"]),
        (0, vec!["scaffold", "test-automation", "--dry-run"]),
        (0, vec!["docs", "--dry-run"]),
        (0, vec!["completions", "bash"]),
        (0, vec!["secrets", "check"]),
        (0, vec!["secrets", "rekey", "--dry-run"]),
        (
            0,
            vec!["provision", "test-automation", "--dry-run", "--offline"],
        ),
        (
            0,
            vec![
                "destroy",
                "test-automation",
                "--confirm",
                "test-automation",
                "--dry-run",
                "--offline",
            ],
        ),
        (0, vec!["template", "create", "--dry-run"]),
        (0, vec!["known-hosts"]),
        (0, vec!["migrate", "test-automation", "prom2", "--dry-run"]),
        (0, vec!["backup", "test-automation", "--dry-run"]),
        (
            0,
            vec!["snapshot", "test-automation", "create", "s1", "--dry-run"],
        ),
        // 1: findings, refusals, failures.
        (1, vec!["lint", "--no-nix", "broken"]),
        (1, vec!["docs", "--check"]),
        (1, vec!["rebuild", "doc1", "--dry-run"]),
        (1, vec!["migrate", "doc1", "prom2", "--dry-run"]),
        (
            1,
            vec![
                "restore",
                "test-automation",
                "--from",
                "local:backup/vzdump-qemu-110-2026_01_01-00_00_00.vma.zst",
            ],
        ),
        (1, vec!["snapshot", "doc1", "create", "s1", "--dry-run"]),
        (
            1,
            vec![
                "destroy",
                "test-automation",
                "--confirm",
                "x",
                "--dry-run",
                "--offline",
            ],
        ),
        (1, vec!["hosts", "remove", "nosuch"]),
        // No language client: stdin is at its end before `initialize`.
        (1, vec!["lsp"]),
        (1, vec!["ops", "stop", "104", "--dry-run"]),
        (1, vec!["scaffold", "nosuch", "--dry-run"]),
        (1, vec!["status", "nosuch"]),
        (1, vec!["apply", "doc1"]),
        (1, vec!["import", "other", "104"]),
        (1, vec!["provision", "nosuch", "--dry-run", "--offline"]),
        (
            1,
            vec!["post-provision", "nosuch", "127.0.0.1", "110", "--dry-run"],
        ),
        (1, vec!["keys", "generate", "--out", &keys_out]),
        (1, vec!["sops", "remove-recipient", "nobody", "--dry-run"]),
        (
            1,
            vec!["ops", "wait-ssh", "127.0.0.1", "1", "--port", &closed],
        ),
        // 2: a command line vmctl cannot act on.
        (2, vec![]),
        (2, vec!["lint", "--no-nix", "no/such/file.nix"]),
        (2, vec!["explain", "XX999"]),
        (2, vec!["completions", "tcsh"]),
        (
            2,
            vec![
                "destroy",
                "doc1",
                "--confirm",
                "doc1",
                "--dry-run",
                "--offline",
            ],
        ),
        (2, vec!["hosts", "remove"]),
        (2, vec!["lsp", "--port", "1"]),
        (2, vec!["provision"]),
        (2, vec!["rebuild", "--jobs", "0", "--all"]),
        (2, vec!["backups"]),
        (2, vec!["backup", "doc1", "--mode", "suspend"]),
        (2, vec!["post-provision", "test-automation", "127.1", "110"]),
        (2, vec!["template", "create", "--image", "no/such.vma.zst"]),
        (2, vec!["ops", "stop", "not-a-vmid"]),
        (2, vec!["--no-such-option", "lint"]),
        (2, vec!["-q", "-v", "lint"]),
        // 2: input vmctl cannot read, output it cannot write, no fleet.
        (2, vec!["keys", "fingerprint", "no-such-file"]),
        (2, vec!["secrets", "check", "--config", "no-such.yaml"]),
        (2, vec!["--fleet", &unreadable, "lint", "--no-nix"]),
        (2, vec!["--fleet", &unreadable, "hosts", "remove", "igpu"]),
        (
            2,
            vec![
                "sops",
                "add-recipient",
                "doc1",
                "--config",
                "no-such.yaml",
                "--dry-run",
            ],
        ),
        (
            2,
            vec!["--fleet", &unreadable, "scaffold", "doc1", "--dry-run"],
        ),
        (2, vec!["--fleet", &unreadable, "docs", "--dry-run"]),
        (
            2,
            vec!["--fleet", &unreadable, "ops", "stop", "110", "--dry-run"],
        ),
        (
            2,
            vec!["--fleet", &no_fleet, "secrets", "rekey", "--dry-run"],
        ),
        (2, vec!["--fleet", &no_fleet, "ops", "list"]),
        (2, vec!["--fleet", &no_fleet, "docs", "--check"]),
        (2, vec!["--fleet", &unwritable, "hosts", "remove", "igpu"]),
        (2, vec!["keys", "generate", "--out", &not_a_dir]),
        (2, vec!["man", "--out", &not_a_dir]),
    ];
    let mut failures = Vec::new();
    for (want, args) in &table {
        let out = vmctl_cmd()
            .current_dir(root)
            .args(args)
            .env("VMCTL_NO_NIX", "1")
            .output()
            .unwrap();
        if out.status.code() != Some(*want) {
            failures.push(format!(
                "vmctl {}: exit {:?}, want {want}\n{}",
                args.join(" "),
                out.status.code(),
                text(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The table covers every top-level command but the trivial `man`.
    let covered: std::collections::BTreeSet<&str> = table
        .iter()
        .filter_map(|(_, a)| a.first().copied())
        .collect();
    use clap::CommandFactory;
    for cmd in vmctl::cli::Cli::command().get_subcommands() {
        let name = cmd.get_name();
        assert!(
            covered.contains(name) || name == "man",
            "add `vmctl {name}` to the exit-code table"
        );
    }
}
