//! Validators for every `vmctl ops` argument, run while the command line is parsed: before the
//! fleet is read and long before any connection. Each accepts what Proxmox accepts for that
//! value (pve-common's JSON schema formats, qemu-server's options), no more and no less.
//!
//! A value that starts with `-` is always refused: it is a flag that landed in a value's place
//! (`vmctl ops snapshot create 110 -- --dry-run`), and running it would turn a dry run into a
//! real operation.

use super::{VmId, VMID_MAX, VMID_MIN};

/// Why a value was refused; clap shows it after "invalid value '…' for '<ARG>'".
pub type Invalid = String;

fn not_a_flag(s: &str) -> Result<(), Invalid> {
    if s.starts_with('-') {
        return Err(format!(
            "`{}` looks like an option, not a value; options go before `--`, and no value may \
             start with `-`",
            printable(s)
        ));
    }
    Ok(())
}

/// `s` with control characters escaped, for messages.
fn printable(s: &str) -> String {
    s.chars().flat_map(char::escape_debug).collect::<String>()
}

/// A VMID: digits only, 100–999999999 (pve-vmid).
pub fn vmid(s: &str) -> Result<VmId, Invalid> {
    not_a_flag(s)?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 9 {
        return Err(format!(
            "`{}` is not a VMID: write a number from {VMID_MIN} to {VMID_MAX}",
            printable(s)
        ));
    }
    let n: u64 = s.parse().map_err(|_| format!("`{s}` is not a VMID"))?;
    match VmId::try_from(n) {
        Ok(id) if (VMID_MIN..=VMID_MAX).contains(&id) && !s.starts_with('0') => Ok(id),
        _ => Err(format!(
            "VMID {s} is out of Proxmox's range {VMID_MIN}–{VMID_MAX} (without leading zeros)"
        )),
    }
}

fn is_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// A VM name: a DNS name as Proxmox's `dns-name` format has it (labels of letters, digits and
/// inner hyphens, joined by dots).
pub fn vm_name(s: &str) -> Result<String, Invalid> {
    not_a_flag(s)?;
    if s.len() <= 253 && s.split('.').all(is_label) {
        return Ok(s.to_string());
    }
    Err(format!(
        "`{}` is not a valid VM name: use letters, digits and hyphens (a DNS name, e.g. \
         `web-1`), not starting or ending with a hyphen",
        printable(s)
    ))
}

/// A cluster node name: one DNS label (pve-node).
pub fn node(s: &str) -> Result<String, Invalid> {
    not_a_flag(s)?;
    if is_label(s) {
        return Ok(s.to_string());
    }
    Err(format!(
        "`{}` is not a node name: use letters, digits and inner hyphens, like `pve2`",
        printable(s)
    ))
}

/// A storage ID (pve-storage-id): a letter, then letters, digits, `-`, `_`, `.`, ending in a
/// letter or digit.
pub fn storage(s: &str) -> Result<String, Invalid> {
    not_a_flag(s)?;
    let b = s.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if ok {
        return Ok(s.to_string());
    }
    Err(format!(
        "`{}` is not a storage ID: a letter, then letters, digits, `-`, `_` or `.`, like \
         `local-lvm` (`pvesm status` lists them)",
        printable(s)
    ))
}

/// A resource pool ID (pve-poolid): letters, digits, `-`, `_`, `.`.
pub fn pool(s: &str) -> Result<String, Invalid> {
    not_a_flag(s)?;
    if !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        return Ok(s.to_string());
    }
    Err(format!(
        "`{}` is not a pool ID: use letters, digits, `-`, `_` and `.`",
        printable(s)
    ))
}

/// A snapshot name (pve-configid, at most 40 characters): a letter, then at least one letter,
/// digit, `_` or `-`. Proxmox matches it case-insensitively, so upper case is allowed.
pub fn snapshot_name(s: &str) -> Result<String, Invalid> {
    not_a_flag(s)?;
    let b = s.as_bytes();
    let ok = (2..=40).contains(&b.len())
        && b[0].is_ascii_alphabetic()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'));
    if ok {
        return Ok(s.to_string());
    }
    Err(format!(
        "`{}` is not a snapshot name: 2 to 40 characters, a letter first, then letters, \
         digits, `_` or `-` (e.g. `pre-upgrade`)",
        printable(s)
    ))
}

/// A disk key `qm set`/`qm resize` accepts for a volume: ide0–3, sata0–5, scsi0–30,
/// virtio0–15, efidisk0, tpmstate0.
pub fn disk(s: &str) -> Result<String, Invalid> {
    not_a_flag(s)?;
    let max = |prefix: &str| -> Option<u32> {
        let n = s.strip_prefix(prefix)?;
        (!n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
            && (n == "0" || !n.starts_with('0')))
        .then(|| n.parse().ok())
        .flatten()
    };
    let ok = [
        ("ide", 3),
        ("sata", 5),
        ("scsi", 30),
        ("virtio", 15),
        ("efidisk", 0),
        ("tpmstate", 0),
    ]
    .iter()
    .any(|(p, hi)| max(p).is_some_and(|n| n <= *hi));
    if ok {
        return Ok(s.to_string());
    }
    Err(format!(
        "`{}` is not a disk: use ide0–ide3, sata0–sata5, scsi0–scsi30, virtio0–virtio15, \
         efidisk0 or tpmstate0 (`vmctl ops config VMID` shows the VM's disks)",
        printable(s)
    ))
}

/// A new disk's size in whole GiB: `20G`, `20GiB` or `20`, above zero.
pub fn disk_size(s: &str) -> Result<String, Invalid> {
    not_a_flag(s)?;
    match super::argv::parse_size_gib(s) {
        Some(_) if s.trim() == s => Ok(s.to_string()),
        _ => Err(format!(
            "disk size `{}` is not whole GiB; write it like `20G`",
            printable(s)
        )),
    }
}

/// A `qm resize` size: `+10G` grows by, `40G` grows to; digits with an optional fraction and
/// an optional K, M, G or T.
pub fn resize_size(s: &str) -> Result<String, Invalid> {
    not_a_flag(s)?;
    let body = s.strip_prefix('+').unwrap_or(s);
    let body = body.strip_suffix(['K', 'M', 'G', 'T']).unwrap_or(body);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    if digits(int) && frac.is_none_or(digits) {
        return Ok(s.to_string());
    }
    Err(format!(
        "`{}` is not a size: write `+10G` to grow by 10 GiB or `40G` to grow to 40 GiB",
        printable(s)
    ))
}

/// A path or volume on the Proxmox host (a vzdump archive): not empty, no control
/// characters.
pub fn archive(s: &str) -> Result<String, Invalid> {
    not_a_flag(s)?;
    if !s.is_empty() && !s.chars().any(char::is_control) {
        return Ok(s.to_string());
    }
    Err(format!(
        "`{}` is not an archive path: give the vzdump file's path on the Proxmox host",
        printable(s)
    ))
}

/// Free text (descriptions): anything but a leading `-`.
pub fn text(s: &str) -> Result<String, Invalid> {
    not_a_flag(s)?;
    Ok(s.to_string())
}

/// A `--set KEY=VALUE` pair: KEY is a `qm set` option name, VALUE free text.
pub fn key_value(s: &str) -> Result<(String, String), Invalid> {
    let Some((k, v)) = s.split_once('=') else {
        // The text is not echoed: it may be a secret typed without its key.
        return Err(
            "expected KEY=VALUE, like `ciuser=root` (the value is not shown: it may \
                    be a secret)"
                .into(),
        );
    };
    let b = k.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-'));
    if !ok {
        return Err(format!(
            "`{}` is not a `qm set` option name: lower-case letters and digits, like `ciuser` \
             or `ipconfig0`",
            printable(k)
        ));
    }
    Ok((k.to_string(), v.to_string()))
}

/// A whole number of at least `min`, written without a sign; otherwise "`s` is not `what`".
fn whole<T: std::str::FromStr + PartialOrd>(s: &str, min: T, what: &str) -> Result<T, Invalid> {
    not_a_flag(s)?;
    match s.parse::<T>() {
        Ok(n) if n >= min && !s.starts_with('+') => Ok(n),
        _ => Err(format!("`{}` is not {what}", printable(s))),
    }
}

/// Cores: at least 1 (qemu-server's minimum).
pub fn cores(s: &str) -> Result<u32, Invalid> {
    whole(s, 1, "a core count: write a whole number of at least 1")
}

/// Memory in MiB: at least 16 (qemu-server's minimum).
pub fn memory(s: &str) -> Result<u64, Invalid> {
    whole(
        s,
        16,
        "a memory size: write MiB as a whole number of at least 16 (e.g. `4096`)",
    )
}

/// A positive number of seconds.
pub fn seconds(s: &str) -> Result<u64, Invalid> {
    whole(
        s,
        1,
        "a number of seconds: write a whole number of at least 1",
    )
}

/// A TCP port, 1–65535.
pub fn port(s: &str) -> Result<u16, Invalid> {
    whole(s, 1, "a port: write a number from 1 to 65535")
}

/// A user name for SSH: letters, digits, `.`, `_`, `-`, not starting with `-`.
pub fn user(s: &str) -> Result<String, Invalid> {
    not_a_flag(s)?;
    if !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    {
        return Ok(s.to_string());
    }
    Err(format!("`{}` is not a user name", printable(s)))
}

/// Lock retries: 0–100 (0 disables retries).
pub fn lock_retries(s: &str) -> Result<u32, Invalid> {
    match s.parse::<u32>() {
        Ok(n) if n <= 100 && !s.starts_with('+') => Ok(n),
        _ => Err(format!(
            "`{}` is not a retry count: write a number from 0 to 100",
            printable(s)
        )),
    }
}

/// The first lock-retry wait: 1–10000 ms (the longest single wait is ten times this, which
/// stays inside the SSH master's idle limit).
pub fn lock_backoff_ms(s: &str) -> Result<u64, Invalid> {
    match s.parse::<u64>() {
        Ok(n) if (1..=10_000).contains(&n) && !s.starts_with('+') => Ok(n),
        _ => Err(format!(
            "`{}` is not a backoff: write milliseconds from 1 to 10000",
            printable(s)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmids() {
        assert_eq!(vmid("100"), Ok(100));
        assert_eq!(vmid("999999999"), Ok(999_999_999));
        for bad in [
            "99",
            "0",
            "1000000000",
            "0110",
            "",
            "1e3",
            "+110",
            " 110",
            "110 ",
            "abc",
        ] {
            assert!(vmid(bad).is_err(), "{bad:?}");
        }
        assert!(vmid("--dry-run")
            .unwrap_err()
            .contains("looks like an option"));
    }

    #[test]
    fn names_nodes_storages_pools() {
        for ok in ["web", "web-1", "a", "web.lab.example", "A1"] {
            assert!(vm_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-web",
            "web-",
            "web_1",
            "a b",
            "a..b",
            "é",
            &"a".repeat(64),
            "x;reboot",
        ] {
            assert!(vm_name(bad).is_err(), "{bad:?}");
        }
        assert!(node("prom2").is_ok());
        assert!(node("prom.lan").is_err());
        for ok in ["local", "local-lvm", "nvme_1", "ceph.pool"] {
            assert!(storage(ok).is_ok(), "{ok}");
        }
        for bad in ["1local", "local-", "a", "lo cal", "lo:cal"] {
            assert!(storage(bad).is_err(), "{bad:?}");
        }
        assert!(pool("lab_1.x").is_ok());
        assert!(pool("lab/1").is_err());
    }

    #[test]
    fn snapshot_names_as_proxmox_checks_them() {
        for ok in ["pre", "pre-upgrade", "Before_2", &"a".repeat(40)] {
            assert!(snapshot_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "p",
            "1pre",
            "pre upgrade",
            "pre.1",
            "--dry-run",
            &"a".repeat(41),
            "",
            "préé",
        ] {
            assert!(snapshot_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn disks_and_sizes() {
        for ok in [
            "scsi0",
            "scsi30",
            "ide3",
            "sata5",
            "virtio15",
            "efidisk0",
            "tpmstate0",
        ] {
            assert!(disk(ok).is_ok(), "{ok}");
        }
        for bad in [
            "scsi31", "ide4", "scsi", "scsi01", "net0", "unused0", "scsi0 ", "-scsi0",
        ] {
            assert!(disk(bad).is_err(), "{bad:?}");
        }
        for ok in ["20G", "20", "20GiB"] {
            assert!(disk_size(ok).is_ok(), "{ok}");
        }
        for bad in ["0", "512M", "-1G", "G", " 20G"] {
            assert!(disk_size(bad).is_err(), "{bad:?}");
        }
        for ok in ["+10G", "40G", "+1.5T", "1024", "+512M"] {
            assert!(resize_size(ok).is_ok(), "{ok}");
        }
        for bad in ["", "+", "G", "10X", "-10G", "10 G", "1..2G", "+.5G"] {
            assert!(resize_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(cores("2"), Ok(2));
        assert!(cores("0").is_err() && cores("-1").is_err() && cores("x").is_err());
        assert_eq!(memory("16"), Ok(16));
        assert!(memory("15").is_err() && memory("0").is_err());
        assert!(port("0").is_err() && port("65536").is_err());
        assert_eq!(port("22"), Ok(22));
        assert!(lock_retries("101").is_err() && lock_retries("-1").is_err());
        assert_eq!(lock_retries("0"), Ok(0));
        assert!(lock_backoff_ms("0").is_err() && lock_backoff_ms("10001").is_err());
        assert!(seconds("0").is_err());
    }

    #[test]
    fn key_values_and_free_text() {
        assert_eq!(
            key_value("ipconfig0=ip=dhcp"),
            Ok(("ipconfig0".into(), "ip=dhcp".into()))
        );
        assert!(key_value("-x=1").is_err());
        assert!(key_value("Cores=1").is_err());
        assert!(key_value("=1").is_err());
        let e = key_value("cipassword:hunter2").unwrap_err();
        assert!(e.contains("expected KEY=VALUE"), "{e}");
        assert!(text("made by vmctl; don't touch").is_ok());
        assert!(text("--dry-run").is_err());
        assert!(archive("/var/lib/vz/dump/x.vma.zst").is_ok());
        assert!(archive("a\nb").is_err());
    }
}
