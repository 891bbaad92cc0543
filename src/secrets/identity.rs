//! age identities and the data key: unwrapping it from a file's age entries and wrapping it
//! for new recipients. Also converts an OpenSSH ed25519 private key into the X25519 identity
//! of its ssh-to-age recipient (sops-nix hosts are `age1…` recipients derived that way).
//!
//! The ssh conversion duplicates a small part of `keys/` (written on another branch) so this
//! module does not wait for it; the two should be merged into one helper.

use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::DataKey;

/// Why an identity could not be read. Never includes key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("line {0} is not a valid age identity (AGE-SECRET-KEY-1…)")]
    BadAgeLine(usize),
    #[error("the OpenSSH private key is encrypted with a passphrase; decrypt a copy with `ssh-keygen -p` or use an age identity")]
    EncryptedSshKey,
    #[error(
        "the OpenSSH private key is not ed25519 (found {0}); only ssh-ed25519 keys convert to age"
    )]
    NotEd25519(String),
    #[error("the OpenSSH private key is malformed ({0})")]
    MalformedSsh(&'static str),
    #[error("no age identity found (expected AGE-SECRET-KEY-1… lines or an OpenSSH ed25519 private key)")]
    Empty,
}

/// The identities vmctl may use to open files, each with where it came from.
#[derive(Default)]
pub struct Identities {
    entries: Vec<(age::x25519::Identity, String, String)>,
}

impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.entries
                    .iter()
                    .map(|(_, source, recipient)| format!("{recipient} from {source}")),
            )
            .finish()
    }
}

impl Identities {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every identity in `text` (an age key file or an OpenSSH ed25519 private key),
    /// labelled with `source` (e.g. `SOPS_AGE_KEY_FILE=/path`). Returns how many were added.
    pub fn add_text(&mut self, text: &str, source: &str) -> Result<usize, IdentityError> {
        let ids = parse_identities(text)?;
        let n = ids.len();
        for id in ids {
            let recipient = id.to_public().to_string();
            if !self.entries.iter().any(|(_, _, r)| *r == recipient) {
                self.entries.push((id, source.to_string(), recipient));
            }
        }
        Ok(n)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The public `age1…` recipients of the identities held.
    pub fn recipients(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(_, _, r)| r.as_str())
    }

    /// Where the identities came from, for messages.
    pub fn sources(&self) -> Vec<&str> {
        let mut s: Vec<&str> = self.entries.iter().map(|(_, s, _)| s.as_str()).collect();
        s.dedup();
        s
    }

    /// The identities as `AGE-SECRET-KEY-1…` lines, to hand to a `sops` child process.
    pub fn to_key_file(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::new());
        for (id, _, _) in &self.entries {
            out.push_str(id.to_string().expose_secret());
            out.push('\n');
        }
        out
    }

    fn iter(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.entries
            .iter()
            .map(|(id, _, _)| id as &dyn age::Identity)
    }
}

/// Reads identities from an age key file (`AGE-SECRET-KEY-1…` lines, `#` comments) or an
/// unencrypted OpenSSH ed25519 private key.
pub fn parse_identities(text: &str) -> Result<Vec<age::x25519::Identity>, IdentityError> {
    if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
        return Ok(vec![ssh_ed25519_identity(text)?]);
    }
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with("AGE-PLUGIN-") {
            // Plugin identities need their plugin binary; sops would run it, vmctl does not.
            continue;
        }
        let id =
            age::x25519::Identity::from_str(line).map_err(|_| IdentityError::BadAgeLine(n + 1))?;
        out.push(id);
    }
    if out.is_empty() {
        return Err(IdentityError::Empty);
    }
    Ok(out)
}

/// The X25519 identity matching an ssh-ed25519 key's ssh-to-age recipient (the conversion
/// lives in `keys`: SHA-512 of the ed25519 seed, first 32 bytes, unclamped).
pub fn ssh_ed25519_identity(pem: &str) -> Result<age::x25519::Identity, IdentityError> {
    use crate::keys::{KeyError, PrivateKey};
    let key = PrivateKey::parse_openssh(pem).map_err(|e| match e {
        KeyError::Encrypted(_) => IdentityError::EncryptedSshKey,
        KeyError::UnsupportedType(t) => IdentityError::NotEd25519(t),
        KeyError::NotOpenSshPrivateKey => IdentityError::MalformedSsh("not an OpenSSH private key"),
        KeyError::KeyCount(_) => IdentityError::MalformedSsh("expected exactly one key"),
        KeyError::CheckInt => IdentityError::MalformedSsh("check bytes differ"),
        KeyError::Inconsistent => {
            IdentityError::MalformedSsh("public half does not match the seed")
        }
        KeyError::Base64(_) => IdentityError::MalformedSsh("base64"),
        _ => IdentityError::MalformedSsh("malformed key"),
    })?;
    let encoded = Zeroizing::new(key.age_identity());
    age::x25519::Identity::from_str(&encoded)
        .map_err(|_| IdentityError::MalformedSsh("derived key"))
}

/// Why a data key could not be unwrapped or wrapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WrapError {
    #[error("the age entry is not a valid armored age file")]
    Malformed,
    #[error("none of the identities opens this age entry")]
    NoMatchingIdentity,
    #[error("the age entry does not hold a 32-byte data key")]
    BadKeyLength,
    #[error("{0:?} is not an X25519 age recipient (age1…)")]
    BadRecipient(String),
    #[error("age encryption failed")]
    Encrypt,
}

/// Opens one armored age entry with any of the identities.
pub fn unwrap_data_key(enc: &str, identities: &Identities) -> Result<DataKey, WrapError> {
    let reader = age::armor::ArmoredReader::new(enc.as_bytes());
    let decryptor = age::Decryptor::new(reader).map_err(|_| WrapError::Malformed)?;
    let mut stream = decryptor.decrypt(identities.iter()).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => WrapError::NoMatchingIdentity,
        _ => WrapError::Malformed,
    })?;
    let mut plain = Zeroizing::new(Vec::new());
    stream
        .read_to_end(&mut plain)
        .map_err(|_| WrapError::Malformed)?;
    DataKey::from_bytes(&plain).ok_or(WrapError::BadKeyLength)
}

/// Checks that an age entry is a complete armored age file (BEGIN and END lines, valid
/// base64, a parseable header) without decrypting it: a truncated entry must never be kept.
pub fn check_armor(enc: &str) -> Result<(), WrapError> {
    if !enc.starts_with("-----BEGIN AGE ENCRYPTED FILE-----")
        || !enc.trim_end().ends_with("-----END AGE ENCRYPTED FILE-----")
    {
        return Err(WrapError::Malformed);
    }
    let mut raw = Vec::new();
    age::armor::ArmoredReader::new(enc.as_bytes())
        .read_to_end(&mut raw)
        .map_err(|_| WrapError::Malformed)?;
    age::Decryptor::new(&raw[..]).map_err(|_| WrapError::Malformed)?;
    Ok(())
}

/// Parses an X25519 age recipient.
pub fn parse_recipient(s: &str) -> Result<age::x25519::Recipient, WrapError> {
    age::x25519::Recipient::from_str(s).map_err(|_| WrapError::BadRecipient(s.to_string()))
}

/// Wraps the data key for one recipient as sops stores it: an ASCII-armored age file.
pub fn wrap_data_key(key: &DataKey, recipient: &str) -> Result<String, WrapError> {
    let r = parse_recipient(recipient)?;
    let encryptor = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient))
        .map_err(|_| WrapError::Encrypt)?;
    let mut out = Vec::new();
    let armor = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
        .map_err(|_| WrapError::Encrypt)?;
    let mut w = encryptor
        .wrap_output(armor)
        .map_err(|_| WrapError::Encrypt)?;
    w.write_all(key.bytes()).map_err(|_| WrapError::Encrypt)?;
    w.finish()
        .and_then(|armor| armor.finish())
        .map_err(|_| WrapError::Encrypt)?;
    String::from_utf8(out).map_err(|_| WrapError::Encrypt)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOPS_NIX_SSH: &str = include_str!("../../tests/fixtures/sops/sops-nix/ssh-ed25519-key");

    #[test]
    fn ssh_ed25519_converts_to_the_ssh_to_age_identity() {
        let id = ssh_ed25519_identity(SOPS_NIX_SSH).unwrap();
        assert_eq!(
            id.to_public().to_string(),
            "age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs"
        );
        assert_eq!(
            id.to_string().expose_secret(),
            "AGE-SECRET-KEY-1D88T3T22862F5SWX0V7M7CG9Q5T9FA90CCN9NVLJRCQATZ3WGL3QMR7CN4"
        );
    }

    #[test]
    fn key_files_with_comments_and_errors_without_secrets() {
        let text = "# created: x\n# public key: age1…\nAGE-SECRET-KEY-1NJT5YCS2LWU4V4QAJQ6R4JNU7LXPDX602DZ9NUFANVU5GDTGUWCQ5T59M6\n";
        let mut ids = Identities::new();
        assert_eq!(ids.add_text(text, "test").unwrap(), 1);
        assert_eq!(
            ids.recipients().collect::<Vec<_>>(),
            ["age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw"]
        );
        assert!(!format!("{ids:?}").contains("SECRET"));
        let err = parse_identities("AGE-SECRET-KEY-1NOTAKEY\n").err().unwrap();
        assert_eq!(err, IdentityError::BadAgeLine(1));
        assert!(!err.to_string().contains("NOTAKEY"));
        assert_eq!(
            parse_identities("# nothing\n").err(),
            Some(IdentityError::Empty)
        );
    }

    #[test]
    fn wrap_then_unwrap_round_trips() {
        let mut ids = Identities::new();
        ids.add_text(
            "AGE-SECRET-KEY-1NJT5YCS2LWU4V4QAJQ6R4JNU7LXPDX602DZ9NUFANVU5GDTGUWCQ5T59M6",
            "t",
        )
        .unwrap();
        let key = DataKey::from_bytes(&[9u8; 32]).unwrap();
        let enc = wrap_data_key(
            &key,
            "age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw",
        )
        .unwrap();
        assert!(enc.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));
        assert!(enc.ends_with("-----END AGE ENCRYPTED FILE-----\n"));
        assert_eq!(unwrap_data_key(&enc, &ids).unwrap().bytes(), key.bytes());
        let other = wrap_data_key(
            &key,
            "age17044m9wgakla6pzftf4srtl3h5mcsr85jysgt5fg23zpnta8sfdqhzn452",
        )
        .unwrap();
        assert_eq!(
            unwrap_data_key(&other, &ids).unwrap_err(),
            WrapError::NoMatchingIdentity
        );
        assert!(matches!(
            wrap_data_key(&key, "ssh-ed25519 AAAA"),
            Err(WrapError::BadRecipient(_))
        ));
    }
}
