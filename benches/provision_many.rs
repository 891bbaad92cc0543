//! Benchmark: 8 VMs provisioned in the sandbox (scripts/sandbox.sh: the Proxmox simulator
//! behind a real sshd, the VMs as real sshds on 127.0.0.110–117, the installer stand-in, real
//! git and the real sops) by the `vmctl` binary, once with `--jobs 8` and once with `--jobs 1`,
//! with the simulator's timing on (tests/pve-sim/timing.rs): a clone takes 0.5 s behind the
//! storage lock (sim.json `clone_ms`), a boot 2 s (`boot_ms`), an install 5 s (`install_ms`,
//! which the installer stand-in reads); `time_scale` shrinks them in quick mode.
//!
//! Reports the wall times, the speed-up of `--jobs 8` over `--jobs 1` (target at least 4x;
//! the storage lock allows at most about 5.5x) and `--jobs 8` against the critical path the
//! locks allow (8 clones in series, then one VM's remaining steps as the `--jobs 1` run measured
//! them; target within 1.2x), and against the bare timing floor (8 clones, one boot and install).
//!
//!   cargo bench --bench provision_many                      full timing, targets asserted
//!   VMCTL_BENCH_QUICK=1 cargo bench --bench provision_many  timing scaled by 0.2 (CI; the
//!                                                           figures are reported, not asserted:
//!                                                           vmctl's fixed costs dominate there)

#[path = "../tests/it/support/pve.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CLONE_MS: u64 = 500;
const BOOT_MS: u64 = 2000;
const INSTALL_MS: u64 = 5000;
const VMS: u32 = 8;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// PATH with the real sops (scripts/setup-test-tools.sh installs it under .tools).
fn path_with_sops() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    let local = repo().join(".tools/venv/bin");
    if local.join("sops").is_file() {
        format!("{}:{path}", local.display())
    } else {
        path
    }
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A sandbox brought up with the demo fleet plus VMs 111–117; `down` on drop.
struct Sandbox {
    dir: PathBuf,
    env: Vec<(String, String)>,
    _tmp: tempfile::TempDir,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/sandbox.sh"))
            .arg("down")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .output();
    }
}

fn up(scale: f64) -> Sandbox {
    let tmp = tempfile::Builder::new()
        .prefix("vmctl-bench-")
        .tempdir()
        .unwrap();
    let dir = tmp.path().join("sbx");
    run(
        Command::new(repo().join("scripts/sandbox.sh"))
            .arg("up")
            .arg(&dir)
            .env("PATH", path_with_sops())
            .env("VMCTL_PVE_SIM", support::pve_sim_bin())
            .env("VMCTL_BIN", env!("CARGO_BIN_EXE_vmctl")),
        "sandbox.sh up",
    );
    let path = path_with_sops();
    let env: Vec<(String, String)> = std::fs::read_to_string(dir.join("env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("\"$PATH\"", &path)))
        .collect();
    let s = Sandbox {
        dir,
        env,
        _tmp: tmp,
    };
    let fleet = s.dir.join("fleet");
    // Seven more managed VMs like the demo's, each with its committed host configuration.
    let defs_path = fleet.join("vms/definitions.nix");
    let defs = std::fs::read_to_string(&defs_path).unwrap();
    let end = defs
        .rfind("\n  };\n}")
        .expect("definitions.nix ends with `managed`");
    let mut blocks = String::new();
    for vmid in 111..110 + VMS {
        let name = format!("vm-{vmid}");
        blocks.push_str(&format!(
            "\n    {name} = {{\n      vmid = {vmid};\n      cores = 1;\n      memory = 1024;\n      \
             disk = \"20G\";\n      storage = \"nvmeprom\";\n      nixosConfig = \"{name}\";\n      \
             services = [ ];\n      network = {{\n        bridge = \"vmbr0\";\n        \
             ip = \"127.0.0.{vmid}/8\";\n      }};\n    }};"
        ));
        let host = fleet.join("hosts").join(&name);
        std::fs::create_dir_all(&host).unwrap();
        std::fs::write(
            host.join("configuration.nix"),
            format!("{{ ... }}:\n{{\n  networking.hostName = \"{name}\";\n}}\n"),
        )
        .unwrap();
    }
    let mut new = defs.clone();
    new.insert_str(end, &blocks);
    std::fs::write(&defs_path, new).unwrap();
    let _ = s.vmctl(&["docs"]).output();
    let git = |args: &[&str]| run(Command::new("git").arg("-C").arg(&fleet).args(args), "git");
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "bench: eight managed VMs"]);
    // The simulator's timing (tests/pve-sim/timing.rs; the stand-in reads install_ms there).
    let sim = s.dir.join("pve/state/sim.json");
    let mut conf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sim).unwrap()).unwrap();
    conf["clone_ms"] = CLONE_MS.into();
    conf["boot_ms"] = BOOT_MS.into();
    conf["install_ms"] = INSTALL_MS.into();
    conf["time_scale"] = scale.into();
    std::fs::write(&sim, conf.to_string()).unwrap();
    s
}

impl Sandbox {
    fn vmctl(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vmctl"));
        c.current_dir(self.dir.join("fleet"))
            .envs(self.env.iter().cloned())
            .args(args);
        c
    }
}

/// One `vmctl provision --all --jobs N` in a fresh sandbox: its wall time.
fn provision(jobs: u32, scale: f64) -> Duration {
    let s = up(scale);
    let key = s
        .env
        .iter()
        .find(|(k, _)| k == "SANDBOX_ADMIN_KEY")
        .map(|(_, v)| v.clone())
        .unwrap();
    let jobs = jobs.to_string();
    let mut cmd = s.vmctl(&[
        "provision",
        "--all",
        "--jobs",
        &jobs,
        "--identity",
        &key,
        "-q",
    ]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    // VMCTL_BENCH_VERBOSE=1: vmctl's progress lines with the time they came, to see where the
    // wall time goes.
    let verbose = std::env::var_os("VMCTL_BENCH_VERBOSE").is_some();
    let stderr = child.stderr.take().unwrap();
    let lines = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if verbose {
                eprintln!("[{:6.2}] {line}", start.elapsed().as_secs_f64());
            }
        }
    });
    let out = child.wait_with_output().unwrap();
    let wall = start.elapsed();
    let _ = lines.join();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "--jobs {jobs}: {stdout}");
    assert_eq!(
        stdout.matches(": provisioned VM ").count(),
        VMS as usize,
        "{stdout}"
    );
    wall
}

fn main() {
    let quick = std::env::var_os("VMCTL_BENCH_QUICK").is_some();
    let scale = if quick { 0.2 } else { 1.0 };
    let parallel = provision(8, scale);
    let serial = provision(1, scale);
    let clone = CLONE_MS as f64 * scale / 1000.0;
    // The floor the simulator's timing alone allows: 8 clones in series, then one boot and
    // one install.
    let floor = VMS as f64 * clone + (BOOT_MS + INSTALL_MS) as f64 * scale / 1000.0;
    // The critical path the locks allow: 8 clones in series, then one VM's remaining steps as
    // they really take (the --jobs 1 run's mean VM less its clone: the installer's own SSH
    // work, the verification and the commit included).
    let rest = serial.as_secs_f64() / VMS as f64 - clone;
    let critical = VMS as f64 * clone + rest;
    let speedup = serial.as_secs_f64() / parallel.as_secs_f64();
    let over = parallel.as_secs_f64() / critical;
    println!(
        "provision_many: {VMS} VMs, timing x{scale} (clone {} ms behind the storage lock, boot \
         {} ms, install {} ms)",
        (CLONE_MS as f64 * scale) as u64,
        (BOOT_MS as f64 * scale) as u64,
        (INSTALL_MS as f64 * scale) as u64
    );
    println!(
        "  --jobs 8: {:.2} s   --jobs 1: {:.2} s   speed-up {speedup:.2}x (target >= 4x)",
        parallel.as_secs_f64(),
        serial.as_secs_f64()
    );
    println!(
        "  critical path (8 clones in series + one VM's remaining steps, {rest:.2} s measured): \
         {critical:.2} s; --jobs 8 is {over:.2}x of it (target <= 1.2x)"
    );
    println!(
        "  timing floor (8 clones + one boot and install, no other cost): {floor:.2} s; --jobs 8 \
         is {:.2}x of it",
        parallel.as_secs_f64() / floor
    );
    if !quick {
        assert!(speedup >= 4.0, "--jobs 8 is only {speedup:.2}x faster");
        assert!(over <= 1.2, "--jobs 8 takes {over:.2}x the critical path");
    }
}
