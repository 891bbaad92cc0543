//! The meaning of a `.sops.yaml` as a real YAML parser (serde_yaml) reads it, with anchors,
//! aliases and merge keys resolved. Edits are verified against this, never against our own
//! scanner, so a scanner bug cannot silently change what sops sees.

use serde_yaml::{Mapping, Value};

/// Loads `text` with serde_yaml and resolves merge keys (`<<`), nested ones included.
pub fn load(text: &str) -> Result<Value, String> {
    load_located(text).map_err(|(m, _)| m)
}

/// [`load`], with the byte offset of a syntax error when the parser knows it. Only the first
/// document is read, as sops's parser (go-yaml's `Unmarshal`) reads only the first: a stray
/// `---` after the rules is no error for sops, so it is none here.
pub fn load_located(text: &str) -> Result<Value, (String, Option<usize>)> {
    use serde::Deserialize as _;
    let located = |e: serde_yaml::Error| (e.to_string(), e.location().map(|l| l.index()));
    let mut v: Value = match serde_yaml::Deserializer::from_str(text).next() {
        Some(doc) => Value::deserialize(doc).map_err(located)?,
        None => Value::Null,
    };
    resolve_merges(&mut v).map_err(|e| (e, None))?;
    Ok(v)
}

/// Bottom-up merge-key resolution: children first, so a merged map that itself merges others
/// is already flat when it is merged (serde_yaml's own `apply_merge` is top-down and leaves
/// nested `<<` keys behind).
fn resolve_merges(v: &mut Value) -> Result<(), String> {
    match v {
        Value::Sequence(s) => s.iter_mut().try_for_each(resolve_merges),
        Value::Tagged(t) => resolve_merges(&mut t.value),
        Value::Mapping(m) => {
            for (_, child) in m.iter_mut() {
                resolve_merges(child)?;
            }
            if let Some(merge) = m.remove("<<") {
                let sources: Vec<Mapping> = match merge {
                    Value::Mapping(x) => vec![x],
                    Value::Sequence(xs) => xs
                        .into_iter()
                        .map(|x| match x {
                            Value::Mapping(x) => Ok(x),
                            _ => Err("a merge key (`<<`) lists something that is not a mapping"
                                .to_string()),
                        })
                        .collect::<Result<_, _>>()?,
                    _ => {
                        return Err(
                            "a merge key (`<<`) points at something that is not a mapping".into(),
                        )
                    }
                };
                for src in sources {
                    for (k, val) in src {
                        m.entry(k).or_insert(val);
                    }
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// How often `recipient` occurs in `v` (as a string, or as an element of a comma list).
pub fn count(v: &Value, recipient: &str) -> usize {
    match v {
        Value::String(s) => s.split(',').filter(|p| p.trim() == recipient).count(),
        Value::Sequence(s) => s.iter().map(|x| count(x, recipient)).sum(),
        Value::Mapping(m) => m.values().map(|x| count(x, recipient)).sum(),
        Value::Tagged(t) => count(&t.value, recipient),
        _ => 0,
    }
}

/// `v` with `recipient` taken out of every list and comma-separated string, and comma lists
/// normalised, so two documents that differ only by that recipient compare equal.
pub fn strip(v: &Value, recipient: &str) -> Value {
    match v {
        Value::String(s) if s.contains(',') || s.trim() == recipient => Value::String(
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty() && *p != recipient)
                .collect::<Vec<_>>()
                .join(","),
        ),
        Value::Sequence(s) => Value::Sequence(
            s.iter()
                .filter(|x| x.as_str().map(str::trim) != Some(recipient))
                .map(|x| strip(x, recipient))
                .collect(),
        ),
        Value::Mapping(m) => Value::Mapping(
            m.iter()
                .map(|(k, x)| (k.clone(), strip(x, recipient)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_merges_resolve() {
        let v = load("k:\n  - &u\n    pgp: [p]\n  - &h\n    age:\n    - a\n  - &all\n    <<: [*u, *h]\nr:\n  - key_groups:\n    - <<: *all\n").unwrap();
        let group = &v["r"][0]["key_groups"][0];
        assert_eq!(group["age"][0].as_str(), Some("a"));
        assert_eq!(group["pgp"][0].as_str(), Some("p"));
        assert!(group.get("<<").is_none());
    }

    #[test]
    fn only_the_first_document_is_read_as_sops_reads_it() {
        assert_eq!(load("a: 1\n---\n").unwrap(), load("a: 1\n").unwrap());
        assert_eq!(
            load("---\na: 1\n---\nb: 2\n").unwrap(),
            load("a: 1\n").unwrap()
        );
        assert_eq!(load("# only a comment\n").unwrap(), Value::Null);
        assert!(load("a: [1\n").is_err());
    }

    #[test]
    fn comma_strings_and_strip() {
        let v = load("age: >-\n  a,\n  b\n").unwrap();
        assert_eq!(strip(&v, "b"), load("age: a").unwrap());
        assert_eq!(count(&v, "b"), 1);
    }
}
