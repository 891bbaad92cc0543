//! The sandbox (scripts/sandbox.sh) end to end: the Proxmox simulator behind a real sshd, guests
//! as real sshds on 127.0.0.N serving their cloud-init keys, the labelled nixos-anywhere
//! stand-in and its fault switch, and `down` stopping every process it started. Also the
//! simulator's cloud-init and device formats, over the plain `Pve` harness.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::pve::{make_key, pve_sim_bin, Pve, HOST};
use crate::support::{repo, require_tool, text};

/// A sandbox brought up in a temp directory; brought down (by `sandbox.sh down`) on drop.
pub(crate) struct Sandbox {
    pub(crate) dir: PathBuf,
    pub(crate) env: Vec<(String, String)>,
    down: bool,
    _tmp: tempfile::TempDir,
}

fn script() -> PathBuf {
    repo().join("scripts/sandbox.sh")
}

/// The exported variables of DIR/env, with PATH resolved against this process's PATH.
fn read_env(dir: &Path) -> Vec<(String, String)> {
    let path = std::env::var("PATH").unwrap_or_default();
    std::fs::read_to_string(dir.join("env"))
        .expect("sandbox.sh up writes DIR/env")
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("\"$PATH\"", &path)))
        .collect()
}

impl Sandbox {
    pub(crate) fn up() -> Sandbox {
        Self::up_with(&[])
    }

    fn up_with(args: &[&Path]) -> Sandbox {
        Self::up_env(args, &[])
    }

    /// `sandbox.sh up DIR ARGS` with `env` added to its environment.
    pub(crate) fn up_env(args: &[&Path], env: &[(&str, &str)]) -> Sandbox {
        require_tool("nix-instantiate");
        require_tool("git");
        require_tool("python3");
        crate::support::pve::require_tools();
        let tmp = tempfile::Builder::new()
            .prefix("vmctl-sandbox-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().join("sbx");
        let out = Command::new(script())
            .env("PATH", crate::support::secrets::path_with_sops())
            .arg("up")
            .arg(&dir)
            .args(args)
            .env("VMCTL_PVE_SIM", pve_sim_bin())
            .env("VMCTL_BIN", env!("CARGO_BIN_EXE_vmctl"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "sandbox.sh up: {}", text(&out.stderr));
        let env = read_env(&dir);
        Sandbox {
            dir,
            env,
            down: false,
            _tmp: tmp,
        }
    }

    pub(crate) fn var(&self, key: &str) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("DIR/env has no {key}"))
    }

    fn ssh_config(&self) -> PathBuf {
        self.dir.join("ssh_config")
    }

    /// `ssh -F DIR/ssh_config ARGS` with the sandbox's environment.
    fn ssh(&self, args: &[&str]) -> Output {
        Command::new("ssh")
            .arg("-F")
            .arg(self.ssh_config())
            .args(args)
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// A command on the Proxmox host, through the ssh config; panics on failure.
    pub(crate) fn pve(&self, command: &str) -> String {
        let out = self.ssh(&[HOST, command]);
        assert!(
            out.status.success(),
            "`{command}` on the Proxmox host: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    pub(crate) fn guest_file(&self, vmid: u32, rel: &str) -> PathBuf {
        self.dir
            .join("pve/state/guests")
            .join(vmid.to_string())
            .join(rel)
    }

    /// The host key the simulated VM printed on its console at its last boot (cloud-init's
    /// `BEGIN SSH HOST KEY KEYS` block), as `TYPE BASE64`.
    pub(crate) fn console_host_key(&self, vmid: u32) -> String {
        let log = std::fs::read_to_string(self.guest_file(vmid, "console.log")).unwrap();
        let block = log
            .rsplit("-----BEGIN SSH HOST KEY KEYS-----\n")
            .next()
            .unwrap();
        block.lines().next().unwrap().to_string()
    }

    /// Pins `key` for VM `vmid`'s address in the known_hosts the ssh config names.
    fn pin(&self, vmid: u32, key: &str) {
        let addr = guest_addr(vmid);
        std::fs::write(
            self.dir.join("known_hosts.vms"),
            format!("[{addr}]:{} {key}\n", self.var("SANDBOX_VM_PORT")),
        )
        .unwrap();
    }

    /// Clones the template to `vmid`, gives it a cloud-init drive with a fresh admin key
    /// (uploaded to the Proxmox host over ssh, as vmctl will), starts it, and pins the host key
    /// it printed. Returns the directory of the test's keys and the admin's private key.
    fn boot_vm(&self, vmid: u32, name: &str) -> (PathBuf, PathBuf) {
        let keys = self.dir.join(format!("test-keys-{vmid}"));
        std::fs::create_dir_all(&keys).unwrap();
        let (admin, _) = make_key(&keys, "admin");
        let upload = self.dir.join(format!("upload-{vmid}.pub"));
        let out = Command::new("ssh")
            .arg("-F")
            .arg(self.ssh_config())
            .arg(HOST)
            .arg(format!("cat > {}", upload.display()))
            .stdin(std::fs::File::open(admin.with_extension("pub")).unwrap())
            .output()
            .unwrap();
        assert!(out.status.success(), "upload the cloud-init keys");
        self.pve(&format!(
            "qm clone 9001 {vmid} --name {name} --full 1 --storage nvmeprom && \
             qm set {vmid} --ide2 nvmeprom:cloudinit --ciuser root --sshkeys {} \
               --ipconfig0 ip=dhcp --ciupgrade 0 --agent enabled=1 && \
             qm start {vmid}",
            upload.display()
        ));
        self.pin(vmid, &self.console_host_key(vmid));
        (keys, admin)
    }

    /// `ssh -i KEY 127.0.0.N COMMAND` to a simulated VM, host key checked against the pin.
    fn vm_ssh(&self, vmid: u32, key: &Path, command: &str) -> Output {
        self.ssh(&[
            "-i",
            &key.display().to_string(),
            "-o",
            "IdentitiesOnly=yes",
            &guest_addr(vmid),
            command,
        ])
    }

    /// The stand-in installer from DIR/bin, run in the fleet as a user would.
    fn install(&self, args: &[&str], fault: Option<&str>) -> Output {
        let mut cmd = Command::new(self.dir.join("bin/nixos-anywhere"));
        cmd.args(args)
            .current_dir(self.dir.join("fleet"))
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null());
        match fault {
            Some(f) => cmd.env("SANDBOX_INSTALLER_FAULT", f),
            None => cmd.env_remove("SANDBOX_INSTALLER_FAULT"),
        };
        cmd.output().unwrap()
    }

    /// The install vmctl will run: `.#test-automation` on VM 110 with `extra` and `key`.
    fn install_vm(&self, key: &Path, extra: &Path, more: &[&str], fault: Option<&str>) -> Output {
        let (key, extra) = (key.display().to_string(), extra.display().to_string());
        let mut args = vec![
            "--flake",
            ".#test-automation",
            "--extra-files",
            &extra,
            "-i",
            &key,
        ];
        args.extend_from_slice(more);
        args.push("root@127.0.0.110");
        self.install(&args, fault)
    }

    /// Every PID the sandbox started and still records: its Proxmox sshd and its guests'.
    fn recorded_pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = std::fs::read_to_string(self.dir.join("pids"))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        if let Ok(rd) = std::fs::read_dir(self.dir.join("pve/state/guests")) {
            for e in rd.flatten() {
                if let Ok(t) = std::fs::read_to_string(e.path().join("sshd.pid")) {
                    pids.push(t.trim().parse().unwrap());
                }
            }
        }
        pids
    }

    fn down(&mut self) -> Output {
        self.down = true;
        Command::new(script())
            .env("PATH", crate::support::secrets::path_with_sops())
            .arg("down")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if !self.down {
            let _ = self.down();
        }
    }
}

fn guest_addr(vmid: u32) -> String {
    format!(
        "127.{}.{}.{}",
        (vmid >> 16) & 255,
        (vmid >> 8) & 255,
        vmid & 255
    )
}

/// A process is gone when /proc has no entry for it (or only its zombie, waiting for init).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// `--extra-files` as vmctl will build it: etc/ssh 0755, the private key 0600, the .pub 0644.
fn extra_files(dir: &Path) -> (PathBuf, String) {
    use std::os::unix::fs::PermissionsExt;
    let root = dir.join("extra-files");
    let ssh = root.join("etc/ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (private, public) = make_key(&ssh, "ssh_host_ed25519_key");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    let public: String = public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    (root, public)
}

fn key_of_agent(json: &str, mac: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).expect("agent JSON");
    v.as_array()
        .unwrap()
        .iter()
        .filter(|i| i["hardware-address"].as_str() == Some(mac))
        .flat_map(|i| i["ip-addresses"].as_array().unwrap().iter())
        .filter(|a| a["ip-address-type"] == "ipv4")
        .map(|a| a["ip-address"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn up_provision_steps_install_and_down_end_to_end() {
    let mut sbx = Sandbox::up();
    // The fleet is a git repository with one commit and nothing uncommitted.
    let fleet = sbx.dir.join("fleet");
    let log = Command::new("git")
        .args(["log", "--oneline"])
        .current_dir(&fleet)
        .output()
        .unwrap();
    assert_eq!(
        text(&log.stdout).lines().count(),
        1,
        "{}",
        text(&log.stdout)
    );
    let status = Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(&fleet)
        .output()
        .unwrap();
    assert_eq!(text(&status.stdout), "");
    assert!(fleet.join("vms/definitions.nix").is_file() && fleet.join(".sops.yaml").is_file());

    // The fleet's Proxmox host, reached through the sandbox's ssh config: the cluster holds
    // the fleet's template and imported VMs.
    assert_eq!(sbx.var("SANDBOX_PROXMOX_HOST"), HOST);
    let list = sbx.pve("qm list");
    for name in ["NixosServerBlank", "doc1", "igpu"] {
        assert!(list.contains(name), "{list}");
    }
    assert!(!list.contains("test-automation"), "{list}");

    let (keys, admin) = sbx.boot_vm(110, "test-automation");
    let config = sbx.pve("qm config 110");
    assert!(config.contains("ciuser: root") && config.contains("ciupgrade: 0"));
    assert!(config.contains("sshkeys: ssh-ed25519%20"), "{config}");

    // The guest agent reports net0's MAC with the VM's loopback address.
    let mac = config
        .lines()
        .find_map(|l| l.strip_prefix("net0: virtio="))
        .and_then(|v| v.split(',').next())
        .unwrap()
        .to_ascii_lowercase();
    let agent = sbx.pve("qm guest cmd 110 network-get-interfaces");
    assert_eq!(key_of_agent(&agent, &mac), vec!["127.0.0.110".to_string()]);

    // The cloud-init key logs in; the host key is the one the console printed (pinned).
    let out = sbx.vm_ssh(110, &admin, "hostname");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "test-automation");
    let (stranger, _) = make_key(&keys, "stranger");
    assert!(!sbx.vm_ssh(110, &stranger, "true").status.success());
    let image_key = sbx.console_host_key(110);

    // The stand-in installs the --extra-files host key and reboots the VM.
    let (extra, host_pub) = extra_files(&keys);
    let out = sbx.install_vm(&admin, &extra, &["--build-on-remote"], None);
    assert!(out.status.success(), "stand-in: {}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("stand-in") && err.contains("### Done! ###"),
        "{err}"
    );
    assert!(std::fs::read_to_string(sbx.dir.join("nixos-anywhere.log"))
        .unwrap()
        .contains("--flake .#test-automation"));

    // After the "reboot" the pinned image key is refused, the installed key is what it shows.
    assert_ne!(image_key, host_pub);
    let out = sbx.vm_ssh(110, &admin, "true");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{}",
        text(&out.stderr)
    );
    sbx.pin(110, &host_pub);
    let out = sbx.vm_ssh(110, &admin, "hostname && nixos-version");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("test-automation\n"));
    assert!(text(&out.stdout).contains("sandbox"));

    // down stops every process the sandbox recorded.
    let pids = sbx.recorded_pids();
    assert_eq!(
        pids.len(),
        2,
        "the Proxmox sshd and one guest sshd: {pids:?}"
    );
    assert!(pids.iter().all(|p| alive(*p)));
    let out = sbx.down();
    assert!(out.status.success(), "{}", text(&out.stderr));
    for pid in pids {
        assert!(!alive(pid), "PID {pid} survived sandbox.sh down");
    }
}

#[test]
fn stop_kills_the_guest_sshd_and_the_agent_goes_quiet() {
    let sbx = Sandbox::up();
    let (_, admin) = sbx.boot_vm(120, "stopper");
    let pid: u32 = std::fs::read_to_string(sbx.guest_file(120, "sshd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid));
    sbx.pve("qm shutdown 120");
    assert!(!alive(pid), "the guest sshd outlived qm shutdown");
    assert!(!sbx.vm_ssh(120, &admin, "true").status.success());
    let out = sbx.ssh(&[HOST, "qm guest cmd 120 network-get-interfaces"]);
    assert!(text(&out.stderr).contains("QEMU guest agent is not running"));
    // With the agent off in the config there is no agent to ask, running or not.
    sbx.pve("qm set 120 --agent enabled=0");
    let out = sbx.ssh(&[HOST, "qm guest cmd 120 network-get-interfaces"]);
    assert!(text(&out.stderr).contains("No QEMU guest agent configured"));
    sbx.pve("qm set 120 --agent 1");
    // A new boot keeps the disk's host key; a destroyed VM's disk is gone.
    let key = sbx.console_host_key(120);
    sbx.pve("qm start 120");
    assert!(sbx.vm_ssh(120, &admin, "true").status.success());
    assert_eq!(sbx.console_host_key(120), key);
    sbx.pve("qm stop 120 && qm destroy 120");
    assert!(!sbx.guest_file(120, "").exists());
}

#[test]
fn stand_in_other_host_key_fault_presents_a_key_not_installed() {
    let sbx = Sandbox::up();
    let (keys, admin) = sbx.boot_vm(110, "test-automation");
    let (extra, host_pub) = extra_files(&keys);
    let extra = extra.display().to_string();
    let key = admin.display().to_string();
    let out = sbx.install(
        &[
            "-f",
            ".#test-automation",
            "--extra-files",
            &extra,
            "-i",
            &key,
            "--target-host",
            "root@127.0.0.110",
        ],
        Some("other-host-key"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    sbx.pin(110, &host_pub);
    let out = sbx.vm_ssh(110, &admin, "true");
    assert!(!out.status.success(), "the VM presented the installed key");
    assert!(text(&out.stderr).contains("REMOTE HOST IDENTIFICATION HAS CHANGED"));
    assert_ne!(sbx.console_host_key(110), host_pub);
}

#[test]
fn stand_in_failures_and_refusals() {
    let sbx = Sandbox::up();
    let (keys, admin) = sbx.boot_vm(110, "test-automation");
    let image_key = sbx.console_host_key(110);
    let (extra, _) = extra_files(&keys);
    let extra = extra.display().to_string();
    let key = admin.display().to_string();
    let run = |flake: &str, target: &str, key: &str, fault: Option<&str>| {
        let out = sbx.install(
            &["--flake", flake, "--extra-files", &extra, "-i", key, target],
            fault,
        );
        assert!(
            !out.status.success(),
            "{flake} {target} {fault:?} succeeded"
        );
        text(&out.stderr)
    };
    // The fault switch fails at a phase, before the disk is touched.
    let err = run(
        ".#test-automation",
        "root@127.0.0.110",
        &key,
        Some("fail:disko"),
    );
    assert!(err.contains("disko failed (sandbox fault)"), "{err}");
    // The real one's checks: the flake attribute, git-tracked, the key, loopback only.
    let err = run(".#nope", "root@127.0.0.110", &key, None);
    assert!(err.contains("does not provide attribute"), "{err}");
    std::fs::create_dir_all(sbx.dir.join("fleet/hosts/untracked")).unwrap();
    std::fs::write(sbx.dir.join("fleet/hosts/untracked/default.nix"), "{ }\n").unwrap();
    let err = run(".#untracked", "root@127.0.0.110", &key, None);
    assert!(err.contains("git add hosts/untracked"), "{err}");
    let (stranger, _) = make_key(&keys, "stranger");
    let err = run(
        ".#test-automation",
        "root@127.0.0.110",
        &stranger.display().to_string(),
        None,
    );
    assert!(err.contains("cannot reach root@127.0.0.110"), "{err}");
    let err = run(".#test-automation", "root@192.168.1.50", &key, None);
    assert!(err.contains("only connects to loopback"), "{err}");
    // None of that changed the VM: it still presents its image key.
    assert_eq!(sbx.console_host_key(110), image_key);
    assert!(sbx.vm_ssh(110, &admin, "true").status.success());
    // --help says what it is.
    let out = Command::new(sbx.dir.join("bin/nixos-anywhere"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(text(&out.stdout).contains("THIS IS A STAND-IN"));
}

#[test]
fn stand_in_no_ssh_fault_boots_without_sshd() {
    let sbx = Sandbox::up();
    let (keys, admin) = sbx.boot_vm(110, "test-automation");
    let (extra, host_pub) = extra_files(&keys);
    let out = sbx.install_vm(&admin, &extra, &[], Some("no-ssh"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    sbx.pin(110, &host_pub);
    let out = sbx.vm_ssh(110, &admin, "true");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("Connection refused"),
        "{}",
        text(&out.stderr)
    );
    // The VM runs and its agent still answers: only SSH is missing.
    let list = sbx.pve("qm status 110");
    assert!(list.contains("running"));
}

#[test]
fn ssh_config_maps_the_fleet_host_and_refuses_the_rest() {
    let sbx = Sandbox::up();
    // vmctl itself, run with DIR/env in the fleet copy, reaches the sandbox's cluster.
    let out = crate::support::vmctl_cmd()
        .args(["ops", "list"])
        .envs(sbx.env.iter().cloned())
        .current_dir(sbx.dir.join("fleet"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("NixosServerBlank"));
    let out = sbx.ssh(&["192.168.1.1", "true"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("outside the sandbox"),
        "{}",
        text(&out.stderr)
    );
    // The Proxmox host's key is pinned: a known_hosts with another key is refused.
    std::fs::write(
        sbx.dir.join("known_hosts"),
        "[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n",
    )
    .unwrap();
    assert!(!sbx.ssh(&[HOST, "true"]).status.success());
}

#[test]
fn up_refuses_a_used_directory_and_down_refuses_a_stranger() {
    let sbx = Sandbox::up();
    let out = Command::new(script())
        .env("PATH", crate::support::secrets::path_with_sops())
        .arg("up")
        .arg(&sbx.dir)
        .env("VMCTL_PVE_SIM", pve_sim_bin())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("running sandbox"),
        "{}",
        text(&out.stderr)
    );
    let other = tempfile::tempdir().unwrap();
    let out = Command::new(script())
        .env("PATH", crate::support::secrets::path_with_sops())
        .arg("down")
        .arg(other.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("is not a sandbox"));
}

// ------------------------------------------------------------ simulator formats (no sandbox)

/// `qm ARGS` on a plain simulated host: (success, stdout + stderr).
fn qm(pve: &Pve, args: &str) -> (bool, String) {
    let out = Command::new("ssh")
        .arg("-F")
        .arg(&pve.ssh_config)
        .arg(HOST)
        .arg(format!("qm {args}"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (out.status.success(), text(&out.stdout) + &text(&out.stderr))
}

#[test]
fn simulator_checks_cloud_init_and_device_formats_as_proxmox_does() {
    let pve = Pve::start();
    assert!(qm(&pve, "clone 9001 110 --name t --full 1").0);
    let cases: &[(&str, Option<&str>)] = &[
        ("--ipconfig0 ip=dhcp", Some("ipconfig0: ip=dhcp")),
        (
            "--ipconfig0 ip=192.168.1.50/24,gw=192.168.1.1",
            Some("ipconfig0: ip=192.168.1.50/24,gw=192.168.1.1"),
        ),
        ("--ipconfig0 ip=dhcp,gw=192.168.1.1", None),
        ("--ipconfig0 gw=192.168.1.1", None),
        ("--ipconfig0 ip=192.168.1.50", None),
        ("--ipconfig0 ip=300.1.1.1/24", None),
        ("--ciupgrade 0", Some("ciupgrade: 0")),
        ("--ciupgrade maybe", None),
        ("--agent enabled=1", Some("agent: enabled=1")),
        ("--agent enabled=2", None),
        ("--serial0 socket", Some("serial0: socket")),
        ("--serial0 telnet", None),
        ("--tags 'Test;vmctl,test web'", Some("tags: test;vmctl;web")),
        ("--tags '-bad'", None),
        (
            "--net0 virtio=BC:24:11:AA:BB:CC,bridge=vmbr1,tag=20",
            Some("net0: virtio=BC:24:11:AA:BB:CC,bridge=vmbr1,tag=20"),
        ),
        // A model without a MAC keeps the interface's MAC, as Proxmox does.
        (
            "--net0 virtio,bridge=vmbr0",
            Some("net0: virtio=BC:24:11:AA:BB:CC,bridge=vmbr0"),
        ),
        ("--net0 virtio,bridge=vmbr0,tag=4095", None),
        ("--net0 bridge=vmbr0", None),
        ("--net0 virtio=BC:24:11,bridge=vmbr0", None),
    ];
    for (args, stored) in cases {
        let (ok, out) = qm(&pve, &format!("set 110 {args}"));
        let config = qm(&pve, "config 110").1;
        match stored {
            Some(line) => {
                assert!(ok, "{args}: {out}");
                assert!(config.lines().any(|l| l == *line), "{args}: {config}");
            }
            None => {
                assert!(!ok, "{args} was accepted");
                assert!(
                    out.contains("400 Parameter verification failed"),
                    "{args}: {out}"
                );
            }
        }
    }
    // A file of keys that are not keys is refused; the keys are stored URL-encoded.
    let bad = pve.root.join("bad.pub");
    std::fs::write(&bad, "not a key\n").unwrap();
    assert!(!qm(&pve, &format!("set 110 --sshkeys {}", bad.display())).0);
    let good = pve.root.join("good.pub");
    std::fs::write(&good, "# admins\nssh-ed25519 AAAAC3Nza+/= a@b\n").unwrap();
    assert!(qm(&pve, &format!("set 110 --sshkeys {}", good.display())).0);
    assert!(qm(&pve, "config 110")
        .1
        .contains("sshkeys: %23%20admins%0Assh-ed25519%20AAAAC3Nza%2B%2F%3D%20a%40b%0A"));
}

#[test]
fn simulator_disk_resize_grows_only() {
    let pve = Pve::start();
    assert!(qm(&pve, "clone 9001 110 --name t --full 1").0);
    assert!(qm(&pve, "disk resize 110 scsi0 20G").0);
    assert!(qm(&pve, "config 110").1.contains("size=20G"));
    assert!(qm(&pve, "resize 110 scsi0 +4G").0);
    assert!(qm(&pve, "config 110").1.contains("size=24G"));
    // The same size is a no-op; smaller is refused.
    assert!(qm(&pve, "disk resize 110 scsi0 24G").0);
    let (ok, out) = qm(&pve, "disk resize 110 scsi0 10G");
    assert!(
        !ok && out.contains("shrinking disks is not supported"),
        "{out}"
    );
    assert!(qm(&pve, "config 110").1.contains("size=24G"));
}

#[test]
fn sandbox_guests_are_off_without_the_sandbox_setting() {
    // The plain harness (every other ops test) keeps its behaviour: no guest sshd, the agent
    // reports agent/ID.json.
    let pve = Pve::start();
    assert!(qm(&pve, "clone 9001 110 --name t --full 1").0);
    assert!(qm(&pve, "start 110").0);
    assert!(!pve.state.join("guests/110").exists());
    pve.write("agent/110.json", r#"["192.168.1.50/24"]"#);
    let (ok, out) = qm(&pve, "guest cmd 110 network-get-interfaces");
    assert!(ok && out.contains("192.168.1.50"), "{out}");
}

#[test]
fn fleet_dir_argument_copies_another_fleet() {
    // A fleet elsewhere: everything but its .git is copied, and its proxmox.host is mapped.
    let src = tempfile::tempdir().unwrap();
    crate::support::copy_dir(&repo().join("vms"), &src.path().join("vms"));
    crate::support::copy_dir(&repo().join("hosts"), &src.path().join("hosts"));
    let defs = src.path().join("vms/definitions.nix");
    let t = std::fs::read_to_string(&defs)
        .unwrap()
        .replace("host = \"prom.lan\";", "host = \"192.168.1.10\";");
    std::fs::write(&defs, t).unwrap();
    std::fs::create_dir_all(src.path().join(".git")).unwrap();
    std::fs::write(src.path().join(".git/marker"), "x").unwrap();
    let sbx = Sandbox::up_with(&[src.path()]);
    assert_eq!(sbx.var("SANDBOX_PROXMOX_HOST"), "192.168.1.10");
    assert!(!sbx.dir.join("fleet/.git/marker").exists());
    let out = sbx.ssh(&["192.168.1.10", "qm list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("NixosServerBlank"));
}

#[test]
fn simulator_dumps_the_cloud_init_data_it_was_given() {
    let pve = Pve::start();
    assert!(qm(&pve, "clone 9001 110 --name test-automation --full 1").0);
    let keys = pve.root.join("keys.pub");
    std::fs::write(&keys, "ssh-ed25519 AAAAC3Nza admin@ws\n").unwrap();
    let set = format!(
        "set 110 --ide2 nvmeprom:cloudinit --ciuser root --sshkeys {} --ciupgrade 0 \
         --ipconfig0 ip=192.168.1.50/24,gw=192.168.1.1 --nameserver 192.168.1.1",
        keys.display()
    );
    assert!(qm(&pve, &set).0);
    let (ok, user) = qm(&pve, "cloudinit dump 110 user");
    assert!(ok, "{user}");
    for line in [
        "hostname: test-automation",
        "user: root",
        "  - ssh-ed25519 AAAAC3Nza admin@ws",
        "package_upgrade: false",
    ] {
        assert!(user.lines().any(|l| l == line), "{line}: {user}");
    }
    let (_, network) = qm(&pve, "cloudinit dump 110 network");
    for line in [
        "      mac_address: 'bc:24:11:00:00:6e'",
        "        address: '192.168.1.50'",
        "        netmask: '255.255.255.0'",
        "        gateway: '192.168.1.1'",
        "      - '192.168.1.1'",
    ] {
        assert!(network.lines().any(|l| l == line), "{line}: {network}");
    }
    // The instance-id follows the data: a new IP is a new instance.
    let (_, meta) = qm(&pve, "cloudinit dump 110 meta");
    assert!(qm(&pve, "set 110 --ipconfig0 ip=dhcp").0);
    let (_, meta2) = qm(&pve, "cloudinit dump 110 meta");
    assert!(meta.starts_with("instance-id: ") && meta != meta2);
    assert!(qm(&pve, "cloudinit dump 110 network")
        .1
        .contains("- type: dhcp4"));
    assert!(!qm(&pve, "cloudinit dump 110 vendorx").0);
}

#[test]
fn demo_fleet_copy_is_rekeyable_with_the_sandbox_admin() {
    use crate::support::secrets::sops_bin;
    let sbx = Sandbox::up();
    let fleet = sbx.dir.join("fleet");
    let admin = sbx.dir.join("keys/admin");
    // The sandbox admin replaced the demo admin in hosts.nix (the cloud-init key) and in
    // .sops.yaml (its ssh-to-age recipient).
    let public = std::fs::read_to_string(admin.with_extension("pub")).unwrap();
    let public: Vec<&str> = public.split_whitespace().take(2).collect();
    let hosts = std::fs::read_to_string(fleet.join("hosts.nix")).unwrap();
    assert!(hosts.contains(&public.join(" ")), "{hosts}");
    let recipient = vmctl::keys::PublicKey::parse(&public.join(" "))
        .unwrap()
        .age_recipient()
        .unwrap();
    let sops_yaml = std::fs::read_to_string(fleet.join(".sops.yaml")).unwrap();
    assert!(sops_yaml.contains(&recipient) && !sops_yaml.contains("age18ezvkljgmxh28"));
    // Its age identity decrypts the copy's secrets with the real sops (the oracle).
    let private = std::fs::read_to_string(&admin).unwrap();
    let identity = vmctl::keys::PrivateKey::parse_openssh(&private)
        .unwrap()
        .age_identity();
    let decrypt = || {
        Command::new(sops_bin())
            .args(["-d", "secrets/common.yaml"])
            .current_dir(&fleet)
            .env("SOPS_AGE_KEY", &identity)
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .env_remove("SOPS_AGE_KEY_FILE")
            .env_remove("SOPS_AGE_SSH_PRIVATE_KEY_FILE")
            .output()
            .unwrap()
    };
    let out = decrypt();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("greeting: sandbox-placeholder"));
    // vmctl, with DIR/env alone, re-keys: drop igpu from the rule and rekey.
    let without_igpu: String = sops_yaml
        .lines()
        .filter(|l| !l.contains("# igpu"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(fleet.join(".sops.yaml"), without_igpu).unwrap();
    let out = crate::support::vmctl_cmd()
        .args(["secrets", "rekey"])
        .envs(sbx.env.iter().cloned())
        .env("HOME", sbx.dir.join("pve/home"))
        .current_dir(&fleet)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let common = std::fs::read_to_string(fleet.join("secrets/common.yaml")).unwrap();
    assert_eq!(common.matches("recipient: age1").count(), 2, "{common}");
    assert!(decrypt().status.success());
}

#[test]
fn without_the_reboot_phase_the_installed_key_waits_for_the_next_boot() {
    let sbx = Sandbox::up();
    let (keys, admin) = sbx.boot_vm(110, "test-automation");
    let image_key = sbx.console_host_key(110);
    let (extra, host_pub) = extra_files(&keys);
    let out = sbx.install_vm(&admin, &extra, &["--no-reboot"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("### Rebooting ###"));
    // The running system still presents the image key (pinned), until `qm reboot`.
    assert!(sbx.vm_ssh(110, &admin, "true").status.success());
    sbx.pve("qm reboot 110");
    assert_ne!(image_key, host_pub);
    assert_eq!(sbx.console_host_key(110), host_pub);
    sbx.pin(110, &host_pub);
    let out = sbx.vm_ssh(110, &admin, "nixos-version");
    assert!(out.status.success(), "{}", text(&out.stderr));
}
