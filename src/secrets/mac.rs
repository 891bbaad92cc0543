//! The sops MAC: SHA-512 over the data leaves in document order (comments and nulls excluded),
//! uppercase hex, stored encrypted with the data key and AAD = `lastmodified`.

use sha2::{Digest, Sha512};

use super::cipher;
use super::document::{LeafValue, SopsFile};
use super::{DataKey, SecretsError};

/// The first bytes hashed when `mac_only_encrypted` is set (sops's
/// `MACOnlyEncryptedInitialization`, the SHA-256 of "sops").
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// Computes the MAC of the file's data by decrypting every encrypted leaf.
pub fn compute(file: &SopsFile, key: &DataKey) -> Result<String, SecretsError> {
    let mut hash = Sha512::new();
    let only_encrypted = file.metadata.mac_only_encrypted;
    if only_encrypted {
        hash.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    for leaf in &file.leaves {
        match &leaf.value {
            LeafValue::Encrypted(s) => {
                let aad = format!("{}:", leaf.path.join(":"));
                let (plain, kind) =
                    cipher::decrypt_str(s, key, &aad).map_err(|e| SecretsError::Value {
                        path: leaf.path.join(":"),
                        reason: e.to_string(),
                    })?;
                if kind != "comment" {
                    hash.update(&plain[..]);
                }
            }
            LeafValue::Plain(bytes) => {
                if !only_encrypted {
                    hash.update(bytes);
                }
            }
        }
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02X}")).collect())
}

/// Checks the file's stored MAC against its data.
pub fn verify(file: &SopsFile, key: &DataKey) -> Result<(), SecretsError> {
    let stored = &file.metadata.mac;
    if stored.is_empty() {
        return Err(SecretsError::Metadata("the MAC is missing".into()));
    }
    let (plain, _) = cipher::decrypt_str(stored, key, &file.metadata.lastmodified)
        .map_err(|_| SecretsError::MacMismatch)?;
    let computed = compute(file, key)?;
    if plain[..] == *computed.as_bytes() {
        Ok(())
    } else {
        Err(SecretsError::MacMismatch)
    }
}
