//! sops value encryption: parsing `ENC[AES256_GCM,…]` and AES-256-GCM decryption with a 32-byte IV.

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::AesGcm;
use base64::Engine as _;
use zeroize::Zeroizing;

use super::DataKey;

/// AES-256-GCM with the 32-byte nonce sops uses (GCM hashes a non-96-bit IV into its counter).
type SopsGcm = AesGcm<Aes256, U32>;

/// The prefix every sops-encrypted value starts with.
pub const ENC_PREFIX: &str = "ENC[AES256_GCM,";

/// Why a value could not be decrypted. Never carries plaintext or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error("the encrypted value is malformed ({0})")]
    Malformed(&'static str),
    #[error("the encrypted value does not authenticate with this data key (tampered value or wrong key)")]
    Authentication,
}

/// The parts of an `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` value.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptedValue {
    pub data: Vec<u8>,
    pub iv: Vec<u8>,
    pub tag: Vec<u8>,
    pub kind: String,
}

impl std::fmt::Debug for EncryptedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedValue")
            .field("len", &self.data.len())
            .field("type", &self.kind)
            .finish()
    }
}

/// True when `s` looks like a sops-encrypted value.
pub fn is_encrypted(s: &str) -> bool {
    s.starts_with(ENC_PREFIX) && s.ends_with(']')
}

/// Parses `ENC[AES256_GCM,data:B64,iv:B64,tag:B64,type:T]`.
pub fn parse(s: &str) -> Result<EncryptedValue, CipherError> {
    let inner = s
        .strip_prefix(ENC_PREFIX)
        .and_then(|r| r.strip_suffix(']'))
        .ok_or(CipherError::Malformed("not an ENC[AES256_GCM,…] value"))?;
    let (mut data, mut iv, mut tag, mut kind) = (None, None, None, None);
    for part in inner.split(',') {
        let (k, v) = part
            .split_once(':')
            .ok_or(CipherError::Malformed("field without ':'"))?;
        match k {
            "data" => data = Some(v),
            "iv" => iv = Some(v),
            "tag" => tag = Some(v),
            "type" => kind = Some(v),
            _ => return Err(CipherError::Malformed("unknown field")),
        }
    }
    let b64 = |v: Option<&str>, what: &'static str| -> Result<Vec<u8>, CipherError> {
        base64::engine::general_purpose::STANDARD
            .decode(v.ok_or(CipherError::Malformed(what))?)
            .map_err(|_| CipherError::Malformed("invalid base64"))
    };
    let value = EncryptedValue {
        data: b64(data, "missing data")?,
        iv: b64(iv, "missing iv")?,
        tag: b64(tag, "missing tag")?,
        kind: kind
            .ok_or(CipherError::Malformed("missing type"))?
            .to_string(),
    };
    if value.iv.len() != 32 {
        return Err(CipherError::Malformed("iv is not 32 bytes"));
    }
    if value.tag.len() != 16 {
        return Err(CipherError::Malformed("tag is not 16 bytes"));
    }
    Ok(value)
}

/// Decrypts a parsed value with the data key and the additional data sops bound it to
/// (the path keys joined by `:` plus a trailing `:`, or `lastmodified` for the MAC).
pub fn decrypt(
    value: &EncryptedValue,
    key: &DataKey,
    aad: &str,
) -> Result<Zeroizing<Vec<u8>>, CipherError> {
    let cipher = SopsGcm::new_from_slice(key.bytes()).map_err(|_| CipherError::Authentication)?;
    let mut msg = Vec::with_capacity(value.data.len() + value.tag.len());
    msg.extend_from_slice(&value.data);
    msg.extend_from_slice(&value.tag);
    let nonce = aes_gcm::aead::generic_array::GenericArray::from_slice(&value.iv);
    cipher
        .decrypt(
            nonce,
            Payload {
                msg: &msg,
                aad: aad.as_bytes(),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CipherError::Authentication)
}

/// Encrypts `plain` as sops does: AES-256-GCM under the data key with a fresh random 32-byte
/// IV and `aad`, written as `ENC[AES256_GCM,data:…,iv:…,tag:…,type:KIND]`.
pub fn encrypt(
    plain: &[u8],
    kind: &str,
    key: &DataKey,
    aad: &str,
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<String, CipherError> {
    let cipher = SopsGcm::new_from_slice(key.bytes()).map_err(|_| CipherError::Authentication)?;
    let mut iv = [0u8; 32];
    rng.fill_bytes(&mut iv);
    let nonce = aes_gcm::aead::generic_array::GenericArray::from_slice(&iv);
    let sealed = cipher
        .encrypt(
            nonce,
            Payload {
                msg: plain,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| CipherError::Authentication)?;
    let (data, tag) = sealed.split_at(sealed.len() - 16);
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    Ok(format!(
        "{ENC_PREFIX}data:{},iv:{},tag:{},type:{kind}]",
        b64(data),
        b64(&iv),
        b64(tag)
    ))
}

/// Parses and decrypts `s` in one step.
pub fn decrypt_str(
    s: &str,
    key: &DataKey,
    aad: &str,
) -> Result<(Zeroizing<Vec<u8>>, String), CipherError> {
    let v = parse(s)?;
    let plain = decrypt(&v, key, aad)?;
    Ok((plain, v.kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_sops_value_shape() {
        let v = parse("ENC[AES256_GCM,data:2mP+IAdczoEr0g==,iv:voX4IQemcgt0O97oLExy5r2V85nn687cIyWmHNDhUag=,tag:R97qy4fKneU7D9UFhXNvgA==,type:str]").unwrap();
        assert_eq!(v.kind, "str");
        assert_eq!(v.data.len(), 10);
        assert!(parse("ENC[AES256_GCM,data:xx]").is_err());
        assert!(parse("plain").is_err());
        assert!(!format!("{v:?}").contains("2mP"));
    }

    #[test]
    fn encrypt_then_decrypt_round_trips_and_binds_the_aad() {
        let key = DataKey::from_bytes(&[9u8; 32]).unwrap();
        let mut rng = rand_core::OsRng;
        let s = encrypt(b"hunter2", "str", &key, "db:password:", &mut rng).unwrap();
        let (plain, kind) = decrypt_str(&s, &key, "db:password:").unwrap();
        assert_eq!((&plain[..], kind.as_str()), (&b"hunter2"[..], "str"));
        assert!(decrypt_str(&s, &key, "db:other:").is_err());
        // A fresh IV each time: the same value never encrypts to the same text.
        assert_ne!(
            s,
            encrypt(b"hunter2", "str", &key, "db:password:", &mut rng).unwrap()
        );
    }

    #[test]
    fn wrong_key_fails_authentication() {
        let v = parse("ENC[AES256_GCM,data:2mP+IAdczoEr0g==,iv:voX4IQemcgt0O97oLExy5r2V85nn687cIyWmHNDhUag=,tag:R97qy4fKneU7D9UFhXNvgA==,type:str]").unwrap();
        let key = DataKey::from_bytes(&[7u8; 32]).unwrap();
        assert_eq!(
            decrypt(&v, &key, "test_key:").unwrap_err(),
            CipherError::Authentication
        );
    }
}
