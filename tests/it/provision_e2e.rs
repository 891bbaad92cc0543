//! `vmctl provision` end to end through the built binary, every part real but the cluster:
//! the Proxmox simulator behind a real sshd, the VM's own sshd on 127.0.0.163:22 (.164 for the failing run) (its host
//! key replaced by the installer stand-in, which restarts it by PID as a reboot would), real
//! git, the real re-keyer with the real sops as oracle, with an installer stand-in of its own.
//! The same flow over the sandbox (scripts/sandbox.sh and its labelled nixos-anywhere
//! stand-in) is tests/it/provision_sandbox.rs.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::provision_cli::fleet;
use crate::support::pve::{make_key, Pve, Sshd, SshdOptions};
use crate::support::secrets::{sops_bin, ADMIN, ADMIN_KEY};
use crate::support::{require_tool, text, write_script};

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

/// Re-encrypts the demo's shared secret for the test admin too (the demo admin's private key
/// is not in the repository) and lists that admin in the shared rule.
fn secrets_for_test_admin(root: &Path, plain_dir: &Path) {
    let sops_yaml = root.join(".sops.yaml");
    let rules = std::fs::read_to_string(&sops_yaml).unwrap().replacen(
        "          - age18ezvkljgmxh28nkhs5j5f845v5nqur4gqsmfta30wuqqwszega7sy7rc0d # admin (admin@workstation)\n",
        &format!("          - age18ezvkljgmxh28nkhs5j5f845v5nqur4gqsmfta30wuqqwszega7sy7rc0d # admin (admin@workstation)\n          - {ADMIN} # test admin\n"),
        1,
    );
    std::fs::write(&sops_yaml, rules).unwrap();
    let plain = plain_dir.join("common.yaml");
    std::fs::write(&plain, "demo:\n    greeting: hello\n").unwrap();
    let out = Command::new(sops_bin())
        .current_dir(plain_dir)
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .args(["encrypt", "--age", ADMIN, "--output"])
        .arg(root.join("secrets/common.yaml"))
        .arg(&plain)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// A fleet repository, the simulator, the VM's sshd and the installer stand-in.
struct World {
    pve: Pve,
    tmp: tempfile::TempDir,
    fleet: tempfile::TempDir,
    vm: Sshd,
    vm_dir: PathBuf,
    client_key: PathBuf,
    admin_age: PathBuf,
    stand_in: PathBuf,
    installer_key: String,
    before_head: String,
}

impl World {
    fn root(&self) -> &Path {
        self.fleet.path()
    }

    /// `vmctl provision test-automation` with the world's keys and tools.
    fn provision(&self) -> std::process::Output {
        self.command().output().unwrap()
    }

    fn command(&self) -> Command {
        let mut c = crate::support::vmctl_cmd();
        c.current_dir(self.root())
            .envs(self.pve.vmctl_env())
            .env("VMCTL_NIXOS_ANYWHERE", &self.stand_in)
            // The installer here is a stand-in that needs no Nix: so is the Nix vmctl checks.
            .env(
                "VMCTL_NIX",
                crate::support::repo().join("tests/sandbox/nix-for-installer"),
            )
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .env_remove("SOPS_AGE_KEY")
            .env_remove("SOPS_AGE_KEY_FILE")
            .args(["provision", "test-automation", "-i"])
            .arg(&self.client_key)
            .arg("--age-identity")
            .arg(&self.admin_age)
            .args(["--wait", "20"]);
        c
    }
}

/// The world, its VM at `vm_ip` (one address per test: every VM sshd listens on port 22);
/// with `wrong_key` the stand-in installs a host key of its own instead of the one vmctl
/// generated. With `HANG_MARK` in its environment the stand-in's first call writes its PID
/// there and hangs, so a test can kill vmctl mid-install.
fn world(wrong_key: bool, vm_ip: &str) -> World {
    require_tool("git");
    let pve = Pve::start();
    let tmp = tempfile::tempdir().unwrap();
    let fleet = fleet();
    let root = fleet.path().to_path_buf();
    let root = root.as_path();
    // A static address on loopback, so the VM's sshd is reachable without a DHCP server.
    let defs = root.join("vms/definitions.nix");
    let t = std::fs::read_to_string(&defs)
        .unwrap()
        .replace("ip = \"dhcp\";", &format!("ip = \"{vm_ip}/8\";"));
    std::fs::write(&defs, t).unwrap();
    std::fs::create_dir_all(tmp.path().join("plain")).unwrap();
    secrets_for_test_admin(root, &tmp.path().join("plain"));
    let admin_age = tmp.path().join("admin.txt");
    std::fs::write(&admin_age, format!("{ADMIN_KEY}\n")).unwrap();
    // The admin key cloud-init installs is the one the VM's sshd accepts.
    let (client_key, client_pub) = make_key(tmp.path(), "admin_ssh");
    let hosts = root.join("hosts.nix");
    let t = std::fs::read_to_string(&hosts).unwrap().replace(
        "adminKeys = [ admin ];",
        &format!("adminKeys = [ admin \"{client_pub}\" ];"),
    );
    std::fs::write(&hosts, t).unwrap();
    git(root, &["init", "-q"]);
    git(root, &["config", "user.email", "t@example.org"]);
    git(root, &["config", "user.name", "t"]);
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "fleet"]);
    let before_head = git(root, &["rev-parse", "HEAD"]);

    // The VM's sshd: `hostname` and `nixos-version` answer as the installed system would.
    let vm_bin = tmp.path().join("vm-bin");
    std::fs::create_dir_all(&vm_bin).unwrap();
    write_script(
        &vm_bin.join("hostname"),
        "#!/bin/sh\necho test-automation\n",
    );
    write_script(
        &vm_bin.join("nixos-version"),
        "#!/bin/sh\necho '24.11.20250101.abcdef0 (Vicuna)'\n",
    );
    let vm_dir = tmp.path().join("vm");
    let vm = Sshd::start(
        &vm_dir,
        &SshdOptions {
            addr: vm_ip.parse::<Ipv4Addr>().unwrap(),
            port: Some(22),
            env: vec![("PATH".into(), format!("{}:/usr/bin:/bin", vm_bin.display()))],
            authorized_keys: vec![client_pub],
        },
    );
    let installer_key = vm.host_key.clone();
    // The installer stand-in: installs the --extra-files host key and restarts sshd (SIGHUP
    // to the PID it wrote: sshd re-executes itself and reads the new key).
    let stand_in = tmp.path().join("nixos-anywhere");
    write_script(
        &stand_in,
        &format!(
            "#!/bin/bash\nset -e\n\
             if [ -n \"$HANG_MARK\" ] && [ ! -e \"$HANG_MARK\" ]; then echo $$ > \"$HANG_MARK.tmp\"; mv \"$HANG_MARK.tmp\" \"$HANG_MARK\"; exec sleep 60; fi\n\
             while [ $# -gt 0 ]; do case \"$1\" in --extra-files) dir=$2; shift;; esac; shift; done\n\
             {install}\n\
             kill -HUP \"$(cat '{d}/sshd.pid')\"\n\
             for i in $(seq 50); do (exec 3<>/dev/tcp/{vm_ip}/22) 2>/dev/null && exit 0; sleep 0.1; done\nexit 1\n",
            d = vm_dir.display(),
            install = if wrong_key {
                format!("rm -f '{d}/ssh_host_ed25519_key'*; ssh-keygen -q -t ed25519 -N '' -f '{d}/ssh_host_ed25519_key'", d = vm_dir.display())
            } else {
                format!("cp \"$dir/etc/ssh/ssh_host_ed25519_key\" '{d}/ssh_host_ed25519_key'; cp \"$dir/etc/ssh/ssh_host_ed25519_key.pub\" '{d}/ssh_host_ed25519_key.pub'", d = vm_dir.display())
            },
        ),
    );
    World {
        pve,
        tmp,
        fleet,
        vm,
        vm_dir,
        client_key,
        admin_age,
        stand_in,
        installer_key,
        before_head,
    }
}

#[test]
fn provision_creates_installs_pins_rekeys_and_commits() {
    let w = world(false, "127.0.0.163");
    let (pve, tmp, root, vm, vm_dir) = (&w.pve, &w.tmp, w.root(), &w.vm, &w.vm_dir);

    let out = w.provision();
    assert!(
        out.status.success(),
        "{}\n--- vm sshd log:\n{}",
        text(&out.stderr),
        vm.log_text()
    );
    assert!(text(&out.stdout).starts_with("provisioned `test-automation`: VM 110, commit "));

    // The VM: created with the declared resources and cloud-init, running.
    let conf = pve.conf(110).unwrap();
    for want in [
        "cores: 2",
        "memory: 4096",
        "ciuser: root",
        "size=20G",
        "ipconfig0: ip=127.0.0.163/8",
    ] {
        assert!(conf.contains(want), "{want} in\n{conf}");
    }
    // hosts.nix holds the key the VM's sshd presents now (not the installer-time one).
    let presented = std::fs::read_to_string(vm_dir.join("ssh_host_ed25519_key.pub")).unwrap();
    let presented: Vec<&str> = presented.split_whitespace().take(2).collect();
    let presented = presented.join(" ");
    assert_ne!(presented, w.installer_key);
    let hosts_now = std::fs::read_to_string(root.join("hosts.nix")).unwrap();
    assert!(hosts_now.contains(&presented), "{hosts_now}");
    // The host's age identity, derived from the installed private key, decrypts the secret.
    let private = std::fs::read_to_string(vm_dir.join("ssh_host_ed25519_key")).unwrap();
    let identity = vmctl::keys::PrivateKey::parse_openssh(&private)
        .unwrap()
        .age_identity();
    let id_file = tmp.path().join("host-age.txt");
    std::fs::write(&id_file, format!("{identity}\n")).unwrap();
    let dec = Command::new(sops_bin())
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .env("SOPS_AGE_KEY_FILE", &id_file)
        .env("HOME", tmp.path())
        .arg("-d")
        .arg(root.join("secrets/common.yaml"))
        .output()
        .unwrap();
    assert!(dec.status.success(), "{}", text(&dec.stderr));
    assert!(text(&dec.stdout).contains("hello"));
    // One commit on top, with the trailers, holding only this run's files; nothing left over.
    assert_eq!(git(root, &["rev-parse", "HEAD~1"]), w.before_head);
    let msg = git(root, &["log", "-1", "--format=%B"]);
    assert!(
        msg.starts_with("feat(vms): provision test-automation (VMID 110)"),
        "{msg}"
    );
    assert!(
        msg.contains("VMID: 110\nNode: prom\nHost-Key-Fingerprint: SHA256:"),
        "{msg}"
    );
    let mut files: Vec<String> = git(root, &["show", "--name-only", "--format=", "HEAD"])
        .lines()
        .map(str::to_string)
        .collect();
    files.sort();
    // machines.md is regenerated: the test gave the VM a static address above.
    assert_eq!(
        files,
        [
            ".sops.yaml",
            "docs/machines.md",
            "hosts.nix",
            "secrets/common.yaml"
        ]
    );
    assert_eq!(git(root, &["status", "--porcelain"]), "");
    assert!(!root.join(".vmctl/journal/test-automation.json").exists());

    // A second run has nothing to do, and says so.
    let again = crate::support::vmctl_cmd()
        .current_dir(root)
        .envs(pve.vmctl_env())
        .args(["provision", "test-automation"])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains("already provisioned"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn a_different_host_key_after_the_install_fails_closed_and_rolls_back() {
    let w = world(true, "127.0.0.164");
    let root = w.root();
    let before = crate::provision_cli::snapshot(root);
    let out = w.provision();
    assert!(!out.status.success());
    let err = crate::support::unwrapped(&out.stderr);
    assert!(err.contains("Host key verification failed"), "{err}");
    assert!(err.contains("rolled back"), "{err}");
    assert_eq!(w.pve.conf(110), None, "the VM was destroyed");
    let mut after = crate::provision_cli::snapshot(root);
    after.retain(|p, _| !p.starts_with(".vmctl"));
    let mut before = before;
    before.retain(|p, _| !p.starts_with(".vmctl"));
    assert_eq!(after, before, "the fleet files are as before");
    assert_eq!(git(root, &["rev-parse", "HEAD"]), w.before_head);
}

/// Runs vmctl until the installer starts, then kills it with SIGKILL (and the hanging
/// stand-in it left), as a crash at that point would.
fn crash_during_install(w: &World) {
    let mark = w.tmp.path().join("hang");
    let mut first = w
        .command()
        .env("HANG_MARK", &mark)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !mark.exists() {
        assert!(start.elapsed().as_secs() < 60, "the install never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // kill -9 vmctl, then the stand-in it left hanging (both by PID).
    first.kill().unwrap();
    first.wait().unwrap();
    let pid: i32 = std::fs::read_to_string(&mark)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

#[test]
fn kill_9_during_the_install_then_resume_completes() {
    let w = world(false, "127.0.0.165");
    let root = w.root();
    crash_during_install(&w);
    let journal: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join(".vmctl/journal/test-automation.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        journal["completed"].as_array().unwrap().last().unwrap(),
        "key-ceremony"
    );
    let key_dir = PathBuf::from(journal["key"]["dir"].as_str().unwrap());
    assert!(key_dir.join("etc/ssh/ssh_host_ed25519_key").is_file());
    // A plain re-run refuses and names the way out.
    let plain = w.provision();
    assert!(!plain.status.success());
    assert!(crate::support::unwrapped(&plain.stderr).contains("--resume"));
    let out = w.command().arg("--resume").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let presented = std::fs::read_to_string(w.vm_dir.join("ssh_host_ed25519_key.pub")).unwrap();
    let presented: Vec<&str> = presented.split_whitespace().take(2).collect();
    assert!(std::fs::read_to_string(root.join("hosts.nix"))
        .unwrap()
        .contains(&presented.join(" ")));
    assert_eq!(git(root, &["rev-parse", "HEAD~1"]), w.before_head);
    assert_eq!(git(root, &["status", "--porcelain"]), "");
    assert!(
        !key_dir.exists(),
        "the key directory outlived the resumed run"
    );
    assert!(!root.join(".vmctl/journal/test-automation.json").exists());
    assert!(w.pve.read("running/110").is_some());
}

#[test]
fn kill_9_during_the_install_then_rollback_restores_the_before_state() {
    let w = world(false, "127.0.0.166");
    let root = w.root();
    let mut before = crate::provision_cli::snapshot(root);
    before.retain(|p, _| !p.starts_with(".vmctl") && !p.starts_with(".git"));
    crash_during_install(&w);
    let journal: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join(".vmctl/journal/test-automation.json")).unwrap(),
    )
    .unwrap();
    let key_dir = PathBuf::from(journal["key"]["dir"].as_str().unwrap());
    let out = w.command().arg("--rollback").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(w.pve.conf(110), None, "the run's VM is destroyed");
    let mut after = crate::provision_cli::snapshot(root);
    after.retain(|p, _| !p.starts_with(".vmctl") && !p.starts_with(".git"));
    assert_eq!(
        after, before,
        "the fleet files are as before, byte for byte"
    );
    assert_eq!(git(root, &["rev-parse", "HEAD"]), w.before_head);
    assert!(!key_dir.exists(), "the key directory is removed");
    assert!(!root.join(".vmctl/journal/test-automation.json").exists());
}
