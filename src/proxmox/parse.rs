//! Parsers for what Proxmox prints, and the pure choices made from it (which address is the VM's).
//!
//! Each parser takes the command's stdout and returns typed values or a `ParseError` that quotes
//! the line it could not read, so a format change on the Proxmox side is a clear error.

use std::net::IpAddr;

use serde_json::Value;

use super::{
    GuestAddress, GuestInterface, Neighbour, Snapshot, StorageStatus, Task, VmConfig, VmId,
    VmResource, VmStatus,
};

/// Output that does not have the shape Proxmox documents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the output of `{command}`: {detail}")]
pub struct ParseError {
    pub command: &'static str,
    pub detail: String,
}

fn err(command: &'static str, detail: impl Into<String>) -> ParseError {
    ParseError {
        command,
        detail: detail.into(),
    }
}

/// `pvesh get /cluster/resources --type vm --output-format json`.
pub fn cluster_resources(json: &str) -> Result<Vec<VmResource>, ParseError> {
    const CMD: &str = "pvesh get /cluster/resources";
    let value: Value = serde_json::from_str(json).map_err(|e| err(CMD, e.to_string()))?;
    let items = value
        .as_array()
        .ok_or_else(|| err(CMD, "expected a JSON array"))?;
    let mut out = Vec::new();
    for item in items {
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "qemu" && kind != "lxc" {
            continue;
        }
        let vmid = item
            .get("vmid")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| err(CMD, format!("entry without a vmid: {item}")))?;
        let s = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_string);
        out.push(VmResource {
            vmid,
            name: s("name"),
            node: s("node").unwrap_or_default(),
            status: s("status").unwrap_or_else(|| "unknown".into()),
            template: item.get("template").and_then(Value::as_u64) == Some(1),
            kind: kind.to_string(),
            maxmem: item.get("maxmem").and_then(Value::as_u64),
            maxcpu: item.get("maxcpu").and_then(Value::as_f64),
            maxdisk: item.get("maxdisk").and_then(Value::as_u64),
            lock: s("lock"),
            pool: s("pool"),
        });
    }
    out.sort_by_key(|r| r.vmid);
    Ok(out)
}

/// `pvesh get /nodes/NODE/tasks --output-format json`: every entry, running or ended.
pub fn tasks(json: &str) -> Result<Vec<Task>, ParseError> {
    const CMD: &str = "pvesh get /nodes/NODE/tasks";
    let value: Value = serde_json::from_str(json).map_err(|e| err(CMD, e.to_string()))?;
    let items = value
        .as_array()
        .ok_or_else(|| err(CMD, "expected a JSON array"))?;
    items
        .iter()
        .map(|item| {
            let upid = item
                .get("upid")
                .and_then(Value::as_str)
                .ok_or_else(|| err(CMD, format!("entry without a upid: {item}")))?;
            Ok(Task {
                upid: upid.to_string(),
                kind: item
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                running: item.get("endtime").is_none(),
            })
        })
        .collect()
}

/// One row of `qm list` (this node only).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QmListRow {
    pub vmid: VmId,
    pub name: String,
    pub status: String,
    pub mem_mb: u64,
    pub bootdisk_gb: f64,
    pub pid: u32,
}

/// `qm list`: a header, then rows printed with `%10s %-20s %-10s %-10s %12.2f %-10s`. The name
/// column is fixed-width, so columns are cut by the header's offsets rather than split on
/// whitespace (what the seed's awk did, which breaks on names longer than 20 characters).
pub fn qm_list(text: &str) -> Result<Vec<QmListRow>, ParseError> {
    const CMD: &str = "qm list";
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or_else(|| err(CMD, "empty output"))?;
    if !header.trim_start().starts_with("VMID") || !header.contains("BOOTDISK(GB)") {
        return Err(err(CMD, format!("unexpected header {header:?}")));
    }
    let mut out = Vec::new();
    for line in lines {
        // VMID is right-aligned in 10 columns, then a space; the name follows, and the last
        // four fields (status, memory, boot disk, pid) never contain spaces.
        let (vmid, rest) = line
            .get(..10)
            .zip(line.get(11..))
            .ok_or_else(|| err(CMD, format!("short row {line:?}")))?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() < 4 {
            return Err(err(CMD, format!("unexpected row {line:?}")));
        }
        let n = fields.len();
        let bad = |what: &str| err(CMD, format!("bad {what} in {line:?}"));
        let name_end = rest.rfind(fields[n - 4]).ok_or_else(|| bad("status"))?;
        out.push(QmListRow {
            vmid: vmid.trim().parse().map_err(|_| bad("vmid"))?,
            name: rest[..name_end].trim().to_string(),
            status: fields[n - 4].to_string(),
            mem_mb: fields[n - 3].parse().map_err(|_| bad("memory"))?,
            bootdisk_gb: fields[n - 2].parse().map_err(|_| bad("boot disk"))?,
            pid: fields[n - 1].parse().map_err(|_| bad("pid"))?,
        });
    }
    Ok(out)
}

/// `qm status ID` prints `status: running`.
pub fn status(vmid: VmId, text: &str) -> Result<VmStatus, ParseError> {
    text.lines()
        .find_map(|l| l.strip_prefix("status:"))
        .map(|s| VmStatus {
            vmid,
            status: s.trim().to_string(),
        })
        .ok_or_else(|| err("qm status", format!("no `status:` line in {text:?}")))
}

/// `qm config ID`: `key: value` lines of the current configuration. A multi-line value (the
/// description) continues on lines that do not start with a config key.
pub fn config(text: &str) -> Result<VmConfig, ParseError> {
    let mut entries: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let kv = line
            .split_once(": ")
            .or_else(|| line.strip_suffix(':').map(|k| (k, "")))
            .filter(|(k, _)| is_config_key(k));
        match (kv, entries.last_mut()) {
            (Some((k, v)), _) => entries.push((k.to_string(), v.to_string())),
            (None, Some((_, v))) => {
                v.push('\n');
                v.push_str(line);
            }
            (None, None) if line.trim().is_empty() => {}
            (None, None) => {
                return Err(err("qm config", format!("unexpected line {line:?}")));
            }
        }
    }
    Ok(VmConfig { entries })
}

/// Proxmox config keys: `cores`, `net0`, `scsihw`, `vmgenid`, `hookscript`, …
fn is_config_key(k: &str) -> bool {
    k.starts_with(|c: char| c.is_ascii_lowercase())
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// `pvesm status`: a header line, then `Name Type Status Total Used Available %` rows.
pub fn storage_status(text: &str) -> Result<Vec<StorageStatus>, ParseError> {
    const CMD: &str = "pvesm status";
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or_else(|| err(CMD, "empty output"))?;
    if !header.trim_start().starts_with("Name") {
        return Err(err(CMD, format!("unexpected header {header:?}")));
    }
    let mut out = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 7 {
            return Err(err(CMD, format!("unexpected row {line:?}")));
        }
        let num = |s: &str| {
            s.parse::<u64>()
                .map_err(|_| err(CMD, format!("not a number {s:?} in {line:?}")))
        };
        out.push(StorageStatus {
            name: f[0].into(),
            kind: f[1].into(),
            status: f[2].into(),
            total: num(f[3])?,
            used: num(f[4])?,
            available: num(f[5])?,
            percent: f[6]
                .trim_end_matches('%')
                .parse()
                .map_err(|_| err(CMD, format!("not a percentage in {line:?}")))?,
        });
    }
    Ok(out)
}

/// `qm guest cmd ID network-get-interfaces`: the agent's JSON array.
pub fn guest_interfaces(json: &str) -> Result<Vec<GuestInterface>, ParseError> {
    const CMD: &str = "qm guest cmd network-get-interfaces";
    let value: Value = serde_json::from_str(json).map_err(|e| err(CMD, e.to_string()))?;
    // Proxmox's API wraps it as {"result": [...]}, the qm CLI prints the bare array.
    let items = value
        .get("result")
        .unwrap_or(&value)
        .as_array()
        .ok_or_else(|| err(CMD, "expected a JSON array"))?;
    Ok(items
        .iter()
        .map(|i| GuestInterface {
            name: i
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            hardware_address: i
                .get("hardware-address")
                .and_then(Value::as_str)
                .map(str::to_string),
            addresses: i
                .get("ip-addresses")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|ip| {
                            let address = ip.get("ip-address")?.as_str()?.parse().ok()?;
                            let prefix = ip
                                .get("prefix")
                                .and_then(Value::as_u64)
                                .and_then(|p| u8::try_from(p).ok());
                            Some(GuestAddress { address, prefix })
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect())
}

/// `qm listsnapshot ID`: a tree of `` `-> NAME  DATE TIME  DESCRIPTION `` lines, the last being
/// `current` ("You are here!").
pub fn snapshots(text: &str) -> Result<Vec<Snapshot>, ParseError> {
    const CMD: &str = "qm listsnapshot";
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let marker = line
            .find("`->")
            .ok_or_else(|| err(CMD, format!("unexpected line {line:?}")))?;
        let depth = line[..marker].chars().count() / 2;
        let rest = line[marker + 3..].trim_start();
        let (name, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let rest = rest.trim_start();
        let (time, description) = split_time(rest);
        let current = name == "current";
        out.push(Snapshot {
            name: name.to_string(),
            depth,
            time,
            description: description.trim_end().to_string(),
            current,
        });
    }
    Ok(out)
}

/// Splits a leading `YYYY-MM-DD HH:MM:SS` off `s`.
fn split_time(s: &str) -> (Option<String>, &str) {
    let b = s.as_bytes();
    let is_time = b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b' '
        && b[13] == b':'
        && b[16] == b':'
        && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
            .iter()
            .all(|&i| b[i].is_ascii_digit());
    if is_time {
        (Some(s[..19].to_string()), s[19..].trim_start())
    } else {
        (None, s)
    }
}

/// `ip neigh show`: `ADDR dev DEV lladdr MAC STATE` (or `ADDR dev DEV FAILED`).
pub fn neighbours(text: &str) -> Vec<Neighbour> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let address: IpAddr = f.first()?.parse().ok()?;
            let after = |key: &str| {
                f.iter()
                    .position(|w| *w == key)
                    .and_then(|i| f.get(i + 1))
                    .map(|s| s.to_string())
            };
            Some(Neighbour {
                address,
                device: after("dev"),
                mac: after("lladdr").map(|m| m.to_ascii_lowercase()),
                state: f.last().map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

/// The MAC of a `netN` value: `virtio=BC:24:11:00:00:01,bridge=vmbr0` (any model) or `macaddr=`.
pub fn mac_of_net(net: &str) -> Option<String> {
    net.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(_, v)| v)
        .find(|v| is_mac(v))
        .map(|v| v.to_ascii_lowercase())
}

fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// How much an address is worth as "the VM's address": lower is better, `None` is unusable.
/// IPv4 first, then global IPv6, then unique-local IPv6; loopback, link-local, unspecified and
/// multicast are never a VM's reachable address.
fn address_rank(ip: &IpAddr) -> Option<u8> {
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() || v4.is_multicast() {
                None
            } else {
                Some(0)
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            let link_local = first & 0xffc0 == 0xfe80;
            if v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() || link_local {
                None
            } else if first & 0xe000 == 0x2000 {
                Some(1)
            } else if first & 0xfe00 == 0xfc00 {
                Some(2)
            } else {
                None
            }
        }
    }
}

/// The guest agent's best address on the interface whose MAC is `mac`.
pub fn select_guest_ip(interfaces: &[GuestInterface], mac: &str) -> Option<IpAddr> {
    interfaces
        .iter()
        .filter(|i| {
            i.hardware_address
                .as_deref()
                .is_some_and(|h| h.eq_ignore_ascii_case(mac))
        })
        .flat_map(|i| i.addresses.iter().map(|a| a.address))
        .filter_map(|ip| address_rank(&ip).map(|r| (r, ip)))
        .min_by_key(|(r, _)| *r)
        .map(|(_, ip)| ip)
}

/// The neighbour table's best address for `mac`, skipping entries the kernel gave up on.
pub fn select_neighbour_ip(entries: &[Neighbour], mac: &str) -> Option<IpAddr> {
    entries
        .iter()
        .filter(|n| {
            n.mac
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(mac))
        })
        .filter(|n| n.state != "FAILED" && n.state != "INCOMPLETE")
        .filter_map(|n| address_rank(&n.address).map(|r| (r, n.address)))
        .min_by_key(|(r, _)| *r)
        .map(|(_, ip)| ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cluster_resources() {
        let json = r#"[{"id":"qemu/104","type":"qemu","vmid":104,"name":"doc1","node":"prom","status":"running","template":0,"maxmem":17179869184,"maxcpu":8,"maxdisk":214748364800},
        {"id":"node/prom","type":"node","node":"prom","status":"online"},
        {"id":"qemu/9001","type":"qemu","vmid":9001,"name":"NixosServerBlank","node":"prom","status":"stopped","template":1,"lock":"clone"}]"#;
        let r = cluster_resources(json).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].name.as_deref(), Some("doc1"));
        assert_eq!(r[0].maxcpu, Some(8.0));
        assert!(r[1].template);
        assert_eq!(r[1].lock.as_deref(), Some("clone"));
        assert!(cluster_resources("not json").is_err());
    }

    #[test]
    fn reads_status_and_config() {
        assert_eq!(status(110, "status: running\n").unwrap().status, "running");
        assert!(status(110, "").is_err());
        let c = config(
            "boot: order=scsi0\ncores: 2\nmemory: 4096\nname: test-automation\n\
             net0: virtio=BC:24:11:AA:BB:0C,bridge=vmbr0\nprotection: 1\n",
        )
        .unwrap();
        assert_eq!(c.get("cores"), Some("2"));
        assert_eq!(c.net0_mac().as_deref(), Some("bc:24:11:aa:bb:0c"));
        assert!(c.protected());
        let c =
            config("cores: 1\ndescription: first\nsecond: line\nName: x\nmemory: 512\n").unwrap();
        assert_eq!(c.get("description"), Some("first"));
        assert_eq!(c.get("second"), Some("line\nName: x"));
        assert_eq!(c.get("memory"), Some("512"));
        assert!(config("?? what\n").is_err());
    }

    #[test]
    fn reads_qm_list() {
        let text = [
            "      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID       ",
            "       104 doc1                 running    16384            200.00 12345     ",
            "       110 a-very-long-vm-name-indeed stopped    4096              20.00 0         ",
        ]
        .join("\n");
        let text = text.as_str();
        let rows = qm_list(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].name, "doc1");
        assert_eq!(rows[0].pid, 12345);
        assert_eq!(rows[1].name, "a-very-long-vm-name-indeed");
        assert_eq!(rows[1].status, "stopped");
        assert!((rows[1].bootdisk_gb - 20.0).abs() < 1e-9);
        assert!(qm_list("nonsense").is_err());
    }

    #[test]
    fn reads_pvesm_status() {
        let text = "Name             Type     Status           Total            Used       Available        %\n\
                    local             dir     active        98497780        12345678        81090228   12.53%\n\
                    nvmeprom      lvmthin     active       976762584       123456789       853305795   12.64%\n";
        let s = storage_status(text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].name, "nvmeprom");
        assert_eq!(s[1].kind, "lvmthin");
        assert_eq!(s[1].available, 853305795);
        assert!((s[0].percent - 12.53).abs() < 1e-9);
    }

    #[test]
    fn reads_snapshots() {
        let text = "`-> first                       2026-11-20 10:00:00     no-description\n  \
                    `-> second                    2026-11-21 11:30:00     before upgrade\n    \
                    `-> current                                           You are here!\n";
        let s = snapshots(text).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].name, "second");
        assert_eq!(s[1].depth, 1);
        assert_eq!(s[1].time.as_deref(), Some("2026-11-21 11:30:00"));
        assert_eq!(s[1].description, "before upgrade");
        assert!(s[2].current);
        assert_eq!(s[2].time, None);
    }

    #[test]
    fn selects_global_address_on_net0() {
        let json = r#"[{"name":"lo","hardware-address":"00:00:00:00:00:00","ip-addresses":[{"ip-address":"127.0.0.1","ip-address-type":"ipv4","prefix":8}]},
          {"name":"eth0","hardware-address":"bc:24:11:aa:bb:0c","ip-addresses":[
            {"ip-address":"fe80::be24:11ff:feaa:bb0c","ip-address-type":"ipv6","prefix":64},
            {"ip-address":"2001:db8::10","ip-address-type":"ipv6","prefix":64},
            {"ip-address":"192.168.1.50","ip-address-type":"ipv4","prefix":24}]},
          {"name":"docker0","hardware-address":"02:42:00:00:00:01","ip-addresses":[{"ip-address":"172.17.0.1","ip-address-type":"ipv4","prefix":16}]}]"#;
        let ifs = guest_interfaces(json).unwrap();
        assert_eq!(
            select_guest_ip(&ifs, "BC:24:11:AA:BB:0C"),
            Some("192.168.1.50".parse().unwrap())
        );
        let v6only: Vec<_> = ifs
            .iter()
            .cloned()
            .map(|mut i| {
                i.addresses.retain(|a| a.address.is_ipv6());
                i
            })
            .collect();
        assert_eq!(
            select_guest_ip(&v6only, "bc:24:11:aa:bb:0c"),
            Some("2001:db8::10".parse().unwrap())
        );
        assert_eq!(select_guest_ip(&ifs, "bc:24:11:00:00:00"), None);
    }

    #[test]
    fn selects_neighbour_by_mac() {
        let text = "192.168.1.1 dev vmbr0 lladdr 00:11:22:33:44:55 REACHABLE\n\
                    192.168.1.77 dev vmbr0 lladdr bc:24:11:aa:bb:0c FAILED\n\
                    fe80::1 dev vmbr0 lladdr bc:24:11:aa:bb:0c STALE\n\
                    192.168.1.50 dev vmbr0 lladdr BC:24:11:AA:BB:0C STALE\n\
                    192.168.1.99 dev vmbr0  FAILED\n";
        let n = neighbours(text);
        assert_eq!(n.len(), 5);
        assert_eq!(
            select_neighbour_ip(&n, "bc:24:11:aa:bb:0c"),
            Some("192.168.1.50".parse().unwrap())
        );
    }

    #[test]
    fn tasks_without_an_endtime_are_running() {
        let t = tasks(
            r#"[{"upid":"UPID:prom:1:2:3:qmclone:110:root@pam:","type":"qmclone","starttime":1},
                {"upid":"UPID:prom:4:5:6:qmstart:110:root@pam:","type":"qmstart","endtime":2,"status":"OK"}]"#,
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        assert!(t[0].running && t[0].kind == "qmclone");
        assert!(!t[1].running);
        assert!(tasks(r#"[{"type":"qmclone"}]"#).is_err());
        assert!(tasks("{}").is_err());
    }
}
