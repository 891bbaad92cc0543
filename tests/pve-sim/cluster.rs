//! The simulator as a cluster: which node a command runs on, the API paths of each node's VMs
//! (`pvesh get|set|create /nodes/NODE/qemu/ID/…`), config digests and pending changes.
//!
//! Route, as on Proxmox: `qm` acts only on the VMs of the node it runs on (`PVE_SIM_NODE`, else
//! sim.json's `node`); a VM on another node is reached through the API path of its node,
//! which Proxmox proxies to that node from whichever node it is called on. So one SSH
//! connection to one node reaches every VM of the cluster, and a test can still run `qm` "on"
//! another node by setting `PVE_SIM_NODE`.
//!
//! Pending changes: setting `cores`, `memory`, `sockets` or `cpu` of a running VM is stored as
//! pending (`pending/ID.json`, not in the config file) because Proxmox cannot hot-plug them by
//! default (`hotplug: network,disk,usb`); `qm config` shows them applied, `qm config --current`
//! and the API's `…/config?current=1` do not, `…/pending` lists them, and they take effect when
//! the VM next starts (or reboots through `qm reboot`).

use std::collections::BTreeMap;
use std::fs;

use serde_json::{json, Map, Value};

use crate::conf::*;
use crate::digest::{sha1_hex, MODIFIED};
use crate::sim::Sim;
use crate::{die, options_ordered};

/// Settings Proxmox cannot hot-plug into a running VM by default.
pub(crate) const COLD: &[&str] = &["cores", "memory", "sockets", "cpu"];

impl Sim {
    /// This simulator as `node` (the API proxies a call to the node that holds the VM).
    pub(crate) fn on_node(&self, node: &str) -> Sim {
        if !self.nodes().iter().any(|n| n == node) {
            die(&format!(
                "hostname lookup '{node}' failed - no such cluster node"
            ));
        }
        let mut settings = self.settings.clone();
        settings["node"] = json!(node);
        // Not PVE_SIM_NODE: the call was proxied to `node`.
        settings["node_from_api"] = json!(true);
        Sim {
            dir: self.dir.clone(),
            settings,
        }
    }

    /// The SHA-1 of VM `id`'s config file on this node (what `digest` shows).
    pub(crate) fn digest(&self, id: u32) -> String {
        sha1_hex(&fs::read(self.conf_path(&self.node(), id)).unwrap_or_default())
    }

    /// Refuses a change whose `digest` option is not the config's current digest.
    pub(crate) fn check_digest(&self, id: u32, opts: &[(String, String)]) {
        if let Some((_, d)) = opts.iter().find(|(k, _)| k == "digest") {
            if !d.eq_ignore_ascii_case(&self.digest(id)) {
                die(MODIFIED);
            }
        }
    }

    pub(crate) fn pending(&self, id: u32) -> BTreeMap<String, String> {
        fs::read_to_string(self.dir.join("pending").join(format!("{id}.json")))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    pub(crate) fn set_pending(&self, id: u32, pending: &BTreeMap<String, String>) {
        let p = self.dir.join("pending").join(format!("{id}.json"));
        if pending.is_empty() {
            let _ = fs::remove_file(p);
        } else {
            self.write(&p, &serde_json::to_string(pending).unwrap());
        }
    }

    /// Applies VM `id`'s pending changes to its config (the VM is starting). The caller holds
    /// the state lock.
    pub(crate) fn apply_pending(&self, id: u32) {
        let pending = self.pending(id);
        if pending.is_empty() {
            return;
        }
        let Ok(text) = fs::read_to_string(self.conf_path(&self.node(), id)) else {
            return;
        };
        let mut conf = Conf::parse(&text);
        for (k, v) in &pending {
            set(&mut conf.main, k, v.clone());
        }
        self.save(id, &conf);
        self.set_pending(id, &BTreeMap::new());
    }

    /// A VM's config as the API returns it: pending values applied unless `current`.
    pub(crate) fn config_entries(
        &self,
        id: u32,
        conf: &Conf,
        current: bool,
    ) -> Vec<(String, String)> {
        let mut entries: BTreeMap<String, String> = conf.main.iter().cloned().collect();
        if let Some(d) = &conf.description {
            entries.insert("description".into(), d.clone());
        }
        if !current {
            entries.extend(self.pending(id));
        }
        entries.into_iter().collect()
    }

    /// `pvesh get|set|create /nodes/NODE/qemu/ID/…`.
    pub(crate) fn pvesh_qemu(&self, a: &[&str]) {
        let (verb, path) = (a[0], a[1]);
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let ["nodes", node, "qemu", vmid, rest @ ..] = parts.as_slice() else {
            die(&format!("No '{path}' handler"))
        };
        let sim = self.on_node(node);
        let opts = options_ordered(&a[2..], "pvesh <verb> <api_path> [OPTIONS]");
        let json_out = opts
            .iter()
            .any(|(k, v)| k == "output-format" && v.starts_with("json"));
        let flag = |key: &str| opts.iter().any(|(k, v)| k == key && v == "1");
        let api_opts: Vec<(String, String)> = opts
            .iter()
            .filter(|(k, _)| k != "output-format")
            .cloned()
            .collect();
        match (verb, rest) {
            ("get", ["config"]) => {
                let (id, conf) = sim.load_local(vmid);
                let mut obj = Map::new();
                for (k, v) in sim.config_entries(id, &conf, flag("current")) {
                    // The API types numbers as numbers.
                    let value = match v.parse::<i64>() {
                        Ok(n) if !v.starts_with('0') || v == "0" => json!(n),
                        _ => json!(v),
                    };
                    obj.insert(k, value);
                }
                obj.insert("digest".into(), json!(sim.digest(id)));
                print_api(&Value::Object(obj), json_out);
            }
            ("get", ["pending"]) => {
                let (id, conf) = sim.load_local(vmid);
                let pending = sim.pending(id);
                let mut out = Vec::new();
                for (k, v) in sim.config_entries(id, &conf, true) {
                    let mut e = json!({"key": k, "value": v});
                    if let Some(p) = pending.get(&k) {
                        e["pending"] = json!(p);
                    }
                    out.push(e);
                }
                for (k, p) in &pending {
                    if conf.get(k).is_none() {
                        out.push(json!({"key": k, "pending": p}));
                    }
                }
                print_api(&Value::Array(out), json_out);
            }
            ("get", ["status", "current"]) => {
                let (id, conf) = sim.load_local(vmid);
                let running = sim.running(id);
                print_api(
                    &json!({"vmid": id, "name": conf.get("name").unwrap_or(""),
                            "status": if running { "running" } else { "stopped" }}),
                    json_out,
                );
            }
            ("set", ["config"]) => {
                // A test barrier (sim.json "gates": ["set"]): the update waits, as if still in
                // flight, while the test changes the config behind it.
                sim.gate("set");
                // The API's sshkeys is the URL-encoded text itself, not qm's file path.
                let mut args: Vec<String> = vec![vmid.to_string()];
                let mut sshkeys = None;
                for (k, v) in api_opts {
                    if k == "sshkeys" {
                        sshkeys = Some(v);
                        continue;
                    }
                    args.push(format!("--{k}"));
                    args.push(v);
                }
                let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                sim.qm_set_with(&argv, sshkeys.as_deref());
            }
            ("set", ["resize"]) => {
                let get = |key: &str| {
                    api_opts
                        .iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| v.as_str())
                        .unwrap_or_else(|| die(&format!("400 Parameter verification failed.\n{key}: property is missing and it is not optional")))
                };
                let (disk, size) = (get("disk"), get("size"));
                // Proxmox 8 runs a resize as a task (qemu-server's `resize_vm` forks a worker)
                // and checks the digest inside it, under the config lock: a changed config
                // fails the task, while the call itself prints a UPID and exits 0.
                sim.load_local(vmid);
                // A test barrier, as for `set`: the test changes the config before the task.
                sim.gate("resize");
                let mut qm: Vec<String> = ["resize", vmid, disk, size]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                if let Some((_, d)) = api_opts.iter().find(|(k, _)| k == "digest") {
                    qm.extend(["--digest".to_string(), d.clone()]);
                }
                self.api_task(node, "resize", vmid, &qm, json_out);
            }
            _ => self.api_qemu(verb, node, vmid, rest, &api_opts, json_out),
        }
    }
}

fn print_api(v: &Value, json_out: bool) {
    if json_out {
        println!("{}", serde_json::to_string(v).unwrap());
    } else {
        println!("{}", serde_json::to_string_pretty(v).unwrap());
    }
}

impl Sim {
    /// The node and storage entries of `/cluster/resources` (capacity: sim.json's
    /// `node_maxmem` bytes per node, memory in use by the node's running VMs; each storage is
    /// listed on every node, as Proxmox lists a shared storage once per node).
    pub(crate) fn capacity_resources(&self, kind: Option<&str>) -> Vec<Value> {
        let mut out = Vec::new();
        let maxmem = self
            .settings
            .get("node_maxmem")
            .and_then(Value::as_u64)
            .unwrap_or(64 << 30);
        for n in self.nodes() {
            if kind.is_none() || kind == Some("node") {
                let mem: u64 = self
                    .all_vms()
                    .into_iter()
                    .filter(|(vn, id)| vn == &n && self.running(*id))
                    .map(|(vn, id)| {
                        let c = Conf::parse(
                            &fs::read_to_string(self.conf_path(&vn, id)).unwrap_or_default(),
                        );
                        c.get("memory")
                            .and_then(|m| m.parse::<u64>().ok())
                            .unwrap_or(2048)
                            << 20
                    })
                    .sum();
                out.push(json!({"id": format!("node/{n}"), "type": "node", "node": n,
                    "status": "online", "maxmem": maxmem, "mem": mem, "maxcpu": 16, "cpu": 0.01}));
            }
            if kind.is_none() || kind == Some("storage") {
                for st in self.storages() {
                    let name = st.get("name").and_then(Value::as_str).unwrap_or("");
                    let kib = |k: &str| st.get(k).and_then(Value::as_u64).unwrap_or(0) * 1024;
                    out.push(json!({"id": format!("storage/{n}/{name}"), "type": "storage",
                        "node": n, "storage": name, "status": "available",
                        "maxdisk": kib("total"), "disk": kib("used"),
                        "shared": if st.get("shared").and_then(Value::as_bool) == Some(true) { 1 } else { 0 },
                        "plugintype": st.get("type").and_then(Value::as_str).unwrap_or("dir")}));
                }
            }
        }
        out
    }
}
