//! Benchmark: `vmlint` (parse + static evaluation + every check) against
//! `nix-instantiate --eval --strict --json` on the same generated definitions.nix, in the same
//! run, at 10, 1,000 and 10,000 managed VMs. Reports median wall time and peak RSS of each.
//!
//! Target (issue 2): vmlint at 10,000 VMs takes at most half of nix-instantiate's time, with a
//! peak RSS under 100 MiB. `VMCTL_BENCH_QUICK=1` runs three repetitions per size after a warm-up (for CI; indicative).
//!
//! Each size also runs vmlint with `VMCTL_PARSER=rnix` (rnix + lowering for every file, no
//! fast parser), to show what the fast parser saves (docs/architecture.md, "Why two parsers").
//!
//!     cargo bench --bench lint

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A fleet with `n` managed VMs, each with a hosts/ directory, written the way users write
/// definitions.nix (nested sets, lists, a shared `let` default merged with `//`).
fn write_fleet(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir.join("vms")).unwrap();
    std::fs::create_dir_all(dir.join("hosts")).unwrap();
    let mut s = String::from(
        "let\n  defaults = { storage = \"nvmeprom\"; network = { bridge = \"vmbr0\"; ip = \"dhcp\"; }; };\nin\n{\n  proxmox = { host = \"pve.lan\"; node = \"pve\"; defaultStorage = \"nvmeprom\"; };\n  template = { vmid = 9001; name = \"NixosServerBlank\"; };\n  vmidRanges = {\n    managed = { start = 10000; end = 99999; description = \"managed\"; };\n    templates = { start = 9000; end = 9099; };\n  };\n  managed = {\n",
    );
    for i in 0..n {
        s.push_str(&format!(
            "    vm{i} = defaults // {{\n      vmid = {};\n      cores = {};\n      memory = {};\n      disk = \"{}G\";\n      nixosConfig = \"vm{i}\";\n      purpose = \"Generated VM number {i}\";\n      services = [ \"nginx\" \"postgres\" ];\n      tags = [ \"bench\" \"gen\" ];\n    }};\n",
            10_000 + i,
            1 + i % 8,
            2048 * (1 + i % 4),
            20 + i % 100
        ));
    }
    s.push_str("  };\n}\n");
    std::fs::write(dir.join("vms/definitions.nix"), s).unwrap();
    for i in 0..n {
        std::fs::create_dir_all(dir.join(format!("hosts/vm{i}"))).unwrap();
    }
}

/// Runs a command to completion; returns wall time, CPU time (user + system), the child's
/// peak RSS in KiB and whether it succeeded.
fn measure(cmd: &mut Command) -> (Duration, Duration, i64, bool) {
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // wait4 gives this child's own rusage, so its peak RSS is not mixed with earlier children.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert_eq!(r, pid, "wait4");
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    std::mem::forget(child);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (
        wall,
        tv(usage.ru_utime) + tv(usage.ru_stime),
        usage.ru_maxrss,
        ok,
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::var_os("VMCTL_BENCH_QUICK").is_some();
    // Quick mode (CI) still takes a median of three, after one untimed warm-up run each: the
    // first run after writing 10,000 host directories pays for cold caches, not for linting.
    let reps = if quick { 3 } else { 7 };
    let vmlint = env!("CARGO_BIN_EXE_vmlint");
    let nix = Command::new("nix-instantiate").arg("--version").output();
    assert!(
        nix.is_ok(),
        "nix-instantiate is not installed: run ./scripts/test.sh or apt-get install nix-bin"
    );
    let tmp = tempfile::tempdir().unwrap();
    println!("vmlint vs nix-instantiate --eval --strict --json, as vmctl runs it ({reps} interleaved runs each; medians of wall and CPU time; peak RSS)");
    println!("rnix: vmlint with VMCTL_PARSER=rnix (no fast parser); ratios are to nix-instantiate");
    println!(
        "{:>6} {:>8} | {:>9} {:>9} {:>8} | {:>9} {:>9} {:>8} | {:>10} {:>9} | {:>9} {:>10}",
        "VMs",
        "bytes",
        "lint wall",
        "lint cpu",
        "lint RSS",
        "nix wall",
        "nix cpu",
        "nix RSS",
        "wall ratio",
        "cpu ratio",
        "rnix wall",
        "rnix ratio"
    );
    for n in [10usize, 1_000, 10_000] {
        let dir = tmp.path().join(format!("fleet{n}"));
        write_fleet(&dir, n);
        let file = dir.join("vms/definitions.nix");
        let bytes = std::fs::metadata(&file).unwrap().len();
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let (mut our_cpu, mut their_cpu) = (Vec::new(), Vec::new());
        let (mut our_rss, mut their_rss) = (0, 0);
        let mut rnix_only = Vec::new();
        let lint = |parser: &str| {
            let mut cmd = Command::new(vmlint);
            cmd.arg("--no-nix")
                .arg("--deny-warnings")
                .env("VMCTL_PARSER", parser)
                .current_dir(&dir);
            cmd
        };
        let _ = measure(&mut lint("fast"));
        // Nix run as vmctl's own fallback runs it (exec/lint): read-only, restricted to the
        // fleet, no NIX_PATH, no stdin.
        let nix = || {
            let mut cmd = Command::new("nix-instantiate");
            cmd.args(["--eval", "--strict", "--json", "--readonly-mode"])
                .args(["--option", "restrict-eval", "true", "-I"])
                .arg(&dir)
                .arg(&file)
                .env("NIX_PATH", "")
                .stdin(std::process::Stdio::null());
            cmd
        };
        let _ = measure(&mut lint("rnix"));
        let _ = measure(&mut nix());
        for _ in 0..reps {
            let (t, cpu, rss, ok) = measure(&mut lint("fast"));
            assert!(ok, "vmlint reported problems on the generated fleet");
            ours.push(t);
            our_cpu.push(cpu);
            our_rss = our_rss.max(rss);
            let (t, cpu, rss, ok) = measure(&mut nix());
            assert!(ok, "nix-instantiate failed on the generated fleet");
            theirs.push(t);
            their_cpu.push(cpu);
            their_rss = their_rss.max(rss);
            let (t, _, _, ok) = measure(&mut lint("rnix"));
            assert!(
                ok,
                "vmlint with VMCTL_PARSER=rnix reported problems on the generated fleet"
            );
            rnix_only.push(t);
        }
        let (o, t) = (median(ours), median(theirs));
        let (oc, tc) = (median(our_cpu), median(their_cpu));
        let ratio = o.as_secs_f64() / t.as_secs_f64();
        let cpu_ratio = oc.as_secs_f64() / tc.as_secs_f64();
        let r = median(rnix_only);
        let rnix_ratio = r.as_secs_f64() / t.as_secs_f64();
        let ms = |d: Duration| format!("{:.1}ms", d.as_secs_f64() * 1e3);
        let mib = |k: i64| format!("{:.1}MiB", k as f64 / 1024.0);
        println!(
            "{:>6} {:>8} | {:>9} {:>9} {:>8} | {:>9} {:>9} {:>8} | {:>10.2} {:>9.2} | {:>9} {:>10.2}",
            n,
            bytes,
            ms(o),
            ms(oc),
            mib(our_rss),
            ms(t),
            ms(tc),
            mib(their_rss),
            ratio,
            cpu_ratio,
            ms(r),
            rnix_ratio
        );
        if n == 10_000 {
            let met = ratio <= 0.5 && our_rss < 100 * 1024;
            println!(
                "target at 10,000 VMs (vmlint <= 0.5x nix-instantiate, peak RSS < 100 MiB): {}",
                match (met, quick) {
                    (true, false) => "met",
                    (false, false) => "NOT met",
                    (true, true) => "met (quick mode: indicative only, see ./scripts/bench.sh)",
                    (false, true) => "not met in quick mode (indicative only: a loaded machine skews one short run; see ./scripts/bench.sh)",
                }
            );
        }
    }
}
