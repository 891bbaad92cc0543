//! The SSH layer against a real sshd: one connection per run, host key verification.

use crate::support::pve;

use pve::{demo_definitions, make_key, Pve};
use vmctl::exec::proxmox::{Proxmox, ProxmoxError, QmProxmox};
use vmctl::exec::remote::{Remote, RemoteError, SshRemote};
use vmctl::proxmox::{Fence, Mutation};

#[test]
fn twenty_operations_use_one_connection() {
    let pve = Pve::start();
    let before = pve.sshd.accepted_connections();
    assert_eq!(before, 0);
    let p = pve.proxmox(&demo_definitions());
    for i in 0..5 {
        assert_eq!(p.list().unwrap().len(), 3, "round {i}");
        assert_eq!(p.status(104).unwrap().status, "running");
        assert_eq!(p.config(109).unwrap().name(), Some("igpu"));
        assert!(!p.storage().unwrap().is_empty());
    }
    drop(p);
    assert_eq!(pve.argv_log().len(), 20);
    assert_eq!(
        pve.sshd.accepted_connections(),
        1,
        "sshd log:\n{}",
        pve.sshd.log_text()
    );
}

#[test]
fn remote_output_and_exit_codes_come_back() {
    let pve = Pve::start();
    let r = pve.connect();
    let out = r
        .run(&["qm".into(), "status".into(), "999".into()])
        .unwrap();
    assert_eq!(out.code, Some(255));
    assert_eq!(
        out.stderr,
        "Configuration file 'nodes/prom/qemu-server/999.conf' does not exist\n"
    );
    let out = r
        .run_with_input(&["qm".into(), "list".into()], Some(b"ignored input"))
        .unwrap();
    assert!(out.stdout.starts_with("      VMID NAME"), "{}", out.stdout);
}

#[test]
fn pinned_host_key_is_accepted() {
    let pve = Pve::start();
    let mut t = pve.target();
    t.pinned_key = Some(pve.sshd.host_key.clone());
    let r = SshRemote::connect(&t).expect("the pinned key matches");
    assert!(r.run(&["pvesm".into(), "status".into()]).unwrap().success());
}

#[test]
fn wrong_pinned_key_fails_every_operation_before_any_command() {
    let pve = Pve::start();
    let (_, other) = make_key(&pve.root, "impostor");
    let mut t = pve.target();
    t.pinned_key = Some(
        other
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" "),
    );
    let err = match SshRemote::connect(&t) {
        Ok(_) => panic!("a wrong pinned key must not connect"),
        Err(e) => e,
    };
    assert!(matches!(err, RemoteError::HostKey { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("proxmox.hostKey"), "{msg}");
    assert!(msg.contains("ssh-keyscan"), "{msg}");
    assert!(msg.contains("no command was run"), "{msg}");
    // The library never gets a connection to run anything on: nothing reached the simulator.
    assert!(pve.argv_log().is_empty());
    assert!(pve.read("argv.jsonl").is_none());
}

#[test]
fn unknown_host_key_in_known_hosts_fails_with_pin_hint() {
    let pve = Pve::start();
    // Replace the known host with another key: strict checking must refuse.
    let (_, other) = make_key(&pve.root, "other");
    let line = format!(
        "[127.0.0.1]:{} {}\n",
        pve.sshd.addr.port(),
        other
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    );
    std::fs::write(pve.root.join("known_hosts"), line).unwrap();
    let err = SshRemote::connect(&pve.target()).err().expect("must fail");
    assert!(matches!(err, RemoteError::HostKey { .. }), "{err}");
    assert!(pve.argv_log().is_empty());
}

#[test]
fn fences_hold_over_the_real_connection_too() {
    let pve = Pve::start();
    let p = QmProxmox::new(
        pve.connect(),
        Fence::from_definitions(&demo_definitions()),
        pve::fast_retry(),
    );
    let e = p.apply(&Mutation::Stop { vmid: 104 }).unwrap_err();
    assert!(matches!(e, ProxmoxError::Fence(_)), "{e}");
    assert!(pve.argv_log().is_empty());
}

#[test]
fn the_simulator_is_not_part_of_the_vmctl_package() {
    // `cargo install vmctl` installs the package's binaries: pve-sim must not be one of them.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(crate::support::repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let bins = |name: &str| -> Vec<String> {
        let p = packages.iter().find(|p| p["name"] == name).unwrap();
        p["targets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["kind"][0] == "bin")
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(bins("vmctl"), ["vmctl", "vmlint"]);
    assert_eq!(bins("pve-sim"), ["pve-sim"]);
    // And the harness really runs the separately built simulator.
    let sim = pve::pve_sim_bin();
    assert!(sim.is_file() && !sim.starts_with(crate::support::repo().join("target/debug/deps")));
}
