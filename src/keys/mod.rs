//! SSH ed25519 host keys and their age equivalents: parsing, conversion, generation, fingerprints.
//!
//! Everything here is pure: callers hand in text (and an RNG for generation) and get values back.
//! The OpenSSH formats (public key lines and blobs, `openssh-key-v1` private keys, SHA256
//! fingerprints, generation) are RustCrypto's `ssh-key`; what is ours is reading the lines
//! people paste (known_hosts host fields, authorized_keys options) and the conversion to age,
//! which matches Mic92/ssh-to-age bit for bit: the public key's Edwards point becomes its
//! Montgomery form, encoded as classic Bech32 (not Bech32m, which age rejects) with hrp `age`;
//! the private key's seed is hashed with SHA-512 and the first 32 bytes (unclamped) become the
//! `AGE-SECRET-KEY-1…` identity.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bech32::{Bech32, Hrp};
use curve25519_dalek::edwards::CompressedEdwardsY;
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha512};
use ssh_key::private::{Ed25519Keypair, KeypairData};
use ssh_key::public::{Ed25519PublicKey, KeyData};
use ssh_key::{Algorithm, HashAlg, LineEnding};

/// The PEM label of OpenSSH private key files.
pub const PRIVATE_KEY_PEM_LABEL: &str = "OPENSSH PRIVATE KEY";

/// The key type name OpenSSH uses for ed25519 keys.
pub const ED25519: &str = "ssh-ed25519";

/// Why a key could not be read or converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("no SSH public key found in the line; expected `ssh-ed25519 AAAA… [comment]`")]
    NoKey,
    #[error("`{0}` keys cannot become age recipients; only ssh-ed25519 keys can")]
    UnsupportedType(String),
    #[error("the key's base64 is invalid: {0}")]
    Base64(String),
    #[error("the key blob is malformed: {0}")]
    Malformed(String),
    #[error("the key says `{text}` but its blob holds a `{blob}` key")]
    TypeMismatch { text: String, blob: String },
    #[error("the public key is not a valid ed25519 point")]
    InvalidPoint,
    #[error(
        "not an OpenSSH private key (expected a `-----BEGIN {PRIVATE_KEY_PEM_LABEL}-----` block)"
    )]
    NotOpenSshPrivateKey,
    #[error("the private key is encrypted with a passphrase (cipher `{0}`); decrypt a copy with `ssh-keygen -p -N \"\" -f COPY` first")]
    Encrypted(String),
    #[error("the private key file holds {0} keys; expected exactly one")]
    KeyCount(u32),
    #[error("the private key's check integers differ or its halves do not match (corrupt file or wrong passphrase)")]
    CheckInt,
    #[error("the private key's public half does not match its seed")]
    Inconsistent,
    #[error("`{0}` is not an age recipient (expected `age1…` in Bech32)")]
    NotAgeRecipient(String),
}

/// An ssh-ed25519 public key with its comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub key: [u8; 32],
    /// The text after the base64 blob, if any (e.g. `root@doc1`).
    pub comment: Option<String>,
}

/// What one line of an authorized_keys / known_hosts / `ssh-keyscan` file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLine {
    /// Blank line or `#` comment.
    Empty,
    /// An ssh-ed25519 key; `hosts` is the known_hosts host field (or authorized_keys options)
    /// that precedes the key type, when there is one.
    Ed25519 {
        hosts: Option<String>,
        key: PublicKey,
    },
    /// A key of another type (`ssh-rsa`, `ecdsa-sha2-nistp256`, …), which has no age form.
    Other { hosts: Option<String>, kind: String },
}

fn is_key_type(token: &str) -> bool {
    token == ED25519
        || token == "ssh-rsa"
        || token == "ssh-dss"
        || token.starts_with("ecdsa-sha2-")
        || token.starts_with("sk-")
        || token.ends_with("-cert-v01@openssh.com")
}

/// Decodes an SSH public key blob (the base64 field, decoded) with `ssh-key`: the algorithm
/// it holds and, for ed25519, the key.
pub fn decode_blob(blob: &[u8]) -> Result<(String, Option<[u8; 32]>), KeyError> {
    let key = ssh_key::PublicKey::from_bytes(blob).map_err(|e| match e {
        ssh_key::Error::TrailingData { .. } => {
            KeyError::Malformed("trailing bytes after the key".into())
        }
        e => KeyError::Malformed(e.to_string()),
    })?;
    let ed = key.key_data().ed25519().map(|k| k.0);
    Ok((key.algorithm().as_str().to_string(), ed))
}

/// Reads one line of an authorized_keys, known_hosts or `ssh-keyscan` output file.
pub fn parse_key_line(line: &str) -> Result<KeyLine, KeyError> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(KeyLine::Empty);
    }
    let tokens: Vec<&str> = trimmed.split_whitespace().collect();
    let Some(ty_at) = tokens.iter().position(|t| is_key_type(t)) else {
        return Err(KeyError::NoKey);
    };
    let hosts = (ty_at > 0).then(|| tokens[..ty_at].join(" "));
    let kind = tokens[ty_at];
    if kind != ED25519 {
        return Ok(KeyLine::Other {
            hosts,
            kind: kind.to_string(),
        });
    }
    let b64 = tokens.get(ty_at + 1).ok_or(KeyError::NoKey)?;
    let blob = STANDARD
        .decode(b64)
        .map_err(|e| KeyError::Base64(e.to_string()))?;
    let (algorithm, key) = decode_blob(&blob)?;
    let key = key.ok_or(KeyError::TypeMismatch {
        text: ED25519.into(),
        blob: algorithm,
    })?;
    let rest = &tokens[ty_at + 2..];
    let comment = (!rest.is_empty()).then(|| rest.join(" "));
    Ok(KeyLine::Ed25519 {
        hosts,
        key: PublicKey { key, comment },
    })
}

impl PublicKey {
    /// Parses a single OpenSSH public key line (`ssh-ed25519 AAAA… [comment]`, optionally
    /// preceded by a known_hosts host field or authorized_keys options).
    pub fn parse(line: &str) -> Result<Self, KeyError> {
        match parse_key_line(line)? {
            KeyLine::Ed25519 { key, .. } => Ok(key),
            KeyLine::Other { kind, .. } => Err(KeyError::UnsupportedType(kind)),
            KeyLine::Empty => Err(KeyError::NoKey),
        }
    }

    fn ssh(&self) -> ssh_key::PublicKey {
        ssh_key::PublicKey::new(
            KeyData::Ed25519(Ed25519PublicKey(self.key)),
            self.comment.clone().unwrap_or_default(),
        )
    }

    /// The SSH wire encoding of the key (what the base64 field holds).
    pub fn blob(&self) -> Vec<u8> {
        self.ssh()
            .to_bytes()
            .expect("an ed25519 key always encodes")
    }

    /// The key as an OpenSSH public key line, without a trailing newline.
    pub fn to_openssh(&self) -> String {
        self.ssh()
            .to_openssh()
            .expect("an ed25519 key always encodes")
    }

    /// `SHA256:…` as `ssh-keygen -l` prints it (unpadded base64 of the blob's SHA-256).
    pub fn fingerprint(&self) -> String {
        self.ssh().fingerprint(HashAlg::Sha256).to_string()
    }

    /// The whole line `ssh-keygen -lf FILE` prints: `256 SHA256:… comment (ED25519)`.
    pub fn fingerprint_line(&self) -> String {
        let comment = self
            .comment
            .as_deref()
            .filter(|c| !c.is_empty())
            .unwrap_or("no comment");
        format!("256 {} {comment} (ED25519)", self.fingerprint())
    }

    /// The age recipient (`age1…`) ssh-to-age derives from this key.
    pub fn age_recipient(&self) -> Result<String, KeyError> {
        let point = CompressedEdwardsY(self.key)
            .decompress()
            .ok_or(KeyError::InvalidPoint)?;
        Ok(bech32_lower("age", point.to_montgomery().as_bytes()))
    }
}

/// An unencrypted OpenSSH ed25519 private key (`ssh-key`'s, which zeroes its secret on drop
/// and keeps the check integer it was read or generated with).
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey {
    inner: ssh_key::PrivateKey,
    pub public: PublicKey,
}

impl std::fmt::Debug for PrivateKey {
    // The seed never reaches logs or panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    fn from_inner(inner: ssh_key::PrivateKey) -> Result<Self, KeyError> {
        let KeypairData::Ed25519(pair) = inner.key_data() else {
            return Err(KeyError::UnsupportedType(
                inner.algorithm().as_str().to_string(),
            ));
        };
        // The stored public half must be the one the seed derives (ssh-key keeps both).
        let derived = Ed25519Keypair::from_seed(&pair.private.to_bytes());
        if derived.public != pair.public {
            return Err(KeyError::Inconsistent);
        }
        let comment = inner.comment();
        let public = PublicKey {
            key: pair.public.0,
            comment: (!comment.is_empty()).then(|| comment.to_string()),
        };
        Ok(PrivateKey { inner, public })
    }

    /// Derives the key pair from a 32-byte ed25519 seed (RFC 8032 secret key).
    pub fn from_seed(seed: [u8; 32], comment: Option<String>) -> Self {
        let pair = KeypairData::Ed25519(Ed25519Keypair::from_seed(&seed));
        let inner = ssh_key::PrivateKey::new(pair, comment.unwrap_or_default())
            .expect("an ed25519 key pair is always valid");
        PrivateKey::from_inner(inner).expect("derived from its own seed")
    }

    /// Generates a new key pair from `rng` (use `rand_core::OsRng` outside tests), with a random
    /// check integer as `ssh-keygen` writes.
    pub fn generate(rng: &mut impl CryptoRngCore, comment: Option<String>) -> Self {
        let mut inner = ssh_key::PrivateKey::random(rng, Algorithm::Ed25519)
            .expect("ed25519 generation cannot fail");
        inner.set_comment(comment.unwrap_or_default());
        PrivateKey::from_inner(inner).expect("a generated key is consistent")
    }

    /// Reads an OpenSSH private key file (`-----BEGIN OPENSSH PRIVATE KEY-----`).
    pub fn parse_openssh(text: &str) -> Result<Self, KeyError> {
        let begin = format!("-----BEGIN {PRIVATE_KEY_PEM_LABEL}-----");
        let Some(at) = text.find(&begin) else {
            return Err(KeyError::NotOpenSshPrivateKey);
        };
        let inner = ssh_key::PrivateKey::from_openssh(&text[at..]).map_err(|e| match e {
            ssh_key::Error::Crypto => KeyError::CheckInt,
            // ssh-key does not re-export its encoding errors: tell them apart by their text.
            ssh_key::Error::Encoding(e) if e.to_string().to_lowercase().contains("pem") => {
                KeyError::NotOpenSshPrivateKey
            }
            ssh_key::Error::Encoding(e) if e.to_string().to_lowercase().contains("base64") => {
                KeyError::Base64(e.to_string())
            }
            e => KeyError::Malformed(e.to_string()),
        })?;
        if inner.is_encrypted() {
            return Err(KeyError::Encrypted(inner.cipher().as_str().to_string()));
        }
        PrivateKey::from_inner(inner)
    }

    /// The key in the format `ssh-keygen -t ed25519` writes, PEM-armored `openssh-key-v1`
    /// (70-column base64, LF line endings), with the check integer it was read or generated
    /// with.
    pub fn to_openssh(&self) -> zeroize::Zeroizing<String> {
        self.inner
            .to_openssh(LineEnding::LF)
            .expect("an unencrypted ed25519 key always encodes")
    }

    /// The `AGE-SECRET-KEY-1…` identity ssh-to-age derives from this key.
    pub fn age_identity(&self) -> String {
        let KeypairData::Ed25519(pair) = self.inner.key_data() else {
            unreachable!("only ed25519 keys are constructed")
        };
        let seed = zeroize::Zeroizing::new(pair.private.to_bytes());
        let mut h = Sha512::digest(*seed);
        let identity = bech32_lower("age-secret-key-", &h[..32]).to_uppercase();
        zeroize::Zeroize::zeroize(h.as_mut_slice());
        identity
    }
}

/// A freshly generated host key pair, ready to be written as `ssh_host_ed25519_key{,.pub}`.
#[derive(Clone)]
pub struct HostKeyPair {
    /// The private key file's content (PEM, ends with a newline).
    pub private_openssh: zeroize::Zeroizing<String>,
    /// The public key file's content (one line, ends with a newline).
    pub public_openssh: String,
    pub public: PublicKey,
    /// `SHA256:…`.
    pub fingerprint: String,
    pub age_recipient: String,
}

impl std::fmt::Debug for HostKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostKeyPair")
            .field("public", &self.public_openssh)
            .field("fingerprint", &self.fingerprint)
            .field("age_recipient", &self.age_recipient)
            .finish_non_exhaustive()
    }
}

/// Generates a host key pair the way `ssh-keygen -t ed25519 -N "" -C COMMENT` would.
pub fn generate_host_key(rng: &mut impl CryptoRngCore, comment: Option<String>) -> HostKeyPair {
    let key = PrivateKey::generate(rng, comment);
    let age_recipient = key
        .public
        .age_recipient()
        .expect("a point computed from a scalar always decompresses");
    HostKeyPair {
        private_openssh: key.to_openssh(),
        public_openssh: format!("{}\n", key.public.to_openssh()),
        fingerprint: key.public.fingerprint(),
        public: key.public.clone(),
        age_recipient,
    }
}

/// Checks that `s` is an age X25519 recipient: lowercase classic Bech32 with hrp `age` holding
/// 32 bytes.
pub fn validate_age_recipient(s: &str) -> Result<(), KeyError> {
    let bad = || KeyError::NotAgeRecipient(s.to_string());
    if !s.starts_with("age1") || s.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(bad());
    }
    let checked =
        bech32::primitives::decode::CheckedHrpstring::new::<Bech32>(s).map_err(|_| bad())?;
    if checked.hrp().as_str() != "age" || checked.byte_iter().count() != 32 {
        return Err(bad());
    }
    Ok(())
}

fn bech32_lower(hrp: &str, data: &[u8]) -> String {
    let hrp = Hrp::parse(hrp).expect("static hrp is valid");
    bech32::encode_lower::<Bech32>(hrp, data).expect("age keys are far below Bech32's length limit")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOPS_NIX_PUB: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBI1+Q+ntzANebtnicCiAY29uqLGWOaOGLEa8bUqOVmS";

    #[test]
    fn known_hosts_and_authorized_keys_lines_parse() {
        let k = PublicKey::parse("doc1,10.0.0.4 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMlLRoQ0HoeSXd9Rbb9WB51hQUGkEPeKZvmAsJFjg/wH root@doc1").unwrap();
        assert_eq!(k.comment.as_deref(), Some("root@doc1"));
        let line = parse_key_line("example.org ssh-rsa AAAAB3Nza").unwrap();
        assert!(matches!(line, KeyLine::Other { ref kind, .. } if kind == "ssh-rsa"));
        assert_eq!(parse_key_line("  # comment").unwrap(), KeyLine::Empty);
        assert_eq!(PublicKey::parse("hello world"), Err(KeyError::NoKey));
    }

    #[test]
    fn a_blob_of_another_type_is_refused() {
        // An ssh-ed25519 label over an ssh-rsa blob.
        let err = PublicKey::parse("ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ").unwrap_err();
        assert!(matches!(
            err,
            KeyError::TypeMismatch { .. } | KeyError::Malformed(_) | KeyError::Base64(_)
        ));
    }

    #[test]
    fn round_trips_the_openssh_line() {
        let k = PublicKey::parse(SOPS_NIX_PUB).unwrap();
        assert_eq!(k.to_openssh(), SOPS_NIX_PUB);
    }

    #[test]
    fn recipients_validate() {
        validate_age_recipient("age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs")
            .unwrap();
        assert!(validate_age_recipient(
            "age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrt"
        )
        .is_err());
        assert!(validate_age_recipient("ssh-ed25519").is_err());
    }
}
