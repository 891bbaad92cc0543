//! `vmctl known-hosts` and `vmctl rebuild` over the sandbox (scripts/sandbox.sh): after a real
//! `vmctl provision` of the demo VM, the fleet's known_hosts works with the real ssh, and a
//! rebuild runs the labelled `nixos-rebuild` stand-in (tests/sandbox/nixos-rebuild, which
//! reaches the VM's real sshd with vmctl's NIX_SSHOPTS) after an automatic snapshot; once the
//! VM presents another host key, the rebuild is refused before anything runs. Also the
//! known-hosts file of the demo fleet and the refusals that need no cluster.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::provision_sandbox::turn;
use crate::sandbox::Sandbox;
use crate::support::{demo_fleet, repo, squash, text, vmctl};

const NAME: &str = "test-automation";

fn fleet(s: &Sandbox) -> PathBuf {
    s.dir.join("fleet")
}

fn run(s: &Sandbox, args: &[&str], log: &Path) -> Output {
    crate::support::vmctl_cmd()
        .current_dir(fleet(s))
        .envs(s.env.iter().cloned())
        .env(
            "VMCTL_NIXOS_REBUILD",
            repo().join("tests/sandbox/nixos-rebuild"),
        )
        .env("NIXOS_REBUILD_LOG", log)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The VM's snapshots as the simulator lists them (`qm listsnapshot`).
fn snapshots(s: &Sandbox) -> Vec<String> {
    s.pve("qm listsnapshot 110")
        .lines()
        .filter_map(|l| {
            l.trim()
                .trim_start_matches(['`', '-', '>', ' '])
                .split_whitespace()
                .next()
                .map(String::from)
        })
        .filter(|n| n != "current")
        .collect()
}

/// A real ssh login to the VM trusting only `known_hosts`.
fn ssh_with(s: &Sandbox, known_hosts: &Path) -> Output {
    Command::new("ssh")
        .arg("-F")
        .arg(s.dir.join("ssh_config"))
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args(["-o", "StrictHostKeyChecking=yes", "-i"])
        .arg(s.var("SANDBOX_ADMIN_KEY"))
        .args(["root@127.0.0.110", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn rebuild_pins_the_hosts_nix_key_snapshots_first_and_refuses_another_key() {
    let _turn = turn();
    let s = Sandbox::up();
    let key = s.var("SANDBOX_ADMIN_KEY");
    let log = s.dir.join("nixos-rebuild.log");
    let out = run(&s, &["provision", NAME, "--identity", &key], &log);
    assert!(out.status.success(), "provision: {}", text(&out.stderr));

    // The fleet's known_hosts, written for the user's own ssh, lets the real ssh in.
    let kh = s.dir.join("fleet.known_hosts");
    let out = run(&s, &["known-hosts", "--output", kh.to_str().unwrap()], &log);
    assert!(out.status.success(), "known-hosts: {}", text(&out.stderr));
    let port = s.var("SANDBOX_VM_PORT");
    assert!(
        read(&kh).contains(&format!("[127.0.0.110]:{port} ssh-ed25519 ")),
        "{}",
        read(&kh)
    );
    let ok = ssh_with(&s, &kh);
    assert!(ok.status.success(), "ssh with it: {}", text(&ok.stderr));

    // The dry run connects nowhere and runs nothing.
    let before = snapshots(&s);
    let out = run(
        &s,
        &["rebuild", NAME, "--identity", &key, "--dry-run"],
        &log,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("qm snapshot 110 vmctl-auto-rebuild-")
            && shown.contains(
                "nixos-rebuild switch --flake '.#test-automation' --target-host root@127.0.0.110"
            ),
        "{shown}"
    );
    assert_eq!(snapshots(&s), before);
    assert!(!log.exists(), "a dry run ran nixos-rebuild");

    // The real rebuild: a snapshot, then the stand-in, which reaches the VM with the options.
    let out = run(&s, &["rebuild", NAME, "--identity", &key], &log);
    assert!(out.status.success(), "rebuild: {}", text(&out.stderr));
    let after = snapshots(&s);
    let auto: Vec<&String> = after
        .iter()
        .filter(|n| n.starts_with("vmctl-auto-rebuild-"))
        .collect();
    assert_eq!(auto.len(), 1, "one automatic snapshot: {after:?}");
    let calls = read(&log);
    assert_eq!(calls.lines().count(), 1, "{calls}");
    assert!(
        calls.starts_with(
            "switch --flake .#test-automation --target-host root@127.0.0.110 NIX_SSHOPTS="
        ),
        "{calls}"
    );
    for opt in [
        "StrictHostKeyChecking=yes",
        "UserKnownHostsFile=",
        "GlobalKnownHostsFile=/dev/null",
    ] {
        assert!(calls.contains(opt), "{opt} not in {calls}");
    }
    assert_eq!(
        read(&s.guest_file(110, "root/var/log/switches")),
        "switch test-automation\n",
        "the stand-in reached the VM"
    );
    // The pinned known_hosts was private to the run: gone with it.
    let pinned = calls
        .split("UserKnownHostsFile=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap();
    assert!(!Path::new(pinned).exists(), "{pinned} left behind");

    // The VM now presents another host key (a new one on its disk, then a reboot).
    let host_key = s.guest_file(110, "root/etc/ssh/ssh_host_ed25519_key");
    std::fs::remove_file(&host_key).unwrap();
    std::fs::remove_file(host_key.with_extension("pub")).unwrap();
    let gen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&host_key)
        .output()
        .unwrap();
    assert!(gen.status.success(), "{}", text(&gen.stderr));
    s.pve("qm stop 110 && qm start 110");
    let before = snapshots(&s);
    let out = run(&s, &["rebuild", NAME, "--identity", &key], &log);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let said = squash(&text(&out.stderr));
    assert!(
        said.contains(&squash(
            "does not present the host key hosts.nix pins for it"
        )),
        "{said}"
    );
    assert_eq!(snapshots(&s), before, "no snapshot before the refusal");
    assert_eq!(read(&log).lines().count(), 1, "nixos-rebuild did not run");
    assert_eq!(
        read(&s.guest_file(110, "root/var/log/switches")),
        "switch test-automation\n"
    );
    // And the user's ssh with the fleet's known_hosts refuses it too.
    assert!(!ssh_with(&s, &kh).status.success());
}

#[test]
fn known_hosts_of_the_demo_fleet_and_rebuild_refusals() {
    let dir = demo_fleet();
    let root = dir.path();
    let out = vmctl(root, &["known-hosts"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let kh = text(&out.stdout);
    let demo = std::fs::read_to_string(root.join("hosts.nix")).unwrap();
    for (name, key) in [
        (
            "doc1",
            "AAAAC3NzaC1lZDI1NTE5AAAAIMlLRoQ0HoeSXd9Rbb9WB51hQUGkEPeKZvmAsJFjg/wH",
        ),
        (
            "igpu",
            "AAAAC3NzaC1lZDI1NTE5AAAAIHHwBfbIUrK41MhsO5+UBAKg1AW/ZVSeh7AdndYmIED6",
        ),
    ] {
        assert!(demo.contains(key), "the fixture changed");
        assert!(
            kh.lines().any(|l| l.split([',', ' ']).next() == Some(name)
                && l.ends_with(&format!("ssh-ed25519 {key}"))),
            "{name}: {kh}"
        );
    }
    // The admin key in `_proxmox` is no host.
    assert_eq!(
        kh.lines().filter(|l| !l.starts_with('#')).count(),
        2,
        "{kh}"
    );

    let json = vmctl(root, &["known-hosts", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v[0]["host"], "doc1");

    // --output: a dry run writes nothing, then the file, then nothing changes.
    let file = root.join("out/known_hosts");
    std::fs::create_dir_all(root.join("out")).unwrap();
    let out_arg = file.to_str().unwrap();
    let dry = vmctl(root, &["known-hosts", "-o", out_arg, "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert!(!file.exists());
    assert!(text(&dry.stdout).contains("dry run: out/known_hosts not written"));
    let real = vmctl(root, &["known-hosts", "-o", out_arg]);
    assert!(real.status.success(), "{}", text(&real.stderr));
    assert_eq!(read(&file), kh);

    // Refusals before anything is contacted: readonly, unknown, nothing named, no key.
    for (args, needle) in [
        (vec!["rebuild", "doc1", "--dry-run"], "`doc1` is readonly"),
        (
            vec!["rebuild", "nosuch", "--dry-run"],
            "`nosuch` is not a VM",
        ),
        (vec!["rebuild", "--dry-run"], "no VM to rebuild"),
        (
            vec!["rebuild", "test-automation", "--dry-run"],
            "`test-automation` has no entry with a `publicKey` in hosts.nix",
        ),
    ] {
        let out = vmctl(root, &args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            squash(&text(&out.stderr)).contains(&squash(needle)),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}
