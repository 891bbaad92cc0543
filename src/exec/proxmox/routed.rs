//! A VM on another node: where it is, its node's API path, and the wait for the task a call
//! started (`proxmox::route` builds the commands and reads the answers).
//!
//! A VM on the node vmctl is connected to is reached with `qm` exactly as before, with no
//! extra read: only when `qm` answers that the VM is not on its node does vmctl read
//! `/cluster/resources` (afresh each time, so a migration is never missed) and the local
//! node, and send the same operation through the node that holds the VM.

use std::time::{Duration, Instant};

use super::{ProxmoxError, QmProxmox};
use crate::exec::remote::Remote;
use crate::plan::apply::url_encode;
use crate::proxmox::route::{self, Routed, TaskState};
use crate::proxmox::{display_line, redact, strip_control, Mutation, VmId};

use super::Proxmox as _;

impl<R: Remote> QmProxmox<R> {
    /// The node this connection reaches (`local: 1` in `/cluster/status`), read once.
    pub fn local_node(&self) -> Result<String, ProxmoxError> {
        let mut cached = self.local_node.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = &*cached {
            return Ok(n.clone());
        }
        let node = route::parse_local_node(&self.run(&route::cluster_status(), None)?)?;
        *cached = Some(node.clone());
        Ok(node)
    }

    /// The node that holds `vmid` now, by the cluster's own list.
    pub fn node_of(&self, vmid: VmId) -> Result<String, ProxmoxError> {
        self.list()?
            .into_iter()
            .find(|r| r.vmid == vmid)
            .map(|r| r.node)
            .ok_or(ProxmoxError::NoSuchVm { vmid })
    }

    /// The other node that holds `vmid`, after `qm` here said it has no such VM. The cluster
    /// listing it on this very node is a contradiction (it moved meanwhile): no such VM.
    pub(super) fn holder_node(&self, vmid: VmId) -> Result<String, ProxmoxError> {
        let node = self.node_of(vmid)?;
        if node == self.local_node()? {
            return Err(ProxmoxError::NoSuchVm { vmid });
        }
        Ok(node)
    }

    /// `local()` here; when `qm` says `vmid` is not on this node, `remote(NODE)` on the node
    /// that holds it.
    pub(super) fn per_vm<T>(
        &self,
        vmid: VmId,
        local: impl FnOnce() -> Result<T, ProxmoxError>,
        remote: impl FnOnce(&str) -> Result<T, ProxmoxError>,
    ) -> Result<T, ProxmoxError> {
        match local() {
            Err(ProxmoxError::NoSuchVm { vmid: id }) if id == vmid => {
                remote(&self.holder_node(vmid)?)
            }
            other => other,
        }
    }

    /// `qm terminal` cannot reach a VM of another node, and the API carries no serial console:
    /// refuse before the session starts.
    pub fn check_console(&self, vmid: VmId) -> Result<(), ProxmoxError> {
        let node = self.node_of(vmid)?;
        let local = self.local_node()?;
        if node != local {
            return Err(ProxmoxError::ConsoleElsewhere { vmid, node, local });
        }
        Ok(())
    }

    /// `m` (its fences already passed) through the API path of `node`; a call that started a
    /// task returns once the task ended well.
    pub(super) fn apply_on(&self, node: &str, m: &Mutation) -> Result<String, ProxmoxError> {
        let keys = |path: &str| {
            self.uploads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(path)
                .map(|b| url_encode(&String::from_utf8_lossy(b)))
        };
        let argv = match route::api(m, node, &keys)? {
            Routed::Api(argv) => argv,
            // Not a VM of another node's to begin with: what `qm` said stands.
            Routed::Connected => return Err(ProxmoxError::NoSuchVm { vmid: m.vmid() }),
        };
        if let Some(f) = &self.on_send {
            f(&display_line(&argv));
        }
        let out = self.run(&argv, Some(m.vmid()))?;
        if let Some(upid) = route::upid_in(&out) {
            self.wait_task(&argv, &upid)?;
        }
        Ok(out)
    }

    /// Waits for task `upid` (started by `argv`) to end and fails unless it ended well: pvesh
    /// exits 0 for a task that failed.
    pub(super) fn wait_task(&self, argv: &[String], upid: &str) -> Result<(), ProxmoxError> {
        wait_for_task(&|a| self.run(a, None), argv, upid, self.task_timeout)
    }
}

/// Waits for task `upid` (started by `argv`) to end, reading its status with `run`, and fails
/// unless it ended well (`OK`, `WARNINGS: N`): pvesh exits 0 for a task that failed, so the
/// exit status of the call says nothing. A failure carries the tail of the task's log, with
/// the call's secrets redacted; a task still running after `timeout` is an error too.
pub fn wait_for_task(
    run: &dyn Fn(&[String]) -> Result<String, ProxmoxError>,
    argv: &[String],
    upid: &str,
    timeout: Duration,
) -> Result<(), ProxmoxError> {
    let command = display_line(argv);
    let secrets = redact::secrets(argv);
    let shown = |text: &str| strip_control(&redact::scrub(text, &secrets));
    let node = route::upid_node(upid)
        .ok_or_else(|| crate::proxmox::parse::ParseError {
            command: "pvesh",
            detail: format!("no node in the task ID {upid:?}"),
        })?
        .to_string();
    let start = Instant::now();
    let mut delay = Duration::from_millis(50);
    loop {
        let status = run(&route::task_status(&node, upid))?;
        match route::parse_task_status(&status)? {
            TaskState::Ok => return Ok(()),
            TaskState::Running if start.elapsed() >= timeout => {
                return Err(ProxmoxError::TaskTimeout {
                    command,
                    node,
                    upid: upid.to_string(),
                    waited: start.elapsed(),
                })
            }
            TaskState::Running => {
                std::thread::sleep(delay.min(timeout));
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            TaskState::Failed { exitstatus } => {
                let log = run(&route::task_log(&node, upid))
                    .map(|t| route::parse_task_log_tail(&t, 3, &exitstatus))
                    .unwrap_or_default();
                return Err(ProxmoxError::TaskFailed {
                    command,
                    node,
                    upid: upid.to_string(),
                    exitstatus: shown(&exitstatus),
                    log: shown(&log),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::exec::remote::{RemoteError, RemoteOutput};
    use crate::model::Definitions;
    use crate::proxmox::{Fence, RetryPolicy};

    /// A scripted cluster: `qm` here knows no VM, the cluster puts VM 120 on pve2, and each
    /// task status read answers the next of `statuses`.
    struct Cluster {
        statuses: Mutex<Vec<&'static str>>,
        log: Mutex<Vec<String>>,
    }

    impl Remote for Cluster {
        fn run_with_input(
            &self,
            argv: &[String],
            _input: Option<&[u8]>,
        ) -> Result<RemoteOutput, RemoteError> {
            let line = argv.join(" ");
            self.log.lock().unwrap().push(line.clone());
            let ok = RemoteOutput::ok;
            Ok(if line.starts_with("qm ") {
                let id = &argv[2];
                RemoteOutput::failed(
                    2,
                    format!(
                        "Configuration file 'nodes/prom/qemu-server/{id}.conf' does not exist\n"
                    ),
                )
            } else if line.contains("/cluster/resources") {
                ok(r#"[{"type":"qemu","vmid":120,"name":"web","node":"pve2","status":"running"}]"#)
            } else if line.contains("/cluster/status") {
                ok(
                    r#"[{"type":"node","name":"prom","local":1},{"type":"node","name":"pve2","local":0}]"#,
                )
            } else if line.contains("/tasks/") && line.contains("/status") {
                let mut s = self.statuses.lock().unwrap();
                ok(if s.len() > 1 { s.remove(0) } else { s[0] })
            } else if line.contains("/tasks/") {
                ok(r#"[{"n":1,"t":"starting"},{"n":2,"t":"TASK ERROR: disk full"}]"#)
            } else if line.starts_with("pvesh create") {
                ok("\"UPID:pve2:00001234:00000001:65000000:qmstart:120:root@pam:\"\n")
            } else {
                ok("")
            })
        }

        fn target(&self) -> String {
            "root@prom".into()
        }
    }

    fn proxmox(statuses: Vec<&'static str>) -> QmProxmox<Cluster> {
        let remote = Cluster {
            statuses: Mutex::new(statuses),
            log: Mutex::new(Vec::new()),
        };
        let retry = RetryPolicy {
            retries: 0,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(1),
        };
        let fence = Fence::from_definitions(&Definitions::default()).allow_unlisted(true);
        QmProxmox::new(remote, fence, retry)
    }

    #[test]
    fn a_vm_of_another_node_goes_through_its_api_path_and_waits_for_the_task() {
        let p = proxmox(vec![
            r#"{"status":"running"}"#,
            r#"{"status":"running"}"#,
            r#"{"status":"stopped","exitstatus":"OK"}"#,
        ]);
        p.apply(&Mutation::Start { vmid: 120 }).unwrap();
        let log = p.remote().log.lock().unwrap().clone();
        let upid = "UPID:pve2:00001234:00000001:65000000:qmstart:120:root@pam:";
        let status = format!("pvesh get /nodes/pve2/tasks/{upid}/status --output-format json");
        assert_eq!(
            log,
            [
                "qm start 120",
                "pvesh get /cluster/resources --type vm --output-format json",
                "pvesh get /cluster/status --output-format json",
                "pvesh create /nodes/pve2/qemu/120/status/start",
                &status,
                &status,
                &status,
            ]
        );
        // The local node is read once per connection; the VM's node afresh each time.
        p.apply(&Mutation::Stop { vmid: 120 }).unwrap();
        let log = p.remote().log.lock().unwrap().clone();
        assert_eq!(
            log.iter().filter(|l| l.contains("/cluster/status")).count(),
            1
        );
        assert_eq!(
            log.iter()
                .filter(|l| l.contains("/cluster/resources"))
                .count(),
            2
        );
    }

    #[test]
    fn a_failed_task_is_an_error_with_its_log_tail() {
        let p = proxmox(vec![r#"{"status":"stopped","exitstatus":"no space left"}"#]);
        let e = p.apply(&Mutation::Start { vmid: 120 }).unwrap_err();
        assert!(
            matches!(&e, ProxmoxError::TaskFailed { exitstatus, log, node, .. }
                if exitstatus == "no space left" && log == "starting; TASK ERROR: disk full"
                    && node == "pve2"),
            "{e}"
        );
    }

    #[test]
    fn a_task_still_running_past_the_bound_is_an_error() {
        let p =
            proxmox(vec![r#"{"status":"running"}"#]).with_task_timeout(Duration::from_millis(120));
        let e = p.apply(&Mutation::Start { vmid: 120 }).unwrap_err();
        assert!(matches!(e, ProxmoxError::TaskTimeout { .. }), "{e}");
    }

    #[test]
    fn reads_console_and_unknown_vms() {
        let p = proxmox(vec![]);
        let e = p.check_console(120).unwrap_err();
        assert!(matches!(e, ProxmoxError::ConsoleElsewhere { .. }), "{e}");
        assert!(matches!(
            p.status(121),
            Err(ProxmoxError::NoSuchVm { vmid: 121 })
        ));
        // A VM whose file `qm set --sshkeys` would read was never uploaded by this run.
        let e = p
            .apply(&Mutation::Configure {
                vmid: 120,
                options: vec![("sshkeys".into(), "/root/keys.pub".into())],
            })
            .unwrap_err();
        assert!(matches!(e, ProxmoxError::Route(_)), "{e}");
        p.upload("/root/keys.pub", b"ssh-ed25519 AAAA a\n").unwrap();
        p.apply(&Mutation::Configure {
            vmid: 120,
            options: vec![("sshkeys".into(), "/root/keys.pub".into())],
        })
        .unwrap();
        let log = p.remote().log.lock().unwrap().clone();
        assert!(
            log.iter().any(|l| l
                == "pvesh set /nodes/pve2/qemu/120/config --sshkeys ssh-ed25519%20AAAA%20a%0A"),
            "{log:?}"
        );
    }

    #[test]
    fn what_a_failed_task_says_is_shown_with_the_calls_secrets_redacted() {
        let p = proxmox(vec![
            r#"{"status":"stopped","exitstatus":"cipassword: value 'hunter2' rejected"}"#,
        ]);
        let argv: Vec<String> = ["pvesh", "set", "/x", "--cipassword", "hunter2"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        let e = p
            .wait_task(&argv, "UPID:pve2:1:1:1:qmset:120:root@pam:")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2") && e.contains("<redacted>"), "{e}");
    }
}
