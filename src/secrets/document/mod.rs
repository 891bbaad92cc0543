//! Reading sops-encrypted files in the layouts sops writes: YAML, JSON, binary (JSON with a
//! `data` key), dotenv (metadata flattened into `sops_…` keys) and, metadata only, INI.
//!
//! One submodule per layout reads the data tree and the raw metadata; `metadata` turns the raw
//! metadata into [`Metadata`] the same way for every layout.

mod dotenv;
mod ini;
mod json;
mod metadata;
mod yaml;

use std::fmt;
use std::path::Path;

use serde_json::Value as Json;

use super::config::KeyGroup;
use super::SecretsError;

pub(crate) use metadata::{metadata_without_age, non_age_kinds};

use dotenv::parse_dotenv;
use ini::parse_ini_metadata;
use json::parse_json;
use metadata::metadata_from_raw;
use yaml::parse_yaml;

/// The file layouts sops knows, chosen from the file name as sops does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Yaml,
    Json,
    /// Any other file: sops stores it as JSON with the whole content under `data`.
    Binary,
    Dotenv,
    Ini,
}

impl Format {
    /// sops's choice of store for a path: `.yaml`/`.yml`, `.json`, `.env`, `.ini`, else binary.
    pub fn for_path(path: &Path) -> Format {
        let name = path.to_string_lossy();
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            Format::Yaml
        } else if name.ends_with(".json") {
            Format::Json
        } else if name.ends_with(".env") {
            Format::Dotenv
        } else if name.ends_with(".ini") {
            Format::Ini
        } else {
            Format::Binary
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
            Format::Binary => "binary",
            Format::Dotenv => "dotenv",
            Format::Ini => "ini",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One age entry of the metadata: the recipient and the data key wrapped for it (an
/// ASCII-armored age file). The wrapped key is ciphertext, but Debug shows only its size.
#[derive(Clone, PartialEq, Eq)]
pub struct AgeStanza {
    pub recipient: String,
    pub enc: String,
}

impl fmt::Debug for AgeStanza {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgeStanza")
            .field("recipient", &self.recipient)
            .field("enc_len", &self.enc.len())
            .finish()
    }
}

/// One key group of a file: its age entries and the identifiers of all its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileKeyGroup {
    pub age: Vec<AgeStanza>,
    /// Every key of the group (age recipients included), as sops identifies them.
    pub keys: KeyGroup,
}

/// The `sops` metadata of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    pub key_groups: Vec<FileKeyGroup>,
    /// True when the file stores `key_groups` (several groups), false for the flat layout.
    pub uses_key_groups: bool,
    pub shamir_threshold: Option<u32>,
    pub lastmodified: String,
    /// The encrypted MAC (`ENC[…]`).
    pub mac: String,
    pub version: String,
    pub mac_only_encrypted: bool,
    /// The whole metadata as read, for verifying that an edit touched only the age entries.
    pub raw: Json,
}

impl Metadata {
    /// The key groups as identifiers only (what `sops updatekeys` compares).
    pub fn key_id_groups(&self) -> Vec<KeyGroup> {
        self.key_groups.iter().map(|g| g.keys.clone()).collect()
    }
}

/// A leaf of the data tree, in document order, as the MAC sees it.
#[derive(Clone, PartialEq)]
pub struct Leaf {
    /// The mapping keys from the root to this leaf (list indices are not part of it).
    pub path: Vec<String>,
    pub value: LeafValue,
}

#[derive(Clone, PartialEq)]
pub enum LeafValue {
    /// A sops-encrypted value (`ENC[AES256_GCM,…]`).
    Encrypted(String),
    /// An unencrypted value as sops's `ToBytes` renders it.
    Plain(Vec<u8>),
}

impl fmt::Debug for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.value {
            LeafValue::Encrypted(_) => "encrypted",
            LeafValue::Plain(_) => "plain",
        };
        write!(f, "Leaf({} {kind})", self.path.join(":"))
    }
}

/// A parsed sops file: its text, metadata and data leaves.
#[derive(Clone)]
pub struct SopsFile {
    pub format: Format,
    pub text: String,
    pub metadata: Metadata,
    /// Data leaves in document order; empty for INI, whose data vmctl does not read.
    pub leaves: Vec<Leaf>,
}

impl fmt::Debug for SopsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SopsFile")
            .field("format", &self.format)
            .field("metadata", &self.metadata)
            .field("leaves", &self.leaves.len())
            .finish()
    }
}

impl SopsFile {
    /// Parses `text` as a sops file in `format`.
    pub fn parse(format: Format, text: &str) -> Result<SopsFile, SecretsError> {
        // sops ends every YAML and dotenv file it writes with a newline; one without was cut
        // short, possibly inside the last value where nothing else would notice. (A cut JSON
        // file never parses, and old sops wrote JSON without the final newline.)
        if matches!(format, Format::Yaml | Format::Dotenv) && !text.ends_with('\n') {
            return Err(syntax(
                format,
                "the file does not end with a newline (truncated?); restore it or, if it is intact, add the newline",
            ));
        }
        let (raw, leaves) = match format {
            Format::Yaml => parse_yaml(text)?,
            Format::Json | Format::Binary => parse_json(text)?,
            Format::Dotenv => parse_dotenv(text)?,
            Format::Ini => (parse_ini_metadata(text)?, Vec::new()),
        };
        let metadata = metadata_from_raw(raw)?;
        Ok(SopsFile {
            format,
            text: text.to_string(),
            metadata,
            leaves,
        })
    }
}

fn syntax(format: Format, message: impl Into<String>) -> SecretsError {
    SecretsError::Syntax {
        format,
        message: message.into(),
    }
}

// Leaf bytes as sops computes them for the MAC, shared by the YAML and JSON layouts.

/// sops's `ToBytes` for booleans.
fn go_bool(b: bool) -> Vec<u8> {
    if b { "True" } else { "False" }.as_bytes().to_vec()
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: shortest round-trip digits, never an exponent.
fn go_float(f: f64) -> Vec<u8> {
    if f.is_nan() {
        return b"NaN".to_vec();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            b"+Inf".to_vec()
        } else {
            b"-Inf".to_vec()
        };
    }
    format!("{f}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_file_name_like_sops() {
        assert_eq!(Format::for_path(Path::new("a/b.yaml")), Format::Yaml);
        assert_eq!(Format::for_path(Path::new("b.yml")), Format::Yaml);
        assert_eq!(Format::for_path(Path::new("b.json")), Format::Json);
        assert_eq!(Format::for_path(Path::new("b.env")), Format::Dotenv);
        assert_eq!(Format::for_path(Path::new("b.ini")), Format::Ini);
        assert_eq!(Format::for_path(Path::new("b.bin")), Format::Binary);
        assert_eq!(Format::for_path(Path::new("id_rsa")), Format::Binary);
    }

    #[test]
    fn go_float_matches_strconv_f_minus_one() {
        assert_eq!(go_float(5432.0), b"5432");
        assert_eq!(go_float(1.5), b"1.5");
        assert_eq!(go_float(1e21), b"1000000000000000000000");
        assert_eq!(go_float(1e-7), b"0.0000001");
    }
}
