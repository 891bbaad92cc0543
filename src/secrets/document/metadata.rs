//! The `sops` metadata of a file, read from its raw tree the same way for every layout.

use serde_json::{Map, Value as Json};

use super::{AgeStanza, FileKeyGroup, Metadata};
use crate::secrets::config::{KeyGroup, KeyKind};
use crate::secrets::SecretsError;

pub(super) fn json_str(v: Option<&Json>) -> String {
    match v {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Number(n)) => n.to_string(),
        Some(Json::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

pub(super) fn entries<'a>(obj: &'a Map<String, Json>, key: &str) -> Vec<&'a Map<String, Json>> {
    match obj.get(key) {
        Some(Json::Array(items)) => items.iter().filter_map(Json::as_object).collect(),
        _ => Vec::new(),
    }
}

const KEY_FIELDS: [&str; 7] = [
    "kms", "gcp_kms", "azure_kv", "hc_vault", "age", "pgp", "hckms",
];

pub(super) fn group_from(obj: &Map<String, Json>) -> Result<FileKeyGroup, SecretsError> {
    let mut keys = KeyGroup::default();
    let mut age = Vec::new();
    for e in entries(obj, "age") {
        let recipient = json_str(e.get("recipient"));
        let enc = json_str(e.get("enc"));
        if recipient.is_empty() || enc.is_empty() {
            return Err(SecretsError::Metadata(
                "an age entry lacks `recipient` or `enc`".into(),
            ));
        }
        keys.age.push(recipient.clone());
        age.push(AgeStanza { recipient, enc });
    }
    // Keys named by one field of their entry.
    for (list, field, into) in [
        ("pgp", "fp", &mut keys.pgp),
        ("kms", "arn", &mut keys.kms),
        ("gcp_kms", "resource_id", &mut keys.gcp_kms),
        ("hckms", "key_id", &mut keys.hckms),
    ] {
        into.extend(entries(obj, list).iter().map(|e| json_str(e.get(field))));
    }
    // Keys named by a URL sops builds from three fields.
    let fields = |e: &Map<String, Json>, names: [&str; 3]| names.map(|n| json_str(e.get(n)));
    for e in entries(obj, "azure_kv") {
        let [url, name, version] = fields(e, ["vault_url", "name", "version"]);
        keys.azure_keyvault
            .push(format!("{url}/keys/{name}/{version}"));
    }
    for e in entries(obj, "hc_vault") {
        let [address, engine, key] = fields(e, ["vault_address", "engine_path", "key_name"]);
        keys.hc_vault
            .push(format!("{address}/v1/{engine}/keys/{key}"));
    }
    Ok(FileKeyGroup { age, keys })
}

pub(super) fn metadata_from_raw(raw: Json) -> Result<Metadata, SecretsError> {
    let obj = raw
        .as_object()
        .ok_or_else(|| SecretsError::Metadata("`sops` is not a mapping".into()))?;
    let flat_has_keys = KEY_FIELDS
        .iter()
        .any(|k| matches!(obj.get(*k), Some(Json::Array(a)) if !a.is_empty()));
    let (key_groups, uses_key_groups) = if flat_has_keys {
        (vec![group_from(obj)?], false)
    } else {
        let groups = entries(obj, "key_groups");
        if groups.is_empty() {
            return Err(SecretsError::Metadata(
                "no keys found in the sops metadata".into(),
            ));
        }
        (
            groups
                .into_iter()
                .map(group_from)
                .collect::<Result<Vec<_>, _>>()?,
            true,
        )
    };
    let lastmodified = json_str(obj.get("lastmodified"));
    if lastmodified.is_empty() {
        return Err(SecretsError::Metadata("`lastmodified` is missing".into()));
    }
    let mac = json_str(obj.get("mac"));
    if mac.is_empty() {
        return Err(SecretsError::Metadata("`mac` is missing".into()));
    }
    let version = json_str(obj.get("version"));
    if version.is_empty() {
        return Err(SecretsError::Metadata(
            "`version` is missing (the file looks truncated)".into(),
        ));
    }
    let shamir_threshold = obj
        .get("shamir_threshold")
        .and_then(Json::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n != 0);
    Ok(Metadata {
        key_groups,
        uses_key_groups,
        shamir_threshold,
        lastmodified,
        mac,
        version,
        mac_only_encrypted: matches!(obj.get("mac_only_encrypted"), Some(Json::Bool(true))),
        raw,
    })
}

/// The metadata with every age entry list removed: what must stay identical across a re-key.
pub(crate) fn metadata_without_age(raw: &Json) -> Json {
    let mut raw = raw.clone();
    if let Some(obj) = raw.as_object_mut() {
        obj.remove("age");
        if let Some(Json::Array(groups)) = obj.get_mut("key_groups") {
            for g in groups {
                if let Some(g) = g.as_object_mut() {
                    g.remove("age");
                }
            }
        }
    }
    raw
}

/// Key kinds present in a group other than age, for messages (`pgp, kms`).
pub(crate) fn non_age_kinds(g: &KeyGroup) -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = g
        .key_ids()
        .iter()
        .filter(|k| k.kind != KeyKind::Age)
        .map(|k| k.kind.as_str())
        .collect();
    kinds.dedup();
    kinds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_key_in_a_group_is_read_as_the_config_names_it() {
        let obj = serde_json::json!({
            "age": [{"recipient": "age1x", "enc": "E"}],
            "pgp": [{"fp": "ABCD"}],
            "kms": [{"arn": "arn:aws:kms:k"}],
            "gcp_kms": [{"resource_id": "projects/p/keys/k"}],
            "hckms": [{"key_id": "tr-1:k"}],
            "azure_kv": [{"vault_url": "https://v.vault.azure.net", "name": "n", "version": "7"}],
            "hc_vault": [{"vault_address": "http://127.0.0.1:8200", "engine_path": "sops", "key_name": "k"}],
        });
        let group = group_from(obj.as_object().unwrap()).unwrap();
        assert_eq!(group.age.len(), 1);
        let k = &group.keys;
        assert_eq!(
            (&k.age, &k.pgp, &k.kms, &k.gcp_kms, &k.hckms),
            (
                &vec!["age1x".to_string()],
                &vec!["ABCD".to_string()],
                &vec!["arn:aws:kms:k".to_string()],
                &vec!["projects/p/keys/k".to_string()],
                &vec!["tr-1:k".to_string()]
            )
        );
        assert_eq!(k.azure_keyvault, ["https://v.vault.azure.net/keys/n/7"]);
        assert_eq!(k.hc_vault, ["http://127.0.0.1:8200/v1/sops/keys/k"]);
    }
}
