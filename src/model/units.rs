//! Units used in definitions.nix: disk sizes as Proxmox writes them.

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
    fn memory_formatting() {
        assert_eq!(format_mib(4096), "4 GiB");
        assert_eq!(format_mib(1536), "1.5 GiB");
        assert_eq!(format_mib(1000), "1000 MiB");
    }
}
