//! Benchmark: what `vmctl status` reads for 200 VMs on 3 nodes — one cluster-wide read plus
//! one config read per VM, batched into one remote command on one SSH connection — against
//! the same reads each on a connection of its own, over the loopback sshd + pve-sim harness.
//!
//!   cargo bench --bench status                      3 alternating rounds, all 201 reads
//!   VMCTL_BENCH_QUICK=1 cargo bench --bench status  1 round; the separate-connection way
//!                                                   measured on 20 reads and scaled (CI)
//!
//! The connection counts are exact and asserted every round.

#[path = "../tests/it/support/pve.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{demo_definitions, Pve};
use vmctl::exec::remote::{Remote, SshRemote};
use vmctl::exec::status::observe;
use vmctl::model::{Vm, VmKind};
use vmctl::proxmox::node_api;

const VMS: u32 = 200;
const NODES: [&str; 3] = ["prom", "prom2", "prom3"];

fn main() {
    let quick = std::env::var_os("VMCTL_BENCH_QUICK").is_some()
        || !std::env::args().any(|a| a == "--bench");
    let rounds = if quick { 1 } else { 3 };
    let pve = Pve::start();
    pve.write(
        "sim.json",
        r#"{"node":"prom","nodes":["prom","prom2","prom3"],"clone_ms":0}"#,
    );
    let mut defs = demo_definitions();
    for i in 0..VMS {
        let vmid = 1000 + i;
        let node = NODES[(i % 3) as usize];
        pve.write(
            &format!("nodes/{node}/qemu-server/{vmid}.conf"),
            &format!(
                "#managed by vmctl\nagent: enabled=1\nboot: order=scsi0\ncores: 2\nmemory: 2048\n\
                 name: vm{vmid}\nnet0: virtio=BC:24:11:00:{:02X}:{:02X},bridge=vmbr0\n\
                 scsi0: nvmeprom:vm-{vmid}-disk-0,size=20G\ntags: vmctl\n",
                vmid >> 8,
                vmid & 0xff
            ),
        );
        defs.managed.push(Vm {
            node: Some(node.into()),
            ..Vm::new(format!("vm{vmid}"), VmKind::Managed, Some(vmid))
        });
    }
    // Warm-up: page cache, sshd's first fork, the simulator binary.
    let warm = observe(&pve.connect(), &defs, &[]).unwrap();
    assert_eq!(warm.configs.len() as u32, VMS + 2);

    let separate_n = if quick { 20 } else { VMS as usize };
    let (mut one, mut separate) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for way in [round % 2, 1 - round % 2] {
            let base = pve.sshd.accepted_connections();
            let start = Instant::now();
            if way == 0 {
                let remote = pve.connect();
                let seen = observe(&remote, &defs, &[]).unwrap();
                drop(remote);
                one.push(start.elapsed());
                assert_eq!(seen.configs.len() as u32, VMS + 2);
                assert_eq!(pve.sshd.accepted_connections() - base, 1);
            } else {
                let remote = SshRemote::connect(&pve.target()).unwrap();
                let all = remote.run(&node_api::cluster_all()).unwrap();
                let cluster = node_api::parse_cluster(&all.stdout).unwrap();
                drop(remote);
                for r in cluster
                    .vms
                    .iter()
                    .filter(|r| r.vmid >= 1000)
                    .take(separate_n)
                {
                    let remote = SshRemote::connect(&pve.target()).unwrap();
                    let out = remote.run(&node_api::config(&r.node, r.vmid)).unwrap();
                    node_api::parse_config(&out.stdout).unwrap();
                }
                separate.push(start.elapsed());
                assert_eq!(pve.sshd.accepted_connections() - base, 1 + separate_n);
            }
        }
    }
    let med = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (one, separate) = (med(one), med(separate));
    // Scaled to the 201 reads when only a sample ran on separate connections.
    let separate_full =
        separate.as_secs_f64() * (1 + VMS as usize) as f64 / (1 + separate_n) as f64;
    println!(
        "status: {VMS} VMs on 3 nodes, 1 cluster-wide read + {VMS} config reads (each from its node's API path); median of {rounds} round(s){}",
        if quick {
            " [quick: separate connections measured on 20 reads and scaled; indicative only]"
        } else {
            ""
        }
    );
    println!(
        "  one connection, reads batched:      {:>9.1} ms",
        one.as_secs_f64() * 1000.0
    );
    println!(
        "  a connection per read ({} conns):  {:>9.1} ms{}",
        1 + VMS,
        separate_full * 1000.0,
        if quick { " (scaled)" } else { "" }
    );
    println!(
        "  ratio: one batched connection is {:.1}x faster",
        separate_full / one.as_secs_f64()
    );
}
