//! sops-encrypted secrets, natively: file layouts, metadata, data-key unwrap/rewrap with the
//! `age` crate, MAC verification, `.sops.yaml` creation rules and the re-key planner.
//!
//! Everything here is pure (text and values in, values out). Reading files, discovering
//! identities and running the `sops` binary live in `exec::sops`.
//!
//! Secret values, data keys and identities never appear in errors or `Debug` output.

use std::fmt;

use zeroize::Zeroizing;

pub mod check;
pub mod cipher;
pub mod config;
pub mod document;
pub mod identity;
pub mod json;
pub mod layout;
pub mod mac;
pub mod rekey;
pub mod rotate;
pub mod sops_yaml;

pub use config::{CreationRule, KeyGroup, KeyId, KeyKind, SopsConfig};
pub use document::{AgeStanza, Format, Metadata, SopsFile};
pub use identity::Identities;

/// A file's 32-byte data key. Zeroed on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    /// The key from exactly 32 bytes.
    pub fn from_bytes(b: &[u8]) -> Option<DataKey> {
        let arr: [u8; 32] = b.try_into().ok()?;
        Some(DataKey(Zeroizing::new(arr)))
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for DataKey {
    fn eq(&self, other: &Self) -> bool {
        // Not secret-dependent timing in any way that matters here: both keys are ours.
        self.0[..] == other.0[..]
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// Why a sops file cannot be read, verified or re-keyed natively.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    #[error("not a valid sops {format} file: {message}")]
    Syntax { format: Format, message: String },
    #[error("no sops metadata found: the file is not encrypted with sops")]
    NotSops,
    #[error("the sops metadata is unreadable: {0}")]
    Metadata(String),
    /// The layout is valid for sops but not one vmctl edits natively; sops handles it.
    #[error("{0}")]
    UnsupportedLayout(String),
    #[error("no available identity opens the file (its age recipients: {recipients}); provide the matching key with --identity FILE or SOPS_AGE_KEY_FILE")]
    NoIdentity { recipients: String },
    #[error("the data key is unusable: {0}")]
    DataKey(String),
    #[error("value at `{path}` does not decrypt with the data key: {reason}")]
    Value { path: String, reason: String },
    #[error("MAC mismatch: the file's contents do not match its MAC (tampered or corrupted); restore it from version control")]
    MacMismatch,
    #[error("the re-keyed text failed verification ({0}); nothing was written")]
    Verification(String),
    #[error("{0}")]
    Recipient(String),
}
