//! `pve-sim seed DEFINITIONS.json`: the sandbox's cluster from a fleet's definitions (as
//! `nix-instantiate --eval --strict --json vms/definitions.nix` prints them): its storages,
//! its template (stopped) and its imported VMs (running when their `status` says so). Managed
//! VMs are left out: creating them is what the sandbox is for.

use std::fs;

use serde_json::{json, Value};

use crate::conf::*;
use crate::die;
use crate::sim::Sim;

fn num(vm: &Value, key: &str) -> Option<u64> {
    vm.get(key)
        .or_else(|| vm.get("specs").and_then(|s| s.get(key)))
        .and_then(Value::as_u64)
}

fn text<'a>(vm: &'a Value, key: &str) -> Option<&'a str> {
    vm.get(key)
        .or_else(|| vm.get("specs").and_then(|s| s.get(key)))
        .and_then(Value::as_str)
}

impl Sim {
    pub(crate) fn seed(&self, a: &[&str]) {
        let [path] = a else {
            die("usage: pve-sim seed DEFINITIONS.json")
        };
        let defs: Value = fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| die(&format!("pve-sim seed: cannot read JSON from {path}")));
        let proxmox = defs.get("proxmox").cloned().unwrap_or(json!({}));
        let storage = text(&proxmox, "defaultStorage")
            .or(text(&proxmox, "storage"))
            .unwrap_or("local-lvm")
            .to_string();
        let bridge = text(&proxmox, "bridge").unwrap_or("vmbr0").to_string();
        let _g = self.lock();
        let mut storages = vec![
            json!({"name": "local", "type": "dir", "total": 98497780u64, "used": 12345678u64}),
        ];
        let mut names = vec!["local".to_string()];
        let managed = defs.get("managed").and_then(Value::as_object);
        let wanted = std::iter::once(storage.clone()).chain(
            managed
                .into_iter()
                .flat_map(|m| m.values())
                .filter_map(|vm| text(vm, "storage").map(str::to_string)),
        );
        for s in wanted {
            if !names.contains(&s) {
                storages.push(json!({"name": s, "type": "lvmthin", "total": 976762584u64, "used": 123456789u64}));
                names.push(s);
            }
        }
        self.write(
            &self.dir.join("storage.json"),
            &serde_json::to_string_pretty(&storages).unwrap(),
        );
        let node = self.node();
        if let Some(t) = defs.get("template") {
            let vmid = num(t, "vmid")
                .unwrap_or_else(|| die("pve-sim seed: the template has no vmid"))
                as u32;
            let conf = Conf {
                description: text(t, "description").map(str::to_string),
                main: vec![
                    ("agent".into(), "1".into()),
                    ("boot".into(), "order=scsi0".into()),
                    ("cores".into(), "2".into()),
                    ("memory".into(), "2048".into()),
                    ("name".into(), text(t, "name").unwrap_or("template").into()),
                    (
                        "net0".into(),
                        format!("virtio={},bridge={bridge}", mac_for(vmid)),
                    ),
                    (
                        "scsi0".into(),
                        format!("{storage}:base-{vmid}-disk-0,size=8G"),
                    ),
                    ("scsihw".into(), "virtio-scsi-single".into()),
                    ("serial0".into(), "socket".into()),
                    ("template".into(), "1".into()),
                ],
                snaps: vec![],
            };
            self.write(&self.conf_path(&node, vmid), &conf.render());
        }
        for (name, vm) in defs
            .get("imported")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let Some(vmid) = num(vm, "vmid") else {
                continue;
            };
            let vmid = vmid as u32;
            let disk = text(vm, "disk").unwrap_or("32G");
            let conf = Conf {
                description: text(vm, "purpose").map(str::to_string),
                main: vec![
                    ("agent".into(), "1".into()),
                    ("boot".into(), "order=scsi0".into()),
                    ("cores".into(), num(vm, "cores").unwrap_or(2).to_string()),
                    (
                        "memory".into(),
                        num(vm, "memory").unwrap_or(2048).to_string(),
                    ),
                    ("name".into(), text(vm, "hostname").unwrap_or(name).into()),
                    (
                        "net0".into(),
                        format!("virtio={},bridge={bridge}", mac_for(vmid)),
                    ),
                    (
                        "scsi0".into(),
                        format!("{storage}:vm-{vmid}-disk-0,size={disk}"),
                    ),
                ],
                snaps: vec![],
            };
            self.write(&self.conf_path(&node, vmid), &conf.render());
            if text(vm, "status").unwrap_or("running") == "running" {
                self.set_running(vmid, true);
            }
        }
    }
}
