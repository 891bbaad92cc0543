//! pve-sim: a TEST DOUBLE of Proxmox VE for vmctl's tests — not Proxmox, not for production.
//!
//! Installed (by the test harness) as `qm`, `qmrestore`, `pvesh`, `pvesm` and `ip` on the PATH a
//! loopback sshd gives its sessions, it answers the commands vmctl sends the way Proxmox VE
//! documents them: the same output formats and error messages (see the project's NOTES on
//! Proxmox), with cluster state kept in a directory (`$PVE_SIM_STATE`):
//!
//! ```text
//! nodes/NODE/qemu-server/ID.conf   one VM config per file, Proxmox's format (snapshots as [sections])
//! running/ID                       the VM is running
//! agent/ID.json                    ["192.168.1.50/24", "2001:db8::50/64"]: what the guest agent reports once started
//! pools/ID                         the VM's pool
//! neigh                            the host's neighbour table, as `ip neigh show` prints it
//! storage.json                     [{"name":"nvmeprom","type":"lvmthin","total":…,"used":…,"shared":false}]
//! sim.json                         {"node":"prom","nodes":["prom"],"storage_lock_timeout_ms":10000,"clone_ms":0}
//! faults.json                      faults to inject (below)
//! argv.jsonl                       every invocation's argv, one JSON array per line (written first)
//! locks/                           the per-storage locks concurrent clones contend for
//! ```
//!
//! Faults: `faults.json` is a list of `{"match": "qm clone", "action": A, "times": N}`; `match`
//! is a prefix of the argv words, `times` (absent = always) counts down and the fault is removed
//! at zero. Actions: `fail` (`message`, `exit`), `lock-timeout` (`storage` or `file`; the
//! "can't lock file '…' - got timeout" error), `locked` (`reason`; "VM is locked (…)"),
//! `delay` (`ms`, then run normally), `take-vmid` (another client creates the clone's target
//! VMID first, so Proxmox answers "config file already exists").
//!
//! A restored "vma" archive is, for this double, a text file holding the VM's config.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::exit;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

const HELP: &str = "\
pve-sim — a test double of Proxmox VE (qm, qmrestore, pvesh, pvesm, ip neigh) for vmctl's tests.
It is NOT Proxmox: it keeps a simulated cluster in $PVE_SIM_STATE and answers in Proxmox's
documented output formats and error messages, with faults injected from faults.json.

usage: qm|qmrestore|pvesh|pvesm|ip ARGS...   (as symlinks to this binary)
       pve-sim PROGRAM ARGS...
see the //! documentation of tests/pve-sim/pve_sim.rs for the state directory layout";

fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    let prog = Path::new(&args[0])
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    args[0] = prog;
    if args[0] == "pve-sim" {
        if args.len() < 2 || args[1] == "--help" || args[1] == "-h" {
            println!("{HELP}");
            return;
        }
        args.remove(0);
    }
    let Some(state) = std::env::var_os("PVE_SIM_STATE").map(PathBuf::from) else {
        eprintln!("pve-sim: set PVE_SIM_STATE to the simulated cluster's state directory");
        exit(2);
    };
    let sim = Sim::open(state);
    sim.record(&args);
    sim.inject_faults(&args);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a[0] {
        "qm" => sim.qm(&a[1..]),
        "qmrestore" => sim.qmrestore(&a[1..]),
        "pvesh" => sim.pvesh(&a[1..]),
        "pvesm" => sim.pvesm(&a[1..]),
        "ip" => sim.ip(&a[1..]),
        other => die(&format!("pve-sim: unknown program {other}")),
    }
}

/// Locks this process holds; `exit` skips destructors, so `die` releases them itself.
static HELD: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn die(msg: &str) -> ! {
    let msg = msg.trim_end_matches('\n');
    eprintln!("{msg}");
    release_all();
    exit(255)
}

fn release_all() {
    if let Ok(mut held) = HELD.lock() {
        for p in held.drain(..) {
            let _ = fs::remove_dir(p);
        }
    }
}

fn param_error(key: &str, detail: &str, usage: &str) -> ! {
    die(&format!(
        "400 Parameter verification failed.\n{key}: {detail}\n\n{usage}"
    ))
}

/// A directory lock: `mkdir` is atomic, so it works across the processes of parallel sessions.
struct DirLock(PathBuf);

impl DirLock {
    fn acquire(path: PathBuf, timeout: Duration) -> Option<DirLock> {
        let start = Instant::now();
        loop {
            match fs::create_dir(&path) {
                Ok(()) => {
                    HELD.lock().unwrap().push(path.clone());
                    return Some(DirLock(path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if start.elapsed() >= timeout {
                        return None;
                    }
                    sleep(Duration::from_millis(3));
                }
                Err(e) => die(&format!("pve-sim: cannot lock {}: {e}", path.display())),
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.0);
        if let Ok(mut held) = HELD.lock() {
            held.retain(|p| p != &self.0);
        }
    }
}

/// One VM config: description, current settings, snapshot sections.
#[derive(Clone, Default)]
struct Conf {
    description: Option<String>,
    main: Vec<(String, String)>,
    snaps: Vec<Snap>,
}

#[derive(Clone)]
struct Snap {
    name: String,
    description: Option<String>,
    entries: Vec<(String, String)>,
}

fn encode_comment(line: &str) -> String {
    let mut out = String::new();
    for c in line.chars() {
        if c == '%' || (c as u32) < 0x20 || c as u32 == 0x7f {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn decode_comment(line: &str) -> String {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&line[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parent_of(entries: &[(String, String)]) -> Option<String> {
    get(entries, "parent").map(str::to_string)
}

fn get<'a>(entries: &'a [(String, String)], key: &str) -> Option<&'a str> {
    entries
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn set(entries: &mut Vec<(String, String)>, key: &str, value: String) {
    match entries.iter_mut().find(|(k, _)| k == key) {
        Some(e) => e.1 = value,
        None => entries.push((key.to_string(), value)),
    }
}

fn unset(entries: &mut Vec<(String, String)>, key: &str) {
    entries.retain(|(k, _)| k != key);
}

impl Conf {
    fn parse(text: &str) -> Conf {
        let mut conf = Conf::default();
        let mut desc: Vec<String> = Vec::new();
        let mut section: Option<Snap> = None;
        let flush_desc =
            |desc: &mut Vec<String>| (!desc.is_empty()).then(|| std::mem::take(desc).join("\n"));
        for line in text.lines() {
            if let Some(c) = line.strip_prefix('#') {
                desc.push(decode_comment(c));
            } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                match section.take() {
                    Some(mut s) => {
                        if s.description.is_none() {
                            s.description = flush_desc(&mut desc);
                        }
                        conf.snaps.push(s)
                    }
                    None => {
                        if conf.description.is_none() {
                            conf.description = flush_desc(&mut desc)
                        }
                    }
                }
                section = Some(Snap {
                    name: name.to_string(),
                    description: None,
                    entries: vec![],
                });
            } else if let Some((k, v)) = line.split_once(": ") {
                let entry = (k.to_string(), v.to_string());
                match &mut section {
                    Some(s) => {
                        if s.description.is_none() {
                            s.description = flush_desc(&mut desc);
                        }
                        s.entries.push(entry)
                    }
                    None => {
                        if conf.description.is_none() {
                            conf.description = flush_desc(&mut desc)
                        }
                        conf.main.push(entry)
                    }
                }
            }
        }
        match section {
            Some(mut s) => {
                if s.description.is_none() {
                    s.description = flush_desc(&mut desc);
                }
                conf.snaps.push(s)
            }
            None => {
                if conf.description.is_none() {
                    conf.description = flush_desc(&mut desc)
                }
            }
        }
        conf
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let put_desc = |out: &mut String, d: &Option<String>| {
            if let Some(d) = d {
                for l in d.split('\n') {
                    out.push('#');
                    out.push_str(&encode_comment(l));
                    out.push('\n');
                }
            }
        };
        put_desc(&mut out, &self.description);
        for (k, v) in &self.main {
            out.push_str(&format!("{k}: {v}\n"));
        }
        for s in &self.snaps {
            out.push_str(&format!("\n[{}]\n", s.name));
            put_desc(&mut out, &s.description);
            for (k, v) in &s.entries {
                out.push_str(&format!("{k}: {v}\n"));
            }
        }
        out
    }

    fn get(&self, key: &str) -> Option<&str> {
        get(&self.main, key)
    }

    fn disks(&self) -> Vec<(String, String)> {
        self.main
            .iter()
            .filter(|(k, v)| is_disk_key(k) && !v.contains("media=cdrom"))
            .cloned()
            .collect()
    }
}

fn is_disk_key(k: &str) -> bool {
    ["scsi", "virtio", "sata", "ide", "efidisk", "tpmstate"]
        .iter()
        .any(|p| k.strip_prefix(p).is_some_and(|n| n.parse::<u32>().is_ok()))
}

fn size_of(disk: &str) -> Option<u64> {
    disk.split(',')
        .find_map(|p| p.strip_prefix("size="))
        .and_then(parse_size_gib)
}

fn parse_size_gib(s: &str) -> Option<u64> {
    if let Some(n) = s.strip_suffix('G') {
        n.parse().ok()
    } else if let Some(n) = s.strip_suffix('T') {
        n.parse::<u64>().ok().map(|t| t * 1024)
    } else if let Some(n) = s.strip_suffix('M') {
        n.parse::<u64>().ok().map(|m| m / 1024)
    } else {
        s.parse().ok()
    }
}

fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn is_config_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of an epoch, as qm listsnapshot prints it.
fn format_time(epoch: u64) -> String {
    let days = (epoch / 86400) as i64;
    let secs = epoch % 86400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

fn mac_for(vmid: u32) -> String {
    format!(
        "BC:24:11:{:02X}:{:02X}:{:02X}",
        (vmid >> 16) & 0xff,
        (vmid >> 8) & 0xff,
        vmid & 0xff
    )
}

fn mac_of_net(net: &str) -> Option<String> {
    net.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(_, v)| v)
        .find(|v| v.len() == 17 && v.split(':').count() == 6)
        .map(str::to_string)
}

struct Sim {
    dir: PathBuf,
    settings: Value,
}

impl Sim {
    fn open(dir: PathBuf) -> Sim {
        let settings = fs::read_to_string(dir.join("sim.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| json!({}));
        Sim { dir, settings }
    }

    fn node(&self) -> String {
        self.settings
            .get("node")
            .and_then(Value::as_str)
            .unwrap_or("prom")
            .to_string()
    }

    fn nodes(&self) -> Vec<String> {
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

    fn setting_ms(&self, key: &str, default: u64) -> Duration {
        Duration::from_millis(
            self.settings
                .get(key)
                .and_then(Value::as_u64)
                .unwrap_or(default),
        )
    }

    /// The whole-state lock: every read-modify-write of the state directory holds it.
    fn lock(&self) -> DirLock {
        DirLock::acquire(self.dir.join(".state-lock"), Duration::from_secs(30))
            .unwrap_or_else(|| die("pve-sim: state lock held for 30s (a crashed pve-sim?)"))
    }

    fn write(&self, path: &Path, text: &str) {
        if let Some(p) = path.parent() {
            fs::create_dir_all(p).unwrap_or_else(|e| die(&format!("pve-sim: {e}")));
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        fs::write(&tmp, text)
            .and_then(|_| fs::rename(&tmp, path))
            .unwrap_or_else(|e| die(&format!("pve-sim: cannot write {}: {e}", path.display())));
    }

    fn record(&self, argv: &[String]) {
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

    fn inject_faults(&self, argv: &[String]) {
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

    fn conf_path(&self, node: &str, vmid: u32) -> PathBuf {
        self.dir
            .join("nodes")
            .join(node)
            .join("qemu-server")
            .join(format!("{vmid}.conf"))
    }

    /// Which node holds `vmid`, if any.
    fn find(&self, vmid: u32) -> Option<String> {
        self.nodes()
            .into_iter()
            .find(|n| self.conf_path(n, vmid).is_file())
    }

    fn all_vms(&self) -> Vec<(String, u32)> {
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

    fn load_local(&self, vmid: &str) -> (u32, Conf) {
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

    fn save(&self, vmid: u32, conf: &Conf) {
        self.write(&self.conf_path(&self.node(), vmid), &conf.render());
    }

    fn running(&self, vmid: u32) -> bool {
        self.dir.join("running").join(vmid.to_string()).exists()
    }

    fn set_running(&self, vmid: u32, on: bool) {
        let p = self.dir.join("running").join(vmid.to_string());
        if on {
            self.write(&p, "1\n");
        } else {
            let _ = fs::remove_file(p);
        }
    }

    fn check_lock(conf: &Conf) {
        if let Some(l) = conf.get("lock") {
            die(&format!("VM is locked ({l})"));
        }
    }

    fn storages(&self) -> Vec<Value> {
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

    fn storage(&self, name: &str) -> Option<Value> {
        self.storages()
            .into_iter()
            .find(|s| s.get("name").and_then(Value::as_str) == Some(name))
    }

    // ---------------------------------------------------------------- qm

    fn qm(&self, a: &[&str]) {
        let Some((&sub, rest)) = a.split_first() else {
            die("ERROR: no command specified")
        };
        match sub {
            "list" => self.qm_list(),
            "status" => self.qm_status(rest),
            "config" => self.qm_config(rest),
            "clone" => self.qm_clone(rest),
            "set" => self.qm_set(rest),
            "resize" => self.qm_resize(rest),
            "start" | "stop" | "shutdown" | "template" | "destroy" => self.qm_power(sub, rest),
            "terminal" => self.qm_terminal(rest),
            "guest" => self.qm_guest(rest),
            "snapshot" => self.qm_snapshot(rest),
            "listsnapshot" => self.qm_listsnapshot(rest),
            "rollback" | "delsnapshot" => self.qm_snapshot_change(sub, rest),
            "migrate" => self.qm_migrate(rest),
            other => die(&format!("unknown command 'qm {other}'")),
        }
    }

    fn qm_list(&self) {
        println!(
            "{:>10} {:<20} {:<10} {:<10} {:>12} {:<10}",
            "VMID", "NAME", "STATUS", "MEM(MB)", "BOOTDISK(GB)", "PID"
        );
        let node = self.node();
        for (n, id) in self.all_vms() {
            if n != node {
                continue;
            }
            let conf = Conf::parse(&fs::read_to_string(self.conf_path(&n, id)).unwrap_or_default());
            let running = self.running(id);
            let disk = conf
                .disks()
                .first()
                .and_then(|(_, v)| size_of(v))
                .unwrap_or(0);
            println!(
                "{:>10} {:<20} {:<10} {:<10} {:>12.2} {:<10}",
                id,
                conf.get("name").unwrap_or(""),
                if running { "running" } else { "stopped" },
                conf.get("memory").unwrap_or("2048"),
                disk as f64,
                if running { 10000 + id } else { 0 }
            );
        }
    }

    fn qm_status(&self, a: &[&str]) {
        let (id, _conf) = self.load_local(a.first().copied().unwrap_or(""));
        println!(
            "status: {}",
            if self.running(id) {
                "running"
            } else {
                "stopped"
            }
        );
    }

    fn qm_config(&self, a: &[&str]) {
        let (_, conf) = self.load_local(a.first().copied().unwrap_or(""));
        let mut entries: BTreeMap<String, String> = conf.main.iter().cloned().collect();
        if let Some(d) = &conf.description {
            entries.insert("description".into(), d.clone());
        }
        for (k, v) in entries {
            println!("{k}: {v}");
        }
    }

    fn qm_clone(&self, a: &[&str]) {
        const USAGE: &str = "qm clone <vmid> <newid> [OPTIONS]";
        if a.len() < 2 {
            die(&format!("400 not enough arguments\n{USAGE}"));
        }
        let (_, src_conf) = self.load_local(a[0]);
        let newid: u32 = a[1].parse().unwrap_or_else(|_| {
            param_error(
                "newid",
                &format!("type check ('integer') failed - got '{}'", a[1]),
                USAGE,
            )
        });
        let opts = options(&a[2..], USAGE);
        let name = opts
            .get("name")
            .cloned()
            .unwrap_or_else(|| format!("Copy-of-VM-{}", src_conf.get("name").unwrap_or("")));
        if !is_dns_name(&name) {
            param_error(
                "name",
                "invalid format - value does not look like a valid DNS name",
                USAGE,
            );
        }
        let template = src_conf.get("template") == Some("1");
        let full = match opts.get("full").map(String::as_str) {
            Some("0") => false,
            Some(_) => true,
            None => !template,
        };
        if !full && !template {
            die("linked clone feature is only available for templates");
        }
        if !full && opts.contains_key("storage") {
            die("parameter 'storage' not allowed for linked clones");
        }
        let src_disk_storage = src_conf
            .disks()
            .first()
            .and_then(|(_, v)| v.split(':').next().map(str::to_string));
        let storage = opts.get("storage").cloned().or(src_disk_storage);
        if let Some(s) = &storage {
            if self.storage(s).is_none() {
                die(&format!("storage '{s}' does not exist"));
            }
        }
        let node = self.node();
        let target = opts.get("target").cloned().unwrap_or_else(|| node.clone());
        if target != node {
            if !self.nodes().contains(&target) {
                die(&format!("no such cluster node '{target}'"));
            }
            let shared = storage
                .as_deref()
                .and_then(|s| self.storage(s))
                .and_then(|s| s.get("shared").and_then(Value::as_bool))
                .unwrap_or(false);
            if !shared {
                die(&format!(
                    "can't clone to node '{target}' (VM uses local storage)"
                ));
            }
        }
        // Reserve the VMID: the config appears at once, locked, as in Proxmox.
        {
            let _g = self.lock();
            if self.find(newid).is_some() {
                die(&format!(
                    "unable to create VM {newid}: config file already exists"
                ));
            }
            let reserve = Conf {
                main: vec![
                    ("lock".into(), "clone".into()),
                    ("name".into(), name.clone()),
                ],
                ..Default::default()
            };
            self.write(&self.conf_path(&node, newid), &reserve.render());
        }
        let storage_lock = storage.as_ref().map(|s| {
            let path = self.dir.join("locks").join(format!("pve-storage-{s}"));
            let _ = fs::create_dir_all(self.dir.join("locks"));
            let timeout = self.setting_ms("storage_lock_timeout_ms", 10_000);
            match DirLock::acquire(path.clone(), Duration::ZERO) {
                Some(l) => l,
                None => {
                    eprintln!("trying to acquire lock...");
                    match DirLock::acquire(path, timeout) {
                        Some(l) => {
                            eprintln!(" OK");
                            l
                        }
                        None => {
                            let _g = self.lock();
                            let _ = fs::remove_file(self.conf_path(&node, newid));
                            die(&format!(
                                "can't lock file '/var/lock/pve-manager/pve-storage-{s}' - got timeout"
                            ))
                        }
                    }
                }
            }
        });
        let mut conf = Conf {
            description: opts.get("description").cloned().or(src_conf.description),
            main: src_conf.main.clone(),
            snaps: vec![],
        };
        for key in ["template", "lock", "parent", "protection"] {
            unset(&mut conf.main, key);
        }
        set(&mut conf.main, "name", name);
        if let Some(net) = conf.get("net0").map(str::to_string) {
            if let Some(old) = mac_of_net(&net) {
                set(&mut conf.main, "net0", net.replace(&old, &mac_for(newid)));
            }
        }
        for (k, v) in conf.disks() {
            let (st, rest) = v.split_once(':').unwrap_or(("", &v));
            let opts_part = rest.split_once(',').map(|(_, o)| o).unwrap_or("");
            let vol = rest.split(',').next().unwrap_or("");
            let disk_no = vol.rsplit('-').next().unwrap_or("0");
            let new_st = if full {
                storage.clone().unwrap_or(st.into())
            } else {
                st.into()
            };
            let new_vol = if full {
                format!("vm-{newid}-disk-{disk_no}")
            } else {
                format!("{vol}/vm-{newid}-disk-{disk_no}")
            };
            println!(
                "create {} clone of drive {k} ({st}:{vol})",
                if full { "full" } else { "linked" }
            );
            let value = if opts_part.is_empty() {
                format!("{new_st}:{new_vol}")
            } else {
                format!("{new_st}:{new_vol},{opts_part}")
            };
            set(&mut conf.main, &k, value);
        }
        sleep(self.setting_ms("clone_ms", 0));
        {
            let _g = self.lock();
            self.write(&self.conf_path(&target, newid), &conf.render());
            if target != node {
                let _ = fs::remove_file(self.conf_path(&node, newid));
            }
            if let Some(pool) = opts.get("pool") {
                self.write(&self.dir.join("pools").join(newid.to_string()), pool);
            }
        }
        drop(storage_lock);
    }

    fn qm_set(&self, a: &[&str]) {
        const USAGE: &str = "qm set <vmid> [OPTIONS]";
        let _g = self.lock();
        let (id, mut conf) = self.load_local(a.first().copied().unwrap_or(""));
        let opts = options_ordered(&a[1..], USAGE);
        if !opts.iter().any(|(k, _)| k == "skiplock") {
            Self::check_lock(&conf);
        }
        for (k, v) in &opts {
            if k != "description" && v.contains('\n') {
                param_error(k, "value must not contain newlines", USAGE);
            }
        }
        for (k, v) in opts {
            match k.as_str() {
                "skiplock" => {}
                "description" => conf.description = Some(v),
                "delete" => {
                    for key in v.split(',') {
                        unset(&mut conf.main, key.trim());
                    }
                }
                "name" => {
                    if !is_dns_name(&v) {
                        param_error(
                            "name",
                            "invalid format - value does not look like a valid DNS name",
                            USAGE,
                        );
                    }
                    set(&mut conf.main, "name", v);
                }
                "cores" | "memory" | "sockets" | "balloon" => {
                    if v.parse::<u64>().map(|n| n == 0).unwrap_or(true) {
                        param_error(
                            &k,
                            &format!("type check ('integer') failed - got '{v}'"),
                            USAGE,
                        );
                    }
                    set(&mut conf.main, &k, v);
                }
                "protection" => set(&mut conf.main, &k, v),
                "sshkeys" => {
                    let keys = fs::read_to_string(&v).unwrap_or_else(|e| {
                        param_error(
                            "sshkeys",
                            &format!("unable to open file '{v}' - {e}"),
                            USAGE,
                        )
                    });
                    let enc: String = keys
                        .bytes()
                        .map(|b| {
                            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                                (b as char).to_string()
                            } else {
                                format!("%{b:02X}")
                            }
                        })
                        .collect();
                    set(&mut conf.main, "sshkeys", enc);
                }
                key if is_disk_key(key) => {
                    let value = match v.split_once(':') {
                        Some((st, "cloudinit")) => {
                            self.require_storage(st);
                            format!("{st}:vm-{id}-cloudinit,media=cdrom")
                        }
                        Some((st, size)) if size.parse::<u64>().is_ok() => {
                            self.require_storage(st);
                            let n = conf.disks().len();
                            format!("{st}:vm-{id}-disk-{n},size={size}G")
                        }
                        _ => v,
                    };
                    set(&mut conf.main, key, value);
                }
                _ => set(&mut conf.main, &k, v),
            }
        }
        self.save(id, &conf);
    }

    fn require_storage(&self, st: &str) {
        if self.storage(st).is_none() {
            die(&format!("storage '{st}' does not exist"));
        }
    }

    fn qm_resize(&self, a: &[&str]) {
        if a.len() < 3 {
            die("400 not enough arguments\nqm resize <vmid> <disk> <size> [OPTIONS]");
        }
        let _g = self.lock();
        let (id, mut conf) = self.load_local(a[0]);
        Self::check_lock(&conf);
        let disk = a[1];
        let Some(value) = conf.get(disk).map(str::to_string) else {
            die(&format!("disk '{disk}' does not exist"))
        };
        let cur = size_of(&value).unwrap_or(0);
        let (rel, size) = match a[2].strip_prefix('+') {
            Some(s) => (true, s),
            None => (false, a[2]),
        };
        let Some(n) = parse_size_gib(size) else {
            param_error(
                "size",
                &format!("value '{}' does not match the regex pattern", a[2]),
                "qm resize <vmid> <disk> <size>",
            )
        };
        let new = if rel { cur + n } else { n };
        if new < cur {
            die("shrinking disks is not supported");
        }
        let mut parts: Vec<String> = value
            .split(',')
            .filter(|p| !p.starts_with("size="))
            .map(str::to_string)
            .collect();
        parts.push(format!("size={new}G"));
        set(&mut conf.main, disk, parts.join(","));
        self.save(id, &conf);
        let _ = id;
    }

    fn qm_power(&self, sub: &str, a: &[&str]) {
        let _g = self.lock();
        let (id, mut conf) = self.load_local(a.first().copied().unwrap_or(""));
        Self::check_lock(&conf);
        let running = self.running(id);
        match sub {
            "start" => {
                if conf.get("template") == Some("1") {
                    die("you can't start a vm if it's a template");
                }
                if running {
                    die(&format!("VM {id} already running"));
                }
                self.set_running(id, true);
            }
            "stop" => self.set_running(id, false),
            "shutdown" => {
                if !running {
                    die(&format!("VM {id} not running"));
                }
                self.set_running(id, false);
            }
            "template" => {
                if conf.get("template") == Some("1") {
                    die("you can't convert a template to a template");
                }
                if running {
                    die("you can't convert a running VM to a template");
                }
                for (k, v) in conf.disks() {
                    set(&mut conf.main, &k, v.replace("vm-", "base-"));
                }
                set(&mut conf.main, "template", "1".into());
                self.save(id, &conf);
            }
            "destroy" => {
                if conf.get("protection") == Some("1") {
                    die(&format!("can't remove VM {id} - protection mode enabled"));
                }
                if running {
                    die(&format!("VM {id} is running - destroy failed"));
                }
                for (_, v) in conf.disks() {
                    let vol = v.split(',').next().unwrap_or("");
                    println!("  Logical volume \"{vol}\" successfully removed.");
                }
                let _ = fs::remove_file(self.conf_path(&self.node(), id));
                let _ = fs::remove_file(self.dir.join("pools").join(id.to_string()));
                println!("purging VM {id} from related configurations..");
            }
            _ => unreachable!(),
        }
    }

    fn qm_terminal(&self, a: &[&str]) {
        let (id, conf) = self.load_local(a.first().copied().unwrap_or(""));
        if conf.get("serial0").is_none() {
            die("unable to find a serial interface");
        }
        if !self.running(id) {
            die(&format!("VM {id} not running"));
        }
        eprintln!("starting serial terminal on interface serial0 (press Ctrl+O to exit)");
        // The "guest" echoes what it is sent; Ctrl+O ends the session as in `qm terminal`.
        let mut stdin = std::io::stdin();
        let mut stdout = std::io::stdout();
        let mut byte = [0u8; 1];
        while let Ok(1) = stdin.read(&mut byte) {
            if byte[0] == 0x0f {
                break;
            }
            let _ = stdout.write_all(&byte);
            let _ = stdout.flush();
        }
    }

    fn qm_guest(&self, a: &[&str]) {
        if a.len() < 3 || a[0] != "cmd" {
            die("400 not enough arguments\nqm guest cmd <vmid> <command>");
        }
        let (id, conf) = self.load_local(a[1]);
        let agent_on = conf
            .get("agent")
            .is_some_and(|v| v.starts_with('1') || v.contains("enabled=1"));
        if !agent_on {
            die("No QEMU guest agent configured");
        }
        let addrs: Option<Vec<String>> =
            fs::read_to_string(self.dir.join("agent").join(format!("{id}.json")))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
        let (true, Some(addrs)) = (self.running(id), addrs) else {
            die("QEMU guest agent is not running")
        };
        if a[2] != "network-get-interfaces" {
            die(&format!(
                "pve-sim: guest command '{}' is not simulated",
                a[2]
            ));
        }
        let mac = conf
            .get("net0")
            .and_then(mac_of_net)
            .unwrap_or_else(|| mac_for(id))
            .to_ascii_lowercase();
        let mut ips = vec![
            json!({"ip-address": format!("fe80::be24:11ff:fe{}:{}", &mac[12..14], mac[15..17].to_string()), "ip-address-type": "ipv6", "prefix": 64}),
        ];
        for a in addrs {
            let (ip, prefix) = a.split_once('/').unwrap_or((&a, "24"));
            let kind = if ip.contains(':') { "ipv6" } else { "ipv4" };
            ips.push(json!({"ip-address": ip, "ip-address-type": kind, "prefix": prefix.parse::<u32>().unwrap_or(24)}));
        }
        let out = json!([
            {"name": "lo", "hardware-address": "00:00:00:00:00:00", "ip-addresses": [
                {"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8},
                {"ip-address": "::1", "ip-address-type": "ipv6", "prefix": 128}]},
            {"name": "eth0", "hardware-address": mac, "ip-addresses": ips,
             "statistics": {"rx-bytes": 1024, "rx-packets": 10, "tx-bytes": 2048, "tx-packets": 20}}
        ]);
        println!("{}", serde_json::to_string_pretty(&out).unwrap());
    }

    fn qm_snapshot(&self, a: &[&str]) {
        const USAGE: &str = "qm snapshot <vmid> <snapname> [OPTIONS]";
        if a.len() < 2 {
            die(&format!("400 not enough arguments\n{USAGE}"));
        }
        let _g = self.lock();
        let (id, mut conf) = self.load_local(a[0]);
        let name = a[1];
        let opts = options(&a[2..], USAGE);
        if !is_config_id(name) {
            param_error(
                "snapname",
                &format!("invalid format - invalid configuration ID '{name}'"),
                USAGE,
            );
        }
        Self::check_lock(&conf);
        if conf.snaps.iter().any(|s| s.name == name) {
            die(&format!("snapshot name '{name}' already used"));
        }
        let mut entries: Vec<(String, String)> = conf.main.clone();
        unset(&mut entries, "lock");
        entries.push(("snaptime".into(), now_epoch().to_string()));
        if opts.get("vmstate").map(String::as_str) == Some("1") && self.running(id) {
            entries.push(("vmstate".into(), format!("local:state-{name}")));
        }
        conf.snaps.push(Snap {
            name: name.to_string(),
            description: opts.get("description").cloned(),
            entries,
        });
        set(&mut conf.main, "parent", name.to_string());
        self.save(id, &conf);
    }

    fn qm_listsnapshot(&self, a: &[&str]) {
        let (_, conf) = self.load_local(a.first().copied().unwrap_or(""));
        fn walk(conf: &Conf, parent: Option<&str>, depth: usize, current_parent: Option<&str>) {
            for s in conf
                .snaps
                .iter()
                .filter(|s| parent_of(&s.entries).as_deref() == parent)
            {
                let time = get(&s.entries, "snaptime")
                    .and_then(|t| t.parse().ok())
                    .map(format_time)
                    .unwrap_or_default();
                let desc = s
                    .description
                    .as_deref()
                    .and_then(|d| d.lines().next())
                    .filter(|d| !d.is_empty())
                    .unwrap_or("no-description");
                println!(
                    "{}`-> {:<width$} {:<19}     {}",
                    "  ".repeat(depth),
                    s.name,
                    time,
                    desc,
                    width = 25usize.saturating_sub(depth * 2)
                );
                walk(conf, Some(&s.name), depth + 1, current_parent);
                if current_parent == Some(s.name.as_str()) {
                    print_current(depth + 1);
                }
            }
        }
        fn print_current(depth: usize) {
            println!(
                "{}`-> {:<width$} {:<19}     You are here!",
                "  ".repeat(depth),
                "current",
                "",
                width = 25usize.saturating_sub(depth * 2)
            );
        }
        let cur = parent_of(&conf.main);
        walk(&conf, None, 0, cur.as_deref());
        if cur.is_none() {
            print_current(0);
        }
    }

    fn qm_snapshot_change(&self, sub: &str, a: &[&str]) {
        if a.len() < 2 {
            die(&format!(
                "400 not enough arguments\nqm {sub} <vmid> <snapname>"
            ));
        }
        let _g = self.lock();
        let (id, mut conf) = self.load_local(a[0]);
        Self::check_lock(&conf);
        let name = a[1];
        let Some(pos) = conf.snaps.iter().position(|s| s.name == name) else {
            die(&format!("snapshot '{name}' does not exist"))
        };
        if sub == "rollback" {
            let snap = conf.snaps[pos].clone();
            let mut main = snap.entries.clone();
            unset(&mut main, "snaptime");
            unset(&mut main, "vmstate");
            set(&mut main, "parent", name.to_string());
            conf.main = main;
            self.set_running(id, false);
        } else {
            let removed = conf.snaps.remove(pos);
            let grand = get(&removed.entries, "parent").map(str::to_string);
            let fix = |entries: &mut Vec<(String, String)>| {
                if get(entries, "parent") == Some(name) {
                    match &grand {
                        Some(g) => set(entries, "parent", g.clone()),
                        None => unset(entries, "parent"),
                    }
                }
            };
            fix(&mut conf.main);
            for s in &mut conf.snaps {
                fix(&mut s.entries);
            }
        }
        self.save(id, &conf);
    }

    fn qm_migrate(&self, a: &[&str]) {
        const USAGE: &str = "qm migrate <vmid> <target> [OPTIONS]";
        if a.len() < 2 {
            die(&format!("400 not enough arguments\n{USAGE}"));
        }
        let _g = self.lock();
        let (id, conf) = self.load_local(a[0]);
        let target = a[1];
        let opts = options(&a[2..], USAGE);
        if target == self.node() {
            die("target is local node.");
        }
        if !self.nodes().iter().any(|n| n == target) {
            die(&format!("no such cluster node '{target}'"));
        }
        Self::check_lock(&conf);
        let online = opts.get("online").map(String::as_str) == Some("1");
        if self.running(id) && !online {
            die("can't migrate running VM without --online");
        }
        println!("migration started on {}", format_time(now_epoch()));
        self.write(&self.conf_path(target, id), &conf.render());
        let _ = fs::remove_file(self.conf_path(&self.node(), id));
        println!("migration finished successfully (duration 00:00:01)");
    }

    // ---------------------------------------------------------------- qmrestore

    fn qmrestore(&self, a: &[&str]) {
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
        let Ok(text) = fs::read_to_string(archive) else {
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

    fn pvesh(&self, a: &[&str]) {
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
                if kind.is_none() || kind == Some("node") {
                    for n in self.nodes() {
                        out.push(json!({"id": format!("node/{n}"), "type": "node", "node": n, "status": "online"}));
                    }
                }
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
            "/cluster/nextid" => {
                let used: Vec<u32> = self.all_vms().into_iter().map(|(_, id)| id).collect();
                let next = (100..).find(|i| !used.contains(i)).unwrap_or(100);
                println!("{next}");
            }
            other => die(&format!("No '{other}' handler")),
        }
    }

    fn pvesm(&self, a: &[&str]) {
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

    fn ip(&self, a: &[&str]) {
        if a.first() != Some(&"neigh") || a.len() > 2 || (a.len() == 2 && a[1] != "show") {
            die("pve-sim: only `ip neigh show` is simulated");
        }
        print!(
            "{}",
            fs::read_to_string(self.dir.join("neigh")).unwrap_or_default()
        );
    }
}

/// `--key value` pairs; as in Proxmox's CLI the word after an option is its value, whatever it
/// looks like, and only a final bare `--flag` means `1`.
fn options_ordered(a: &[&str], usage: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < a.len() {
        let Some(key) = a[i].strip_prefix("--").or_else(|| a[i].strip_prefix('-')) else {
            die(&format!("400 too many arguments\n{usage}"))
        };
        match a.get(i + 1) {
            Some(v) => {
                out.push((key.to_string(), v.to_string()));
                i += 2;
            }
            None => {
                out.push((key.to_string(), "1".to_string()));
                i += 1;
            }
        }
    }
    out
}

fn options(a: &[&str], usage: &str) -> BTreeMap<String, String> {
    options_ordered(a, usage).into_iter().collect()
}
