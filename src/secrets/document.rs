//! Reading sops-encrypted files in the layouts sops writes: YAML, JSON, binary (JSON with a
//! `data` key), dotenv (metadata flattened into `sops_…` keys) and, metadata only, INI.

use std::fmt;
use std::path::Path;

use serde_json::{Map, Value as Json};

use super::cipher;
use super::config::{KeyGroup, KeyKind};
use super::json::{self, JKind, JNode};
use super::SecretsError;

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

// ---------- YAML ----------

fn parse_yaml(text: &str) -> Result<(Json, Vec<Leaf>), SecretsError> {
    use serde_yaml::Value as Y;
    if text.contains('\r') {
        // sops writes LF; CRLF files go to sops, which rewrites them anyway.
        return Err(SecretsError::UnsupportedLayout(
            "the file has CRLF line endings".into(),
        ));
    }
    let doc: Y = serde_yaml::from_str(text).map_err(|e| {
        if e.to_string().contains("more than one document") {
            return SecretsError::UnsupportedLayout("the file holds several YAML documents".into());
        }
        let at = e
            .location()
            .map(|l| format!(" at line {} column {}", l.line(), l.column()))
            .unwrap_or_default();
        syntax(Format::Yaml, format!("not valid YAML{at}"))
    })?;
    let Y::Mapping(top) = doc else {
        return Err(syntax(Format::Yaml, "the top level is not a mapping"));
    };
    let mut meta = None;
    let mut leaves = Vec::new();
    for (k, v) in &top {
        let key = yaml_key(k)?;
        if key == "sops" {
            meta =
                Some(serde_json::to_value(v).map_err(|e| {
                    SecretsError::Metadata(format!("unreadable sops metadata: {e}"))
                })?);
            continue;
        }
        yaml_leaves(v, &mut vec![key], &mut leaves)?;
    }
    let meta = meta.ok_or(SecretsError::NotSops)?;
    Ok((meta, leaves))
}

fn yaml_key(k: &serde_yaml::Value) -> Result<String, SecretsError> {
    use serde_yaml::Value as Y;
    match k {
        Y::String(s) => Ok(s.clone()),
        Y::Number(n) => Ok(n.to_string()),
        Y::Bool(b) => Ok(b.to_string()),
        _ => Err(SecretsError::UnsupportedLayout(
            "a mapping key is not a scalar".into(),
        )),
    }
}

fn yaml_leaves(
    v: &serde_yaml::Value,
    path: &mut Vec<String>,
    out: &mut Vec<Leaf>,
) -> Result<(), SecretsError> {
    use serde_yaml::Value as Y;
    let plain = |b: Vec<u8>| LeafValue::Plain(b);
    let value = match v {
        Y::Null => return Ok(()),
        Y::Mapping(m) => {
            for (k, v) in m {
                path.push(yaml_key(k)?);
                yaml_leaves(v, path, out)?;
                path.pop();
            }
            return Ok(());
        }
        Y::Sequence(items) => {
            for i in items {
                yaml_leaves(i, path, out)?;
            }
            return Ok(());
        }
        Y::Tagged(t) => return yaml_leaves(&t.value, path, out),
        Y::String(s) if cipher::is_encrypted(s) => LeafValue::Encrypted(s.clone()),
        Y::String(s) => plain(s.clone().into_bytes()),
        Y::Bool(b) => plain(go_bool(*b)),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                plain(i.to_string().into_bytes())
            } else if let Some(u) = n.as_u64() {
                plain(u.to_string().into_bytes())
            } else {
                plain(go_float(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
    };
    out.push(Leaf {
        path: path.clone(),
        value,
    });
    Ok(())
}

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

// ---------- JSON and binary ----------

fn parse_json(text: &str) -> Result<(Json, Vec<Leaf>), SecretsError> {
    let root =
        json::parse(text).map_err(|e| syntax(Format::Json, format!("not valid JSON: {e}")))?;
    let JKind::Object(members) = &root.kind else {
        return Err(syntax(Format::Json, "the top level is not an object"));
    };
    let mut meta = None;
    let mut leaves = Vec::new();
    for (k, v) in members {
        if k == "sops" {
            meta = Some(v.to_value());
            continue;
        }
        json_leaves(v, &mut vec![k.clone()], &mut leaves);
    }
    Ok((meta.ok_or(SecretsError::NotSops)?, leaves))
}

fn json_leaves(v: &JNode, path: &mut Vec<String>, out: &mut Vec<Leaf>) {
    let value = match &v.kind {
        JKind::Null => return,
        JKind::Object(m) => {
            for (k, v) in m {
                path.push(k.clone());
                json_leaves(v, path, out);
                path.pop();
            }
            return;
        }
        JKind::Array(items) => {
            for i in items {
                json_leaves(i, path, out);
            }
            return;
        }
        JKind::String(s) if cipher::is_encrypted(s) => LeafValue::Encrypted(s.clone()),
        JKind::String(s) => LeafValue::Plain(s.clone().into_bytes()),
        JKind::Bool(b) => LeafValue::Plain(go_bool(*b)),
        // Go's JSON decoder yields float64 for every number.
        JKind::Number(n) => LeafValue::Plain(go_float(n.parse::<f64>().unwrap_or(f64::NAN))),
    };
    out.push(Leaf {
        path: path.clone(),
        value,
    });
}

// ---------- dotenv and INI ----------

fn parse_dotenv(text: &str) -> Result<(Json, Vec<Leaf>), SecretsError> {
    let mut flat = Vec::new();
    let mut leaves = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once('=').ok_or_else(|| {
            syntax(
                Format::Dotenv,
                format!("line {} is neither KEY=VALUE nor a comment", n + 1),
            )
        })?;
        let v = v.replace("\\n", "\n");
        if let Some(mk) = k.strip_prefix("sops_") {
            flat.push((mk.to_string(), v));
        } else {
            let value = if cipher::is_encrypted(&v) {
                LeafValue::Encrypted(v)
            } else {
                LeafValue::Plain(v.into_bytes())
            };
            leaves.push(Leaf {
                path: vec![k.to_string()],
                value,
            });
        }
    }
    if flat.is_empty() {
        return Err(SecretsError::NotSops);
    }
    Ok((unflatten(&flat)?, leaves))
}

/// The `[sops]` section of an INI file (keys flattened as in dotenv, without the prefix).
fn parse_ini_metadata(text: &str) -> Result<Json, SecretsError> {
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

/// Rebuilds nested metadata from `a__list_0__map_b` keys (sops `stores/flatten.go`).
fn unflatten(flat: &[(String, String)]) -> Result<Json, SecretsError> {
    let mut root = Json::Object(Map::new());
    for (key, value) in flat {
        let tokens = tokenize(key);
        insert_path(&mut root, &tokens, value)
            .map_err(|what| SecretsError::Metadata(format!("{what} in metadata key {key}")))?;
    }
    // Non-string metadata fields are stored as strings in flat layouts.
    if let Some(obj) = root.as_object_mut() {
        if let Some(v) = obj.get("mac_only_encrypted").cloned() {
            obj.insert("mac_only_encrypted".into(), Json::Bool(v == "true"));
        }
        if let Some(Json::String(s)) = obj.get("shamir_threshold").cloned() {
            let n: u64 = s
                .parse()
                .map_err(|_| SecretsError::Metadata("shamir_threshold is not an integer".into()))?;
            obj.insert("shamir_threshold".into(), Json::from(n));
        }
    }
    Ok(root)
}

fn insert_path(cur: &mut Json, tokens: &[Token], value: &str) -> Result<(), &'static str> {
    let Some((tok, rest)) = tokens.split_first() else {
        return Ok(());
    };
    let placeholder = match rest.first() {
        None => Json::String(value.to_string()),
        Some(t) if t.is_list => Json::Array(Vec::new()),
        Some(_) => Json::Object(Map::new()),
    };
    let slot: &mut Json = if tok.is_list {
        let idx: usize = tok.text.parse().map_err(|_| "bad list index")?;
        if idx > 10_000 {
            return Err("list index too large");
        }
        let arr = cur.as_array_mut().ok_or("inconsistent nesting")?;
        while arr.len() <= idx {
            arr.push(Json::Null);
        }
        if arr[idx].is_null() || rest.is_empty() {
            arr[idx] = placeholder;
        }
        &mut arr[idx]
    } else {
        let obj = cur.as_object_mut().ok_or("inconsistent nesting")?;
        if rest.is_empty() {
            obj.insert(tok.text.clone(), placeholder);
            return Ok(());
        }
        obj.entry(tok.text.clone()).or_insert(placeholder)
    };
    insert_path(slot, rest, value)
}

struct Token {
    text: String,
    is_list: bool,
}

fn tokenize(key: &str) -> Vec<Token> {
    const MAP: &str = "__map_";
    const LIST: &str = "__list_";
    let mut out = Vec::new();
    let mut rest = key;
    let mut is_list = false;
    loop {
        let next = [rest.find(MAP), rest.find(LIST)]
            .into_iter()
            .flatten()
            .min();
        match next {
            None => {
                out.push(Token {
                    text: rest.to_string(),
                    is_list,
                });
                return out;
            }
            Some(pos) => {
                out.push(Token {
                    text: rest[..pos].to_string(),
                    is_list,
                });
                if rest[pos..].starts_with(MAP) {
                    is_list = false;
                    rest = &rest[pos + MAP.len()..];
                } else {
                    is_list = true;
                    rest = &rest[pos + LIST.len()..];
                }
            }
        }
    }
}

// ---------- metadata ----------

fn json_str(v: Option<&Json>) -> String {
    match v {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Number(n)) => n.to_string(),
        Some(Json::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn entries<'a>(obj: &'a Map<String, Json>, key: &str) -> Vec<&'a Map<String, Json>> {
    match obj.get(key) {
        Some(Json::Array(items)) => items.iter().filter_map(Json::as_object).collect(),
        _ => Vec::new(),
    }
}

const KEY_FIELDS: [&str; 7] = [
    "kms", "gcp_kms", "azure_kv", "hc_vault", "age", "pgp", "hckms",
];

fn group_from(obj: &Map<String, Json>) -> Result<FileKeyGroup, SecretsError> {
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
    for e in entries(obj, "pgp") {
        keys.pgp.push(json_str(e.get("fp")));
    }
    for e in entries(obj, "kms") {
        keys.kms.push(json_str(e.get("arn")));
    }
    for e in entries(obj, "gcp_kms") {
        keys.gcp_kms.push(json_str(e.get("resource_id")));
    }
    for e in entries(obj, "hckms") {
        keys.hckms.push(json_str(e.get("key_id")));
    }
    for e in entries(obj, "azure_kv") {
        keys.azure_keyvault.push(format!(
            "{}/keys/{}/{}",
            json_str(e.get("vault_url")),
            json_str(e.get("name")),
            json_str(e.get("version"))
        ));
    }
    for e in entries(obj, "hc_vault") {
        keys.hc_vault.push(format!(
            "{}/v1/{}/keys/{}",
            json_str(e.get("vault_address")),
            json_str(e.get("engine_path")),
            json_str(e.get("key_name"))
        ));
    }
    Ok(FileKeyGroup { age, keys })
}

fn metadata_from_raw(raw: Json) -> Result<Metadata, SecretsError> {
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

    #[test]
    fn unflattens_dotenv_metadata() {
        let flat = vec![
            ("age__list_1__map_recipient".to_string(), "r1".to_string()),
            ("age__list_0__map_recipient".to_string(), "r0".to_string()),
            ("age__list_0__map_enc".to_string(), "e0".to_string()),
            ("age__list_1__map_enc".to_string(), "e1".to_string()),
            ("lastmodified".to_string(), "t".to_string()),
            ("mac_only_encrypted".to_string(), "true".to_string()),
        ];
        let v = unflatten(&flat).unwrap();
        assert_eq!(v["age"][0]["recipient"], "r0");
        assert_eq!(v["age"][1]["enc"], "e1");
        assert_eq!(v["mac_only_encrypted"], true);
    }
}
