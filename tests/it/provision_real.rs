//! The real implementations behind `vmctl provision`, against real processes: OpenSSH
//! verifying a VM's sshd with only the generated host key trusted (a different key fails
//! closed), waiting for the SSH port, the key directory nixos-anywhere copies, and git
//! committing exactly this run's files whatever else is staged.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use vmctl::exec::provision::keydir::KeyDir;
use vmctl::exec::provision::real::{GitCli, OpenSsh};
use vmctl::exec::provision::{Git, SshProbe};

use crate::support::pve::{make_key, Sshd, SshdOptions};
use crate::support::{require_tool, text, write_script};

/// An sshd on 127.0.0.`n` presenting `pair`'s host key, as the installed VM would; its
/// sessions' PATH starts with `dir/vm-bin` (where a test puts a `nixos-version` stand-in).
fn vm_sshd(dir: &Path, n: u8, pair: &vmctl::keys::HostKeyPair, client_pub: String) -> Sshd {
    let vm_bin = dir.join("vm-bin");
    std::fs::create_dir_all(&vm_bin).unwrap();
    let sshd_dir = dir.join("sshd");
    std::fs::create_dir_all(&sshd_dir).unwrap();
    let key = sshd_dir.join("ssh_host_ed25519_key");
    std::fs::write(&key, pair.private_openssh.as_bytes()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(key.with_extension("pub"), &pair.public_openssh).unwrap();
    Sshd::start(
        &sshd_dir,
        &SshdOptions {
            addr: Ipv4Addr::new(127, 0, 0, n),
            port: None,
            env: vec![
                ("HOME".into(), dir.display().to_string()),
                ("PATH".into(), format!("{}:/usr/bin:/bin", vm_bin.display())),
            ],
            authorized_keys: vec![client_pub],
        },
    )
}

#[test]
fn verify_trusts_only_the_generated_host_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (client_key, client_pub) = make_key(tmp.path(), "admin");
    let pair = vmctl::keys::generate_host_key(&mut rand_core::OsRng, Some("root@vm".into()));
    let sshd = vm_sshd(tmp.path(), 61, &pair, client_pub);
    write_script(
        &tmp.path().join("vm-bin/nixos-version"),
        "#!/bin/sh\necho '24.11.20250101.abcdef0 (Vicuna)'\n",
    );
    let probe = OpenSsh {
        port: Some(sshd.addr.port()),
        config: None,
        identity: Some(client_key),
        timeout: Duration::from_secs(10),
    };
    probe.wait_ssh("127.0.0.61").unwrap();
    // The key directory the run hands nixos-anywhere, and where the pinned known_hosts goes.
    let dir = KeyDir::create(&pair).unwrap();
    let expected = text(&Command::new("hostname").output().unwrap().stdout);
    let got = probe
        .verify("127.0.0.61", &pair.public_openssh, dir.path())
        .unwrap();
    assert_eq!(got.hostname, expected.trim());
    assert_eq!(got.nixos_version, "24.11.20250101.abcdef0 (Vicuna)");
    assert_eq!(sshd.accepted_connections(), 1);
    // Another key than the one the VM presents: refused before any login.
    let other = vmctl::keys::generate_host_key(&mut rand_core::OsRng, None);
    let e = probe
        .verify("127.0.0.61", &other.public_openssh, dir.path())
        .unwrap_err();
    match e {
        vmctl::exec::provision::ProbeError::HostKey(m) => {
            assert!(m.contains("Host key verification failed"), "{m}")
        }
        other => panic!("not a host key failure: {other:?}"),
    }
    assert_eq!(sshd.accepted_connections(), 1);
    let kept = dir.path().to_path_buf();
    drop(dir);
    assert!(!kept.exists(), "the key directory outlived the run");
    // Nothing listens: waiting gives up with the reason.
    let closed = OpenSsh {
        port: Some(1),
        config: None,
        identity: None,
        timeout: Duration::from_millis(300),
    };
    assert!(closed.wait_ssh("127.0.0.61").is_err());
}

#[test]
fn verify_fails_closed_when_the_vm_has_no_nixos_version() {
    let tmp = tempfile::tempdir().unwrap();
    let (client_key, client_pub) = make_key(tmp.path(), "admin");
    let pair = vmctl::keys::generate_host_key(&mut rand_core::OsRng, Some("root@vm".into()));
    // No `nixos-version` on the session's PATH: the right host key, but not a NixOS.
    let sshd = vm_sshd(tmp.path(), 62, &pair, client_pub);
    let probe = OpenSsh {
        port: Some(sshd.addr.port()),
        config: None,
        identity: Some(client_key),
        timeout: Duration::from_secs(10),
    };
    let dir = KeyDir::create(&pair).unwrap();
    match probe.verify("127.0.0.62", &pair.public_openssh, dir.path()) {
        Err(vmctl::exec::provision::ProbeError::NotNixos(m)) => {
            assert!(m.contains("nixos-version"), "{m}")
        }
        other => panic!("not a not-NixOS failure: {other:?}"),
    }
    assert_eq!(sshd.accepted_connections(), 1);
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

#[test]
fn git_commits_exactly_the_runs_files_and_leaves_the_rest_staged() {
    require_tool("git");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    git(root, &["init", "-q"]);
    git(root, &["config", "user.email", "t@example.org"]);
    git(root, &["config", "user.name", "t"]);
    for f in ["hosts.nix", "notes.txt"] {
        std::fs::write(root.join(f), "old\n").unwrap();
    }
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "init"]);
    std::fs::write(root.join("hosts.nix"), "new\n").unwrap();
    std::fs::create_dir_all(root.join("hosts/web")).unwrap();
    std::fs::write(root.join("hosts/web/configuration.nix"), "{ }\n").unwrap();
    // The user's own work in progress, staged: never part of vmctl's commit.
    std::fs::write(root.join("notes.txt"), "mine\n").unwrap();
    git(root, &["add", "notes.txt"]);
    let files: Vec<PathBuf> = vec!["hosts.nix".into(), "hosts/web/configuration.nix".into()];
    let msg = "feat(vms): provision web (VMID 120)\n\nVMID: 120\n";
    let hash = GitCli.commit(root, &files, msg).unwrap();
    assert_eq!(git(root, &["rev-parse", "HEAD"]).trim(), hash);
    let mut shown: Vec<String> = git(root, &["show", "--name-only", "--format=", "HEAD"])
        .lines()
        .map(str::to_string)
        .collect();
    shown.sort();
    assert_eq!(shown, ["hosts.nix", "hosts/web/configuration.nix"]);
    assert_eq!(
        git(root, &["log", "-1", "--format=%B"]).trim_end(),
        msg.trim_end()
    );
    assert_eq!(
        git(root, &["diff", "--cached", "--name-only"]).trim(),
        "notes.txt"
    );
    // A failing git says why.
    let e = GitCli
        .commit(root, &["no-such-file".into()], "x")
        .unwrap_err();
    assert!(e.to_string().contains("git add failed"), "{e}");
}

#[test]
fn the_rekeyer_lets_the_new_hosts_identity_decrypt_checked_by_real_sops() {
    use crate::support::secrets::{sops_bin, Env as SopsEnv, ADMIN, NEWVM};
    use vmctl::exec::provision::real::SecretsRekeyer;
    use vmctl::exec::provision::Rekeyer;

    let env = SopsEnv::new();
    env.write_rule(&[ADMIN]);
    let file = env.encrypt("common.yaml", "greeting: hello\n", &[ADMIN]);
    // The key ceremony added the new host to the rule; re-keying makes it a reader.
    env.write_rule(&[ADMIN, NEWVM]);
    assert!(!env.sops_decrypt(&file, "newvm").status.success());
    let root = env.fleet();
    let lock = vmctl::exec::apply::FleetLock::acquire(&root, &Default::default()).unwrap();
    SecretsRekeyer {
        sops_config: root.join(".sops.yaml"),
        secrets_dir: root.join("secrets"),
        identities: vec![env.key("admin")],
        sops: Some(sops_bin()),
        out: Default::default(),
    }
    .rekey(&root, &lock)
    .unwrap();
    let out = env.sops_decrypt(&file, "newvm");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "greeting: hello\n");
    // Without an identity that can open the file it fails, saying which file.
    env.write_rule(&[ADMIN, NEWVM, crate::support::secrets::MOCK]);
    let e = SecretsRekeyer {
        sops_config: root.join(".sops.yaml"),
        secrets_dir: root.join("secrets"),
        identities: vec![env.key("mock")],
        sops: None,
        out: Default::default(),
    }
    .rekey(&root, &lock)
    .unwrap_err();
    assert!(e.to_string().contains("common.yaml"), "{e}");
}

#[test]
fn the_dry_runs_secrets_list_is_what_the_rekeying_then_changes() {
    use crate::support::secrets::{sops_bin, Env as SopsEnv, ADMIN, NEWVM};
    use vmctl::exec::provision::real::SecretsRekeyer;
    use vmctl::exec::provision::Rekeyer;

    let env = SopsEnv::new();
    env.write_rule(&[ADMIN]);
    let file = env.encrypt("common.yaml", "greeting: hello\n", &[ADMIN]);
    let root = env.fleet();
    let sops_yaml = root.join(".sops.yaml");
    let rekeyer = SecretsRekeyer {
        sops_config: sops_yaml.clone(),
        secrets_dir: root.join("secrets"),
        identities: vec![env.key("admin")],
        sops: Some(sops_bin()),
        out: Default::default(),
    };
    // The rule as it is: nothing to re-key.
    let unchanged = std::fs::read_to_string(&sops_yaml).unwrap();
    assert!(rekeyer.would_rekey(&root, &unchanged).unwrap().is_empty());
    // The rule as the ceremony leaves it, given as text: the file on disk is not read.
    env.write_rule(&[ADMIN, NEWVM]);
    let edited = std::fs::read_to_string(&sops_yaml).unwrap();
    std::fs::write(&sops_yaml, &unchanged).unwrap();
    let planned = rekeyer.would_rekey(&root, &edited).unwrap();
    assert_eq!(planned, ["secrets/common.yaml"]);
    let before = std::fs::read(&file).unwrap();
    // The real re-keying after the edit changes exactly the listed files.
    std::fs::write(&sops_yaml, &edited).unwrap();
    let lock = vmctl::exec::apply::FleetLock::acquire(&root, &Default::default()).unwrap();
    rekeyer.rekey(&root, &lock).unwrap();
    assert_ne!(std::fs::read(&file).unwrap(), before);
    assert_eq!(file, root.join(&planned[0]));
}

/// The VM's port is the one ssh would use for the address: an ssh_config `Port` for it wins,
/// else 22.
#[test]
fn the_vm_port_comes_from_the_ssh_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ssh_config");
    std::fs::write(&cfg, "Host 127.0.0.77\n  Port 2299\n").unwrap();
    use vmctl::exec::provision::real::configured_port;
    assert_eq!(configured_port("127.0.0.77", Some(&cfg)), 2299);
    assert_eq!(configured_port("127.0.0.78", Some(&cfg)), 22);
    // The probe asks for it when no port was given.
    let probe = OpenSsh {
        port: None,
        config: Some(cfg),
        identity: None,
        timeout: std::time::Duration::from_secs(1),
    };
    assert_eq!(
        vmctl::exec::provision::SshProbe::port(&probe, "127.0.0.77"),
        2299
    );
}
