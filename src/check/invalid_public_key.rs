//! HS001: a host's `publicKey` is malformed or not ssh-ed25519.

use base64::Engine;

use super::{Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::syntax::Span;

pub const RULE: Rule = Rule {
    code: "HS001",
    name: "invalid-public-key",
    severity: Severity::Error,
    summary: "a host's `publicKey` is malformed or not an ssh-ed25519 key",
    explanation: "\
## What it does
Checks every host's `publicKey` in hosts.nix: it must be one OpenSSH public key line,
`ssh-ed25519 AAAA… [comment]`, whose base64 blob really holds an ed25519 key.

## Why
vmctl derives each host's age recipient (for sops) from its ed25519 host key and pins it for
SSH. An RSA or ECDSA key has no age recipient, and a truncated paste decrypts nothing.

## Example
```nix
doc1 = { publicKey = \"ssh-rsa AAAAB3NzaC1yc2E…\"; };
```

## Fix
Use the host's ed25519 key: `ssh-keyscan -t ed25519 HOST`, or
`cat /etc/ssh/ssh_host_ed25519_key.pub` on the host.
",
};

/// The decoded `(type, key bytes)` of an OpenSSH public key line, or why it is not one.
pub fn parse_public_key(line: &str) -> Result<(String, Vec<u8>), String> {
    let mut parts = line.split_whitespace();
    let (Some(kind), Some(b64)) = (parts.next(), parts.next()) else {
        return Err("expected `ssh-ed25519 AAAA… [comment]`".into());
    };
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "the key data is not valid base64 (truncated or mangled?)".to_string())?;
    let read_string = |buf: &[u8], at: usize| -> Option<(Vec<u8>, usize)> {
        let len = u32::from_be_bytes(buf.get(at..at + 4)?.try_into().ok()?) as usize;
        Some((buf.get(at + 4..at + 4 + len)?.to_vec(), at + 4 + len))
    };
    let (inner_kind, next) = read_string(&blob, 0).ok_or("the key data is truncated")?;
    if inner_kind != kind.as_bytes() {
        return Err(format!(
            "the key data says `{}` but the line says `{kind}`",
            String::from_utf8_lossy(&inner_kind)
        ));
    }
    if kind == "ssh-ed25519" {
        let (key, end) = read_string(&blob, next).ok_or("the key data is truncated")?;
        if key.len() != 32 || end != blob.len() {
            return Err("the key data is not a 32-byte ed25519 key".into());
        }
        return Ok((kind.to_string(), key));
    }
    Ok((kind.to_string(), blob))
}

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some((file, hosts)) = fleet.hosts_file() else {
        return;
    };
    for h in &hosts.hosts {
        let (Some(key), Some(range)) = (&h.public_key, h.public_key_range) else {
            continue;
        };
        let span = Span::new(file.file, range);
        match parse_public_key(key) {
            Ok((kind, _)) if kind == "ssh-ed25519" => {}
            Ok((kind, _)) => out.push(
                Diagnostic::new(&RULE, span, format!("host `{}` has a `{kind}` key; vmctl needs its ssh-ed25519 host key", h.name))
                    .help("age recipients are derived from ed25519 keys: use `ssh-keyscan -t ed25519 HOST`"),
            ),
            Err(problem) => out.push(
                Diagnostic::new(&RULE, span, format!("`publicKey` of host `{}` is malformed: {problem}", h.name))
                    .help("copy the whole line of /etc/ssh/ssh_host_ed25519_key.pub from the host"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_public_key;

    #[test]
    fn parses_and_rejects() {
        let ok = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMlLRoQ0HoeSXd9Rbb9WB51hQUGkEPeKZvmAsJFjg/wH root@doc1";
        assert_eq!(parse_public_key(ok).unwrap().1.len(), 32);
        assert!(parse_public_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMlLRoQ0Hoe").is_err());
        assert!(parse_public_key("ssh-ed25519").is_err());
        assert!(parse_public_key(
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIMlLRoQ0HoeSXd9Rbb9WB51hQUGkEPeKZvmAsJFjg/wH"
        )
        .unwrap_err()
        .contains("says `ssh-ed25519`"));
    }
}
