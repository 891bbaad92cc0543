//! Benchmark: one `vmctl provision` of the demo VM against the Proxmox simulator behind the real
//! loopback sshd, with a fake installer and a fake VM SSH probe (both answer at once), real git.
//! Reports vmctl's own time (wall minus the time spent waiting on the Proxmox host over SSH,
//! the installer, the VM's SSH and git, each measured around its calls) as a share of the run
//! (target under 5%), and asserts the run used exactly one SSH connection to the Proxmox host.
//!
//!   cargo bench --bench provision                      7 runs
//!   VMCTL_BENCH_QUICK=1 cargo bench --bench provision  3 runs (CI; indicative)
//!
//! The timed region is one provision as the CLI does it after loading the fleet: observe the
//! cluster, plan, run every step, over one connection. Loading the fleet (nix evaluation) is
//! left out: benches/lint.rs measures it. The re-keyer is a no-op here (benches/rekey.rs
//! measures re-keying), so the secrets are not part of vmctl's figure.

#[path = "../tests/it/support/pve.rs"]
mod support;

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{fast_retry, Pve};
use vmctl::exec::apply::FleetLock;
use vmctl::exec::provision::real::GitCli;
use vmctl::exec::provision::{
    self, Env, Git, GitError, Identity, InstallError, Installer, Options, Outcome, ProbeError,
    RekeyError, Rekeyer, SshProbe,
};
use vmctl::exec::proxmox::{Proxmox, QmProxmox};
use vmctl::exec::remote::{Remote, RemoteError, RemoteOutput};
use vmctl::plan::provision::{plan, Inputs, Observation};
use vmctl::proxmox::Fence;

const ADMIN: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHxM2a6DvE298UXZdhKYSMrTPvzvceh5+ZJ77tKj9n0D admin@workstation";

/// Time spent inside calls to something outside vmctl, and how many calls.
#[derive(Default)]
struct Waited {
    total: Cell<Duration>,
    calls: Cell<u32>,
}

impl Waited {
    fn time<T>(&self, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.total.set(self.total.get() + start.elapsed());
        self.calls.set(self.calls.get() + 1);
        out
    }
}

/// The Proxmox host's connection, every command's round trip timed.
struct TimedRemote<R> {
    inner: R,
    waited: Waited,
}

impl<R: Remote> Remote for TimedRemote<R> {
    fn run_with_input(
        &self,
        argv: &[String],
        input: Option<&[u8]>,
    ) -> Result<RemoteOutput, RemoteError> {
        self.waited.time(|| self.inner.run_with_input(argv, input))
    }
    fn target(&self) -> String {
        self.inner.target()
    }
}

/// The installer and the VM's SSH (fakes answering at once), and real git, each timed.
#[derive(Default)]
struct Outside {
    installer: Waited,
    vm_ssh: Waited,
    git: Waited,
}

impl Installer for Outside {
    fn install(&self, argv: &[String]) -> Result<(), InstallError> {
        self.installer.time(|| {
            assert!(argv.iter().any(|a| a == "--extra-files"));
            Ok(())
        })
    }
}

impl SshProbe for Outside {
    fn wait_ssh(&self, _: &str) -> Result<(), ProbeError> {
        self.vm_ssh.time(|| Ok(()))
    }
    fn verify(&self, _: &str, _: &str, _: &Path) -> Result<Identity, ProbeError> {
        self.vm_ssh.time(|| {
            Ok(Identity {
                hostname: "test-automation".into(),
                nixos_version: "24.11 (Vicuna)".into(),
            })
        })
    }
}

impl Git for Outside {
    fn commit(&self, root: &Path, files: &[PathBuf], message: &str) -> Result<String, GitError> {
        self.git.time(|| GitCli.commit(root, files, message))
    }
}

/// Re-keying is benches/rekey.rs's subject: nothing to re-key here.
struct NoRekey;

impl Rekeyer for NoRekey {
    fn rekey(&self, _: &Path, _: &FleetLock) -> Result<(), RekeyError> {
        Ok(())
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

fn git(root: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}");
}

/// The demo fleet as a git repository, net0's MAC declared (the address is found by it).
fn demo_fleet() -> tempfile::TempDir {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    for d in ["vms", "hosts", "hosts-template", "secrets"] {
        copy_dir(&repo.join(d), &dir.path().join(d));
    }
    for f in ["hosts.nix", ".sops.yaml", "docs/machines.md"] {
        let to = dir.path().join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(repo.join(f), to).unwrap();
    }
    let defs = dir.path().join("vms/definitions.nix");
    let text = std::fs::read_to_string(&defs).unwrap().replace(
        "ip = \"dhcp\";",
        "ip = \"dhcp\";\n        mac = \"BC:24:11:00:01:10\";",
    );
    std::fs::write(&defs, text).unwrap();
    let root = dir.path();
    git(root, &["init", "-q"]);
    git(root, &["config", "user.email", "bench@example.org"]);
    git(root, &["config", "user.name", "bench"]);
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "fleet"]);
    dir
}

/// One run's figures.
struct Run {
    wall: Duration,
    proxmox: Duration,
    proxmox_calls: u32,
    installer: Duration,
    vm_ssh: Duration,
    git: Duration,
}

impl Run {
    fn own(&self) -> Duration {
        self.wall
            .saturating_sub(self.proxmox + self.installer + self.vm_ssh + self.git)
    }
    fn share(&self) -> f64 {
        self.own().as_secs_f64() / self.wall.as_secs_f64() * 100.0
    }
}

fn one_run() -> Run {
    let pve = Pve::start();
    pve.write("agent/110.json", r#"["192.168.1.50/24"]"#);
    let fleet = demo_fleet();
    let root = fleet.path();
    let defs = vmctl::exec::fleet::load(Some(root), &Default::default())
        .unwrap()
        .definitions;
    let lock = FleetLock::acquire(root, &Default::default()).unwrap();
    let outside = Outside::default();
    let keys = vec![ADMIN.to_string()];
    let base = pve.sshd.accepted_connections();

    let start = Instant::now();
    // The SSH handshake is waiting on the Proxmox host too.
    let waited = Waited::default();
    let inner = waited.time(|| pve.connect());
    let remote = TimedRemote { inner, waited };
    // Observation and run share the one connection, as the CLI's do.
    let observer = QmProxmox::new(&remote, Fence::from_definitions(&defs), fast_retry());
    let vms = observer.list().unwrap();
    let obs = Observation {
        storages: observer.storage().unwrap(),
        template_config: Some(observer.config(9001).unwrap()),
        vms,
    };
    let planned = plan(&Inputs {
        defs: &defs,
        name: "test-automation",
        lint_errors: 0,
        admin_keys: &keys,
        linked: false,
        host_known: false,
        observation: Some(&obs),
        identity: None,
    })
    .unwrap();
    let p = QmProxmox::new(&remote, planned.fence.clone(), fast_retry());
    let env = Env {
        proxmox: &p,
        installer: &outside,
        ssh: &outside,
        git: &outside,
        rekeyer: &NoRekey,
    };
    let quiet = |_: &str| {};
    let opts = Options {
        keep_on_failure: false,
        commit: true,
        attempts: 2,
        interval: Duration::from_millis(10),
        report: &quiet,
        only: None,
    };
    let out = provision::run(&env, &opts, root, &defs, &planned, &lock, None).unwrap();
    drop(p);
    drop(observer);
    let wall = start.elapsed();
    assert!(matches!(out, Outcome::Done { commit: Some(_) }), "{out:?}");
    assert!(pve.read("running/110").is_some(), "the VM is not running");
    let connections = pve.sshd.accepted_connections() - base;
    assert_eq!(connections, 1, "the run used {connections} SSH connections");
    Run {
        wall,
        proxmox: remote.waited.total.get(),
        proxmox_calls: remote.waited.calls.get(),
        installer: outside.installer.total.get(),
        vm_ssh: outside.vm_ssh.total.get(),
        git: outside.git.total.get(),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run quick then.
    let quick = std::env::var_os("VMCTL_BENCH_QUICK").is_some()
        || !std::env::args().any(|a| a == "--bench");
    let rounds = if quick { 3 } else { 7 };
    // Warm-up: page cache, sshd's first fork, the simulator binary.
    let _ = one_run();
    let runs: Vec<Run> = (0..rounds).map(|_| one_run()).collect();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let med = |f: &dyn Fn(&Run) -> f64| median(runs.iter().map(f).collect());
    println!(
        "provision: one `vmctl provision test-automation` over loopback sshd + pve-sim, fake installer and VM SSH, real git; median of {rounds} runs{}",
        if quick { " [quick: indicative only]" } else { "" }
    );
    println!(
        "  runs (vmctl's own share, %): [{}]",
        runs.iter()
            .map(|r| format!("{:.1}", r.share()))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  wall:                    {:>8.1} ms",
        med(&|r| ms(r.wall))
    );
    println!(
        "  waiting on Proxmox (SSH):{:>8.1} ms  ({} commands over 1 connection)",
        med(&|r| ms(r.proxmox)),
        runs[0].proxmox_calls
    );
    println!(
        "  waiting on installer:    {:>8.1} ms  (fake)",
        med(&|r| ms(r.installer))
    );
    println!(
        "  waiting on the VM's SSH: {:>8.1} ms  (fake)",
        med(&|r| ms(r.vm_ssh))
    );
    println!("  waiting on git:          {:>8.1} ms", med(&|r| ms(r.git)));
    let share = med(&|r| r.share());
    println!(
        "  vmctl's own:             {:>8.1} ms = {share:.1}% of the run (target < 5%){}",
        med(&|r| ms(r.own())),
        if share < 5.0 { "" } else { "  ABOVE TARGET" }
    );
    println!("  SSH connections to the Proxmox host per run: 1 (asserted every run)");
}
