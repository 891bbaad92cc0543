//! `qm set` values with a format Proxmox checks: cloud-init (`ipconfigN`, `ciupgrade`,
//! `citype`, `sshkeys`), `netN`, `serialN`, `agent` and `tags`. Each returns what Proxmox stores,
//! or the detail of its "400 Parameter verification failed" error.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::conf::mac_for;

/// Proxmox's boolean: `0|1|yes|no|on|off|true|false`.
pub(crate) fn check_bool(v: &str) -> Result<String, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "0" | "yes" | "no" | "on" | "off" | "true" | "false" => Ok(v.to_string()),
        _ => Err(format!("type check ('boolean') failed - got '{v}'")),
    }
}

fn cidr4(v: &str) -> bool {
    v.split_once('/').is_some_and(|(ip, p)| {
        ip.parse::<Ipv4Addr>().is_ok() && p.parse::<u8>().is_ok_and(|p| p <= 32)
    })
}

fn cidr6(v: &str) -> bool {
    v.split_once('/').is_some_and(|(ip, p)| {
        ip.parse::<Ipv6Addr>().is_ok() && p.parse::<u8>().is_ok_and(|p| p <= 128)
    })
}

/// `ipconfigN`: `[gw=GW][,gw6=GW6][,ip=CIDR|dhcp][,ip6=CIDR|auto|dhcp]`, a gateway only with a
/// static address.
pub(crate) fn check_ipconfig(v: &str) -> Result<String, String> {
    let (mut ip, mut gw, mut ip6, mut gw6) = (None, None, None, None);
    for part in v.split(',').filter(|p| !p.is_empty()) {
        let Some((k, val)) = part.split_once('=') else {
            return Err(format!("invalid format - unexpected property '{part}'"));
        };
        let slot = match k {
            "ip" => &mut ip,
            "gw" => &mut gw,
            "ip6" => &mut ip6,
            "gw6" => &mut gw6,
            _ => return Err(format!("invalid format - unexpected property '{k}'")),
        };
        if slot.replace(val).is_some() {
            return Err(format!(
                "invalid format - duplicate key in comma-separated list property: {k}"
            ));
        }
    }
    if let Some(ip) = ip {
        if ip != "dhcp" && !cidr4(ip) {
            return Err(format!("invalid format - value '{ip}' does not look like a valid IPv4 network configuration"));
        }
    }
    if let Some(gw) = gw {
        if gw.parse::<Ipv4Addr>().is_err() {
            return Err(format!(
                "invalid format - value '{gw}' does not look like a valid IPv4 address"
            ));
        }
        match ip {
            None => {
                return Err(
                    "invalid format - gateway specified without specifying an IP address".into(),
                )
            }
            Some("dhcp") => {
                return Err("invalid format - gateway specified together with DHCP".into())
            }
            _ => {}
        }
    }
    if let Some(ip6) = ip6 {
        if !["dhcp", "auto"].contains(&ip6) && !cidr6(ip6) {
            return Err(format!("invalid format - value '{ip6}' does not look like a valid IPv6 network configuration"));
        }
    }
    if let Some(gw6) = gw6 {
        if gw6.parse::<Ipv6Addr>().is_err() {
            return Err(format!(
                "invalid format - value '{gw6}' does not look like a valid IPv6 address"
            ));
        }
        if !ip6.is_some_and(cidr6) {
            return Err(
                "invalid format - gateway specified without specifying an IP address".into(),
            );
        }
    }
    Ok(v.to_string())
}

/// The file `qm set --sshkeys` read: one OpenSSH public key a line (blank lines and `#`
/// comments allowed), stored URL-encoded as Proxmox's CLI does.
pub(crate) fn encode_sshkeys(keys: &str) -> Result<String, String> {
    for line in keys.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (kind, blob) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let known =
            kind.starts_with("ssh-") || kind.starts_with("ecdsa-") || kind.starts_with("sk-");
        let base64 = !blob.is_empty()
            && blob
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
        if !known || !base64 {
            return Err(format!("invalid format - unable to parse ssh key '{line}'"));
        }
    }
    Ok(keys
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect())
}

/// `tags`: split on `;`, `,` and spaces; each `[a-z0-9_][a-z0-9_\-+.]*`; stored lowercased,
/// deduplicated, sorted and `;`-joined.
pub(crate) fn normalize_tags(v: &str) -> Result<String, String> {
    let mut tags: Vec<String> = Vec::new();
    for t in v.split([';', ',', ' ']).filter(|t| !t.is_empty()) {
        let t = t.to_ascii_lowercase();
        let b = t.as_bytes();
        let ok = (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b[1..]
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || b"_-+.".contains(c));
        if !ok {
            return Err(format!("invalid format - invalid tag '{t}'"));
        }
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    tags.sort();
    Ok(tags.join(";"))
}

/// `serialN`: `socket` or a host device `/dev/…`.
pub(crate) fn check_serial(v: &str) -> Result<String, String> {
    if v == "socket" || (v.starts_with("/dev/") && v.len() > 5) {
        Ok(v.to_string())
    } else {
        Err(format!(
            "invalid format - value '{v}' does not look like a serial device"
        ))
    }
}

/// `agent`: `[enabled=]0|1[,fstrim_cloned_disks=B][,freeze-fs-on-backup=B][,type=virtio|isa]`.
pub(crate) fn check_agent(v: &str) -> Result<String, String> {
    for (i, part) in v.split(',').enumerate() {
        let (k, val) = match part.split_once('=') {
            Some(kv) => kv,
            None if i == 0 => ("enabled", part),
            None => return Err(format!("invalid format - unexpected property '{part}'")),
        };
        match k {
            "enabled" | "fstrim_cloned_disks" | "freeze-fs-on-backup" => {
                check_bool(val).map_err(|e| format!("invalid format - {k}: {e}"))?;
            }
            "type" if ["virtio", "isa"].contains(&val) => {}
            _ => return Err(format!("invalid format - unexpected property '{k}'")),
        }
    }
    Ok(v.to_string())
}

const NET_MODELS: [&str; 6] = [
    "virtio", "e1000", "e1000e", "rtl8139", "vmxnet3", "ne2k_pci",
];

fn is_mac(v: &str) -> bool {
    let parts: Vec<&str> = v.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `netN`: `MODEL[=MAC],bridge=B[,tag=1..4094][,firewall=B][,…]`. A model without a MAC keeps
/// the interface's current MAC or gets a generated one, as Proxmox does; stored `MODEL=MAC,…`.
pub(crate) fn net_value(vmid: u32, old: Option<&str>, v: &str) -> Result<String, String> {
    let mut parts: Vec<String> = Vec::new();
    let mut model = None;
    for (i, part) in v.split(',').enumerate() {
        let (k, val) = part.split_once('=').unwrap_or((part, ""));
        if NET_MODELS.contains(&k) {
            if model.replace(k).is_some() {
                return Err("invalid format - duplicate model".into());
            }
            let mac = if val.is_empty() {
                old.and_then(crate::conf::mac_of_net)
                    .unwrap_or_else(|| mac_for(vmid))
            } else if is_mac(val) {
                val.to_ascii_uppercase()
            } else {
                return Err(format!(
                    "invalid format - value '{val}' does not look like a valid MAC address"
                ));
            };
            parts.insert(0, format!("{k}={mac}"));
            continue;
        }
        match k {
            "bridge" if !val.is_empty() => {}
            "tag" if val.parse::<u16>().is_ok_and(|t| (1..=4094).contains(&t)) => {}
            "firewall" | "link_down" => {
                check_bool(val).map_err(|e| format!("invalid format - {k}: {e}"))?;
            }
            "mtu" | "queues" | "rate" | "trunks" if !val.is_empty() => {}
            "macaddr" if is_mac(val) => {}
            "tag" => {
                return Err(format!(
                    "invalid format - tag: value must be 1..4094, got '{val}'"
                ))
            }
            _ if i == 0 => return Err(format!("invalid format - unknown network model '{k}'")),
            _ => return Err(format!("invalid format - unexpected property '{k}'")),
        }
        parts.push(part.to_string());
    }
    if model.is_none() {
        return Err("invalid format - property 'model' is missing".into());
    }
    Ok(parts.join(","))
}

/// What `qm cloudinit dump ID user|network|meta` prints: the NoCloud data the VM's cloud-init
/// drive carries, built from the config as Proxmox builds it.
pub(crate) fn dump(conf: &crate::conf::Conf, kind: &str) -> Result<String, String> {
    let name = conf.get("name").unwrap_or("");
    let user = || {
        let mut out =
            format!("#cloud-config\nhostname: {name}\nmanage_etc_hosts: true\nfqdn: {name}\n");
        if let Some(u) = conf.get("ciuser") {
            out.push_str(&format!("user: {u}\ndisable_root: False\n"));
        }
        let keys = conf
            .get("sshkeys")
            .map(crate::conf::percent_decode)
            .unwrap_or_default();
        let keys: Vec<&str> = keys
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        if !keys.is_empty() {
            out.push_str("ssh_authorized_keys:\n");
            for k in keys {
                out.push_str(&format!("  - {k}\n"));
            }
        }
        out.push_str("chpasswd:\n  expire: False\nusers:\n  - default\n");
        let upgrade = conf
            .get("ciupgrade")
            .is_none_or(|v| check_bool(v).is_ok() && ["1", "yes", "on", "true"].contains(&v));
        out.push_str(&format!("package_upgrade: {upgrade}\n"));
        out
    };
    let network = || {
        let mut out = String::from("version: 1\nconfig:\n");
        for i in 0..32 {
            let Some(net) = conf.get(&format!("net{i}")) else {
                continue;
            };
            let mac = crate::conf::mac_of_net(net)
                .unwrap_or_default()
                .to_ascii_lowercase();
            out.push_str(&format!(
                "    - type: physical\n      name: eth{i}\n      mac_address: '{mac}'\n      subnets:\n"
            ));
            let ipconfig = conf.get(&format!("ipconfig{i}")).unwrap_or("");
            let field = |k: &str| {
                ipconfig
                    .split(',')
                    .find_map(|p| p.strip_prefix(&format!("{k}=")))
            };
            match field("ip") {
                Some("dhcp") => out.push_str("      - type: dhcp4\n"),
                Some(cidr) => {
                    let (ip, prefix) = cidr.split_once('/').unwrap_or((cidr, "32"));
                    let bits: u32 = prefix.parse().unwrap_or(32);
                    let mask = Ipv4Addr::from(u32::MAX.checked_shl(32 - bits).unwrap_or(0));
                    out.push_str(&format!(
                        "      - type: static\n        address: '{ip}'\n        netmask: '{mask}'\n"
                    ));
                    if let Some(gw) = field("gw") {
                        out.push_str(&format!("        gateway: '{gw}'\n"));
                    }
                }
                None => {}
            }
        }
        if let Some(ns) = conf.get("nameserver") {
            out.push_str("    - type: nameserver\n      address:\n");
            for a in ns.split([' ', ',', ';']).filter(|a| !a.is_empty()) {
                out.push_str(&format!("      - '{a}'\n"));
            }
        }
        out
    };
    match kind {
        "user" => Ok(user()),
        "network" => Ok(network()),
        "meta" => {
            // Proxmox's instance-id is a SHA-1 over the data; this double uses FNV-1a: it
            // changes exactly when the user or network data change, which is what matters.
            let mut h: u64 = 0xcbf29ce484222325;
            for b in (user() + &network()).bytes() {
                h = (h ^ b as u64).wrapping_mul(0x100000001b3);
            }
            Ok(format!("instance-id: {h:016x}\n"))
        }
        other => Err(format!(
            "value '{other}' does not have a value in the enumeration 'meta, network, user, vendor'"
        )),
    }
}
