//! dotenv sops files: `KEY=value` lines, with the metadata flattened into `sops_…` keys that
//! are rebuilt into a tree as sops's `stores/flatten.go` does.

use serde_json::{Map, Value as Json};

use super::{syntax, Format, Leaf, LeafValue};
use crate::secrets::{cipher, SecretsError};

pub(super) fn parse_dotenv(text: &str) -> Result<(Json, Vec<Leaf>), SecretsError> {
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

/// Rebuilds nested metadata from `a__list_0__map_b` keys (sops `stores/flatten.go`).
pub(super) fn unflatten(flat: &[(String, String)]) -> Result<Json, SecretsError> {
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

pub(super) fn insert_path(
    cur: &mut Json,
    tokens: &[Token],
    value: &str,
) -> Result<(), &'static str> {
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

pub(super) struct Token {
    text: String,
    is_list: bool,
}

pub(super) fn tokenize(key: &str) -> Vec<Token> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
