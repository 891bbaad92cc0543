//! Benchmark: sequential read operations over one multiplexed SSH connection versus a new SSH
//! connection per operation, against the loopback sshd + pve-sim harness, in the same run.
//!
//!   cargo bench --bench ssh_mux                      5 rounds of 50 operations each way
//!   VMCTL_BENCH_QUICK=1 cargo bench --bench ssh_mux  3 rounds of 10 each (CI; indicative)
//!
//! The two ways alternate within every round (which goes first rotates), and each figure is
//! the median over the rounds. The connection counts are exact and asserted every round.

#[path = "../tests/it/support/pve.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{demo_definitions, Pve};
use vmctl::exec::proxmox::{Proxmox, QmProxmox};
use vmctl::exec::remote::SshRemote;
use vmctl::proxmox::Fence;

fn per_op(total: Duration, n: usize) -> f64 {
    total.as_secs_f64() * 1000.0 / n as f64
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run quick then.
    let quick = std::env::var_os("VMCTL_BENCH_QUICK").is_some()
        || !std::env::args().any(|a| a == "--bench");
    let (n, rounds) = if quick { (10, 3) } else { (50, 5) };
    let pve = Pve::start();
    let defs = demo_definitions();

    // Warm-up: page cache, sshd's first fork, the simulator binary.
    pve.proxmox(&defs).status(104).unwrap();

    let (mut mux, mut fresh) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for way in [round % 2, 1 - round % 2] {
            let base = pve.sshd.accepted_connections();
            let start = Instant::now();
            if way == 0 {
                let p = pve.proxmox(&defs);
                for _ in 0..n {
                    assert_eq!(p.status(104).unwrap().status, "running");
                }
                drop(p);
                mux.push(start.elapsed());
                assert_eq!(pve.sshd.accepted_connections() - base, 1);
            } else {
                for _ in 0..n {
                    let remote = SshRemote::connect(&pve.target()).unwrap();
                    let p = QmProxmox::new(
                        remote,
                        Fence::from_definitions(&defs),
                        support::fast_retry(),
                    );
                    assert_eq!(p.status(104).unwrap().status, "running");
                }
                fresh.push(start.elapsed());
                assert_eq!(pve.sshd.accepted_connections() - base, n);
            }
        }
    }
    let ms = |v: &[Duration]| {
        v.iter()
            .map(|d| format!("{:.0}", d.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "ssh_mux: {n} sequential `qm status` reads over loopback sshd + pve-sim; median of {rounds} alternating rounds{}",
        if quick { " [quick: indicative only]" } else { "" }
    );
    println!(
        "  runs (ms): multiplexed [{}], new connection each [{}]",
        ms(&mux),
        ms(&fresh)
    );
    let (mux, fresh) = (median(mux), median(fresh));
    println!(
        "  multiplexed (1 connection):     {:>8.1} ms total  {:>6.1} ms/op",
        mux.as_secs_f64() * 1000.0,
        per_op(mux, n)
    );
    println!(
        "  new connection per operation:   {:>8.1} ms total  {:>6.1} ms/op  ({n} connections)",
        fresh.as_secs_f64() * 1000.0,
        per_op(fresh, n)
    );
    println!(
        "  ratio: multiplexing is {:.1}x faster",
        fresh.as_secs_f64() / mux.as_secs_f64()
    );
}
