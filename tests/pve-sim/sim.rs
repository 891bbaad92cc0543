//! The simulated cluster's state directory: settings, the argv log, injected faults, VM
//! configs by node, running flags and storages.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::exit;
use std::thread::sleep;
use std::time::Duration;

use serde_json::{json, Value};

use crate::conf::*;
use crate::lock::{release_all, DirLock};
use crate::{die, param_error};

pub(crate) struct Sim {
    pub(crate) dir: PathBuf,
    pub(crate) settings: Value,
}

impl Sim {
    pub(crate) fn open(dir: PathBuf) -> Sim {
        let settings = fs::read_to_string(dir.join("sim.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| json!({}));
        Sim { dir, settings }
    }

    /// The node this command runs on: `PVE_SIM_NODE` (a test "on" another node), else
    /// sim.json's `node` (see cluster.rs).
    pub(crate) fn node(&self) -> String {
        if self.settings.get("node_from_api").is_none() {
            if let Ok(n) = std::env::var("PVE_SIM_NODE") {
                return n;
            }
        }
        self.settings
            .get("node")
            .and_then(Value::as_str)
            .unwrap_or("prom")
            .to_string()
    }

    pub(crate) fn nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self
            .settings
            .get("nodes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if !nodes.contains(&self.node()) {
            nodes.insert(0, self.node());
        }
        nodes
    }

    pub(crate) fn setting_ms(&self, key: &str, default: u64) -> Duration {
        Duration::from_millis(
            self.settings
                .get(key)
                .and_then(Value::as_u64)
                .unwrap_or(default),
        )
    }

    /// A barrier the test controls (`"gates": ["clone"]` in sim.json): a command reaching
    /// gate NAME marks `gates/NAME.reached` and waits for `gates/NAME.open`, so a test acts
    /// while the command is mid-way (storage lock held, `lock: clone` set) instead of guessing
    /// how long that lasts. At most 60 s, so a test that never opens it cannot hang the suite.
    pub(crate) fn gate(&self, name: &str) {
        let on = self
            .settings
            .get("gates")
            .and_then(Value::as_array)
            .is_some_and(|g| g.iter().any(|n| n.as_str() == Some(name)));
        if !on {
            return;
        }
        let dir = self.dir.join("gates");
        let _ = fs::create_dir_all(&dir);
        let _ = fs::write(dir.join(format!("{name}.reached")), b"");
        let open = dir.join(format!("{name}.open"));
        for _ in 0..6000 {
            if open.exists() {
                return;
            }
            sleep(Duration::from_millis(10));
        }
        die(&format!("pve-sim: test gate `{name}` was never opened"));
    }

    /// A worker task, as `GET /nodes/NODE/tasks` lists it: `tasks/UPID` holds the worker's PID
    /// (this process), so a worker that died mid-way is seen as ended while its VM lock stays.
    pub(crate) fn task_begin(&self, node: &str, kind: &str, vmid: u32) {
        let pid = std::process::id();
        let upid = format!("UPID:{node}:{pid:08X}:00000000:00000000:{kind}:{vmid}:root@pam:");
        let _ = fs::create_dir_all(self.dir.join("tasks"));
        let _ = fs::write(self.dir.join("tasks").join(&upid), pid.to_string());
    }

    pub(crate) fn task_end(&self, kind: &str, vmid: u32) {
        for (upid, pid) in self.tasks() {
            if pid == std::process::id() && upid.contains(&format!(":{kind}:{vmid}:")) {
                let _ = fs::remove_file(self.dir.join("tasks").join(upid));
            }
        }
    }

    /// Every task begun and not ended: (UPID, worker PID).
    pub(crate) fn tasks(&self) -> Vec<(String, u32)> {
        let Ok(rd) = fs::read_dir(self.dir.join("tasks")) else {
            return Vec::new();
        };
        let mut out: Vec<(String, u32)> = rd
            .flatten()
            .filter_map(|e| {
                let pid = fs::read_to_string(e.path()).ok()?.trim().parse().ok()?;
                Some((e.file_name().to_string_lossy().into_owned(), pid))
            })
            .collect();
        out.sort();
        out
    }

    /// The whole-state lock: every read-modify-write of the state directory holds it.
    pub(crate) fn lock(&self) -> DirLock {
        DirLock::acquire(self.dir.join(".state-lock"), Duration::from_secs(30))
            .unwrap_or_else(|| die("pve-sim: state lock held for 30s (a crashed pve-sim?)"))
    }

    pub(crate) fn write(&self, path: &Path, text: &str) {
        if let Some(p) = path.parent() {
            fs::create_dir_all(p).unwrap_or_else(|e| die(&format!("pve-sim: {e}")));
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        fs::write(&tmp, text)
            .and_then(|_| fs::rename(&tmp, path))
            .unwrap_or_else(|e| die(&format!("pve-sim: cannot write {}: {e}", path.display())));
    }

    pub(crate) fn record(&self, argv: &[String]) {
        let _g = self.lock();
        let mut line = serde_json::to_string(argv).unwrap();
        line.push('\n');
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("argv.jsonl"))
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .unwrap_or_else(|e| die(&format!("pve-sim: cannot record argv: {e}")));
    }

    pub(crate) fn inject_faults(&self, argv: &[String]) {
        let path = self.dir.join("faults.json");
        let fired: Vec<Value> = {
            let _g = self.lock();
            let Ok(text) = fs::read_to_string(&path) else {
                return;
            };
            let mut faults: Vec<Value> = serde_json::from_str(&text)
                .unwrap_or_else(|e| die(&format!("pve-sim: bad faults.json: {e}")));
            let mut fired = Vec::new();
            let mut changed = false;
            faults.retain_mut(|f| {
                let words: Vec<&str> = f
                    .get("match")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .split_whitespace()
                    .collect();
                let hit = words.len() <= argv.len() && words.iter().zip(argv).all(|(w, a)| w == a);
                if !hit {
                    return true;
                }
                fired.push(f.clone());
                match f.get("times").and_then(Value::as_u64) {
                    None => true,
                    Some(n) => {
                        changed = true;
                        if n <= 1 {
                            false
                        } else {
                            f["times"] = json!(n - 1);
                            true
                        }
                    }
                }
            });
            if changed {
                self.write(&path, &serde_json::to_string_pretty(&faults).unwrap());
            }
            fired
        };
        for f in fired {
            let action = f.get("action").and_then(Value::as_str).unwrap_or("fail");
            let vmid = argv.get(2).cloned().unwrap_or_default();
            match action {
                "delay" => sleep(Duration::from_millis(
                    f.get("ms").and_then(Value::as_u64).unwrap_or(100),
                )),
                "fail" => {
                    eprintln!(
                        "{}",
                        f.get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("simulated failure")
                    );
                    release_all();
                    exit(f.get("exit").and_then(Value::as_i64).unwrap_or(255) as i32)
                }
                "lock-timeout" => {
                    let file = match (f.get("file"), f.get("storage")) {
                        (Some(Value::String(file)), _) => file.clone(),
                        (_, Some(Value::String(s))) => {
                            format!("/var/lock/pve-manager/pve-storage-{s}")
                        }
                        _ => format!("/var/lock/qemu-server/lock-{vmid}.conf"),
                    };
                    eprintln!("trying to acquire lock...");
                    die(&format!("can't lock file '{file}' - got timeout"))
                }
                "task-fail" => std::env::set_var(
                    crate::api::TASK_FAIL_ENV,
                    f.get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("simulated task failure"),
                ),
                "locked" => die(&format!(
                    "VM is locked ({})",
                    f.get("reason").and_then(Value::as_str).unwrap_or("backup")
                )),
                "take-vmid" => {
                    // Another client wins the race for the clone's target VMID.
                    if let Some(Ok(newid)) = argv.get(3).map(|s| s.parse::<u32>()) {
                        let _g = self.lock();
                        let p = self.conf_path(&self.node(), newid);
                        if !p.exists() {
                            let c = Conf {
                                main: vec![("name".into(), "taken-by-another-client".into())],
                                ..Default::default()
                            };
                            self.write(&p, &c.render());
                        }
                    }
                }
                other => die(&format!("pve-sim: unknown fault action {other}")),
            }
        }
    }

    pub(crate) fn conf_path(&self, node: &str, vmid: u32) -> PathBuf {
        self.dir
            .join("nodes")
            .join(node)
            .join("qemu-server")
            .join(format!("{vmid}.conf"))
    }

    /// Which node holds `vmid`, if any.
    pub(crate) fn find(&self, vmid: u32) -> Option<String> {
        self.nodes()
            .into_iter()
            .find(|n| self.conf_path(n, vmid).is_file())
    }

    pub(crate) fn all_vms(&self) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        for node in self.nodes() {
            let dir = self.dir.join("nodes").join(&node).join("qemu-server");
            if let Ok(rd) = fs::read_dir(dir) {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if let Some(id) = name.strip_suffix(".conf").and_then(|s| s.parse().ok()) {
                        out.push((node.clone(), id));
                    }
                }
            }
        }
        out.sort_by_key(|(_, id)| *id);
        out
    }

    pub(crate) fn load_local(&self, vmid: &str) -> (u32, Conf) {
        let id: u32 = vmid.parse().unwrap_or_else(|_| {
            param_error(
                "vmid",
                &format!("type check ('integer') failed - got '{vmid}'"),
                "",
            )
        });
        let p = self.conf_path(&self.node(), id);
        match fs::read_to_string(&p) {
            Ok(t) => (id, Conf::parse(&t)),
            Err(_) => die(&format!(
                "Configuration file 'nodes/{}/qemu-server/{id}.conf' does not exist",
                self.node()
            )),
        }
    }

    pub(crate) fn save(&self, vmid: u32, conf: &Conf) {
        self.write(&self.conf_path(&self.node(), vmid), &conf.render());
    }

    pub(crate) fn running(&self, vmid: u32) -> bool {
        self.dir.join("running").join(vmid.to_string()).exists()
    }

    pub(crate) fn set_running(&self, vmid: u32, on: bool) {
        let p = self.dir.join("running").join(vmid.to_string());
        if on {
            self.write(&p, "1\n");
        } else {
            let _ = fs::remove_file(p);
        }
    }

    pub(crate) fn check_lock(conf: &Conf) {
        if let Some(l) = conf.get("lock") {
            die(&format!("VM is locked ({l})"));
        }
    }

    pub(crate) fn storages(&self) -> Vec<Value> {
        fs::read_to_string(self.dir.join("storage.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Vec<Value>>(&t).ok())
            .unwrap_or_else(|| {
                vec![
                    json!({"name":"local","type":"dir","total":98497780u64,"used":12345678u64}),
                    json!({"name":"local-lvm","type":"lvmthin","total":357130240u64,"used":5421772u64}),
                ]
            })
    }

    pub(crate) fn storage(&self, name: &str) -> Option<Value> {
        self.storages()
            .into_iter()
            .find(|s| s.get("name").and_then(Value::as_str) == Some(name))
    }
}
