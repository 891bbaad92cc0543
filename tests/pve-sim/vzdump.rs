//! `vzdump VMID`, `pvesm list STORAGE --content backup` and the backup volumes `qmrestore`
//! reads: a backup is the VM's configuration as it was (no snapshots, as Proxmox's), kept in
//! `dump/STORAGE/vzdump-qemu-VMID-YYYY_MM_DD-HH_MM_SS.vma.zst` with its notes beside it
//! (`….notes`, as Proxmox writes them); its volume ID is `STORAGE:backup/FILE`.

use std::fs;
use std::path::PathBuf;

use crate::conf::{format_time, now_epoch};
use crate::sim::Sim;
use crate::{die, options, param_error};

impl Sim {
    fn dump_dir(&self, storage: &str) -> PathBuf {
        self.dir.join("dump").join(storage)
    }

    /// The file behind a backup volume ID (`STORAGE:backup/FILE`), when it is one.
    pub(crate) fn backup_path(&self, volid: &str) -> Option<PathBuf> {
        let (storage, rest) = volid.split_once(':')?;
        let file = rest.strip_prefix("backup/")?;
        if file.contains('/') || storage.contains('/') {
            return None;
        }
        Some(self.dump_dir(storage).join(file))
    }

    pub(crate) fn vzdump(&self, a: &[&str]) {
        const USAGE: &str = "vzdump {<vmid>} [OPTIONS]";
        if a.is_empty() {
            die(&format!("400 not enough arguments\n{USAGE}"));
        }
        let opts = options(&a[1..], USAGE);
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
        let (id, _) = self.load_local(a[0]);
        let node = self.find(id).unwrap_or_else(|| die("pve-sim: vm vanished"));
        let conf = fs::read_to_string(self.conf_path(&node, id))
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
        // `--prune-backups keep-last=N`: the VM's oldest backups on the storage beyond N go.
        if let Some(keep) = opts
            .get("prune-backups")
            .and_then(|p| p.strip_prefix("keep-last="))
            .and_then(|n| n.parse::<usize>().ok())
        {
            let prefix = format!("vzdump-qemu-{id}-");
            let mut mine: Vec<String> = fs::read_dir(&dir)
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| n.starts_with(&prefix) && n.ends_with(".vma.zst"))
                        .collect()
                })
                .unwrap_or_default();
            mine.sort();
            for old in &mine[..mine.len().saturating_sub(keep)] {
                let _ = fs::remove_file(dir.join(old));
                let _ = fs::remove_file(dir.join(format!("{old}.notes")));
                println!("INFO: prune older backups: removed '{old}'");
            }
        }
        println!("INFO: starting new backup job: vzdump {}", a.join(" "));
        println!("INFO: Starting Backup of VM {id} (qemu)");
        println!("INFO: Backup mode: {mode}");
        println!("INFO: creating vzdump archive '{}'", path.display());
        println!("INFO: Finished Backup of VM {id}");
        println!("INFO: Backup job finished successfully");
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
        let mut files: Vec<String> = fs::read_dir(self.dump_dir(storage))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("vzdump-qemu-") && n.ends_with(".vma.zst"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        for f in files {
            let id = f
                .trim_start_matches("vzdump-qemu-")
                .split('-')
                .next()
                .unwrap_or("");
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
}
