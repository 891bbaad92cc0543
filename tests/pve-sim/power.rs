//! `qm` for running VMs: start/stop/shutdown/…, the serial terminal and the guest agent
//! (`qm migrate` is in migrate.rs).

use std::fs;
use std::io::{Read, Write};

use serde_json::json;

use crate::conf::*;
use crate::die;
use crate::sim::Sim;

impl Sim {
    pub(crate) fn qm_power(&self, sub: &str, a: &[&str]) {
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
                self.start_guest(id, &conf);
            }
            "stop" => {
                self.stop_guest(id);
                self.set_running(id, false);
            }
            "shutdown" => {
                if !running {
                    die(&format!("VM {id} not running"));
                }
                self.stop_guest(id);
                self.set_running(id, false);
            }
            "reboot" => {
                // A guest reboot: the disk stays, the system (and its sshd) starts again.
                if !running {
                    die(&format!("VM {id} not running"));
                }
                self.stop_guest(id);
                self.start_guest(id, &conf);
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
                self.remove_guest(id);
                println!("purging VM {id} from related configurations..");
            }
            _ => unreachable!(),
        }
    }

    pub(crate) fn qm_terminal(&self, a: &[&str]) {
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

    pub(crate) fn qm_guest(&self, a: &[&str]) {
        if a.len() < 3 || a[0] != "cmd" {
            die("400 not enough arguments\nqm guest cmd <vmid> <command>");
        }
        let (id, conf) = self.load_local(a[1]);
        let agent_on = conf.get("agent").is_some_and(|v| {
            // `[enabled=]BOOL[,…]`: the bare value or `enabled=` anywhere in the list.
            v.split(',')
                .find_map(|p| {
                    p.strip_prefix("enabled=")
                        .or((!p.contains('=')).then_some(p))
                })
                .is_some_and(|b| ["1", "yes", "on", "true"].contains(&&*b.to_ascii_lowercase()))
        });
        if !agent_on {
            die("No QEMU guest agent configured");
        }
        // A sandbox guest reports the loopback address its sshd listens on.
        let addrs: Option<Vec<String>> = self.guest_addresses(id).or_else(|| {
            fs::read_to_string(self.dir.join("agent").join(format!("{id}.json")))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
        });
        let (true, Some(addrs)) = (self.running(id), addrs) else {
            die("QEMU guest agent is not running")
        };
        // With timing on, the agent answers only `boot_ms + agent_ms` after the start.
        if !self.agent_ready(id) {
            die("QEMU guest agent is not running")
        }
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
}
