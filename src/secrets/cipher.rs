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
    fn wrong_key_fails_authentication() {
        let v = parse("ENC[AES256_GCM,data:2mP+IAdczoEr0g==,iv:voX4IQemcgt0O97oLExy5r2V85nn687cIyWmHNDhUag=,tag:R97qy4fKneU7D9UFhXNvgA==,type:str]").unwrap();
        let key = DataKey::from_bytes(&[7u8; 32]).unwrap();
        assert_eq!(
            decrypt(&v, &key, "test_key:").unwrap_err(),
            CipherError::Authentication
        );
    }
}
