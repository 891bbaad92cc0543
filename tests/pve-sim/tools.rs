//! The other programs: `qmrestore`, `pvesh`, `pvesm` and `ip neigh`.

use std::fs;

use serde_json::{json, Value};

use crate::conf::*;
use crate::sim::Sim;
use crate::{die, options, param_error};

impl Sim {
    // ---------------------------------------------------------------- qmrestore

    pub(crate) fn qmrestore(&self, a: &[&str]) {
        const USAGE: &str = "qmrestore <archive> <vmid> [OPTIONS]";
        if a.len() < 2 {
            die(&format!("400 not enough arguments\n{USAGE}"));
        }
        let archive = a[0];
        let id: u32 = a[1].parse().unwrap_or_else(|_| {
            param_error(
                "vmid",
                &format!("type check ('integer') failed - got '{}'", a[1]),
                USAGE,
            )
        });
        let opts = options(&a[2..], USAGE);
        let _g = self.lock();
        if let Some(node) = self.find(id) {
            if opts.get("force").map(String::as_str) != Some("1") {
                die(&format!(
                    "unable to restore VM {id} - VM {id} already exists on node '{node}'"
                ));
            }
        }
        // A backup volume ID (`STORAGE:backup/FILE`, tests/pve-sim/vzdump.rs) or a path.
        let archive_path = self.backup_path(archive).unwrap_or_else(|| archive.into());
        let Ok(text) = fs::read_to_string(&archive_path) else {
            die(&format!(
                "unable to restore VM {id} - can't find archive file '{archive}'"
            ))
        };
        let mut conf = Conf::parse(&text);
        conf.snaps.clear();
        if let Some(st) = opts.get("storage") {
            self.require_storage(st);
            for (k, v) in conf.disks() {
                let rest = v.split_once(':').map(|(_, r)| r).unwrap_or(&v);
                let opts_part = rest.split_once(',').map(|(_, o)| o).unwrap_or("");
                let n = rest
                    .split(',')
                    .next()
                    .unwrap_or("")
                    .rsplit('-')
                    .next()
                    .unwrap_or("0");
                set(
                    &mut conf.main,
                    &k,
                    format!("{st}:vm-{id}-disk-{n},{opts_part}"),
                );
            }
        }
        println!("restore vma archive: {archive}");
        self.save(id, &conf);
    }

    // ---------------------------------------------------------------- pvesh / pvesm / ip

    pub(crate) fn pvesh(&self, a: &[&str]) {
        if self.pvesh_tasks(a) {
            return;
        }
        if a.len() >= 2 && a[1].starts_with("/nodes/") && a[1].contains("/qemu/") {
            return self.pvesh_qemu(a);
        }
        if a.first() != Some(&"get") || a.len() < 2 {
            die("pve-sim: only `pvesh get PATH` is simulated");
        }
        let opts = options(&a[2..], "pvesh get <api_path> [OPTIONS]");
        match a[1] {
            "/cluster/resources" => {
                if opts.get("output-format").map(String::as_str) != Some("json") {
                    die("pve-sim: only `--output-format json` is simulated");
                }
                let kind = opts.get("type").map(String::as_str);
                let mut out = Vec::new();
                out.extend(self.capacity_resources(kind));
                if kind.is_none() || kind == Some("vm") {
                    for (node, id) in self.all_vms() {
                        let conf = Conf::parse(
                            &fs::read_to_string(self.conf_path(&node, id)).unwrap_or_default(),
                        );
                        let running = self.running(id);
                        let mem: u64 = conf
                            .get("memory")
                            .and_then(|m| m.parse().ok())
                            .unwrap_or(2048);
                        let cores: u64 =
                            conf.get("cores").and_then(|m| m.parse().ok()).unwrap_or(1);
                        let disk: u64 = conf
                            .disks()
                            .first()
                            .and_then(|(_, v)| size_of(v))
                            .unwrap_or(0);
                        let mut e = json!({
                            "id": format!("qemu/{id}"), "type": "qemu", "vmid": id, "node": node,
                            "name": conf.get("name").unwrap_or(""),
                            "status": if running { "running" } else { "stopped" },
                            "template": if conf.get("template") == Some("1") { 1 } else { 0 },
                            "maxmem": mem * 1024 * 1024, "maxcpu": cores, "maxdisk": disk << 30,
                            "mem": 0, "cpu": 0, "disk": 0, "uptime": 0,
                            "netin": 0, "netout": 0, "diskread": 0, "diskwrite": 0,
                        });
                        if let Some(l) = conf.get("lock") {
                            e["lock"] = json!(l);
                        }
                        if let Ok(p) =
                            fs::read_to_string(self.dir.join("pools").join(id.to_string()))
                        {
                            e["pool"] = json!(p.trim());
                        }
                        out.push(e);
                    }
                }
                println!("{}", serde_json::to_string(&out).unwrap());
            }
            "/cluster/status" => self.api_cluster_status(),
            path if path.starts_with("/nodes/") && path.contains("/tasks/UPID:") => {
                let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
                let ["nodes", node, "tasks", upid, what] = parts.as_slice() else {
                    die(&format!("No '{path}' handler"))
                };
                let json_out = opts
                    .get("output-format")
                    .is_some_and(|f| f.starts_with("json"));
                self.api_task_read(node, upid, what, json_out)
            }
            "/cluster/nextid" => {
                let used: Vec<u32> = self.all_vms().into_iter().map(|(_, id)| id).collect();
                let next = (100..).find(|i| !used.contains(i)).unwrap_or(100);
                println!("{next}");
            }
            path if path.starts_with("/nodes/") && path.ends_with("/tasks") => {
                let vmid = opts.get("vmid").cloned();
                let mut out = Vec::new();
                for (upid, pid) in self.tasks() {
                    if vmid
                        .as_deref()
                        .is_some_and(|v| upid.split(':').nth(6) != Some(v))
                    {
                        continue;
                    }
                    let kind = upid.split(':').nth(5).unwrap_or("");
                    let mut e =
                        json!({"upid": upid, "type": kind, "user": "root@pam", "starttime": 0});
                    // A task whose worker is gone ended, however it ended.
                    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                    let state = stat.rsplit_once(") ").map(|(_, r)| r.chars().next());
                    if matches!(state, None | Some(Some('Z' | 'X'))) {
                        e["endtime"] = json!(1);
                        e["status"] = json!("unexpected status");
                    }
                    out.push(e);
                }
                println!("{}", serde_json::to_string(&out).unwrap());
            }
            other => die(&format!("No '{other}' handler")),
        }
    }

    pub(crate) fn pvesm(&self, a: &[&str]) {
        if a.first() == Some(&"list") {
            return self.pvesm_list(&a[1..]);
        }
        if a.first() != Some(&"status") {
            die("pve-sim: only `pvesm status` is simulated");
        }
        println!(
            "{:<16} {:>8} {:>10} {:>15} {:>15} {:>15} {:>8}",
            "Name", "Type", "Status", "Total", "Used", "Available", "%"
        );
        for s in self.storages() {
            let total = s.get("total").and_then(Value::as_u64).unwrap_or(0);
            let used = s.get("used").and_then(Value::as_u64).unwrap_or(0);
            let pct = if total == 0 {
                0.0
            } else {
                used as f64 * 100.0 / total as f64
            };
            println!(
                "{:<16} {:>8} {:>10} {:>15} {:>15} {:>15} {:>7.2}%",
                s.get("name").and_then(Value::as_str).unwrap_or(""),
                s.get("type").and_then(Value::as_str).unwrap_or("dir"),
                "active",
                total,
                used,
                total.saturating_sub(used),
                pct
            );
        }
    }

    pub(crate) fn ip(&self, a: &[&str]) {
        if a.first() != Some(&"neigh") || a.len() > 2 || (a.len() == 2 && a[1] != "show") {
            die("pve-sim: only `ip neigh show` is simulated");
        }
        print!(
            "{}",
            fs::read_to_string(self.dir.join("neigh")).unwrap_or_default()
        );
        // A sandbox guest that is up has talked to the host: its address is in the table.
        for (_, id) in self.all_vms() {
            if self.guest_addresses(id).is_none() {
                continue;
            }
            // Guests of every node share the bridged LAN with this host.
            let node = self.find(id).unwrap_or_else(|| self.node());
            let conf =
                Conf::parse(&fs::read_to_string(self.conf_path(&node, id)).unwrap_or_default());
            if let Some(mac) = conf.get("net0").and_then(mac_of_net) {
                println!(
                    "{} dev vmbr0 lladdr {} REACHABLE",
                    crate::guest::guest_addr(id),
                    mac.to_ascii_lowercase()
                );
            }
        }
    }
}
