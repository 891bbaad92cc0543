//! Backups, a stand-in for Proxmox's vzdump and restore (test double, not Proxmox): `vzdump
//! VMID` and the API's `pvesh create /nodes/N/vzdump`, the storage content list (`pvesm list S
//! --content backup` and `pvesh get /nodes/N/storage/S/content --content backup`), and the
//! API's restore `pvesh create /nodes/N/qemu --archive VOLUME --vmid ID` (`qmrestore` is in
//! tools.rs). A backup is the VM's configuration as it was (no snapshots, as Proxmox's), kept
//! in `vzdump-qemu-VMID-YYYY_MM_DD-HH_MM_SS.vma.zst` with its notes beside it (`….notes`, as
//! Proxmox writes them); its volume ID is `STORAGE:backup/FILE`. A storage that is not
//! `shared` is each node's own (`nodes/NODE/dump/STORAGE/`), so a backup on node-local
//! storage is reachable only through its node, as on Proxmox; a shared one is `dump/STORAGE/`.
//! The API forms run as tasks (tasks.rs): they print a UPID and the outcome is the task's.

use std::fs;
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::conf::*;
use crate::sim::Sim;
use crate::{die, options, param_error};

impl Sim {
    fn dump_dir(&self, storage: &str) -> PathBuf {
        let shared = self
            .storage(storage)
            .and_then(|s| s.get("shared").and_then(Value::as_bool))
            .unwrap_or(false);
        if shared {
            self.dir.join("dump").join(storage)
        } else {
            self.dir
                .join("nodes")
                .join(self.node())
                .join("dump")
                .join(storage)
        }
    }

    /// The file behind a backup volume ID (`STORAGE:backup/FILE`) on this node, when it is one.
    pub(crate) fn backup_path(&self, volid: &str) -> Option<PathBuf> {
        let (storage, rest) = volid.split_once(':')?;
        let file = rest.strip_prefix("backup/")?;
        if file.contains('/') || storage.contains('/') {
            return None;
        }
        Some(self.dump_dir(storage).join(file))
    }

    /// `vzdump VMID [--storage S] [--mode M] [--notes-template N] [--prune-backups keep-last=K]`
    /// on this node; returns the log lines. Parameter errors end the process (Proxmox checks
    /// them before any work).
    fn dump(&self, vmid: &str, opts: &std::collections::BTreeMap<String, String>) -> Vec<String> {
        const USAGE: &str = "vzdump {<vmid>} [OPTIONS]";
        let storage = opts.get("storage").map(String::as_str).unwrap_or("local");
        let mode = opts.get("mode").map(String::as_str).unwrap_or("snapshot");
        if !["snapshot", "suspend", "stop"].contains(&mode) {
            param_error(
                "mode",
                &format!("value '{mode}' does not have a value in the enumeration 'snapshot, suspend, stop'"),
                USAGE,
            );
        }
        self.require_storage(storage);
        let _g = self.lock();
        let (id, conf) = self.load_local(vmid);
        Self::check_lock(&conf);
        let conf = fs::read_to_string(self.conf_path(&self.node(), id))
            .unwrap_or_else(|e| die(&format!("pve-sim: {e}")));
        // A backup holds the current configuration only: snapshot sections are not in it.
        let main: String = conf
            .lines()
            .take_while(|l| !l.starts_with('['))
            .map(|l| format!("{l}\n"))
            .collect();
        let stamp = format_time(now_epoch())
            .replace('-', "_")
            .replace(' ', "-")
            .replace(':', "_");
        let file = format!("vzdump-qemu-{id}-{stamp}.vma.zst");
        let dir = self.dump_dir(storage);
        fs::create_dir_all(&dir).unwrap_or_else(|e| die(&format!("pve-sim: {e}")));
        let path = dir.join(&file);
        self.write(&path, &main);
        if let Some(notes) = opts.get("notes-template") {
            self.write(&path.with_extension("zst.notes"), notes);
        }
        let mut log = vec![
            format!("INFO: Starting Backup of VM {id} (qemu)"),
            format!("INFO: Backup mode: {mode}"),
            format!("INFO: creating vzdump archive '{}'", path.display()),
            format!("INFO: Finished Backup of VM {id}"),
        ];
        // `--prune-backups keep-last=N`: the VM's oldest backups on the storage beyond N go.
        if let Some(keep) = opts
            .get("prune-backups")
            .and_then(|p| p.strip_prefix("keep-last="))
            .and_then(|n| n.parse::<usize>().ok())
        {
            let mine: Vec<String> = self
                .backup_files(storage)
                .into_iter()
                .filter(|n| n.starts_with(&format!("vzdump-qemu-{id}-")))
                .collect();
            for old in &mine[..mine.len().saturating_sub(keep)] {
                let _ = fs::remove_file(dir.join(old));
                let _ = fs::remove_file(dir.join(format!("{old}.notes")));
                log.push(format!("INFO: prune older backups: removed '{old}'"));
            }
        }
        log.push("INFO: Backup job finished successfully".into());
        log
    }

    pub(crate) fn vzdump(&self, a: &[&str]) {
        if a.is_empty() {
            die("400 not enough arguments\nvzdump {<vmid>} [OPTIONS]");
        }
        let opts = options(&a[1..], "vzdump {<vmid>} [OPTIONS]");
        println!("INFO: starting new backup job: vzdump {}", a.join(" "));
        for line in self.dump(a[0], &opts) {
            println!("{line}");
        }
    }

    /// `pvesh create /nodes/NODE/vzdump --vmid ID …`: the same, as a task of that node.
    pub(crate) fn api_vzdump(&self, opts: &std::collections::BTreeMap<String, String>) {
        let Some(vmid) = opts.get("vmid") else {
            param_error("vmid", "property is missing and it is not optional", "")
        };
        let id: u32 = vmid.parse().unwrap_or(0);
        let log = self.dump(vmid, opts);
        self.task_done("vzdump", id, "OK", &log);
    }

    /// This node's backup files on `storage`, oldest first.
    fn backup_files(&self, storage: &str) -> Vec<String> {
        let mut files: Vec<String> = fs::read_dir(self.dump_dir(storage))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("vzdump-qemu-") && n.ends_with(".vma.zst"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    fn backup_vmid(file: &str) -> &str {
        file.trim_start_matches("vzdump-qemu-")
            .split('-')
            .next()
            .unwrap_or("")
    }

    /// `pvesm list STORAGE --content backup [--vmid N]`.
    pub(crate) fn pvesm_list(&self, a: &[&str]) {
        const USAGE: &str = "pvesm list <storage> [OPTIONS]";
        let Some(storage) = a.first() else {
            die(&format!("400 not enough arguments\n{USAGE}"));
        };
        self.require_storage(storage);
        let opts = options(&a[1..], USAGE);
        if opts.get("content").map(String::as_str) != Some("backup") {
            die("pve-sim: only `pvesm list STORAGE --content backup` is simulated");
        }
        let vmid = opts.get("vmid").cloned();
        println!(
            "{:<60} {:>8} {:>8} {:>12} {:>6}",
            "Volid", "Format", "Type", "Size", "VMID"
        );
        for f in self.backup_files(storage) {
            let id = Self::backup_vmid(&f);
            if vmid.as_deref().is_some_and(|v| v != id) {
                continue;
            }
            let size = fs::metadata(self.dump_dir(storage).join(&f))
                .map(|m| m.len())
                .unwrap_or(0);
            println!(
                "{:<60} {:>8} {:>8} {:>12} {:>6}",
                format!("{storage}:backup/{f}"),
                "vma.zst",
                "backup",
                size,
                id
            );
        }
    }

    /// `pvesh get /nodes/NODE/storage/S/content --content backup [--vmid N]`: JSON, as the API.
    pub(crate) fn api_content(
        &self,
        storage: &str,
        opts: &std::collections::BTreeMap<String, String>,
    ) {
        self.require_storage(storage);
        if opts.get("content").map(String::as_str) != Some("backup") {
            die("pve-sim: only `--content backup` is simulated");
        }
        let vmid = opts.get("vmid").cloned();
        let mut out = Vec::new();
        for f in self.backup_files(storage) {
            let id = Self::backup_vmid(&f);
            if vmid.as_deref().is_some_and(|v| v != id) {
                continue;
            }
            let path = self.dump_dir(storage).join(&f);
            let mut e = json!({
                "volid": format!("{storage}:backup/{f}"), "content": "backup",
                "format": "vma.zst", "subtype": "qemu",
                "size": fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
                "vmid": id.parse::<u64>().unwrap_or(0),
            });
            if let Ok(n) = fs::read_to_string(path.with_extension("zst.notes")) {
                e["notes"] = json!(n);
            }
            out.push(e);
        }
        println!("{}", serde_json::to_string(&out).unwrap());
    }

    /// `pvesh create /nodes/NODE/qemu --vmid ID --archive VOLUME [--storage S] [--force 1]
    /// [--unique 1] [--name N …]`: a restore on this node. As Proxmox: a VMID in use anywhere
    /// needs `force` and must be this node's VM, unprotected and stopped; non-disk options
    /// override the backup's; disks get this VMID's volume names; `unique` gives new MACs.
    pub(crate) fn api_restore(&self, opts: &[(String, String)]) {
        const USAGE: &str = "pvesh create /nodes/{node}/qemu";
        let get = |k: &str| opts.iter().find(|(o, _)| o == k).map(|(_, v)| v.clone());
        let flag = |k: &str| get(k).as_deref() == Some("1");
        let Some(vmid) = get("vmid") else {
            param_error("vmid", "property is missing and it is not optional", USAGE)
        };
        let Some(archive) = get("archive") else {
            die("pve-sim: only restores (`--archive`) are simulated for POST /nodes/NODE/qemu")
        };
        let id: u32 = vmid.parse().unwrap_or_else(|_| {
            param_error(
                "vmid",
                &format!("type check ('integer') failed - got '{vmid}'"),
                USAGE,
            )
        });
        let emsg = format!("unable to restore VM {id} -");
        let _g = self.lock();
        if let Some(node) = self.find(id) {
            if !flag("force") || node != self.node() {
                die(&format!("{emsg} VM {id} already exists on node '{node}'"));
            }
            let old =
                Conf::parse(&fs::read_to_string(self.conf_path(&node, id)).unwrap_or_default());
            Self::check_lock(&old);
            if old.get("protection") == Some("1") {
                die(&format!(
                    "{emsg} can't remove VM {id} - protection mode enabled"
                ));
            }
            if self.running(id) {
                die(&format!("{emsg} vm is running"));
            }
        }
        let Some(text) = self
            .backup_path(&archive)
            .and_then(|p| fs::read_to_string(p).ok())
        else {
            die(&format!("{emsg} volume '{archive}' does not exist"))
        };
        let mut conf = Conf::parse(&text);
        conf.snaps.clear();
        let storage = get("storage");
        if let Some(st) = &storage {
            self.require_storage(st);
        }
        for (k, v) in conf.disks() {
            let (st, rest) = v.split_once(':').unwrap_or(("", &v));
            let opts_part = rest.split_once(',').map(|(_, o)| o).unwrap_or("");
            let n = rest
                .split(',')
                .next()
                .unwrap_or("")
                .rsplit('-')
                .next()
                .unwrap_or("0");
            let st = storage.clone().unwrap_or_else(|| st.to_string());
            let vol = format!("{st}:vm-{id}-disk-{n}");
            set(
                &mut conf.main,
                &k,
                if opts_part.is_empty() {
                    vol
                } else {
                    format!("{vol},{opts_part}")
                },
            );
        }
        if flag("unique") {
            if let Some(net) = conf.get("net0").map(str::to_string) {
                if let Some(old) = mac_of_net(&net) {
                    set(&mut conf.main, "net0", net.replace(&old, &mac_for(id)));
                }
            }
        }
        for (k, v) in opts {
            if [
                "vmid",
                "archive",
                "storage",
                "force",
                "unique",
                "output-format",
            ]
            .contains(&k.as_str())
            {
                continue;
            }
            if is_disk_key(k) {
                param_error(k, "option conflicts with option 'archive'", USAGE);
            }
            if k == "description" {
                conf.description = Some(v.clone());
            } else {
                set(&mut conf.main, k, v.clone());
            }
        }
        self.save(id, &conf);
        self.set_pending(id, &Default::default());
        drop(_g);
        self.task_done(
            "qmrestore",
            id,
            "OK",
            &[format!("restore vma archive: {archive}"), "TASK OK".into()],
        );
    }
}
