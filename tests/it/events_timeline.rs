//! The simulator's timing on demand (`sandbox.sh up` with SANDBOX_TIMING=1, docs/sandbox.md)
//! and the timeline it writes (`timeline.jsonl`, tests/pve-sim/timing.rs): concurrent clones
//! onto one storage take their turns behind its lock, a timed boot returns from `qm start` at
//! once and answers later, the guest agent later still, and `qm stop` cancels a boot under way.
//! Only lower bounds and orderings are checked, never how fast the machine is.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::sandbox::Sandbox;
use crate::support::text;

/// A sandbox with timing on at `scale`: a clone 500 ms × scale, a boot 2 s × scale, the
/// agent 500 ms × scale after it.
fn timed(scale: &str) -> Sandbox {
    Sandbox::up_env(
        &[],
        &[("SANDBOX_TIMING", "1"), ("SANDBOX_TIME_SCALE", scale)],
    )
}

/// A command on the sandbox's Proxmox host, whatever its status.
fn on_host(s: &Sandbox, command: &str) -> Output {
    Command::new("ssh")
        .arg("-F")
        .arg(s.var("SANDBOX_SSH_CONFIG"))
        .arg(s.var("SANDBOX_PROXMOX_HOST"))
        .arg(command)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(s: &Sandbox, command: &str) -> String {
    let out = on_host(s, command);
    assert!(out.status.success(), "`{command}`: {}", text(&out.stderr));
    text(&out.stdout)
}

fn state(s: &Sandbox) -> std::path::PathBuf {
    s.dir.join("pve/state")
}

/// `(what, phase, vmid, storage, t)` of every timeline line.
fn timeline(s: &Sandbox) -> Vec<(String, String, u64, Option<String>, f64)> {
    std::fs::read_to_string(state(s).join("timeline.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            (
                v["what"].as_str().unwrap().to_string(),
                v["phase"].as_str().unwrap().to_string(),
                v["vmid"].as_u64().unwrap(),
                v["storage"].as_str().map(str::to_string),
                v["t"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// When `what` of `vmid` hit `phase`, if it did.
fn edge(s: &Sandbox, what: &str, phase: &str, vmid: u64) -> Option<f64> {
    timeline(s)
        .into_iter()
        .find(|(w, p, id, _, _)| w == what && p == phase && *id == vmid)
        .map(|e| e.4)
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

#[test]
fn concurrent_clones_onto_one_storage_take_turns_and_take_their_time() {
    let s = timed("0.2");
    let ids = [181u64, 182, 183];
    std::thread::scope(|scope| {
        for id in ids {
            let s = &s;
            scope.spawn(move || {
                ok(
                    s,
                    &format!("qm clone 9001 {id} --name c{id} --full 1 --storage nvmeprom"),
                )
            });
        }
    });
    let mut clones: Vec<(f64, f64)> = ids
        .iter()
        .map(|id| {
            let line = timeline(&s)
                .into_iter()
                .find(|(w, p, v, _, _)| w == "clone" && p == "start" && v == id)
                .unwrap_or_else(|| panic!("no clone start of {id}: {:?}", timeline(&s)));
            assert_eq!(line.3.as_deref(), Some("nvmeprom"), "{line:?}");
            (line.4, edge(&s, "clone", "end", *id).expect("a clone end"))
        })
        .collect();
    clones.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (start, end) in &clones {
        // 500 ms × 0.2, slept while the lock is held (the timeline rounds to a microsecond).
        assert!(
            end - start >= 0.1 - 1e-5,
            "a clone took {:.3} s",
            end - start
        );
    }
    for pair in clones.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "two clones held the storage at once: {clones:?}"
        );
    }
}

#[test]
fn a_timed_boot_answers_after_qm_start_returned_and_the_agent_later_still() {
    // A 2 s boot: `qm start` returns well within it, even on a busy machine.
    let s = timed("1");
    let port: u16 = s.var("SANDBOX_VM_PORT").parse().unwrap();
    ok(
        &s,
        "qm clone 9001 184 --name b184 --full 1 --storage nvmeprom",
    );
    let started = Instant::now();
    ok(&s, "qm start 184");
    let returned = now();
    let addr = SocketAddr::from(([127, 0, 0, 184], port));
    let up = loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            break now();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "VM 184's sshd never answered: {:?}",
            timeline(&s)
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let boot_start = edge(&s, "boot", "start", 184).expect("a boot start");
    // The booter records the end once it has seen the sshd listen: a moment after a client can.
    let waited = Instant::now();
    let boot_end = loop {
        if let Some(t) = edge(&s, "boot", "end", 184) {
            break t;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "no boot end once it answers: {:?}",
            timeline(&s)
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // 2 s from `qm start` to the sshd, which `qm start` did not wait for.
    assert!(
        boot_end - boot_start >= 2.0 - 1e-5,
        "booted in {:.3} s",
        boot_end - boot_start
    );
    assert!(
        up >= boot_start + 2.0 - 1e-3,
        "answered {:.3} s into the boot",
        up - boot_start
    );
    assert!(
        returned < boot_end,
        "`qm start` returned only after the boot ({returned} >= {boot_end})"
    );
    // The agent: 500 ms after the boot, not before.
    let agent = loop {
        let out = on_host(&s, "qm guest cmd 184 network-get-interfaces");
        if out.status.success() {
            break now();
        }
        assert!(
            text(&out.stderr).contains("QEMU guest agent is not running"),
            "{}",
            text(&out.stderr)
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the agent never answered"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        agent >= boot_start + 2.5 - 1e-3,
        "the agent answered {:.3} s into the boot",
        agent - boot_start
    );
}

#[test]
fn qm_stop_cancels_a_boot_under_way() {
    let s = timed("0.2");
    ok(
        &s,
        "qm clone 9001 185 --name s185 --full 1 --storage nvmeprom",
    );
    // Then a 20 s boot (2 s × 10): surely still under way when stopped. The simulator reads
    // sim.json anew for every command.
    let sim_json = state(&s).join("sim.json");
    let settings = std::fs::read_to_string(&sim_json).unwrap();
    assert!(settings.contains("\"time_scale\": 0.2"), "{settings}");
    std::fs::write(
        &sim_json,
        settings.replace("\"time_scale\": 0.2", "\"time_scale\": 10"),
    )
    .unwrap();
    ok(&s, "qm start 185");
    let boot_pid_file = state(&s).join("guests/185/boot.pid");
    let pid: u32 = std::fs::read_to_string(&boot_pid_file)
        .expect("a boot under way has its booter's PID")
        .trim()
        .parse()
        .unwrap();
    assert!(pid_alive(pid), "the booter is not running");
    ok(&s, "qm stop 185");
    assert!(!boot_pid_file.exists(), "boot.pid outlived the stop");
    let deadline = Instant::now() + Duration::from_secs(10);
    while pid_alive(pid) {
        assert!(
            Instant::now() < deadline,
            "the booter {pid} survived `qm stop`"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        edge(&s, "boot", "end", 185),
        None,
        "a stopped VM finished booting"
    );
    assert!(!Path::new(&state(&s).join("guests/185/sshd.pid")).exists());
}

#[test]
fn a_timed_provision_puts_its_clone_boots_and_install_on_the_timeline() {
    // 0.2: a clone of 100 ms, boots of 400 ms, an install of 1 s.
    let s = crate::events::sandbox_with_vmid_env(
        175,
        &[("SANDBOX_TIMING", "1"), ("SANDBOX_TIME_SCALE", "0.2")],
    );
    let out = crate::events::provision(&s, &[], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = |what, phase| {
        edge(&s, what, phase, 175)
            .unwrap_or_else(|| panic!("no {what} {phase} of VM 175: {:?}", timeline(&s)))
    };
    assert!(t("clone", "end") - t("clone", "start") >= 0.1 - 1e-5);
    assert!(t("install", "end") - t("install", "start") >= 1.0 - 1e-3);
    // In order: the clone, the first boot, the install, then the boot after its reboot.
    assert!(t("clone", "end") <= t("boot", "start"));
    assert!(t("boot", "end") <= t("install", "start"));
    let boots: Vec<f64> = timeline(&s)
        .into_iter()
        .filter(|(w, p, v, _, _)| w == "boot" && p == "start" && *v == 175)
        .map(|e| e.4)
        .collect();
    assert_eq!(boots.len(), 2, "one boot, one reboot: {:?}", timeline(&s));
    assert!(t("install", "start") <= boots[1]);
}
