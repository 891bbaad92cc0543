//! Benchmark: sequential read operations over one multiplexed SSH connection versus a new SSH
//! connection per operation, against the loopback sshd + pve-sim harness, in the same run.
//!
//!   cargo bench --bench ssh_mux                      50 operations each way
//!   VMCTL_BENCH_QUICK=1 cargo bench --bench ssh_mux  10 each (CI)

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

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run quick then.
    let quick = std::env::var_os("VMCTL_BENCH_QUICK").is_some()
        || !std::env::args().any(|a| a == "--bench");
    let n = if quick { 10 } else { 50 };
    let pve = Pve::start();
    let defs = demo_definitions();

    // Warm-up: page cache, sshd's first fork, the simulator binary.
    pve.proxmox(&defs).status(104).unwrap();
    let base = pve.sshd.accepted_connections();

    let start = Instant::now();
    let p = pve.proxmox(&defs);
    for _ in 0..n {
        assert_eq!(p.status(104).unwrap().status, "running");
    }
    drop(p);
    let mux = start.elapsed();
    let mux_conns = pve.sshd.accepted_connections() - base;

    let start = Instant::now();
    for _ in 0..n {
        let remote = SshRemote::connect(&pve.target()).unwrap();
        let p = QmProxmox::new(
            remote,
            Fence::from_definitions(&defs),
            support::fast_retry(),
        );
        assert_eq!(p.status(104).unwrap().status, "running");
    }
    let fresh = start.elapsed();
    let fresh_conns = pve.sshd.accepted_connections() - base - mux_conns;

    println!("ssh_mux: {n} sequential `qm status` reads over loopback sshd + pve-sim");
    println!(
        "  multiplexed (1 connection):     {:>8.1} ms total  {:>6.1} ms/op  ({mux_conns} connection accepted)",
        mux.as_secs_f64() * 1000.0,
        per_op(mux, n)
    );
    println!(
        "  new connection per operation:   {:>8.1} ms total  {:>6.1} ms/op  ({fresh_conns} connections accepted)",
        fresh.as_secs_f64() * 1000.0,
        per_op(fresh, n)
    );
    println!(
        "  ratio: multiplexing is {:.1}x faster",
        fresh.as_secs_f64() / mux.as_secs_f64()
    );
    assert_eq!(mux_conns, 1);
    assert_eq!(fresh_conns, n);
}
