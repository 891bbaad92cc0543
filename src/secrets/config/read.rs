//! Reading one creation rule from YAML as sops's `config.go` does: keys as comma-separated
//! strings or lists, `key_groups` with `merge`, every master key type sops knows.

use crate::yaml::value::Value;

use super::{go_regex, CreationRule, KeyGroup, KeyKind};

pub(super) fn opt_string(rule: &Value, key: &str) -> Result<Option<String>, String> {
    match rule.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}

/// A field that sops accepts as a comma-separated string or a list of strings.
pub(super) fn string_or_list(v: Option<&Value>, key: &str) -> Result<Vec<String>, String> {
    let items: Vec<String> = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => Err(format!("`{key}` list items must be strings")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(format!("`{key}` must be a string or a list of strings")),
    };
    Ok(split_commas(&items))
}

pub(super) fn split_commas(items: &[String]) -> Vec<String> {
    items
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

pub(super) fn pgp_fp(s: &str) -> String {
    s.replace(' ', "")
}

pub(super) fn parse_rule(index: usize, rule: &Value) -> Result<CreationRule, String> {
    if !rule.is_mapping() {
        return Err("must be a mapping".into());
    }
    let path_regex = opt_string(rule, "path_regex")?;
    let regex = match &path_regex {
        None => None,
        Some(r) => Some(regex::Regex::new(&go_regex(r)).map_err(|e| {
            // The regex crate's message draws the pattern over several lines: keep its
            // last line, the reason.
            let e = e.to_string();
            let why = e
                .lines()
                .last()
                .unwrap_or_default()
                .trim_start_matches("error: ");
            format!("path_regex {r:?} does not compile ({why})")
        })?),
    };
    let shamir_threshold = match rule.get("shamir_threshold") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or("`shamir_threshold` must be a non-negative integer")?,
        ),
        Some(_) => return Err("`shamir_threshold` must be an integer".into()),
    }
    .filter(|&n| n != 0);
    let (key_groups, uses_key_groups) = match rule.get("key_groups") {
        Some(Value::Sequence(groups)) if !groups.is_empty() => (
            groups
                .iter()
                .enumerate()
                .map(|(gi, g)| group_from_item(g).map_err(|e| format!("key group {}: {e}", gi + 1)))
                .collect::<Result<Vec<_>, _>>()?,
            true,
        ),
        None | Some(Value::Null) | Some(Value::Sequence(_)) => (vec![flat_group(rule)?], false),
        Some(_) => return Err("`key_groups` must be a list".into()),
    };
    Ok(CreationRule {
        index,
        path_regex,
        key_groups,
        uses_key_groups,
        shamir_threshold,
        unencrypted_suffix: opt_string(rule, "unencrypted_suffix")?,
        encrypted_suffix: opt_string(rule, "encrypted_suffix")?,
        unencrypted_regex: opt_string(rule, "unencrypted_regex")?,
        encrypted_regex: opt_string(rule, "encrypted_regex")?,
        mac_only_encrypted: matches!(rule.get("mac_only_encrypted"), Some(Value::Bool(true))),
        regex,
    })
}

/// The single group of a rule written without `key_groups` (getKeyGroupsFromCreationRule).
pub(super) fn flat_group(rule: &Value) -> Result<KeyGroup, String> {
    let mut g = KeyGroup::default();
    for r in string_or_list(rule.get("age"), "age")? {
        g.push(KeyKind::Age, r);
    }
    for fp in string_or_list(rule.get("pgp"), "pgp")? {
        g.push(KeyKind::Pgp, pgp_fp(&fp));
    }
    for arn in string_or_list(rule.get("kms"), "kms")? {
        // `arn+role` names a role to assume; sops identifies the key by its ARN.
        let arn = arn.split('+').next().unwrap_or_default().to_string();
        g.push(KeyKind::Kms, arn);
    }
    for id in string_or_list(rule.get("gcp_kms"), "gcp_kms")? {
        g.push(KeyKind::GcpKms, id);
    }
    for id in string_or_list(rule.get("hckms"), "hckms")? {
        g.push(KeyKind::Hckms, id);
    }
    for url in string_or_list(rule.get("azure_keyvault"), "azure_keyvault")? {
        g.push(KeyKind::AzureKeyvault, url);
    }
    for uri in string_or_list(rule.get("hc_vault_transit_uri"), "hc_vault_transit_uri")? {
        g.push(KeyKind::HcVault, uri);
    }
    for p in plugin_names(rule.get("plugins"))? {
        g.push(KeyKind::Plugin, p);
    }
    Ok(g)
}

pub(super) fn plugin_names(v: Option<&Value>) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(items)) => Ok(items
            .iter()
            .map(|p| {
                p.get("binary_name")
                    .and_then(Value::as_str)
                    .unwrap_or("plugin")
                    .to_string()
            })
            .collect()),
        Some(_) => Err("`plugins` must be a list".into()),
    }
}

pub(super) fn list_of_strings(v: Option<&Value>, key: &str) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => Err(format!("`{key}` items must be strings")),
            })
            .collect(),
        Some(_) => Err(format!("`{key}` must be a list")),
    }
}

pub(super) fn list_of_maps<'a>(v: Option<&'a Value>, key: &str) -> Result<Vec<&'a Value>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(items)) => Ok(items.iter().collect()),
        Some(_) => Err(format!("`{key}` must be a list")),
    }
}

pub(super) fn field(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// One item of `key_groups` (extractMasterKeys): `merge` first, then age, pgp, kms, gcp_kms,
/// hckms, azure_keyvault, hc_vault, plugins.
pub(super) fn group_from_item(item: &Value) -> Result<KeyGroup, String> {
    if !item.is_mapping() {
        return Err("must be a mapping".into());
    }
    let mut g = KeyGroup::default();
    for m in list_of_maps(item.get("merge"), "merge")? {
        g.extend(group_from_item(m)?);
    }
    // Each `age` item may itself hold several comma-separated recipients.
    for r in split_commas(&list_of_strings(item.get("age"), "age")?) {
        g.push(KeyKind::Age, r);
    }
    for fp in list_of_strings(item.get("pgp"), "pgp")? {
        g.push(KeyKind::Pgp, pgp_fp(&fp));
    }
    for k in list_of_maps(item.get("kms"), "kms")? {
        g.push(KeyKind::Kms, field(k, "arn"));
    }
    for k in list_of_maps(item.get("gcp_kms"), "gcp_kms")? {
        g.push(KeyKind::GcpKms, field(k, "resource_id"));
    }
    for k in list_of_maps(item.get("hckms"), "hckms")? {
        g.push(KeyKind::Hckms, field(k, "key_id"));
    }
    for k in list_of_maps(item.get("azure_keyvault"), "azure_keyvault")? {
        let url = format!(
            "{}/keys/{}/{}",
            field(k, "vaultUrl"),
            field(k, "key"),
            field(k, "version")
        );
        g.push(KeyKind::AzureKeyvault, url);
    }
    for uri in list_of_strings(item.get("hc_vault"), "hc_vault")? {
        g.push(KeyKind::HcVault, uri);
    }
    for p in plugin_names(item.get("plugins"))? {
        g.push(KeyKind::Plugin, p);
    }
    Ok(g)
}
