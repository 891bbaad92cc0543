//! The side effects of `vmctl backup`, `backups`, `restore` and `migrate`: their mutations sent
//! through `QmProxmox::apply` (fences first), the Proxmox tasks they start waited for until
//! they end, the reads of the VM's node (its config, its backups), and the fleet's commit for
//! the notes.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::exec::process::Process;
use crate::exec::proxmox::{succeeded, Proxmox, ProxmoxError, QmProxmox};
use crate::exec::remote::Remote;
use crate::proxmox::node_api::{self, LiveConfig};
use crate::proxmox::{argv, strip_control, Mutation};

/// Why a task-starting operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(transparent)]
    Proxmox(#[from] ProxmoxError),
    #[error(
        "`{command}` did not answer with a task ID (UPID), so vmctl cannot tell whether it \
         worked: {output}; look at the node's task log in the Proxmox UI"
    )]
    NoUpid { command: String, output: String },
    #[error(
        "the Proxmox task {upid} failed ({exitstatus}): {log}; nothing after it was run; \
         the whole log is in the Proxmox UI (the node's Task History)"
    )]
    Failed {
        upid: String,
        exitstatus: String,
        log: String,
    },
    #[error(
        "the Proxmox task {upid} did not end within {}s; it may still be running: look at \
         it in the Proxmox UI before running this again",
        .waited.as_secs()
    )]
    Timeout { upid: String, waited: Duration },
    #[error("cannot read the answer of `{command}`: {detail}; please report this")]
    Answer { command: String, detail: String },
}

/// A task's state as `GET /nodes/N/tasks/UPID/status` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStatus {
    pub running: bool,
    /// `OK`, `WARNINGS: N`, or the error; only once stopped.
    pub exitstatus: Option<String>,
}

/// Reads the status JSON (`{"status":"stopped","exitstatus":"OK",…}`).
pub fn parse_task_status(json: &str) -> Result<TaskStatus, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let status = v
        .get("status")
        .and_then(|s| s.as_str())
        .ok_or("no `status` in the answer")?;
    Ok(TaskStatus {
        running: status == "running",
        exitstatus: v
            .get("exitstatus")
            .and_then(|s| s.as_str())
            .map(str::to_string),
    })
}

/// True for the exit statuses Proxmox counts as success (`OK`, or `WARNINGS: N`: the task did
/// its work and logged warnings).
pub fn task_succeeded(exitstatus: &str) -> bool {
    exitstatus == "OK" || exitstatus.starts_with("WARNINGS")
}

/// The UPID in what a task-starting call printed, and the node it runs on (its second field).
/// `pvesh` runs a task of its own node in the foreground, printing the task's log and then the
/// UPID it returns (pve-manager's `PVE/CLI/pvesh.pm`, the CLI environment's `fork_worker`); a
/// call proxied to another node prints the same, the UPID as a JSON string. So the last
/// UPID-shaped word is the answer, and waiting for it costs one status read.
pub fn find_upid(output: &str) -> Option<(String, String)> {
    let upid = output
        .split(|c: char| c.is_whitespace() || c == '"')
        .rfind(|w| w.starts_with("UPID:"))?;
    let node = upid.split(':').nth(1).filter(|n| !n.is_empty())?;
    Some((upid.to_string(), node.to_string()))
}

/// The last `lines` lines of a task log (`[{"n":1,"t":"…"},…]`), joined with `; `.
pub fn log_tail(json: &str, lines: usize) -> String {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let all: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("t").and_then(|t| t.as_str()))
        .filter(|t| !t.trim().is_empty())
        .map(|t| strip_control(t.trim()))
        .collect();
    all[all.len().saturating_sub(lines)..].join("; ")
}

/// How long a task may run before vmctl stops waiting (backups of large disks take hours).
const TASK_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// Sends `m` through the fences and waits until the task it starts ends; a task that failed
/// is an error carrying the tail of its log. Returns what the call printed.
pub fn run_task<R: Remote>(
    p: &QmProxmox<R>,
    m: &Mutation,
    progress: &dyn Fn(&str),
) -> Result<String, TaskError> {
    let output = p.apply(m)?;
    let Some((upid, node)) = find_upid(&output) else {
        return Err(TaskError::NoUpid {
            command: crate::proxmox::display_line(&m.argv()),
            output: strip_control(output.trim()),
        });
    };
    progress(&format!("waiting for the Proxmox task {upid}"));
    wait_task(p, &node, &upid, TASK_LIMIT)?;
    Ok(output)
}

/// Polls the task's status until it stops (quickly at first, then every 5 s).
pub fn wait_task<R: Remote>(
    p: &QmProxmox<R>,
    node: &str,
    upid: &str,
    limit: Duration,
) -> Result<(), TaskError> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(50);
    loop {
        let argv = argv::task_status(node, upid);
        let json = run_remote(p, &argv)?;
        let status = parse_task_status(&json).map_err(|detail| TaskError::Answer {
            command: crate::proxmox::display_line(&argv),
            detail,
        })?;
        if !status.running {
            let exitstatus = status.exitstatus.unwrap_or_else(|| "no exit status".into());
            if task_succeeded(&exitstatus) {
                return Ok(());
            }
            let log = run_remote(p, &argv::task_log(node, upid))
                .map(|j| log_tail(&j, 5))
                .unwrap_or_else(|e| format!("(its log could not be read: {e})"));
            return Err(TaskError::Failed {
                upid: upid.to_string(),
                exitstatus: strip_control(&exitstatus),
                log,
            });
        }
        if start.elapsed() >= limit {
            return Err(TaskError::Timeout {
                upid: upid.to_string(),
                waited: start.elapsed(),
            });
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Where VM `vmid` is now and its power state, from the one cluster-wide read; `None` when the
/// cluster has no such VM.
pub fn locate<R: Remote>(
    p: &QmProxmox<R>,
    vmid: u32,
) -> Result<Option<crate::proxmox::VmResource>, ProxmoxError> {
    Ok(p.list()?.into_iter().find(|r| r.vmid == vmid))
}

/// A VM's configuration from its node's API path (whichever node vmctl is connected to).
pub fn live_config<R: Remote>(
    p: &QmProxmox<R>,
    node: &str,
    vmid: u32,
) -> Result<LiveConfig, ProxmoxError> {
    Ok(node_api::parse_config(&run_remote(
        p,
        &node_api::config(node, vmid),
    )?)?)
}

/// Runs a read (not a mutation) and returns its stdout, or its error with the stderr's tail.
pub fn run_remote<R: Remote>(p: &QmProxmox<R>, argv: &[String]) -> Result<String, ProxmoxError> {
    let out = p.remote().run(argv)?;
    if out.success() {
        Ok(out.stdout)
    } else {
        succeeded(argv, out).map(|()| String::new())
    }
}

/// The fleet's commit (`git rev-parse --short HEAD`), with `-dirty` when files differ from it;
/// `None` outside git.
pub fn fleet_commit(root: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        Process::new("read the fleet's commit", "git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "--short", "HEAD"])?;
    let dirty = git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{head}-dirty") } else { head })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::remote::{Recording, RemoteOutput};
    use crate::model::{Definitions, Vm, VmKind};
    use crate::proxmox::{Fence, RetryPolicy};

    fn proxmox(rec: Recording) -> QmProxmox<Recording> {
        let fence = Fence::from_definitions(&Definitions {
            managed: vec![Vm::new("web", VmKind::Managed, Some(110))],
            ..Default::default()
        });
        QmProxmox::new(rec, fence, RetryPolicy::default())
    }

    fn migrate() -> Mutation {
        Mutation::Migrate {
            node: "pve2".into(),
            vmid: 110,
            target: "pve3".into(),
            online: false,
            with_local_disks: false,
        }
    }

    const UPID: &str = "UPID:pve2:00001234:00000000:00000000:qmigrate:110:root@pam:";

    #[test]
    fn upids_and_statuses_are_read() {
        assert_eq!(
            find_upid(&format!("\"{UPID}\"\n")),
            Some((UPID.to_string(), "pve2".to_string()))
        );
        assert_eq!(find_upid("migration done\n"), None);
        let foreground = format!("INFO: found UPID:x:y in a line\nTASK OK\n\"{UPID}\"\n");
        assert_eq!(find_upid(&foreground).unwrap().0, UPID);
        let s = parse_task_status(r#"{"status":"stopped","exitstatus":"OK"}"#).unwrap();
        assert!(!s.running && task_succeeded(s.exitstatus.as_deref().unwrap()));
        assert!(
            parse_task_status(r#"{"status":"running"}"#)
                .unwrap()
                .running
        );
        assert!(task_succeeded("WARNINGS: 2"));
        assert!(!task_succeeded("migration aborted"));
        assert!(parse_task_status("{}").is_err());
        assert_eq!(
            log_tail(r#"[{"n":1,"t":"a"},{"n":2,"t":""},{"n":3,"t":"b"}]"#, 5),
            "a; b"
        );
    }

    #[test]
    fn a_task_is_waited_for_and_its_failure_carries_the_log() {
        let rec = Recording::new()
            .answer("pvesh create", RemoteOutput::ok(format!("{UPID}\n")))
            .answer(
                &format!("pvesh get /nodes/pve2/tasks/{UPID}/status"),
                RemoteOutput::ok(r#"{"status":"stopped","exitstatus":"migration aborted"}"#),
            )
            .answer(
                &format!("pvesh get /nodes/pve2/tasks/{UPID}/log"),
                RemoteOutput::ok(r#"[{"n":1,"t":"ERROR: can't migrate VM - check log"}]"#),
            );
        let p = proxmox(rec);
        let e = run_task(&p, &migrate(), &|_| {}).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "the Proxmox task {UPID} failed (migration aborted): ERROR: can't migrate VM - \
                 check log;"
            )),
            "{e}"
        );
        let lines = p.remote().lines();
        assert_eq!(
            lines[0],
            "pvesh create /nodes/pve2/qemu/110/migrate --target pve3"
        );
        assert!(
            lines[1].ends_with("/status --output-format json"),
            "{lines:?}"
        );
    }

    #[test]
    fn a_call_without_a_upid_is_an_error_not_a_success() {
        let rec = Recording::new().answer("pvesh create", RemoteOutput::ok("done\n"));
        let e = run_task(&proxmox(rec), &migrate(), &|_| {}).unwrap_err();
        assert!(matches!(e, TaskError::NoUpid { .. }), "{e}");
    }

    #[test]
    fn a_readonly_vm_gets_no_call() {
        let fence = Fence::from_definitions(&Definitions {
            imported: vec![Vm {
                readonly: true,
                ..Vm::new("doc1", VmKind::Imported, Some(110))
            }],
            ..Default::default()
        });
        let p = QmProxmox::new(Recording::new(), fence, RetryPolicy::default());
        assert!(run_task(&p, &migrate(), &|_| {}).is_err());
        assert!(p.remote().lines().is_empty());
    }

    /// Answers each status read from a script, in order: a task seen running, then ended.
    struct Script(std::sync::Mutex<Vec<&'static str>>, std::sync::Mutex<usize>);

    impl Remote for Script {
        fn run_with_input(
            &self,
            argv: &[String],
            _input: Option<&[u8]>,
        ) -> Result<RemoteOutput, crate::exec::remote::RemoteError> {
            *self.1.lock().unwrap() += 1;
            assert!(argv[2].ends_with("/status"), "{argv:?}");
            Ok(RemoteOutput::ok(self.0.lock().unwrap().remove(0)))
        }

        fn target(&self) -> String {
            "script".into()
        }
    }

    #[test]
    fn a_running_task_is_polled_until_it_ends() {
        let script = Script(
            std::sync::Mutex::new(vec![
                r#"{"status":"running"}"#,
                r#"{"status":"running"}"#,
                r#"{"status":"stopped","exitstatus":"WARNINGS: 1"}"#,
            ]),
            std::sync::Mutex::new(0),
        );
        let p = QmProxmox::new(&script, Fence::default(), RetryPolicy::default());
        wait_task(&p, "pve2", UPID, Duration::from_secs(60)).unwrap();
        assert_eq!(*script.1.lock().unwrap(), 3);
        // A task that never ends within the limit is an error, not a success.
        let script = Script(
            std::sync::Mutex::new(vec![r#"{"status":"running"}"#; 8]),
            std::sync::Mutex::new(0),
        );
        let p = QmProxmox::new(&script, Fence::default(), RetryPolicy::default());
        let e = wait_task(&p, "pve2", UPID, Duration::ZERO).unwrap_err();
        assert!(matches!(e, TaskError::Timeout { .. }), "{e}");
    }
}
