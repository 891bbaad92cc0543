//! A VM config in Proxmox's file format (description comments, settings, `[snapshot]`
//! sections) and the value formats qm checks: disk sizes, DNS names, config ids, MACs, times.

use std::time::{SystemTime, UNIX_EPOCH};

/// One VM config: description, current settings, snapshot sections.
#[derive(Clone, Default)]
pub(crate) struct Conf {
    pub(crate) description: Option<String>,
    pub(crate) main: Vec<(String, String)>,
    pub(crate) snaps: Vec<Snap>,
}

#[derive(Clone)]
pub(crate) struct Snap {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) entries: Vec<(String, String)>,
}

pub(crate) fn encode_comment(line: &str) -> String {
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

/// `%XX` decoding: of description comment lines, and of the url-encoded `sshkeys` value.
pub(crate) fn percent_decode(line: &str) -> String {
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

pub(crate) fn parent_of(entries: &[(String, String)]) -> Option<String> {
    get(entries, "parent").map(str::to_string)
}

pub(crate) fn get<'a>(entries: &'a [(String, String)], key: &str) -> Option<&'a str> {
    entries
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

pub(crate) fn set(entries: &mut Vec<(String, String)>, key: &str, value: String) {
    match entries.iter_mut().find(|(k, _)| k == key) {
        Some(e) => e.1 = value,
        None => entries.push((key.to_string(), value)),
    }
}

pub(crate) fn unset(entries: &mut Vec<(String, String)>, key: &str) {
    entries.retain(|(k, _)| k != key);
}

impl Conf {
    pub(crate) fn parse(text: &str) -> Conf {
        let mut conf = Conf::default();
        let mut desc: Vec<String> = Vec::new();
        let mut section: Option<Snap> = None;
        let flush_desc =
            |desc: &mut Vec<String>| (!desc.is_empty()).then(|| std::mem::take(desc).join("\n"));
        for line in text.lines() {
            if let Some(c) = line.strip_prefix('#') {
                desc.push(percent_decode(c));
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

    pub(crate) fn render(&self) -> String {
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

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        get(&self.main, key)
    }

    pub(crate) fn disks(&self) -> Vec<(String, String)> {
        self.main
            .iter()
            .filter(|(k, v)| is_disk_key(k) && !v.contains("media=cdrom"))
            .cloned()
            .collect()
    }
}

pub(crate) fn is_disk_key(k: &str) -> bool {
    ["scsi", "virtio", "sata", "ide", "efidisk", "tpmstate"]
        .iter()
        .any(|p| k.strip_prefix(p).is_some_and(|n| n.parse::<u32>().is_ok()))
}

pub(crate) fn size_of(disk: &str) -> Option<u64> {
    disk.split(',')
        .find_map(|p| p.strip_prefix("size="))
        .and_then(parse_size_gib)
}

pub(crate) fn parse_size_gib(s: &str) -> Option<u64> {
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

pub(crate) fn is_dns_name(s: &str) -> bool {
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

pub(crate) fn is_config_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

pub(crate) fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of an epoch, as qm listsnapshot prints it.
pub(crate) fn format_time(epoch: u64) -> String {
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

pub(crate) fn mac_for(vmid: u32) -> String {
    format!(
        "BC:24:11:{:02X}:{:02X}:{:02X}",
        (vmid >> 16) & 0xff,
        (vmid >> 8) & 0xff,
        vmid & 0xff
    )
}

pub(crate) fn mac_of_net(net: &str) -> Option<String> {
    net.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(_, v)| v)
        .find(|v| v.len() == 17 && v.split(':').count() == 6)
        .map(str::to_string)
}
