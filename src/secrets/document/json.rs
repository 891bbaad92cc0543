//! JSON and binary sops files (binary is JSON with one `data` key): the data tree and leaves.

use serde_json::Value as Json;

use super::{go_bool, go_float, syntax, Format, Leaf, LeafValue};
use crate::secrets::json::{self, JKind, JNode};
use crate::secrets::{cipher, SecretsError};

pub(super) fn parse_json(text: &str) -> Result<(Json, Vec<Leaf>), SecretsError> {
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

pub(super) fn json_leaves(v: &JNode, path: &mut Vec<String>, out: &mut Vec<Leaf>) {
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
