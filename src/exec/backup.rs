//! The side effects of `vmctl backup`, `backups`, `restore` and `migrate`: their mutations sent
//! through `QmProxmox::apply` (fences first), the Proxmox tasks they start waited for until
//! they end, the reads of the VM's node (its config, its backups), and the fleet's commit for
//! the notes.

use crate::exec::process::Process;
use crate::exec::proxmox::{succeeded, Proxmox, ProxmoxError, QmProxmox};
use crate::exec::remote::Remote;
use crate::proxmox::node_api::{self, LiveConfig};
use crate::proxmox::{route, strip_control, Mutation};
use std::path::Path;

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
}

/// Sends `m` through the fences; `QmProxmox::apply` waits for the task it starts to end and
/// turns a task that failed into an error carrying the tail of its log. A call that started no
/// task cannot be judged, so it is an error too. Returns what the call printed.
pub fn run_task<R: Remote>(
    p: &QmProxmox<R>,
    m: &Mutation,
    progress: &dyn Fn(&str),
) -> Result<String, TaskError> {
    progress(&format!(
        "running {} (a Proxmox task; vmctl waits for it to end)",
        crate::proxmox::display_line(&m.argv())
    ));
    let output = p.apply(m)?;
    if route::upid_in(&output).is_none() {
        return Err(TaskError::NoUpid {
            command: crate::proxmox::display_line(&m.argv()),
            output: strip_control(output.trim()),
        });
    }
    Ok(output)
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

    /// A cluster where VM 110 is on pve2 (a migration reads where the VM is first).
    fn on_pve2() -> Recording {
        Recording::new().answer(
            "pvesh get /cluster/resources",
            RemoteOutput::ok(
                r#"[{"type":"qemu","vmid":110,"name":"web","node":"pve2","status":"stopped"}]"#,
            ),
        )
    }

    const UPID: &str = "UPID:pve2:00001234:00000000:00000000:qmigrate:110:root@pam:";

    #[test]
    fn a_task_is_waited_for_and_its_failure_carries_the_log() {
        let rec = on_pve2()
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
            matches!(
                &e,
                TaskError::Proxmox(ProxmoxError::TaskFailed { exitstatus, log, .. })
                    if exitstatus == "migration aborted" && log.contains("can't migrate VM")
            ),
            "{e}"
        );
        let lines = p.remote().lines();
        assert!(lines[0].starts_with("pvesh get /cluster/resources"));
        assert_eq!(
            lines[1],
            "pvesh create /nodes/pve2/qemu/110/migrate --target pve3"
        );
        assert!(
            lines[2].ends_with("/status --output-format json"),
            "{lines:?}"
        );
    }

    #[test]
    fn a_migration_goes_to_the_node_that_holds_the_vm_not_the_declared_one() {
        let rec = on_pve2().answer("pvesh create", RemoteOutput::ok(format!("{UPID}\n")));
        let p = proxmox(rec.answer(
            &format!("pvesh get /nodes/pve2/tasks/{UPID}/status"),
            RemoteOutput::ok(r#"{"status":"stopped","exitstatus":"OK"}"#),
        ));
        let stale = Mutation::Migrate {
            node: "prom".into(),
            vmid: 110,
            target: "pve3".into(),
            online: false,
            with_local_disks: false,
        };
        run_task(&p, &stale, &|_| {}).unwrap();
        assert_eq!(
            p.remote().lines()[1],
            "pvesh create /nodes/pve2/qemu/110/migrate --target pve3"
        );
    }

    #[test]
    fn a_call_without_a_upid_is_an_error_not_a_success() {
        let rec = on_pve2().answer("pvesh create", RemoteOutput::ok("done\n"));
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
}
