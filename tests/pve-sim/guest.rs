//! The sandbox's guests: when `sim.json` has `"guest_sshd": {"port": P}`, a started VM is a
//! real sshd on 127.X.Y.Z:P (the VMID's bytes), serving what cloud-init gave it.
//!
//! A guest's files live in `guests/ID/`: `root/` is its filesystem (`etc/ssh/ssh_host_*`,
//! `root/.ssh/authorized_keys`, `etc/hostname`, `etc/NIXOS` once installed), `sshd_config`,
//! `sshd.pid`, `sshd.log`, and `console.log` (what a serial console shows, including the host
//! key block cloud-init prints on boot). Inside a guest's sessions `reboot`, `hostname` and
//! `nixos-version` are this binary (`guests/bin/`), so a reboot restarts the sshd with the host
//! keys then on the guest's disk, as a real reboot would.
//!
//! Without `guest_sshd` nothing here runs: the simulator then behaves as it always did (the
//! guest agent reports `agent/ID.json`).

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{exit, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::conf::*;
use crate::die;
use crate::sim::Sim;

pub(crate) const SSHD: &str = "/usr/sbin/sshd";

/// The loopback address of a guest: 127 and the VMID's three low bytes (VMID 110 is
/// 127.0.0.110). Linux routes all of 127/8 to `lo`, so every guest gets its own address.
pub(crate) fn guest_addr(vmid: u32) -> Ipv4Addr {
    if vmid >= 1 << 24 {
        die(&format!(
            "pve-sim sandbox: VMID {vmid} has no loopback address (the sandbox serves VMIDs below 16777216)"
        ));
    }
    Ipv4Addr::new(127, (vmid >> 16) as u8, (vmid >> 8) as u8, vmid as u8)
}

impl Sim {
    /// The port every guest sshd of this sandbox listens on, when the sandbox is on.
    pub(crate) fn guest_port(&self) -> Option<u16> {
        self.settings
            .get("guest_sshd")
            .and_then(|g| g.get("port"))
            .and_then(Value::as_u64)
            .map(|p| p as u16)
    }

    pub(crate) fn guest_dir(&self, vmid: u32) -> PathBuf {
        self.dir.join("guests").join(vmid.to_string())
    }

    /// The PID of a guest's sshd if it is alive and is that guest's sshd (a recycled PID is
    /// never taken for it: its command line must name this guest's config).
    pub(crate) fn guest_pid(&self, vmid: u32) -> Option<u32> {
        let dir = self.guest_dir(vmid);
        let pid: u32 = fs::read_to_string(dir.join("sshd.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let config = dir.join("sshd_config");
        String::from_utf8_lossy(&cmdline)
            .contains(&*config.to_string_lossy())
            .then_some(pid)
    }

    /// Boots a guest: cloud-init's first boot makes the image's host key and installs the
    /// `--sshkeys` for `ciuser`; then its sshd starts. Dies (as `qm start` would fail) when
    /// the sshd cannot start.
    pub(crate) fn start_guest(&self, vmid: u32, conf: &Conf) {
        let Some(port) = self.guest_port() else {
            return;
        };
        let addr = guest_addr(vmid);
        let dir = self.guest_dir(vmid);
        let root = dir.join("root");
        let ssh = root.join("etc/ssh");
        let home = root.join("root");
        for d in [&ssh, &home.join(".ssh"), &self.dir.join("guests/bin")] {
            fs::create_dir_all(d).unwrap_or_else(|e| die(&format!("pve-sim: {e}")));
        }
        self.install_guest_bin();
        let name = conf.get("name").unwrap_or("nixos").to_string();
        let installed = root.join("etc/NIXOS").exists();
        let cloud_init = conf
            .main
            .iter()
            .any(|(k, v)| is_disk_key(k) && v.contains("cloudinit"));
        let host_key = ssh.join("ssh_host_ed25519_key");
        let mut console = String::new();
        // An image (or a new install without keys of its own) makes a fresh host key on its
        // first boot; later boots keep the key on the disk.
        if !host_key.exists() {
            keygen(&host_key, &format!("root@{name}"));
        }
        let authorized = home.join(".ssh/authorized_keys");
        if !installed && cloud_init {
            // cloud-init: the hostname and the keys of `--sshkeys` for the user of `--ciuser`.
            if !root.join("etc/hostname").exists() {
                self.write(&root.join("etc/hostname"), &format!("{name}\n"));
            }
            let keys = conf.get("sshkeys").map(percent_decode).unwrap_or_default();
            self.write(&authorized, &keys);
            console.push_str(&format!("cloud-init: instance {name} (VM {vmid}) up\n"));
        } else if !authorized.exists() {
            // No cloud-init drive: nobody's key reaches the image.
            self.write(&authorized, "");
        }
        let public = fs::read_to_string(host_key.with_extension("pub"))
            .unwrap_or_default()
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        console.push_str(&format!(
            "-----BEGIN SSH HOST KEY KEYS-----\n{public}\n-----END SSH HOST KEY KEYS-----\n"
        ));
        let user = if installed {
            "root".to_string()
        } else {
            conf.get("ciuser").unwrap_or("root").to_string()
        };
        if root.join("etc/sandbox-no-sshd").exists() {
            // The installer stand-in's `no-ssh` fault: the system boots, its sshd never does.
            console.push_str("sshd.service: failed (sandbox fault)\n");
            return self.append_console(vmid, &console);
        }
        // The running system holds its key in memory: the sshd serves a copy, so the disk
        // can be wiped and re-installed under it (as after kexec) until the next boot.
        let run = dir.join("run");
        fs::create_dir_all(&run).unwrap_or_else(|e| die(&format!("pve-sim: {e}")));
        let live_key = run.join("ssh_host_ed25519_key");
        fs::copy(&host_key, &live_key)
            .unwrap_or_else(|e| die(&format!("pve-sim: cannot copy the guest's host key: {e}")));
        let config = dir.join("sshd_config");
        let text = format!(
            "ListenAddress {}\n\
             HostKey {}\n\
             PidFile {}\n\
             AuthorizedKeysFile {}\n\
             AllowUsers {user}\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes no\n\
             PermitRootLogin prohibit-password\n\
             LogLevel VERBOSE\n\
             PrintMotd no\n\
             AcceptEnv none\n\
             SetEnv PATH={}:/usr/local/bin:/usr/bin:/bin HOME={} PVE_SIM_STATE={} PVE_SIM_VMID={vmid} VM_ROOT={}\n",
            SocketAddr::new(addr.into(), port),
            live_key.display(),
            dir.join("sshd.pid").display(),
            home.join(".ssh/authorized_keys").display(),
            self.dir.join("guests/bin").display(),
            home.display(),
            self.dir.display(),
            root.display(),
        );
        self.write(&config, &text);
        let _ = fs::remove_file(dir.join("sshd.pid"));
        self.timeline("boot", "start", vmid, None);
        let boot = self.timed("boot_ms");
        self.set_agent_ready(vmid, boot + self.timed("agent_ms"));
        if !boot.is_zero() {
            // `qm start` returns while the guest boots, as Proxmox's does: a booter process
            // starts the sshd once the boot time has passed.
            self.append_console(vmid, &console);
            return self.spawn_booter(vmid, boot);
        }
        self.launch_sshd(vmid);
        self.append_console(vmid, &console);
    }

    /// Starts the guest's prepared sshd and waits until it listens; dies (as `qm start` would
    /// fail) when it cannot start.
    fn launch_sshd(&self, vmid: u32) {
        let Some(port) = self.guest_port() else {
            return;
        };
        let addr = guest_addr(vmid);
        let dir = self.guest_dir(vmid);
        let config = dir.join("sshd_config");
        let _ = fs::create_dir_all("/run/sshd");
        // Without -D sshd daemonizes (setsid, stdio on /dev/null), so the guest outlives the
        // `qm start` session that booted it; it writes its PID file once it listens.
        let status = Command::new(SSHD)
            .arg("-f")
            .arg(&config)
            .arg("-E")
            .arg(dir.join("sshd.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let started = status.map(|s| s.success()).unwrap_or(false)
            && wait_listening(&dir.join("sshd.pid"), SocketAddr::new(addr.into(), port));
        if !started {
            let log = fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            self.set_running(vmid, false);
            die(&format!(
                "pve-sim sandbox: the guest sshd of VM {vmid} did not start on {addr}:{port}: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join("; ")
            ));
        }
        self.timeline("boot", "end", vmid, None);
    }

    /// The booter: this binary as `pve-sim guest-boot VMID MS STATE_DIR`, in a process group of
    /// its own with no stdio, so it outlives the `qm start` session (whose channel closes at
    /// once). Its PID is in `guests/ID/boot.pid` until it is done; the state directory on its
    /// command line lets `sandbox.sh down` and [`Sim::stop_guest`] know it for theirs.
    #[allow(clippy::zombie_processes)]
    fn spawn_booter(&self, vmid: u32, boot: Duration) {
        use std::os::unix::process::CommandExt as _;
        // Never waited for on purpose: it outlives this process, which exits right after (the
        // booter is then init's child, and init reaps it).
        let exe = std::env::current_exe().unwrap_or_else(|e| die(&format!("pve-sim: {e}")));
        let child = Command::new(exe)
            .arg("guest-boot")
            .arg(vmid.to_string())
            .arg(boot.as_millis().to_string())
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| die(&format!("pve-sim: cannot start the guest's boot: {e}")));
        self.write(
            &self.guest_dir(vmid).join("boot.pid"),
            &format!("{}\n", child.id()),
        );
    }

    /// `pve-sim guest-boot VMID MS STATE_DIR`: waits out the boot, then starts the guest's
    /// sshd, unless the VM was stopped (or destroyed, or booted anew) meanwhile.
    pub(crate) fn guest_boot(&self, a: &[&str]) {
        let (Some(Ok(vmid)), Some(Ok(ms))) = (
            a.first().map(|v| v.parse::<u32>()),
            a.get(1).map(|v| v.parse::<u64>()),
        ) else {
            die("usage: pve-sim guest-boot VMID MS STATE_DIR")
        };
        sleep(Duration::from_millis(ms));
        let _g = self.lock();
        let pid_file = self.guest_dir(vmid).join("boot.pid");
        let ours =
            fs::read_to_string(&pid_file).is_ok_and(|p| p.trim() == std::process::id().to_string());
        if !ours || !self.running(vmid) {
            return;
        }
        let _ = fs::remove_file(&pid_file);
        self.launch_sshd(vmid);
    }

    fn append_console(&self, vmid: u32, text: &str) {
        let path = self.guest_dir(vmid).join("console.log");
        let mut log = fs::read_to_string(&path).unwrap_or_default();
        log.push_str(text);
        self.write(&path, &log);
    }

    /// Stops a guest's sshd by its PID (a power-off); sessions in progress end with it. A boot
    /// still under way is stopped too (its booter, known by its command line).
    pub(crate) fn stop_guest(&self, vmid: u32) {
        let boot = self.guest_dir(vmid).join("boot.pid");
        if let Some(pid) = fs::read_to_string(&boot)
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
        {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            if cmdline.contains("guest-boot") && cmdline.contains(&*self.dir.to_string_lossy()) {
                kill(pid, "KILL");
            }
        }
        let _ = fs::remove_file(boot);
        if let Some(pid) = self.guest_pid(vmid) {
            kill(pid, "TERM");
            let start = Instant::now();
            while Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
                if start.elapsed() > Duration::from_secs(5) {
                    kill(pid, "KILL");
                    break;
                }
                sleep(Duration::from_millis(10));
            }
        }
        let _ = fs::remove_file(self.guest_dir(vmid).join("sshd.pid"));
    }

    /// The guest's disk goes with the VM (`qm destroy`), or before a clone reuses its VMID.
    pub(crate) fn remove_guest(&self, vmid: u32) {
        self.stop_guest(vmid);
        let _ = fs::remove_dir_all(self.guest_dir(vmid));
    }

    /// The addresses the guest agent reports for a running sandbox guest (whether or not its
    /// sshd came up: the agent is another service).
    pub(crate) fn guest_addresses(&self, vmid: u32) -> Option<Vec<String>> {
        self.guest_port()?;
        if !self.running(vmid) || !self.guest_dir(vmid).join("root").is_dir() {
            return None;
        }
        Some(vec![format!("{}/8", guest_addr(vmid))])
    }

    fn install_guest_bin(&self) {
        let exe = std::env::current_exe().unwrap_or_else(|e| die(&format!("pve-sim: {e}")));
        for name in ["reboot", "hostname", "nixos-version"] {
            let link = self.dir.join("guests/bin").join(name);
            if fs::symlink_metadata(&link).is_err() {
                let _ = std::os::unix::fs::symlink(&exe, &link);
            }
        }
    }

    /// `reboot`, `hostname` and `nixos-version` inside a guest's session.
    pub(crate) fn guest_command(&self, prog: &str, args: &[&str]) {
        let vmid: u32 = std::env::var("PVE_SIM_VMID")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| die(&format!("{prog}: not inside a sandbox guest")));
        let root = self.guest_dir(vmid).join("root");
        match prog {
            "hostname" => {
                let name = fs::read_to_string(root.join("etc/hostname")).unwrap_or_default();
                println!("{}", name.trim());
            }
            "nixos-version" => match fs::read_to_string(root.join("etc/NIXOS")) {
                Ok(text) => {
                    let version = text
                        .lines()
                        .find_map(|l| l.strip_prefix("version="))
                        .unwrap_or("unknown");
                    println!("{version}");
                }
                Err(_) => {
                    eprintln!("bash: line 1: nixos-version: command not found");
                    exit(127)
                }
            },
            "reboot" => {
                let _ = args;
                let _g = self.lock();
                // The guest reboots on whichever node holds it.
                let node = self.find(vmid).unwrap_or_else(|| self.node());
                let (_, conf) = self.on_node(&node).load_local(&vmid.to_string());
                self.stop_guest(vmid);
                self.append_console(vmid, "reboot: Restarting system\n");
                self.start_guest(vmid, &conf);
            }
            _ => unreachable!(),
        }
    }
}

fn keygen(path: &Path, comment: &str) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        die("pve-sim sandbox: ssh-keygen failed (apt-get install -y openssh-client)");
    }
}

fn kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

fn is_zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(true)
}

/// Waits until the daemonized sshd wrote its PID file (after binding) and accepts connections.
fn wait_listening(pid_file: &Path, addr: SocketAddr) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if pid_file.exists()
            && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        {
            return true;
        }
        sleep(Duration::from_millis(20));
    }
    false
}
