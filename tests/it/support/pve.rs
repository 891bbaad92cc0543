//! Test harness: a real `sshd` on loopback with keys made in a temp directory, the Proxmox
//! simulator (`pve-sim`, a test double) on its sessions' PATH, and per-VM sshds on 127.0.0.N.
//!
//! Every sshd is started on a free port (bind-probe, retried on a race) and killed by its PID
//! when its guard drops, panics included. Missing tools fail the test with the setup command.
//!
//! Self-contained on purpose: the ssh_mux benchmark includes this file by path (and uses part
//! of it); what runs the `vmctl` binary against a `Pve` is in the parent module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vmctl::exec::proxmox::QmProxmox;
use vmctl::exec::remote::SshRemote;
use vmctl::model::{Definitions, Proxmox, Vm, VmKind};
use vmctl::proxmox::ssh::SshTarget;
use vmctl::proxmox::{Fence, RetryPolicy};

pub const SSHD: &str = "/usr/sbin/sshd";

/// Fails the test (never skips) when a tool the tests need is missing.
pub fn require_tools() {
    for (tool, pkg) in [
        (SSHD, "openssh-server"),
        ("/usr/bin/ssh", "openssh-client"),
        ("/usr/bin/ssh-keygen", "openssh-client"),
    ] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: run ./scripts/test.sh (or `apt-get install -y {pkg}`)"
        );
    }
    std::fs::create_dir_all("/run/sshd").expect("mkdir -p /run/sshd (sshd needs it)");
}

fn keygen(path: &Path, comment: &str) -> String {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .status()
        .expect("run ssh-keygen");
    assert!(st.success(), "ssh-keygen failed for {}", path.display());
    std::fs::read_to_string(path.with_extension("pub"))
        .unwrap()
        .trim()
        .to_string()
}

/// A key pair made by ssh-keygen: (private key path, public key line).
pub fn make_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let p = dir.join(name);
    let public = keygen(&p, name);
    (p, public)
}

fn free_port(addr: IpAddr) -> u16 {
    TcpListener::bind(SocketAddr::new(addr, 0))
        .expect("bind a probe socket on loopback")
        .local_addr()
        .unwrap()
        .port()
}

/// How to start one sshd.
pub struct SshdOptions {
    pub addr: Ipv4Addr,
    /// `None`: a free port found by bind-probing.
    pub port: Option<u16>,
    /// Environment every session gets (`SetEnv`), e.g. PATH and PVE_SIM_STATE.
    pub env: Vec<(String, String)>,
    /// Public keys allowed to log in.
    pub authorized_keys: Vec<String>,
}

/// A running sshd; killed by PID on drop.
pub struct Sshd {
    child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub log: PathBuf,
    /// `ssh-ed25519 AAAA…` of its host key.
    pub host_key: String,
}

impl Sshd {
    /// Starts an sshd with its own host key in `dir` (which must exist and outlive it).
    pub fn start(dir: &Path, opts: &SshdOptions) -> Sshd {
        require_tools();
        std::fs::create_dir_all(dir).unwrap();
        let host_key_path = dir.join("ssh_host_ed25519_key");
        let host_key = if host_key_path.exists() {
            std::fs::read_to_string(host_key_path.with_extension("pub"))
                .unwrap()
                .trim()
                .to_string()
        } else {
            keygen(&host_key_path, "test-sshd")
        };
        let host_key = host_key
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let auth = dir.join("authorized_keys");
        std::fs::write(&auth, opts.authorized_keys.join("\n") + "\n").unwrap();
        let env: Vec<String> = opts.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let log = dir.join("sshd.log");
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = opts
                .port
                .unwrap_or_else(|| free_port(IpAddr::V4(opts.addr)));
            let addr = SocketAddr::new(IpAddr::V4(opts.addr), port);
            let config = dir.join("sshd_config");
            let mut text = format!(
                "ListenAddress {addr}\n\
                 HostKey {}\n\
                 PidFile {}\n\
                 AuthorizedKeysFile {}\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 UsePAM no\n\
                 StrictModes no\n\
                 PermitRootLogin prohibit-password\n\
                 LogLevel VERBOSE\n\
                 MaxSessions 64\n\
                 MaxStartups 64\n\
                 PrintMotd no\n\
                 AcceptEnv none\n",
                host_key_path.display(),
                dir.join("sshd.pid").display(),
                auth.display(),
            );
            if !env.is_empty() {
                text.push_str(&format!("SetEnv {}\n", env.join(" ")));
            }
            std::fs::write(&config, text).unwrap();
            let _ = std::fs::remove_file(&log);
            let child = Command::new(SSHD)
                .arg("-D")
                .arg("-f")
                .arg(&config)
                .arg("-E")
                .arg(&log)
                .stdin(Stdio::null())
                .spawn()
                .expect("start sshd");
            let mut sshd = Sshd {
                child,
                addr,
                dir: dir.to_path_buf(),
                log: log.clone(),
                host_key: host_key.clone(),
            };
            if sshd.wait_ready(Duration::from_secs(10)) {
                return sshd;
            }
            last_err = sshd.log_text();
            // Drop kills it; a port race is retried with another port.
        }
        panic!("sshd did not start on {}: {last_err}", opts.addr);
    }

    fn wait_ready(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut s) = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 8];
                if s.read(&mut buf)
                    .map(|n| buf[..n].starts_with(b"SSH-"))
                    .unwrap_or(false)
                {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Connections sshd accepted (authenticated), from its log.
    pub fn accepted_connections(&self) -> usize {
        self.log_text().matches("Accepted publickey for").count()
    }

    /// A known_hosts line for this sshd.
    pub fn known_hosts_line(&self) -> String {
        format!(
            "[{}]:{} {}\n",
            self.addr.ip(),
            self.addr.port(),
            self.host_key
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // Child::kill signals exactly this PID (SIGKILL); then reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The simulator's binary. pve-sim is its own crate (tests/pve-sim) so that installing vmctl
/// never installs it, and `CARGO_BIN_EXE_*` only names binaries of the package under test: the
/// harness builds it once per test process with `cargo build -p pve-sim`, into its own target
/// directory next to the tests' (`target/pve-sim`), since the outer `cargo test` may hold the
/// lock of its own. `VMCTL_PVE_SIM` names a prebuilt binary instead.
pub fn pve_sim_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("VMCTL_PVE_SIM") {
            return PathBuf::from(p);
        }
        // target/<profile>/deps/<test binary> -> target/pve-sim
        let exe = std::env::current_exe().expect("the test binary's path");
        let target = exe
            .ancestors()
            .nth(3)
            .expect("the test binary lives in target/<profile>/deps")
            .join("pve-sim");
        let cargo = std::env::var_os("CARGO")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(option_env!("CARGO").unwrap_or("cargo")));
        let out = Command::new(&cargo)
            .args(["build", "--quiet", "-p", "pve-sim", "--message-format=json"])
            .arg("--target-dir")
            .arg(&target)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("run `{} build -p pve-sim`: {e}", cargo.display()));
        assert!(
            out.status.success(),
            "`cargo build -p pve-sim` failed; run it yourself to see why"
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "pve-sim")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported the pve-sim executable")
    })
    .clone()
}

/// A simulated Proxmox host: sshd on 127.0.0.1 whose sessions run pve-sim as qm/pvesh/pvesm.
pub struct Pve {
    pub root: PathBuf,
    pub state: PathBuf,
    pub ssh_config: PathBuf,
    pub client_key: PathBuf,
    pub sshd: Sshd,
    // Dropped last: sshd must die before its directory goes.
    _tmp: tempfile::TempDir,
}

/// The host name tests use; the test ssh config maps it to the loopback sshd.
pub const HOST: &str = "prom.lan";

impl Pve {
    pub fn start() -> Pve {
        require_tools();
        let tmp = tempfile::Builder::new()
            .prefix("vmctl-pve-")
            .tempdir()
            .unwrap();
        let root = tmp.path().to_path_buf();
        let state = root.join("state");
        let bin = root.join("bin");
        let home = root.join("home");
        for d in [&state, &bin, &home] {
            std::fs::create_dir_all(d).unwrap();
        }
        let sim = pve_sim_bin();
        for name in ["qm", "qmrestore", "pvesh", "pvesm", "ip", "vzdump"] {
            std::os::unix::fs::symlink(&sim, bin.join(name)).unwrap();
        }
        let (client_key, client_pub) = make_key(&root, "client_key");
        let sshd = Sshd::start(
            &root.join("sshd"),
            &SshdOptions {
                addr: Ipv4Addr::LOCALHOST,
                port: None,
                env: vec![
                    (
                        "PATH".into(),
                        format!(
                            "{}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                            bin.display()
                        ),
                    ),
                    ("PVE_SIM_STATE".into(), state.display().to_string()),
                    // Keeps the login shell away from the machine's own ~/.bashrc.
                    ("HOME".into(), home.display().to_string()),
                ],
                authorized_keys: vec![client_pub],
            },
        );
        let known_hosts = root.join("known_hosts");
        std::fs::write(&known_hosts, sshd.known_hosts_line()).unwrap();
        let ssh_config = root.join("ssh_config");
        std::fs::write(
            &ssh_config,
            format!(
                "Host {HOST} pve-test\n\
                 \x20 HostName 127.0.0.1\n\
                 \x20 Port {}\n\
                 \x20 IdentityFile {}\n\
                 \x20 IdentitiesOnly yes\n\
                 \x20 UserKnownHostsFile {}\n\
                 \x20 GlobalKnownHostsFile /dev/null\n\
                 \x20 StrictHostKeyChecking yes\n\
                 \x20 BatchMode yes\n\
                 \x20 LogLevel ERROR\n",
                sshd.addr.port(),
                client_key.display(),
                known_hosts.display()
            ),
        )
        .unwrap();
        let pve = Pve {
            root,
            state,
            ssh_config,
            client_key,
            sshd,
            _tmp: tmp,
        };
        pve.seed_demo();
        pve
    }

    /// The demo cluster: template 9001, readonly doc1 (104, running) and igpu (109, running).
    pub fn seed_demo(&self) {
        self.write("sim.json", r#"{"node":"prom","nodes":["prom","prom2"],"storage_lock_timeout_ms":1500,"clone_ms":0}"#);
        self.write(
            "storage.json",
            r#"[{"name":"local","type":"dir","total":98497780,"used":12345678},
                {"name":"nvmeprom","type":"lvmthin","total":976762584,"used":123456789},
                {"name":"cephpool","type":"rbd","total":1953525168,"used":2000000,"shared":true}]"#,
        );
        self.write_conf(
            9001,
            "#NixOS minimal template with cloud-init and the qemu guest agent\n\
             agent: 1\nboot: order=scsi0\ncores: 2\nmemory: 2048\nname: NixosServerBlank\n\
             net0: virtio=BC:24:11:00:23:29,bridge=vmbr0\nscsi0: nvmeprom:base-9001-disk-0,size=8G\n\
             scsihw: virtio-scsi-single\nserial0: socket\ntemplate: 1\n",
        );
        self.write_conf(
            104,
            "#Docker host for home services\nagent: 1\nboot: order=scsi0\ncores: 8\nmemory: 16384\n\
             name: doc1\nnet0: virtio=BC:24:11:00:01:04,bridge=vmbr0\nprotection: 1\n\
             scsi0: nvmeprom:vm-104-disk-0,size=200G\n",
        );
        self.write_conf(
            109,
            "agent: 1\nboot: order=scsi0\ncores: 4\nhostpci0: 0000:00:02.0\nmemory: 8192\nname: igpu\n\
             net0: virtio=BC:24:11:00:01:09,bridge=vmbr0\nscsi0: nvmeprom:vm-109-disk-0,size=64G\n",
        );
        self.write("running/104", "1\n");
        self.write("running/109", "1\n");
    }

    /// Waits until a command has reached the simulator's gate `name` (see pve_sim.rs): it is
    /// then stopped mid-way until [`Self::open_gate`].
    pub fn wait_gate(&self, name: &str) {
        let reached = self.state.join(format!("gates/{name}.reached"));
        self.wait_until(&format!("gate `{name}` reached"), || reached.exists());
    }

    pub fn open_gate(&self, name: &str) {
        self.write(&format!("gates/{name}.open"), "");
    }

    /// Polls `done` until it holds (at most 30 s): waiting on an event, not on a duration.
    pub fn wait_until(&self, what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..3000 {
            if done() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("timed out waiting for {what}");
    }

    /// Writes a file of the simulator's state (relative path).
    pub fn write(&self, rel: &str, text: &str) {
        let p = self.state.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.state.join(rel)).ok()
    }

    pub fn write_conf(&self, vmid: u32, text: &str) {
        self.write(&format!("nodes/prom/qemu-server/{vmid}.conf"), text);
    }

    pub fn conf(&self, vmid: u32) -> Option<String> {
        self.read(&format!("nodes/prom/qemu-server/{vmid}.conf"))
    }

    pub fn set_faults(&self, json: &str) {
        self.write("faults.json", json);
    }

    /// Every argv the simulator received, in order.
    pub fn argv_log(&self) -> Vec<Vec<String>> {
        self.read("argv.jsonl")
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("argv.jsonl line"))
            .collect()
    }

    /// Every file of the state directory with its bytes, for before/after comparisons.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                // The simulator's flock files (as /var/lock's on Proxmox) are not state: a
                // read takes the state lock, which creates its file.
                if e.file_name() == ".state-lock" || e.file_name() == "locks" {
                    continue;
                }
                if p.is_dir() {
                    out.insert(
                        p.strip_prefix(base).unwrap().to_path_buf(),
                        b"<dir>".to_vec(),
                    );
                    walk(&p, base, out);
                } else {
                    out.insert(
                        p.strip_prefix(base).unwrap().to_path_buf(),
                        std::fs::read(&p).unwrap(),
                    );
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.state, &self.state, &mut out);
        out
    }

    pub fn target(&self) -> SshTarget {
        SshTarget {
            host: HOST.into(),
            user: "root".into(),
            port: None,
            pinned_key: None,
            config_file: Some(self.ssh_config.clone()),
        }
    }

    pub fn connect(&self) -> SshRemote {
        SshRemote::connect(&self.target()).unwrap_or_else(|e| {
            panic!(
                "connect to the test sshd: {e}\nsshd log:\n{}",
                self.sshd.log_text()
            )
        })
    }

    /// The Proxmox client over one connection, with fast retries. The tests create VMs at
    /// VMIDs the demo fleet does not list, so unlisted VMIDs are allowed (`--unlisted`); the
    /// fence tests build their own strict fence.
    pub fn proxmox(&self, defs: &Definitions) -> QmProxmox<SshRemote> {
        QmProxmox::new(
            self.connect(),
            Fence::from_definitions(defs).allow_unlisted(true),
            fast_retry(),
        )
    }

    /// Environment for running the `vmctl` binary against this host.
    pub fn vmctl_env(&self) -> Vec<(String, String)> {
        vec![
            (
                "VMCTL_SSH_CONFIG".into(),
                self.ssh_config.display().to_string(),
            ),
            ("VMCTL_LOCK_RETRIES".into(), "2".into()),
            ("VMCTL_LOCK_BACKOFF_MS".into(), "20".into()),
        ]
    }
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        retries: 3,
        initial: Duration::from_millis(20),
        max: Duration::from_millis(80),
    }
}

/// A simulated VM's own sshd on 127.0.0.N (for end-to-end tests of what runs on the VM).
pub struct VmHost {
    pub sshd: Sshd,
    pub client_key: PathBuf,
    _tmp: tempfile::TempDir,
}

impl VmHost {
    /// Starts an sshd on 127.0.0.`n` (a free port unless `port` is given).
    pub fn start(n: u8, port: Option<u16>) -> VmHost {
        let tmp = tempfile::Builder::new()
            .prefix("vmctl-vm-")
            .tempdir()
            .unwrap();
        let (client_key, client_pub) = make_key(tmp.path(), "client_key");
        let sshd = Sshd::start(
            &tmp.path().join("sshd"),
            &SshdOptions {
                addr: Ipv4Addr::new(127, 0, 0, n),
                port,
                env: vec![("HOME".into(), tmp.path().display().to_string())],
                authorized_keys: vec![client_pub],
            },
        );
        VmHost {
            sshd,
            client_key,
            _tmp: tmp,
        }
    }
}

fn vm(name: &str, kind: VmKind, vmid: u32, readonly: bool) -> Vm {
    Vm {
        readonly,
        ..Vm::new(name, kind, Some(vmid))
    }
}

/// The demo fleet's definitions, built in code (the same VMs as vms/definitions.nix).
pub fn demo_definitions() -> Definitions {
    Definitions {
        proxmox: Proxmox {
            host: Some(HOST.into()),
            node: Some("prom".into()),
            user: "root".into(),
            port: 22,
            storage: Some("nvmeprom".into()),
            bridge: Some("vmbr0".into()),
            host_key: None,
        },
        template: Some(vm("NixosServerBlank", VmKind::Template, 9001, false)),
        imported: vec![
            vm("doc1", VmKind::Imported, 104, true),
            vm("igpu", VmKind::Imported, 109, true),
        ],
        managed: vec![vm("test-automation", VmKind::Managed, 110, false)],
        ..Default::default()
    }
}
