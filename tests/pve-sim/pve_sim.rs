//! pve-sim: a TEST DOUBLE of Proxmox VE for vmctl's tests — not Proxmox, not for production.
//!
//! Installed (by the test harness) as `qm`, `qmrestore`, `pvesh`, `pvesm` and `ip` on the PATH a
//! loopback sshd gives its sessions, it answers the commands vmctl sends the way Proxmox VE
//! documents them: the same output formats and error messages (see the project's NOTES on
//! Proxmox), with cluster state kept in a directory (`$PVE_SIM_STATE`):
//!
//! ```text
//! nodes/NODE/qemu-server/ID.conf   one VM config per file, Proxmox's format (snapshots as [sections])
//! running/ID                       the VM is running
//! agent/ID.json                    ["192.168.1.50/24", "2001:db8::50/64"]: what the guest agent reports once started
//! pools/ID                         the VM's pool
//! neigh                            the host's neighbour table, as `ip neigh show` prints it
//! storage.json                     [{"name":"nvmeprom","type":"lvmthin","total":…,"used":…,"shared":false}]
//! sim.json                         {"node":"prom","nodes":["prom"],"storage_lock_timeout_ms":10000,"clone_ms":0}
//!                                  and the timing on demand: clone_ms, boot_ms, agent_ms,
//!                                  install_ms, time_scale (see `timing.rs`)
//! timeline.jsonl                   when each clone (per storage), boot and install started and ended
//! agent-ready/ID                   when a started VM's guest agent answers (epoch ms)
//! faults.json                      faults to inject (below)
//! argv.jsonl                       every invocation's argv, one JSON array per line (written first)
//! times.jsonl                      when it exists: each invocation's argv, start_ms and end_ms
//! locks/                           the per-storage locks concurrent clones contend for
//! guests/ID/                       sandbox only: a started VM's sshd, disk (`root/`) and console
//! gates/NAME.reached, NAME.open    test barriers: with `"gates":["clone"]` in sim.json a clone
//!                                  stops mid-way (lock held) until the test opens the gate
//!                                  (`"set"`: an API config update waits before it reads)
//! pending/ID.json                  changes waiting for the VM's next start (see `cluster.rs`)
//! nodes/NODE/dump/STORAGE/, dump/STORAGE/   backups on node-local and shared storage (vzdump.rs)
//! tasks-done/UPID                  a finished API task: exit status and log (migrate.rs)
//! ```
//!
//! A cluster (see `cluster.rs`): `qm` acts only on the VMs of the node it runs on
//! (`PVE_SIM_NODE`, else sim.json `node`); `pvesh get|set|create /nodes/NODE/qemu/ID/…` reaches
//! a VM on any node, with config digests and pending changes; `pvesh get /cluster/status` names
//! the local node, and calls that start a task print its UPID (see `api.rs`).
//!
//! Faults: `faults.json` is a list of `{"match": "qm clone", "action": A, "times": N}`; `match`
//! is a prefix of the argv words, `times` (absent = always) counts down and the fault is removed
//! at zero. Actions: `fail` (`message`, `exit`), `lock-timeout` (`storage` or `file`; the
//! "can't lock file '…' - got timeout" error), `locked` (`reason`; "VM is locked (…)"),
//! `delay` (`ms`, then run normally), `take-vmid` (another client creates the clone's target
//! VMID first, so Proxmox answers "config file already exists"), `task-fail` (`message`; the
//! API call starts a task that fails, see api.rs).
//!
//! Sandbox (scripts/sandbox.sh): with `"guest_sshd": {"port": P}` in `sim.json`, `qm start`
//! boots a guest, a real sshd on 127.X.Y.Z:P serving the cloud-init keys (see `guest.rs`), and
//! `pve-sim seed DEFINITIONS.json` writes the cluster a fleet's definitions describe.
//!
//! A restored "vma" archive is, for this double, a text file holding the VM's config.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::exit;

mod api;
mod cloudinit;
mod cluster;
mod conf;
mod digest;
mod guest;
mod lock;
mod migrate;
mod power;
mod qm;
mod seed;
mod sim;
mod snapshots;
mod timing;
mod tools;
mod vzdump;

mod times_log;

use lock::release_all;
use sim::Sim;

const HELP: &str = "\
pve-sim — a test double of Proxmox VE (qm, qmrestore, pvesh, pvesm, ip neigh) for vmctl's tests.
It is NOT Proxmox: it keeps a simulated cluster in $PVE_SIM_STATE and answers in Proxmox's
documented output formats and error messages, with faults injected from faults.json.

usage: qm|qmrestore|pvesh|pvesm|ip ARGS...   (as symlinks to this binary)
       pve-sim PROGRAM ARGS...
       pve-sim seed DEFINITIONS.json          (the sandbox: the fleet's template and imported VMs)
see the //! documentation of tests/pve-sim/pve_sim.rs for the state directory layout";

fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    let prog = Path::new(&args[0])
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    args[0] = prog;
    if args[0] == "pve-sim" {
        if args.len() < 2 || args[1] == "--help" || args[1] == "-h" {
            println!("{HELP}");
            return;
        }
        args.remove(0);
    }
    let Some(state) = std::env::var_os("PVE_SIM_STATE").map(PathBuf::from) else {
        eprintln!("pve-sim: set PVE_SIM_STATE to the simulated cluster's state directory");
        exit(2);
    };
    let sim = Sim::open(state.clone());
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    // Commands inside a sandbox guest and the sandbox's seeding are not Proxmox commands: they
    // stay out of the argv log and the faults.
    match a[0] {
        "reboot" | "hostname" | "nixos-version" => return sim.guest_command(a[0], &a[1..]),
        "guest-boot" => return sim.guest_boot(&a[1..]),
        "seed" => return sim.seed(&a[1..]),
        _ => {}
    }
    // A task's worker (api.rs) is part of the API call already logged and faulted.
    if std::env::var_os(api::WORKER_ENV).is_none() {
        sim.record(&args);
        times_log::begin(state, &args);
        sim.inject_faults(&args);
    }
    match a[0] {
        "qm" => sim.qm(&a[1..]),
        "qmrestore" => sim.qmrestore(&a[1..]),
        "pvesh" => sim.pvesh(&a[1..]),
        "pvesm" => sim.pvesm(&a[1..]),
        "vzdump" => sim.vzdump(&a[1..]),
        "ip" => sim.ip(&a[1..]),
        other => die(&format!("pve-sim: unknown program {other}")),
    }
}

fn die(msg: &str) -> ! {
    let msg = msg.trim_end_matches('\n');
    eprintln!("{msg}");
    release_all();
    exit(255)
}

fn param_error(key: &str, detail: &str, usage: &str) -> ! {
    die(&format!(
        "400 Parameter verification failed.\n{key}: {detail}\n\n{usage}"
    ))
}

/// `--key value` pairs; as in Proxmox's CLI the word after an option is its value, whatever it
/// looks like, and only a final bare `--flag` means `1`.
fn options_ordered(a: &[&str], usage: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < a.len() {
        let Some(key) = a[i].strip_prefix("--").or_else(|| a[i].strip_prefix('-')) else {
            die(&format!("400 too many arguments\n{usage}"))
        };
        match a.get(i + 1) {
            Some(v) => {
                out.push((key.to_string(), v.to_string()));
                i += 2;
            }
            None => {
                out.push((key.to_string(), "1".to_string()));
                i += 1;
            }
        }
    }
    out
}

fn options(a: &[&str], usage: &str) -> BTreeMap<String, String> {
    options_ordered(a, usage).into_iter().collect()
}
