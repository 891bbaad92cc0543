//! Per-node routing, the pure part: every per-VM read and `Mutation` as the API path of the node
//! that holds the VM (`pvesh … /nodes/NODE/qemu/ID/…`), UPIDs and task status.
//!
//! `qm` acts only on the VMs of the node it runs on, while `pvesh` reaches any node's API path
//! (pvesh proxies the call to that node, PVE/CLI/pvesh.pm `proxy_handler`). A call that starts a
//! worker returns its UPID; pvesh, being a CLI environment, runs the worker in the foreground
//! (pve-common RESTEnvironment `fork_worker`: `$sync` for `cli`) but still exits 0 when the task
//! failed, so the caller reads `/nodes/NODE/tasks/UPID/status` and checks `exitstatus`.

use serde_json::Value;

use super::argv::Mutation;
use super::parse::ParseError;
use super::{Snapshot, VmConfig, VmId, VmStatus};

fn s(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

fn vm_path(node: &str, vmid: VmId, rest: &str) -> String {
    if rest.is_empty() {
        format!("/nodes/{node}/qemu/{vmid}")
    } else {
        format!("/nodes/{node}/qemu/{vmid}/{rest}")
    }
}

fn get_json(path: &str) -> Vec<String> {
    s(&["pvesh", "get", path, "--output-format", "json"])
}

/// The cluster's members; the entry with `local: 1` is the node vmctl is connected to (a node
/// outside any cluster lists itself alone, also `local: 1`).
pub fn cluster_status() -> Vec<String> {
    get_json("/cluster/status")
}

pub fn status(node: &str, vmid: VmId) -> Vec<String> {
    get_json(&vm_path(node, vmid, "status/current"))
}

pub fn config(node: &str, vmid: VmId) -> Vec<String> {
    get_json(&vm_path(node, vmid, "config"))
}

pub fn snapshots(node: &str, vmid: VmId) -> Vec<String> {
    get_json(&vm_path(node, vmid, "snapshot"))
}

pub fn guest_interfaces(node: &str, vmid: VmId) -> Vec<String> {
    get_json(&vm_path(node, vmid, "agent/network-get-interfaces"))
}

pub fn task_status(node: &str, upid: &str) -> Vec<String> {
    get_json(&format!("/nodes/{node}/tasks/{upid}/status"))
}

pub fn task_log(node: &str, upid: &str) -> Vec<String> {
    get_json(&format!("/nodes/{node}/tasks/{upid}/log"))
}

/// Why a mutation has no per-node form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error(
        "VM {vmid} is on node {node}: `--sshkeys {path}` names a file on the node vmctl is \
         connected to, which vmctl did not write in this run, so it cannot hand the keys to \
         {node}'s API; run it on {node} (`ssh root@{node} qm set {vmid} --sshkeys {path}`) \
         with the file there"
    )]
    SshKeysFile {
        vmid: VmId,
        node: String,
        path: String,
    },
}

/// A mutation as its node's API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// `pvesh` on the API path of the node that holds the VM (for a clone, its source).
    Api(Vec<String>),
    /// Acts where vmctl is connected whatever the VM (a restore from an archive there creates
    /// the VM on that node), or already is its node's API call: sent as it is.
    Connected,
}

/// The VM whose node decides where `m` runs: the clone's source, otherwise the VM it changes.
pub fn holder(m: &Mutation) -> VmId {
    match m {
        Mutation::Clone(c) => c.source,
        other => other.vmid(),
    }
}

fn options(a: &mut Vec<String>, options: &[(String, String)]) {
    for (k, v) in options {
        a.push(format!("--{k}"));
        a.push(v.clone());
    }
}

/// `m` on the API path of `node`. `sshkeys` turns the path `qm set --sshkeys PATH` would read
/// into the API's value (URL-encoded keys), when vmctl knows the file. The match is exhaustive
/// on purpose: a new `Mutation` cannot be added without its per-node form.
pub fn api(
    m: &Mutation,
    node: &str,
    sshkeys: &dyn Fn(&str) -> Option<String>,
) -> Result<Routed, RouteError> {
    let id = m.vmid();
    let create = |rest: &str| s(&["pvesh", "create", &vm_path(node, id, rest)]);
    let config = |opts: &[(String, String)]| {
        let mut a = s(&["pvesh", "set", &vm_path(node, id, "config")]);
        options(&mut a, opts);
        a
    };
    let argv = match m {
        Mutation::Clone(c) => {
            let mut a = s(&[
                "pvesh",
                "create",
                &vm_path(node, c.source, "clone"),
                "--newid",
                &c.vmid.to_string(),
                "--name",
                &c.name,
            ]);
            if c.full {
                a.extend(s(&["--full", "1"]));
            }
            for (k, v) in [
                ("storage", &c.storage),
                ("target", &c.target),
                ("pool", &c.pool),
                ("description", &c.description),
            ] {
                if let Some(v) = v {
                    a.extend([format!("--{k}"), v.clone()]);
                }
            }
            a
        }
        Mutation::Configure { options, .. } => {
            let mut opts = Vec::with_capacity(options.len());
            for (k, v) in options {
                if k == "sshkeys" {
                    let enc = sshkeys(v).ok_or_else(|| RouteError::SshKeysFile {
                        vmid: id,
                        node: node.to_string(),
                        path: v.clone(),
                    })?;
                    opts.push((k.clone(), enc));
                } else {
                    opts.push((k.clone(), v.clone()));
                }
            }
            config(&opts)
        }
        Mutation::CreateDisk {
            disk,
            storage,
            size_gib,
            ..
        } => config(&[(disk.clone(), format!("{storage}:{size_gib}"))]),
        Mutation::Resize { disk, size, .. } => {
            let mut a = s(&["pvesh", "set", &vm_path(node, id, "resize")]);
            options(
                &mut a,
                &[("disk".into(), disk.clone()), ("size".into(), size.clone())],
            );
            a
        }
        Mutation::RestoreVma { .. } => return Ok(Routed::Connected),
        Mutation::SerialSocket { .. } => config(&[("serial0".into(), "socket".into())]),
        Mutation::Start { .. } => create("status/start"),
        Mutation::Stop { .. } => create("status/stop"),
        Mutation::Shutdown { .. } => create("status/shutdown"),
        Mutation::Template { .. } => create("template"),
        Mutation::Destroy { .. } => s(&["pvesh", "delete", &vm_path(node, id, ""), "--purge", "1"]),
        Mutation::SnapshotCreate {
            name,
            description,
            vmstate,
            ..
        } => {
            let mut a = create("snapshot");
            a.extend(s(&["--snapname", name]));
            if let Some(d) = description {
                a.extend(s(&["--description", d]));
            }
            if *vmstate {
                a.extend(s(&["--vmstate", "1"]));
            }
            a
        }
        Mutation::SnapshotRollback { name, .. } => create(&format!("snapshot/{name}/rollback")),
        Mutation::SnapshotDelete { name, .. } => s(&[
            "pvesh",
            "delete",
            &vm_path(node, id, &format!("snapshot/{name}")),
        ]),
        // A migration carries the node definitions.nix or the cluster gave it; when the VM is
        // elsewhere now, the same migration goes through the node that holds it.
        Mutation::Migrate {
            vmid,
            target,
            online,
            with_local_disks,
            ..
        } => Mutation::Migrate {
            node: node.to_string(),
            vmid: *vmid,
            target: target.clone(),
            online: *online,
            with_local_disks: *with_local_disks,
        }
        .argv(),
        // Calls on the API path of the node they carry, read from the cluster in the same run
        // (a backup of the VM's node, a restore onto a chosen node): sent as they are.
        Mutation::Backup { .. } | Mutation::Restore { .. } => return Ok(Routed::Connected),
        Mutation::Protect { on, .. } => {
            config(&[("protection".into(), (if *on { "1" } else { "0" }).into())])
        }
    };
    Ok(Routed::Api(argv))
}

fn err(command: &'static str, detail: impl Into<String>) -> ParseError {
    ParseError {
        command,
        detail: detail.into(),
    }
}

fn json(command: &'static str, text: &str) -> Result<Value, ParseError> {
    serde_json::from_str(text).map_err(|e| err(command, e.to_string()))
}

/// The node of `pvesh get /cluster/status` whose `local` is 1.
pub fn parse_local_node(text: &str) -> Result<String, ParseError> {
    const CMD: &str = "pvesh get /cluster/status";
    let v = json(CMD, text)?;
    v.as_array()
        .into_iter()
        .flatten()
        .find(|e| {
            let local = match e.get("local") {
                Some(Value::Number(n)) => n.as_u64() == Some(1),
                Some(Value::Bool(b)) => *b,
                _ => false,
            };
            local && e.get("type").and_then(Value::as_str) == Some("node")
        })
        .and_then(|e| e.get("name").and_then(Value::as_str))
        .map(str::to_string)
        .ok_or_else(|| err(CMD, "no node entry with `local: 1`"))
}

/// The UPID a call printed, if it started a task: pvesh prints the task's log (the worker ran
/// in its foreground), then the UPID, JSON-quoted with `--output-format json`.
pub fn upid_in(stdout: &str) -> Option<String> {
    stdout.lines().rev().find_map(|l| {
        let l = l.trim().trim_matches('"');
        (l.starts_with("UPID:") && l.split(':').count() >= 9).then(|| l.to_string())
    })
}

/// The node a task runs on: the second field of `UPID:NODE:PID:PSTART:STARTTIME:TYPE:ID:USER:`.
pub fn upid_node(upid: &str) -> Option<&str> {
    upid.strip_prefix("UPID:")?
        .split(':')
        .next()
        .filter(|n| !n.is_empty())
}

/// What `/nodes/NODE/tasks/UPID/status` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    Running,
    /// Ended; `Ok` for `OK` and for `WARNINGS: N` (Proxmox counts those as success).
    Ok,
    Failed {
        exitstatus: String,
    },
}

pub fn parse_task_status(text: &str) -> Result<TaskState, ParseError> {
    const CMD: &str = "pvesh get /nodes/NODE/tasks/UPID/status";
    let v = json(CMD, text)?;
    match v.get("status").and_then(Value::as_str) {
        Some("running") => Ok(TaskState::Running),
        Some("stopped") => {
            let exit = v
                .get("exitstatus")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if exit == "OK" || exit.starts_with("WARNINGS") {
                Ok(TaskState::Ok)
            } else {
                Ok(TaskState::Failed { exitstatus: exit })
            }
        }
        other => Err(err(CMD, format!("unexpected status {other:?}"))),
    }
}

/// The last `n` lines of `/nodes/NODE/tasks/UPID/log` (`[{"n":1,"t":"…"}]`) that do not merely
/// repeat the task's `exitstatus`.
pub fn parse_task_log_tail(text: &str, n: usize, exitstatus: &str) -> String {
    let lines: Vec<String> = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.get("t").and_then(Value::as_str).map(str::to_string))
        .filter(|t| {
            let t = t.trim();
            !t.is_empty()
                && t != "no content"
                && t != exitstatus
                && t.strip_prefix("TASK ERROR: ") != Some(exitstatus)
        })
        .collect();
    lines[lines.len().saturating_sub(n)..].join("; ")
}

/// `…/status/current`.
pub fn parse_status(vmid: VmId, text: &str) -> Result<VmStatus, ParseError> {
    const CMD: &str = "pvesh get /nodes/NODE/qemu/ID/status/current";
    let v = json(CMD, text)?;
    let status = v
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| err(CMD, "no `status`"))?;
    Ok(VmStatus {
        vmid,
        status: status.to_string(),
    })
}

/// `…/config`: the entries as `qm config` lists them (sorted by key, the digest left out).
pub fn parse_config(text: &str) -> Result<VmConfig, ParseError> {
    let live = super::node_api::parse_config(text)?;
    Ok(VmConfig {
        entries: live.entries.into_iter().collect(),
    })
}

/// `…/snapshot`: the same tree `qm listsnapshot` prints (depth from the parent links, roots
/// and children in creation order, `current` under its parent).
pub fn parse_snapshots(text: &str) -> Result<Vec<Snapshot>, ParseError> {
    const CMD: &str = "pvesh get /nodes/NODE/qemu/ID/snapshot";
    let v = json(CMD, text)?;
    let items = v
        .as_array()
        .ok_or_else(|| err(CMD, "expected a JSON array"))?;
    struct Item {
        name: String,
        parent: Option<String>,
        time: u64,
        description: String,
    }
    let mut all: Vec<Item> = items
        .iter()
        .map(|e| Item {
            name: e.get("name").and_then(Value::as_str).unwrap_or("").into(),
            parent: e.get("parent").and_then(Value::as_str).map(str::to_string),
            time: e.get("snaptime").and_then(Value::as_u64).unwrap_or(0),
            description: e
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
        })
        .collect();
    // `current` goes last among its siblings, as `qm listsnapshot` prints it.
    all.sort_by_key(|i| (i.name == "current", i.time));
    let mut out = Vec::new();
    fn walk(all: &[Item], parent: Option<&str>, depth: usize, out: &mut Vec<Snapshot>) {
        for i in all.iter().filter(|i| i.parent.as_deref() == parent) {
            let current = i.name == "current";
            out.push(Snapshot {
                name: i.name.clone(),
                depth,
                time: (!current && i.time > 0).then(|| utc(i.time)),
                description: i.description.clone(),
                current,
            });
            if !current {
                walk(all, Some(&i.name), depth + 1, out);
            }
        }
    }
    walk(&all, None, 0, &mut out);
    Ok(out)
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of a Unix time, as the Proxmox UI shows a snapshot's time.
fn utc(secs: u64) -> String {
    crate::secrets::rotate::rfc3339_utc(secs)
        .replacen('T', " ", 1)
        .trim_end_matches('Z')
        .to_string()
}

#[cfg(test)]
mod tests;
