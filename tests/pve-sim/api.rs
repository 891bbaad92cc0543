//! STAND-IN for the Proxmox VE API paths a node's VMs are reached through from any node, as
//! `pvesh` calls them: local-node discovery (`/cluster/status`), tasks and their UPIDs
//! (`/nodes/NODE/tasks/UPID/status|log`), and the per-VM calls that start a task (power,
//! clone, template, destroy, snapshots) or read (snapshot list, guest agent).
//!
//! As documented for the real thing (pve-manager PVE/CLI/pvesh.pm, pve-common
//! RESTEnvironment `fork_worker`): pvesh runs a task's worker in its foreground, prints the
//! worker's output and then the UPID, and exits 0 even when the task failed: only the task's
//! `exitstatus` (`OK`, `WARNINGS: N` or the error) says how it ended. Checks the API makes
//! before forking (the VM exists on that node, parameters) fail the call itself.
//!
//! The worker is this simulator run as `qm` on the VM's node (`PVE_SIM_NODE`, with
//! `PVE_SIM_WORKER` set so it is neither logged nor faulted twice). The fault action
//! `task-fail` (`message`) makes the next matching call start a task that fails.

use std::fs;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::conf::*;
use crate::die;
use crate::sim::Sim;

/// Set by the fault action `task-fail`: the message the started task fails with.
pub(crate) const TASK_FAIL_ENV: &str = "PVE_SIM_TASK_FAIL";
/// Set in a task's worker process.
pub(crate) const WORKER_ENV: &str = "PVE_SIM_WORKER";

fn print(v: &Value, json_out: bool) {
    if json_out {
        println!("{}", serde_json::to_string(v).unwrap());
    } else {
        println!("{}", serde_json::to_string_pretty(v).unwrap());
    }
}

impl Sim {
    /// `pvesh get /cluster/status`: the cluster and its members; the node answering is
    /// `local: 1`.
    pub(crate) fn api_cluster_status(&self) {
        let nodes = self.nodes();
        let local = self.node();
        let mut out = Vec::new();
        if nodes.len() > 1 {
            out.push(
                json!({"type": "cluster", "id": "cluster", "name": "pve-sim",
                "nodes": nodes.len(), "quorate": 1, "version": nodes.len()}),
            );
        }
        for (i, n) in nodes.iter().enumerate() {
            out.push(json!({"type": "node", "id": format!("node/{n}"), "name": n,
                "nodeid": i + 1, "ip": "127.0.0.1", "online": 1,
                "local": if *n == local { 1 } else { 0 }}));
        }
        println!("{}", serde_json::to_string(&out).unwrap());
    }

    fn task_file(&self, upid: &str) -> std::path::PathBuf {
        self.dir.join("task-status").join(upid)
    }

    /// `pvesh get /nodes/NODE/tasks/UPID/status|log`.
    pub(crate) fn api_task_read(&self, node: &str, upid: &str, what: &str, json_out: bool) {
        let Some(t) = fs::read_to_string(self.task_file(upid))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .filter(|t| t["node"] == node)
        else {
            die(&format!("no such task '{upid}' on node '{node}'"))
        };
        match what {
            "status" => {
                let mut s = t.clone();
                s.as_object_mut().unwrap().remove("log");
                print(&s, json_out)
            }
            "log" => {
                let lines: Vec<Value> = t["log"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                    .map(|(i, l)| json!({"n": i + 1, "t": l}))
                    .collect();
                print(&Value::Array(lines), json_out)
            }
            other => die(&format!("No '/nodes/{node}/tasks/{upid}/{other}' handler")),
        }
    }

    /// Runs `qm ARGS` on `node` as a task's worker: prints its output, records the task and
    /// prints its UPID (exit 0 whatever the task's outcome, as pvesh).
    pub(crate) fn api_task(&self, node: &str, kind: &str, id: &str, qm: &[String], json_out: bool) {
        let upid = format!(
            "UPID:{node}:{:08X}:{:08X}:{:08X}:{kind}:{id}:root@pam:",
            std::process::id(),
            std::process::id(),
            now_epoch()
        );
        let (ok, mut log) = match std::env::var(TASK_FAIL_ENV) {
            Ok(msg) => (false, vec![msg]),
            Err(_) => {
                let exe = std::env::current_exe()
                    .unwrap_or_else(|e| die(&format!("pve-sim: own path: {e}")));
                let out = Command::new(exe)
                    .arg("qm")
                    .args(qm)
                    .env("PVE_SIM_NODE", node)
                    .env(WORKER_ENV, "1")
                    .stdin(Stdio::null())
                    .output()
                    .unwrap_or_else(|e| die(&format!("pve-sim: start a worker: {e}")));
                let mut log: Vec<String> = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect();
                log.extend(
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .map(str::to_string),
                );
                (out.status.success(), log)
            }
        };
        let exitstatus = if ok {
            "OK".to_string()
        } else {
            log.iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .cloned()
                .unwrap_or_else(|| "unexpected status".into())
        };
        for l in &log {
            println!("{l}");
        }
        log.push(if ok {
            "TASK OK".into()
        } else {
            format!("TASK ERROR: {exitstatus}")
        });
        let record = json!({"upid": upid, "node": node, "pid": std::process::id(),
            "pstart": std::process::id(), "starttime": now_epoch(), "type": kind, "id": id,
            "user": "root@pam", "status": "stopped", "exitstatus": exitstatus, "log": log});
        let _g = self.lock();
        self.write(&self.task_file(&upid), &record.to_string());
        drop(_g);
        print(&json!(upid), json_out);
    }

    /// `pvesh get|create|delete /nodes/NODE/qemu/ID/…` beyond config, pending, status/current
    /// and the config update (cluster.rs). `sim` is this simulator as `node`.
    pub(crate) fn api_qemu(
        &self,
        verb: &str,
        node: &str,
        vmid: &str,
        rest: &[&str],
        opts: &[(String, String)],
        json_out: bool,
    ) {
        let path = format!("/nodes/{node}/qemu/{vmid}/{}", rest.join("/"));
        let sim = self.on_node(node);
        // The API loads the VM's config before it forks a worker: a VM of another node is an
        // error of the call itself.
        let (_, conf) = sim.load_local(vmid);
        let opt = |k: &str| opts.iter().find(|(o, _)| o == k).map(|(_, v)| v.clone());
        let need = |k: &str| {
            opt(k).unwrap_or_else(|| {
                die(&format!(
                    "400 Parameter verification failed.\n{k}: property is missing and it is not optional"
                ))
            })
        };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let task = |kind: &str, qm: Vec<String>| self.api_task(node, kind, vmid, &qm, json_out);
        match (verb, rest) {
            ("create", ["status", action @ ("start" | "stop" | "shutdown" | "reboot")]) => {
                task(&format!("qm{action}"), s(&[action, vmid]))
            }
            ("create", ["clone"]) => {
                let newid = need("newid");
                let mut qm = s(&["clone", vmid, &newid]);
                for k in ["name", "full", "storage", "target", "pool", "description"] {
                    if let Some(v) = opt(k) {
                        qm.extend([format!("--{k}"), v]);
                    }
                }
                self.api_task(node, "qmclone", vmid, &qm, json_out)
            }
            ("create", ["template"]) => task("qmtemplate", s(&["template", vmid])),
            ("delete", []) => {
                let mut qm = s(&["destroy", vmid]);
                if let Some(p) = opt("purge") {
                    qm.extend(s(&["--purge", &p]));
                }
                task("qmdestroy", qm)
            }
            ("create", ["snapshot"]) => {
                let mut qm = s(&["snapshot", vmid, &need("snapname")]);
                for k in ["description", "vmstate"] {
                    if let Some(v) = opt(k) {
                        qm.extend([format!("--{k}"), v]);
                    }
                }
                task("qmsnapshot", qm)
            }
            ("create", ["snapshot", name, "rollback"]) => {
                task("qmrollback", s(&["rollback", vmid, name]))
            }
            ("delete", ["snapshot", name]) => {
                task("qmdelsnapshot", s(&["delsnapshot", vmid, name]))
            }
            ("get", ["snapshot"]) => {
                let mut out = Vec::new();
                for snap in &conf.snaps {
                    let mut e = json!({"name": snap.name,
                        "snaptime": get(&snap.entries, "snaptime").and_then(|t| t.parse::<u64>().ok()).unwrap_or(0),
                        "description": snap.description.clone().unwrap_or_default()});
                    if let Some(p) = parent_of(&snap.entries) {
                        e["parent"] = json!(p);
                    }
                    if get(&snap.entries, "vmstate").is_some() {
                        e["vmstate"] = json!(1);
                    }
                    out.push(e);
                }
                let id: u32 = vmid.parse().unwrap_or(0);
                let mut cur = json!({"name": "current", "description": "You are here!",
                    "running": if sim.running(id) { 1 } else { 0 }, "digest": sim.digest(id)});
                if let Some(p) = parent_of(&conf.main) {
                    cur["parent"] = json!(p);
                }
                out.push(cur);
                print(&Value::Array(out), json_out)
            }
            ("get", ["agent", "network-get-interfaces"]) => {
                let exe = std::env::current_exe()
                    .unwrap_or_else(|e| die(&format!("pve-sim: own path: {e}")));
                let out = Command::new(exe)
                    .args(["qm", "guest", "cmd", vmid, "network-get-interfaces"])
                    .env("PVE_SIM_NODE", node)
                    .env(WORKER_ENV, "1")
                    .stdin(Stdio::null())
                    .output()
                    .unwrap_or_else(|e| die(&format!("pve-sim: run the agent command: {e}")));
                if !out.status.success() {
                    die(&String::from_utf8_lossy(&out.stderr));
                }
                let result: Value = serde_json::from_slice(&out.stdout)
                    .unwrap_or_else(|e| die(&format!("pve-sim: agent answer: {e}")));
                print(&json!({ "result": result }), json_out)
            }
            _ => die(&format!("No '{path}' handler for '{verb}'")),
        }
    }
}
