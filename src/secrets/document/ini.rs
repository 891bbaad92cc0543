//! INI sops files, metadata only: the `[sops]` section, flattened as in dotenv.

use serde_json::Value as Json;

use super::dotenv::unflatten;
use crate::secrets::SecretsError;

/// The `[sops]` section of an INI file (keys flattened as in dotenv, without the prefix).
pub(super) fn parse_ini_metadata(text: &str) -> Result<Json, SecretsError> {
    let mut in_sops = false;
    let mut flat = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') && t.ends_with(']') {
            in_sops = t == "[sops]";
            continue;
        }
        if !in_sops || t.is_empty() || t.starts_with(';') || t.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = t.split_once('=') {
            flat.push((k.trim().to_string(), v.trim().replace("\\n", "\n")));
        }
    }
    if flat.is_empty() {
        return Err(SecretsError::NotSops);
    }
    unflatten(&flat)
}
