//! `qm`: the dispatcher, list/status/config, clone, set, resize.

use std::fs;
use std::thread::sleep;
use std::time::Duration;

use serde_json::Value;

use crate::cloudinit::*;
use crate::conf::*;
use crate::lock::DirLock;
use crate::sim::Sim;
use crate::{die, options, options_ordered, param_error};

impl Sim {
    // ---------------------------------------------------------------- qm

    pub(crate) fn qm(&self, a: &[&str]) {
        let Some((&sub, rest)) = a.split_first() else {
            die("ERROR: no command specified")
        };
        match sub {
            "list" => self.qm_list(),
            "status" => self.qm_status(rest),
            "config" => self.qm_config(rest),
            "clone" => self.qm_clone(rest),
            "set" => self.qm_set_with(rest, None),
            "unlock" => self.qm_unlock(rest),
            "resize" => self.qm_resize(rest),
            // `qm disk resize` is the current name (PVE 7.3+); `qm resize` its alias.
            "disk" if rest.first() == Some(&"resize") => self.qm_resize(&rest[1..]),
            "cloudinit" if rest.first() == Some(&"dump") => self.qm_cloudinit_dump(&rest[1..]),
            "start" | "stop" | "shutdown" | "reboot" | "template" | "destroy" => {
                if matches!(sub, "start" | "reboot") {
                    // Pending changes take effect when the VM (re)starts.
                    if let Some(Ok(id)) = rest.first().map(|s| s.parse::<u32>()) {
                        let _g = self.lock();
                        self.apply_pending(id);
                    }
                }
                self.qm_power(sub, rest)
            }
            "terminal" => self.qm_terminal(rest),
            "guest" => self.qm_guest(rest),
            "snapshot" => self.qm_snapshot(rest),
            "listsnapshot" => self.qm_listsnapshot(rest),
            "rollback" | "delsnapshot" => self.qm_snapshot_change(sub, rest),
            "migrate" => self.qm_migrate(rest),
            other => die(&format!("unknown command 'qm {other}'")),
        }
    }

    pub(crate) fn qm_list(&self) {
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

    pub(crate) fn qm_status(&self, a: &[&str]) {
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

    pub(crate) fn qm_config(&self, a: &[&str]) {
        let (id, conf) = self.load_local(a.first().copied().unwrap_or(""));
        let current =
            a[1..].windows(2).any(|w| w == ["--current", "1"]) || a.last() == Some(&"--current");
        for (k, v) in self.config_entries(id, &conf, current) {
            println!("{k}: {v}");
        }
    }

    pub(crate) fn qm_clone(&self, a: &[&str]) {
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
            self.task_begin(&node, "qmclone", newid);
            // A new VM gets a new disk: nothing of a guest that once had this VMID remains.
            self.remove_guest(newid);
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
        // From here to the lock's release is the clone proper: the timeline shows it per storage.
        self.timeline("clone", "start", newid, storage.as_deref());
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
        sleep(self.timed("clone_ms"));
        // Mid-clone: the storage lock is held and the new VM carries `lock: clone`.
        self.gate("clone");
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
        self.timeline("clone", "end", newid, storage.as_deref());
        drop(storage_lock);
        self.task_end("qmclone", newid);
    }

    /// `qm unlock ID`: drops the lock a task left, whatever it was.
    pub(crate) fn qm_unlock(&self, a: &[&str]) {
        let _g = self.lock();
        let (id, mut conf) = self.load_local(a.first().copied().unwrap_or(""));
        unset(&mut conf.main, "lock");
        self.write(&self.conf_path(&self.node(), id), &conf.render());
    }

    /// `qm set`, or the API's config update with `api_sshkeys` (URL-encoded keys, where qm
    /// takes a file).
    pub(crate) fn qm_set_with(&self, a: &[&str], api_sshkeys: Option<&str>) {
        const USAGE: &str = "qm set <vmid> [OPTIONS]";
        let _g = self.lock();
        let (id, mut conf) = self.load_local(a.first().copied().unwrap_or(""));
        let opts = options_ordered(&a[1..], USAGE);
        self.check_digest(id, &opts);
        let running = self.running(id);
        let mut pending = self.pending(id);
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
                "skiplock" | "digest" => {}
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
                    if running && crate::cluster::COLD.contains(&k.as_str()) {
                        pending.insert(k, v);
                    } else {
                        set(&mut conf.main, &k, v);
                    }
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
                    let enc = encode_sshkeys(&keys).unwrap_or_else(|e| param_error(&k, &e, USAGE));
                    set(&mut conf.main, "sshkeys", enc);
                }
                "ciupgrade" | "onboot" | "template" => {
                    let v = check_bool(&v).unwrap_or_else(|e| param_error(&k, &e, USAGE));
                    set(&mut conf.main, &k, v);
                }
                "citype" => {
                    if !["nocloud", "configdrive2", "opennebula"].contains(&v.as_str()) {
                        param_error(&k, &format!("value '{v}' does not have a value in the enumeration 'configdrive2, nocloud, opennebula'"), USAGE);
                    }
                    set(&mut conf.main, &k, v);
                }
                "tags" => {
                    let v = normalize_tags(&v).unwrap_or_else(|e| param_error(&k, &e, USAGE));
                    set(&mut conf.main, &k, v);
                }
                "agent" => {
                    let v = check_agent(&v).unwrap_or_else(|e| param_error(&k, &e, USAGE));
                    set(&mut conf.main, &k, v);
                }
                key if numbered(key, "ipconfig", 31) => {
                    let v = check_ipconfig(&v).unwrap_or_else(|e| param_error(&k, &e, USAGE));
                    set(&mut conf.main, &k, v);
                }
                key if numbered(key, "serial", 3) => {
                    let v = check_serial(&v).unwrap_or_else(|e| param_error(&k, &e, USAGE));
                    set(&mut conf.main, &k, v);
                }
                key if numbered(key, "net", 31) => {
                    let v = net_value(id, conf.get(key), &v)
                        .unwrap_or_else(|e| param_error(&k, &e, USAGE));
                    set(&mut conf.main, &k, v);
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
        if let Some(enc) = api_sshkeys {
            let enc = encode_sshkeys(&percent_decode(enc))
                .unwrap_or_else(|e| param_error("sshkeys", &e, USAGE));
            set(&mut conf.main, "sshkeys", enc);
        }
        self.save(id, &conf);
        self.set_pending(id, &pending);
    }

    pub(crate) fn qm_cloudinit_dump(&self, a: &[&str]) {
        const USAGE: &str = "qm cloudinit dump <vmid> <type>";
        if a.len() != 2 {
            die(&format!("400 wrong number of arguments\n{USAGE}"));
        }
        let (_, conf) = self.load_local(a[0]);
        match dump(&conf, a[1]) {
            Ok(text) => print!("{text}"),
            Err(e) => param_error("type", &e, USAGE),
        }
    }

    pub(crate) fn require_storage(&self, st: &str) {
        if self.storage(st).is_none() {
            die(&format!("storage '{st}' does not exist"));
        }
    }

    pub(crate) fn qm_resize(&self, a: &[&str]) {
        if a.len() < 3 {
            die("400 not enough arguments\nqm resize <vmid> <disk> <size> [OPTIONS]");
        }
        let _g = self.lock();
        let (id, mut conf) = self.load_local(a[0]);
        Self::check_lock(&conf);
        // `--digest` (the API's resize passes it on): refused when the config changed since.
        if let Some(d) = a.windows(2).find(|w| w[0] == "--digest").map(|w| w[1]) {
            if !d.eq_ignore_ascii_case(&self.digest(id)) {
                die(crate::digest::MODIFIED);
            }
        }
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
}

/// `ipconfig0`…`ipconfig31` and the like: `prefix` and a number up to `max`.
fn numbered(key: &str, prefix: &str, max: u32) -> bool {
    key.strip_prefix(prefix)
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n <= max && !key[prefix.len()..].starts_with('+'))
}
