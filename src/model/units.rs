//! Units used in definitions.nix: disk sizes as Proxmox writes them, memory and counts as
//! documentation writes them.

/// Most cores a VM may have (Proxmox's own limit is lower on most hosts).
pub const MAX_CORES: i64 = 512;
/// Least memory, in MiB, any VM can run with: less is almost surely GiB written as MiB.
pub const MIN_MEMORY_MIB: u64 = 16;
/// Most memory, in MiB (16 TiB).
pub const MAX_MEMORY_MIB: u64 = 16 * 1024 * 1024;
/// Least disk a VM can be given (1 GiB), in bytes.
pub const MIN_DISK: u64 = 1 << 30;
/// Most disk, in bytes (1 PiB).
pub const MAX_DISK: u64 = 1 << 50;

/// Parses a disk size like `"20G"`, `"1.5T"` or `"512M"` into bytes.
///
/// Proxmox's size format is a number with an optional fraction and one of `K`, `M`, `G`, `T`;
/// vmctl requires the unit, since a bare number means bytes to Proxmox and is never what a
/// VM definition means.
pub fn parse_disk_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t != s {
        return Err("it has surrounding spaces".into());
    }
    if t.starts_with('-') {
        return Err("a size cannot be negative".into());
    }
    let Some(unit) = t.chars().last() else {
        return Err("it is empty".into());
    };
    let (num, mult) = match unit {
        'K' | 'k' => (&t[..t.len() - 1], 1u64 << 10),
        'M' | 'm' => (&t[..t.len() - 1], 1 << 20),
        'G' | 'g' => (&t[..t.len() - 1], 1 << 30),
        'T' | 't' => (&t[..t.len() - 1], 1 << 40),
        c if c.is_ascii_digit() => return Err("it has no unit; write e.g. `20G`".into()),
        _ => {
            let digits: String = t
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let rest = &t[digits.len()..];
            let first = rest.chars().next().map(|c| c.to_ascii_uppercase());
            return Err(match first {
                Some(u @ ('K' | 'M' | 'G' | 'T')) if !digits.is_empty() => {
                    format!("`{rest}` is not a Proxmox unit; write `{digits}{u}`")
                }
                _ => "expected a number followed by K, M, G or T, e.g. `20G`".into(),
            });
        }
    };
    let valid = !num.is_empty()
        && num.chars().all(|c| c.is_ascii_digit() || c == '.')
        && num.matches('.').count() <= 1
        && !num.starts_with('.')
        && !num.ends_with('.');
    if !valid {
        return Err("expected a number followed by K, M, G or T, e.g. `20G`".into());
    }
    let value: f64 = num
        .parse()
        .map_err(|_| "the number is malformed".to_string())?;
    let bytes = value * mult as f64;
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err("the size is too large".into());
    }
    Ok(bytes as u64)
}

/// A disk size as definitions.nix writes it (`"20G"`), parsed once: the text as written, and
/// its bytes or why it is not a size Proxmox accepts. Documentation disks of imported VMs
/// (`"passthrough of /dev/sdb"`) are kept as text; only managed VMs need a size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSize {
    written: String,
    bytes: Result<u64, String>,
}

impl DiskSize {
    pub fn parse(written: &str) -> Self {
        DiskSize {
            written: written.to_string(),
            bytes: parse_disk_size(written),
        }
    }

    /// The size as written.
    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// The size in bytes, or why the text is not a size Proxmox accepts.
    pub fn bytes(&self) -> Result<u64, &str> {
        self.bytes.as_ref().copied().map_err(String::as_str)
    }

    /// The size in whole GiB, when it is a size and a whole number of GiB.
    pub fn whole_gib(&self) -> Option<u64> {
        let b = *self.bytes.as_ref().ok()?;
        (b > 0 && b.is_multiple_of(1 << 30)).then_some(b >> 30)
    }
}

impl std::ops::Deref for DiskSize {
    type Target = str;

    fn deref(&self) -> &str {
        &self.written
    }
}

impl std::fmt::Display for DiskSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.written)
    }
}

impl From<&str> for DiskSize {
    fn from(written: &str) -> Self {
        DiskSize::parse(written)
    }
}

impl From<String> for DiskSize {
    fn from(written: String) -> Self {
        DiskSize::parse(&written)
    }
}

/// Reads memory as people write it in documentation: `16384` (MiB), `"16G"`, `"16 GB"`,
/// `"16GiB"`, `"512 MB"`, `"1.5 TB"`. Decimal and binary units are both read as binary (a
/// homelab's "16 GB" is 16 GiB); a bare number is MiB, as `memory = 16384;` is. `None` when the
/// text is not a quantity (`"lots"`, `"see notes"`).
pub fn parse_memory_words(s: &str) -> Option<u64> {
    let t = s.trim();
    let num_len = t
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(t.len(), |(i, _)| i);
    let (num, unit) = t.split_at(num_len);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1
    {
        return None;
    }
    let value: f64 = num.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let mib = match unit.as_str() {
        "" | "m" | "mb" | "mib" => value,
        "k" | "kb" | "kib" => value / 1024.0,
        "g" | "gb" | "gib" => value * 1024.0,
        "t" | "tb" | "tib" => value * 1024.0 * 1024.0,
        _ => return None,
    };
    (mib.is_finite() && mib >= 0.0 && mib < u64::MAX as f64).then(|| mib.round() as u64)
}

/// Reads a count as people write it in documentation: `"4"`, `"4 cores"`, `"8 vCPUs"`,
/// `"4 (2 sockets)"`: the leading whole number, when words (not more digits or a fraction)
/// follow it. `None` for text that does not start with one.
pub fn parse_count_words(s: &str) -> Option<u32> {
    let t = s.trim();
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let rest = &t[digits..];
    if rest.starts_with('.') || rest.starts_with(',') {
        return None;
    }
    if !(rest.is_empty()
        || rest.starts_with(char::is_whitespace)
        || rest.starts_with(char::is_alphabetic))
    {
        return None;
    }
    t[..digits].parse().ok()
}

/// Formats MiB the way docs and messages show memory (`4 GiB`, `1.5 GiB`, `512 MiB`).
pub fn format_mib(mib: u64) -> String {
    if mib >= 1024 && mib.is_multiple_of(512) {
        let gib = mib as f64 / 1024.0;
        if gib.fract() == 0.0 {
            format!("{} GiB", gib as u64)
        } else {
            format!("{gib:.1} GiB")
        }
    } else {
        format!("{mib} MiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_sizes() {
        assert_eq!(parse_disk_size("20G"), Ok(20 << 30));
        assert_eq!(parse_disk_size("1.5T"), Ok(3 << 39));
        assert_eq!(parse_disk_size("512M"), Ok(512 << 20));
        assert!(parse_disk_size("20GB").unwrap_err().contains("write `20G`"));
        assert!(parse_disk_size("-5G").unwrap_err().contains("negative"));
        assert!(parse_disk_size("20").unwrap_err().contains("no unit"));
        for bad in ["", "G", "1..2G", ".5G", "abc", " 20G", "2e3G"] {
            assert!(parse_disk_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn disk_sizes_parse_once_and_keep_the_text() {
        let d = DiskSize::parse("20G");
        assert_eq!(
            (d.as_str(), d.bytes(), d.whole_gib()),
            ("20G", Ok(20 << 30), Some(20))
        );
        assert_eq!(DiskSize::parse("1.5T").whole_gib(), Some(1536));
        assert_eq!(DiskSize::parse("512M").whole_gib(), None);
        let doc = DiskSize::parse("passthrough of /dev/sdb");
        assert_eq!(doc.to_string(), "passthrough of /dev/sdb");
        assert!(doc.bytes().is_err());
        assert_eq!(doc.whole_gib(), None);
    }

    #[test]
    fn memory_and_counts_in_words() {
        assert_eq!(parse_memory_words("16 GB"), Some(16384));
        assert_eq!(parse_memory_words("16GiB"), Some(16384));
        assert_eq!(parse_memory_words("16G"), Some(16384));
        assert_eq!(parse_memory_words(" 512 MB "), Some(512));
        assert_eq!(parse_memory_words("1.5 TB"), Some(1536 * 1024));
        assert_eq!(parse_memory_words("4096"), Some(4096));
        for words in ["lots", "see notes", "", "GB", "16 gigs", "1..5G", "-4G"] {
            assert_eq!(parse_memory_words(words), None, "{words:?}");
        }
        assert_eq!(parse_count_words("4"), Some(4));
        assert_eq!(parse_count_words("8 vCPUs"), Some(8));
        assert_eq!(parse_count_words("4 (2 sockets)"), Some(4));
        assert_eq!(parse_count_words("4c"), Some(4));
        for words in ["many", "", "4.5", "4,5", "x4"] {
            assert_eq!(parse_count_words(words), None, "{words:?}");
        }
    }

    #[test]
    fn memory_formatting() {
        assert_eq!(format_mib(4096), "4 GiB");
        assert_eq!(format_mib(1536), "1.5 GiB");
        assert_eq!(format_mib(1000), "1000 MiB");
    }
}
