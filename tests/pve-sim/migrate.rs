//! Migration between nodes and the tasks of the API calls, a stand-in for Proxmox (test
//! double, not Proxmox), after qemu-server's `API2/Qemu.pm` (`migrate_vm`) and
//! `QemuMigrate.pm`: `pvesh create /nodes/N/qemu/ID/migrate --target T [--online 1]
//! [--with-local-disks 1]`.
//!
//! Checked before the task starts, as the API does: the target is not the VM's node ("target
//! is local node."), it exists, the VM is on N and not locked, a running VM needs `online`
//! ("can't migrate running VM without --online"; a stopped one migrates offline whatever
//! `online` says), and every storage the VM's disks use is available on the target (a storage
//! entry's `nodes` list, when it has one). The task then holds `lock: migrate` on the VM (the
//! `migrate` gate of sim.json stops it there for a test), scans the disks: a disk on storage
//! that is not `shared` is local, and a running VM's local disks need `with-local-disks`
//! ("can't live migrate attached local disks without with-local-disks option": the task
//! fails with "migration aborted" and the VM stays where it was); an offline migration copies
//! local disks anyway. Success moves the config file with its snapshots to the target's
//! directory, local disks with it (their owner node is the VM's node), and drops the lock;
//! pending changes (`pending/ID.json`) and the running state follow the VMID.
//!
//! Tasks: each API call here prints the task's log and its UPID
//! (`UPID:NODE:PID:PSTART:STARTTIME:TYPE:ID:USER:`), exit 0 even when the task failed, and records the finished task in `tasks-done/UPID.json`; `pvesh get
//! /nodes/N/tasks/UPID/status` answers `{"status":"stopped","exitstatus":…}` and `…/log` its
//! lines as `[{"n":1,"t":"…"}]`, as the API does.

use std::collections::BTreeMap;
use std::fs;

use serde_json::{json, Value};

use crate::conf::*;
use crate::sim::Sim;
use crate::{die, options, options_ordered, param_error};

impl Sim {
    /// The API calls of backups, restores, migrations and their tasks; false for any other
    /// `pvesh` call.
    pub(crate) fn pvesh_tasks(&self, a: &[&str]) -> bool {
        if a.len() < 2 {
            return false;
        }
        let parts: Vec<&str> = a[1].trim_matches('/').split('/').collect();
        let usage = "pvesh <verb> <api_path> [OPTIONS]";
        match (a[0], parts.as_slice()) {
            ("create", ["nodes", node, "vzdump"]) => {
                self.on_node(node).api_vzdump(&options(&a[2..], usage))
            }
            ("create", ["nodes", node, "qemu"]) => self
                .on_node(node)
                .api_restore(&options_ordered(&a[2..], usage)),
            ("create", ["nodes", node, "qemu", vmid, "migrate"]) => self
                .on_node(node)
                .api_migrate(vmid, &options(&a[2..], usage)),
            ("get", ["nodes", node, "storage", storage, "content"]) => self
                .on_node(node)
                .api_content(storage, &options(&a[2..], usage)),
            ("get", ["nodes", _, "tasks", upid, what @ ("status" | "log")]) => {
                let Some(task) = self.finished_task(upid) else {
                    return false;
                };
                let out = if *what == "status" {
                    json!({"upid": upid, "status": "stopped",
                           "exitstatus": task["exitstatus"], "type": task["type"],
                           "id": task["id"], "node": task["node"], "user": "root@pam"})
                } else {
                    let lines = task["log"].as_array().cloned().unwrap_or_default();
                    Value::Array(
                        lines
                            .into_iter()
                            .enumerate()
                            .map(|(i, t)| json!({"n": i + 1, "t": t}))
                            .collect(),
                    )
                };
                println!("{}", serde_json::to_string(&out).unwrap());
            }
            _ => return false,
        }
        true
    }

    fn finished_task(&self, upid: &str) -> Option<Value> {
        if upid.contains('/') {
            return None;
        }
        let text = fs::read_to_string(self.dir.join("tasks-done").join(upid)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Records a finished task of this node and prints its log, then its UPID: `pvesh` runs a
    /// task of its node in the foreground (the CLI environment's `fork_worker`), showing the
    /// log and returning the UPID with exit 0 whether the task failed or not; the outcome is
    /// in the task's status.
    pub(crate) fn task_done(&self, kind: &str, vmid: u32, exitstatus: &str, log: &[String]) {
        let node = self.node();
        let upid = format!(
            "UPID:{node}:{:08X}:00000000:{:08X}:{kind}:{vmid}:root@pam:",
            std::process::id(),
            now_epoch()
        );
        let mut lines = log.to_vec();
        if exitstatus == "OK" {
            lines.push("TASK OK".into());
        } else {
            lines.push(format!("TASK ERROR: {exitstatus}"));
        }
        lines.dedup();
        let record = json!({"type": kind, "id": vmid.to_string(), "node": node,
                            "exitstatus": exitstatus, "log": lines});
        self.write(
            &self.dir.join("tasks-done").join(&upid),
            &serde_json::to_string(&record).unwrap(),
        );
        for line in &lines {
            println!("{line}");
        }
        println!("{upid}");
    }

    fn shared(&self, storage: &str) -> bool {
        self.storage(storage)
            .and_then(|s| s.get("shared").and_then(Value::as_bool))
            .unwrap_or(false)
    }

    /// The API's migration, as a task of the VM's node.
    pub(crate) fn api_migrate(&self, vmid: &str, opts: &BTreeMap<String, String>) {
        let (id, exitstatus, log) = self.migrate_vm(vmid, opts);
        self.task_done("qmigrate", id, &exitstatus, &log);
    }

    /// `qm migrate VMID TARGET [--online 1] [--with-local-disks 1]`: the same migration in the
    /// foreground, its log on stdout, a failure as a failed command.
    pub(crate) fn qm_migrate(&self, a: &[&str]) {
        const USAGE: &str = "qm migrate <vmid> <target> [OPTIONS]";
        if a.len() < 2 {
            die(&format!("400 not enough arguments\n{USAGE}"));
        }
        let mut opts = options(&a[2..], USAGE);
        opts.insert("target".into(), a[1].to_string());
        let (_, exitstatus, log) = self.migrate_vm(a[0], &opts);
        for line in &log {
            println!("{line}");
        }
        if exitstatus != "OK" {
            die(&exitstatus);
        }
    }

    /// Checks, then runs, a migration of `vmid` from this node: (VMID, exit status, log).
    /// What the API checks before the task starts ends the process, as the call fails.
    fn migrate_vm(
        &self,
        vmid: &str,
        opts: &BTreeMap<String, String>,
    ) -> (u32, String, Vec<String>) {
        const USAGE: &str = "pvesh create /nodes/{node}/qemu/{vmid}/migrate --target <string>";
        let Some(target) = opts.get("target").map(String::as_str) else {
            param_error(
                "target",
                "property is missing and it is not optional",
                USAGE,
            )
        };
        let node = self.node();
        if target == node {
            param_error("target", "target is local node.", USAGE);
        }
        if !self.nodes().iter().any(|n| n == target) {
            die(&format!("no such cluster node '{target}'"));
        }
        let (id, running, disks) = {
            let _g = self.lock();
            let (id, mut conf) = self.load_local(vmid);
            Self::check_lock(&conf);
            let mut online = opts.get("online").map(String::as_str) == Some("1");
            let running = self.running(id);
            if running && !online {
                die("can't migrate running VM without --online");
            }
            if !running && online {
                eprintln!("VM isn't running. Doing offline migration instead.");
                online = false;
            }
            let _ = online;
            let disks: Vec<(String, String)> = conf
                .disks()
                .into_iter()
                .map(|(k, v)| (k, v.split(',').next().unwrap_or("").to_string()))
                .collect();
            for (_, vol) in &disks {
                let st = vol.split(':').next().unwrap_or("");
                let on_target = self
                    .storage(st)
                    .and_then(|s| s.get("nodes").and_then(Value::as_array).cloned())
                    .is_none_or(|n| n.iter().any(|x| x.as_str() == Some(target)));
                if !on_target {
                    die(&format!(
                        "storage '{st}' is not available on node '{target}'"
                    ));
                }
            }
            set(&mut conf.main, "lock", "migrate".into());
            self.save(id, &conf);
            (id, running, disks)
        };
        // The task: the VM is locked while it runs.
        self.gate("migrate");
        let with_local = opts.get("with-local-disks").map(String::as_str) == Some("1");
        let mut log = vec![format!("starting migration of VM {id} to node '{target}'")];
        let mut problems = Vec::new();
        for (_, vol) in &disks {
            let st = vol.split(':').next().unwrap_or("");
            if self.shared(st) {
                continue;
            }
            if running && !with_local {
                problems.push(format!(
                    "can't migrate local disk '{vol}': can't live migrate attached local disks \
                     without with-local-disks option"
                ));
            } else {
                log.push(format!("found local disk '{vol}' (attached)"));
            }
        }
        let _g = self.lock();
        let (_, mut conf) = self.load_local(vmid);
        unset(&mut conf.main, "lock");
        if !problems.is_empty() {
            self.save(id, &conf);
            log.extend(problems.iter().map(|p| format!("ERROR: {p}")));
            log.push(
                "ERROR: migration aborted (duration 00:00:00): can't migrate VM - check log".into(),
            );
            return (id, "migration aborted".into(), log);
        }
        for (_, vol) in &disks {
            if !self.shared(vol.split(':').next().unwrap_or("")) {
                log.push(format!("copying local disk '{vol}' to node '{target}'"));
            }
        }
        self.write(&self.conf_path(target, id), &conf.render());
        let _ = fs::remove_file(self.conf_path(&node, id));
        log.push("migration finished successfully (duration 00:00:01)".into());
        (id, "OK".into(), log)
    }
}
