//! HS001: a host's `publicKey` is malformed or not ssh-ed25519.

use base64::Engine;

use crate::keys;

use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::syntax::Span;

pub const RULE: Rule = Rule {
    code: "HS001",
    name: "invalid-public-key",
    severity: Severity::Error,
    cascade: Cascade::Always,
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

/// The key type of an OpenSSH public key line (`TYPE BASE64 [comment]`, nothing before it)
/// and its key bytes (the 32-byte key for ed25519, the blob otherwise), or why it is not one. The blob is decoded by the same reader (`ssh-key`) that every other part
/// of vmctl uses, so lint accepts exactly the keys `hosts add` and `sops add-recipient` accept.
pub fn parse_public_key(line: &str) -> Result<(String, Vec<u8>), String> {
    let mut parts = line.split_whitespace();
    let (Some(kind), Some(b64)) = (parts.next(), parts.next()) else {
        return Err("expected `ssh-ed25519 AAAA… [comment]`".into());
    };
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "the key data is not valid base64 (truncated or mangled?)".to_string())?;
    match keys::decode_blob(&blob) {
        Ok((inner, _)) if inner != kind => Err(format!(
            "the key data says `{inner}` but the line says `{kind}`"
        )),
        Ok((inner, Some(key))) => Ok((inner, key.to_vec())),
        Ok((inner, None)) => Ok((inner, blob)),
        Err(_) if kind == keys::ED25519 => {
            Err("the key data is not a complete ed25519 key (truncated?)".into())
        }
        // A type ssh-key cannot decode is still not ed25519: say that, it is the real problem.
        Err(_) => Ok((kind.to_string(), blob)),
    }
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
            Ok((kind, _)) if kind == keys::ED25519 => {}
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
        let (kind, key) = parse_public_key(ok).unwrap();
        assert_eq!((kind.as_str(), key.len()), ("ssh-ed25519", 32));
        // A valid blob with one byte cut off the key, re-encoded: base64 is fine, the key is not.
        use base64::Engine as _;
        let b64 = ok.split_whitespace().nth(1).unwrap();
        let mut blob = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        blob.pop();
        let short = base64::engine::general_purpose::STANDARD.encode(&blob);
        assert!(parse_public_key(&format!("ssh-ed25519 {short}")).is_err());
        blob.extend_from_slice(&[0, 0]);
        let long = base64::engine::general_purpose::STANDARD.encode(&blob);
        assert!(parse_public_key(&format!("ssh-ed25519 {long}")).is_err());
        assert!(parse_public_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMlLRoQ0Hoe").is_err());
        assert!(parse_public_key("ssh-ed25519").is_err());
        assert!(parse_public_key(
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIMlLRoQ0HoeSXd9Rbb9WB51hQUGkEPeKZvmAsJFjg/wH"
        )
        .unwrap_err()
        .contains("says `ssh-ed25519`"));
    }
}
