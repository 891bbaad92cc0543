//! YAML sops files: the data tree as sops's YAML store reads it, leaves in document order.

use serde_json::Value as Json;

use super::{go_bool, go_float, syntax, Format, Leaf, LeafValue};
use crate::secrets::{cipher, SecretsError};

pub(super) fn parse_yaml(text: &str) -> Result<(Json, Vec<Leaf>), SecretsError> {
    use crate::yaml::value::Value as Y;
    if text.contains('\r') {
        // sops writes LF; CRLF files go to sops, which rewrites them anyway.
        return Err(SecretsError::UnsupportedLayout(
            "the file has CRLF line endings".into(),
        ));
    }
    let doc = crate::yaml::value::load_single(text).map_err(|e| {
        if e.message.contains("more than one document") {
            return SecretsError::UnsupportedLayout("the file holds several YAML documents".into());
        }
        let at = e
            .offset
            .map(|_| format!(" at line {} column {}", e.line, e.column))
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
                Some(v.to_json().map_err(|e| {
                    SecretsError::Metadata(format!("unreadable sops metadata: {e}"))
                })?);
            continue;
        }
        yaml_leaves(v, &mut vec![key], &mut leaves)?;
    }
    let meta = meta.ok_or(SecretsError::NotSops)?;
    Ok((meta, leaves))
}

pub(super) fn yaml_key(k: &crate::yaml::value::Value) -> Result<String, SecretsError> {
    k.key_string()
        .ok_or_else(|| SecretsError::UnsupportedLayout("a mapping key is not a scalar".into()))
}

pub(super) fn yaml_leaves(
    v: &crate::yaml::value::Value,
    path: &mut Vec<String>,
    out: &mut Vec<Leaf>,
) -> Result<(), SecretsError> {
    use crate::yaml::value::Value as Y;
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
                plain(go_float(n.as_f64()))
            }
        }
    };
    out.push(Leaf {
        path: path.clone(),
        value,
    });
    Ok(())
}
