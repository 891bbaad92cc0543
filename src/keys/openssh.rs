//! The OpenSSH wire formats for ed25519 keys: the public key blob and the `openssh-key-v1`
//! private key container (PROTOCOL.key in the OpenSSH sources).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::{KeyError, PublicKey, ED25519};

pub const PRIVATE_KEY_PEM_LABEL: &str = "OPENSSH PRIVATE KEY";
const MAGIC: &[u8] = b"openssh-key-v1\0";
/// `ssh-keygen` wraps the base64 body at 70 columns.
const PEM_WIDTH: usize = 70;
/// The block size of the "none" cipher, which the private section is padded to.
const BLOCK: usize = 8;

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Result<u32, KeyError> {
        if self.buf.len() < 4 {
            return Err(KeyError::Malformed("truncated integer".into()));
        }
        let (head, rest) = self.buf.split_at(4);
        self.buf = rest;
        Ok(u32::from_be_bytes(head.try_into().expect("4 bytes")))
    }

    fn string(&mut self) -> Result<&'a [u8], KeyError> {
        let len = self.u32()? as usize;
        if self.buf.len() < len {
            return Err(KeyError::Malformed("truncated string".into()));
        }
        let (head, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(head)
    }
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// `string "ssh-ed25519" || string key`.
pub fn public_blob(key: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(51);
    put_string(&mut out, ED25519.as_bytes());
    put_string(&mut out, key);
    out
}

pub fn parse_public_blob(blob: &[u8]) -> Result<[u8; 32], KeyError> {
    let mut r = Reader { buf: blob };
    let ty = r.string()?;
    if ty != ED25519.as_bytes() {
        return Err(KeyError::TypeMismatch {
            text: ED25519.into(),
            blob: String::from_utf8_lossy(ty).into_owned(),
        });
    }
    let key = r.string()?;
    if !r.buf.is_empty() {
        return Err(KeyError::Malformed("trailing bytes after the key".into()));
    }
    key.try_into()
        .map_err(|_| KeyError::Malformed(format!("ed25519 key of {} bytes", key.len())))
}

pub struct ParsedPrivate {
    pub seed: [u8; 32],
    pub public: [u8; 32],
    pub comment: Option<String>,
}

pub fn parse_private(text: &str) -> Result<ParsedPrivate, KeyError> {
    let begin = format!("-----BEGIN {PRIVATE_KEY_PEM_LABEL}-----");
    let end = format!("-----END {PRIVATE_KEY_PEM_LABEL}-----");
    let start = text.find(&begin).ok_or(KeyError::NotOpenSshPrivateKey)? + begin.len();
    let stop = text[start..]
        .find(&end)
        .ok_or(KeyError::NotOpenSshPrivateKey)?
        + start;
    let body: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let raw = STANDARD
        .decode(body)
        .map_err(|e| KeyError::Base64(e.to_string()))?;
    let rest = raw
        .strip_prefix(MAGIC)
        .ok_or(KeyError::NotOpenSshPrivateKey)?;
    let mut r = Reader { buf: rest };
    let cipher = r.string()?;
    let kdf = r.string()?;
    let _kdf_options = r.string()?;
    if cipher != b"none" || kdf != b"none" {
        return Err(KeyError::Encrypted(
            String::from_utf8_lossy(cipher).into_owned(),
        ));
    }
    let n = r.u32()?;
    if n != 1 {
        return Err(KeyError::KeyCount(n));
    }
    let outer_public = parse_public_blob(r.string()?)?;
    let mut p = Reader { buf: r.string()? };
    if p.u32()? != p.u32()? {
        return Err(KeyError::CheckInt);
    }
    let ty = p.string()?;
    if ty != ED25519.as_bytes() {
        return Err(KeyError::UnsupportedType(
            String::from_utf8_lossy(ty).into_owned(),
        ));
    }
    let public: [u8; 32] = p
        .string()?
        .try_into()
        .map_err(|_| KeyError::Malformed("ed25519 public key is not 32 bytes".into()))?;
    let secret = p.string()?;
    if secret.len() != 64 || secret[32..] != public || public != outer_public {
        return Err(KeyError::Inconsistent);
    }
    let comment = String::from_utf8_lossy(p.string()?).into_owned();
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&secret[..32]);
    Ok(ParsedPrivate {
        seed,
        public,
        comment: (!comment.is_empty()).then_some(comment),
    })
}

pub fn encode_private(seed: &[u8; 32], public: &PublicKey, check: u32) -> String {
    let mut section = Vec::with_capacity(160);
    section.extend_from_slice(&check.to_be_bytes());
    section.extend_from_slice(&check.to_be_bytes());
    put_string(&mut section, ED25519.as_bytes());
    put_string(&mut section, &public.key);
    let mut secret = Vec::with_capacity(64);
    secret.extend_from_slice(seed);
    secret.extend_from_slice(&public.key);
    put_string(&mut section, &secret);
    put_string(
        &mut section,
        public.comment.as_deref().unwrap_or("").as_bytes(),
    );
    let mut pad = 1u8;
    while section.len() % BLOCK != 0 {
        section.push(pad);
        pad += 1;
    }

    let mut raw = Vec::with_capacity(300);
    raw.extend_from_slice(MAGIC);
    put_string(&mut raw, b"none");
    put_string(&mut raw, b"none");
    put_string(&mut raw, b"");
    raw.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut raw, &public_blob(&public.key));
    put_string(&mut raw, &section);

    let b64 = STANDARD.encode(raw);
    let mut out = format!("-----BEGIN {PRIVATE_KEY_PEM_LABEL}-----\n");
    for chunk in b64.as_bytes().chunks(PEM_WIDTH) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ascii"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {PRIVATE_KEY_PEM_LABEL}-----\n"));
    out
}
