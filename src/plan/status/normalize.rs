//! Values normalized the way Proxmox stores them, so a difference is a real one: tags (order,
//! case, separators), SSH keys (URL-encoding, order, comments), memory (`current=`), disk
//! sizes (units), `net0` and `ipconfig0` (option order, MAC case).

use std::collections::BTreeMap;

/// `a;B c,a` -> `a;b`: Proxmox's tags are case-insensitive by default, split on `;`, `,` or
/// spaces, and sorted.
pub fn tags(v: &str) -> String {
    let mut t: Vec<String> = v
        .split([';', ',', ' '])
        .filter(|t| !t.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    t.sort();
    t.dedup();
    t.join(";")
}

/// `%XX` decoding of the URL-encoded `sshkeys` value.
pub fn url_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() && v.is_char_boundary(i + 3) {
            if let Ok(x) = u8::from_str_radix(&v[i + 1..i + 3], 16) {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The keys of an `sshkeys` text as a sorted set of `TYPE BASE64` (comments and order are
/// not what the guest checks).
pub fn ssh_keys(text: &str) -> String {
    let mut keys: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect();
    keys.sort();
    keys.dedup();
    keys.join("\n")
}

/// `4096` or `current=4096` (PVE 8.1+) -> `4096` MiB.
pub fn memory(v: &str) -> String {
    v.split(',')
        .find_map(|p| p.strip_prefix("current="))
        .unwrap_or(v.split(',').next().unwrap_or(v))
        .trim()
        .to_string()
}

/// A size as Proxmox writes it (`20G`, `20480M`, `21474836480` bytes) in bytes.
pub fn size_bytes(v: &str) -> Option<u64> {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse().ok();
    }
    crate::model::units::parse_disk_size(v).ok()
}

/// `size=` of a disk's value, in bytes.
pub fn disk_size(value: &str) -> Option<u64> {
    value
        .split(',')
        .find_map(|p| p.strip_prefix("size="))
        .and_then(size_bytes)
}

/// Bytes as Proxmox prints sizes: whole GiB as `NG`, else `NM`, else bytes.
pub fn show_size(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 30) {
        format!("{}G", bytes >> 30)
    } else if bytes.is_multiple_of(1 << 20) {
        format!("{}M", bytes >> 20)
    } else {
        bytes.to_string()
    }
}

/// A property string (`virtio=BC:..,bridge=vmbr0,tag=30`) as sorted `key=value` with the NIC
/// model's MAC as `macaddr`, upper-cased; `firewall=0` and the like that equal Proxmox's
/// defaults are dropped.
pub fn net(v: &str) -> String {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    for part in v.split(',').filter(|p| !p.is_empty()) {
        let (k, val) = part.split_once('=').unwrap_or((part, ""));
        match k {
            "virtio" | "e1000" | "rtl8139" | "vmxnet3" | "e1000e" => {
                m.insert("model".into(), k.into());
                if !val.is_empty() {
                    m.insert("macaddr".into(), val.to_ascii_uppercase());
                }
            }
            "macaddr" => {
                m.insert("macaddr".into(), val.to_ascii_uppercase());
            }
            "firewall" | "link_down" if val == "0" => {}
            _ => {
                m.insert(k.into(), val.into());
            }
        }
    }
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `net` compared to a declared value: a MAC the definition does not declare is Proxmox's
/// choice, not drift.
pub fn net_matches(declared: &str, live: &str) -> bool {
    let d = net(declared);
    let keep_mac = d.contains("macaddr=");
    let l = net(live)
        .split(',')
        .filter(|p| keep_mac || !p.starts_with("macaddr="))
        .collect::<Vec<_>>()
        .join(",");
    d == l
}

/// `ip=..,gw=..` as sorted options.
pub fn ipconfig(v: &str) -> String {
    let mut parts: Vec<&str> = v.split(',').filter(|p| !p.is_empty()).collect();
    parts.sort();
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_order_case_and_separators() {
        assert_eq!(tags("Web;vmctl"), tags("vmctl,web"));
        assert_eq!(tags("b a  a"), "a;b");
    }

    #[test]
    fn ssh_keys_url_encoded_reordered() {
        let a = "ssh-ed25519 AAAA1 a@x\nssh-ed25519 AAAA2 b@y\n";
        let enc = "ssh-ed25519%20AAAA2%20other%0Assh-ed25519%20AAAA1%0A";
        assert_eq!(ssh_keys(a), ssh_keys(&url_decode(enc)));
        assert_ne!(ssh_keys(a), ssh_keys("ssh-ed25519 AAAA1"));
    }

    #[test]
    fn sizes_and_memory() {
        assert_eq!(disk_size("nvme:vm-1-disk-0,size=20G"), Some(20 << 30));
        assert_eq!(disk_size("x,size=20480M,ssd=1"), Some(20 << 30));
        assert_eq!(memory("current=4096"), "4096");
        assert_eq!(show_size(20 << 30), "20G");
    }

    #[test]
    fn net_option_order_and_mac_case() {
        assert!(net_matches(
            "virtio,bridge=vmbr0,tag=30",
            "tag=30,virtio=bc:24:11:00:01:10,bridge=vmbr0,firewall=0"
        ));
        assert!(!net_matches(
            "virtio,bridge=vmbr0",
            "virtio=BC:24:11:00:01:10,bridge=vmbr1"
        ));
        assert!(!net_matches(
            "virtio=BC:24:11:00:01:11,bridge=vmbr0",
            "virtio=BC:24:11:00:01:10,bridge=vmbr0"
        ));
    }
}
