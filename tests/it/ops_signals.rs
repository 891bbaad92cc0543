//! Process hygiene: Ctrl-C (SIGINT) and SIGTERM while vmctl waits to retry a Proxmox lock end
//! the multiplexed SSH master too. Checked by the master's PID and its control socket path.

use crate::support::pve;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use pve::Pve;

/// PIDs of live `ssh` processes whose command line mentions `dir` (the control directory).
fn ssh_pids_using(dir: &Path) -> Vec<u32> {
    let needle = dir.display().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_ssh = args
            .first()
            .is_some_and(|a| Path::new(a).file_name().is_some_and(|n| n == "ssh"));
        if is_ssh && args.iter().any(|a| a.contains(&needle)) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// True unless the process is gone or a zombie (an exited daemon nobody reaped yet).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

/// Every unix socket (and control directory) under `dir`.
fn sockets_under(dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                if e.file_name()
                    .to_string_lossy()
                    .starts_with(".ssh-connection")
                {
                    out.push(e.path());
                }
                stack.push(e.path());
            } else if t.is_socket() {
                out.push(e.path());
            }
        }
    }
    out
}

fn interrupted_during_lock_wait(signal: i32, want_code: i32) {
    let pve = Pve::start();
    pve.set_faults(r#"[{"match":"qm start 110","action":"lock-timeout"}]"#);
    // A short path: the control socket must fit the 108-byte limit of unix sockets.
    let tmp = tempfile::Builder::new()
        .prefix("vmctl-sig-")
        .tempdir_in("/tmp")
        .unwrap();
    let mut cmd = pve.ops_cmd(crate::support::repo());
    cmd.args([
        "start",
        "110",
        "--lock-retries",
        "50",
        "--lock-backoff-ms",
        "10000",
    ])
    .env("TMPDIR", tmp.path())
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    while !pve
        .argv_log()
        .iter()
        .any(|a| a.starts_with(&["qm".into(), "start".into()]))
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "vmctl never ran qm start; sshd log:\n{}",
            pve.sshd.log_text()
        );
        assert!(child.try_wait().unwrap().is_none(), "vmctl ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    // vmctl now sleeps before its first retry, with the master up.
    let masters = ssh_pids_using(tmp.path());
    let sockets = sockets_under(tmp.path());
    assert!(
        !masters.is_empty(),
        "the test must see the master ssh process"
    );
    assert!(!sockets.is_empty(), "the test must see the control socket");
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(want_code),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The master exits on vmctl's request; give it a moment to go.
    let start = Instant::now();
    while masters.iter().any(|p| alive(*p)) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in &masters {
        assert!(!alive(*pid), "ssh master {pid} outlived vmctl");
    }
    assert!(ssh_pids_using(tmp.path()).is_empty());
    for s in &sockets {
        assert!(!s.exists(), "{} is left behind", s.display());
    }
    assert_eq!(sockets_under(tmp.path()), Vec::<PathBuf>::new());
    // Exactly one attempt ran: the retry never happened.
    let starts = pve
        .argv_log()
        .iter()
        .filter(|a| a.starts_with(&["qm".into(), "start".into()]))
        .count();
    assert_eq!(starts, 1);
}

#[test]
fn ctrl_c_during_a_lock_retry_wait_ends_the_ssh_master() {
    interrupted_during_lock_wait(libc::SIGINT, 130);
}

#[test]
fn sigterm_during_a_lock_retry_wait_ends_the_ssh_master() {
    interrupted_during_lock_wait(libc::SIGTERM, 143);
}
