//! The meaning of a YAML text as a real YAML parser reads it, with anchors, aliases and merge
//! keys resolved. Edits are verified against this, never against our own scanner, so a
//! scanner bug cannot silently change what sops sees. The parser is libyaml (through
//! serde_yaml_ng), of which sops's go-yaml is a port; its result is converted at once into
//! vmctl's own [`Value`], so no other module names the parser.

mod node;

use serde_yaml_ng as parser;

pub use node::{Mapping, Number, TaggedValue, Value};

/// Why a text is not YAML: the parser's message (positions included), and where.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    pub message: String,
    /// Byte offset into the text, when the parser knows it.
    pub offset: Option<usize>,
    /// 1-based line and column of `offset`.
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<parser::Error> for LoadError {
    fn from(e: parser::Error) -> Self {
        let at = e.location();
        LoadError {
            message: e.to_string(),
            offset: at.as_ref().map(|l| l.index()),
            line: at.as_ref().map_or(0, |l| l.line()),
            column: at.as_ref().map_or(0, |l| l.column()),
        }
    }
}

/// Loads `text` and resolves merge keys (`<<`), nested ones included.
pub fn load(text: &str) -> Result<Value, String> {
    load_located(text).map_err(|(m, _)| m)
}

/// [`load`], with the byte offset of a syntax error when the parser knows it. Only the first
/// document is read, as sops's parser (go-yaml's `Unmarshal`) reads only the first: a stray
/// `---` after the rules is no error for sops, so it is none here.
pub fn load_located(text: &str) -> Result<Value, (String, Option<usize>)> {
    let mut v = load_raw(text).map_err(|e| (e.message, e.offset))?;
    resolve_merges(&mut v).map_err(|e| (e, None))?;
    Ok(v)
}

/// The first document of `text` as the parser reads it: aliases expanded, merge keys (`<<`)
/// left as entries. An empty text is null.
pub fn load_raw(text: &str) -> Result<Value, LoadError> {
    use serde::Deserialize as _;
    match parser::Deserializer::from_str(text).next() {
        Some(doc) => Ok(convert(parser::Value::deserialize(doc)?)),
        None => Ok(Value::Null),
    }
}

/// The one document of `text`; several are an error whose message says
/// "more than one document" (sops's YAML store refuses them).
pub fn load_single(text: &str) -> Result<Value, LoadError> {
    Ok(convert(parser::from_str(text)?))
}

fn convert(v: parser::Value) -> Value {
    use parser::Value as P;
    match v {
        P::Null => Value::Null,
        P::Bool(b) => Value::Bool(b),
        P::Number(n) => Value::Number(match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Number::Int(i),
            (None, Some(u)) => Number::UInt(u),
            _ => Number::Float(n.as_f64().unwrap_or(f64::NAN)),
        }),
        P::String(s) => Value::String(s),
        P::Sequence(items) => Value::Sequence(items.into_iter().map(convert).collect()),
        P::Mapping(m) => Value::Mapping(
            m.into_iter()
                .map(|(k, v)| (convert(k), convert(v)))
                .collect(),
        ),
        P::Tagged(t) => Value::Tagged(Box::new(TaggedValue {
            tag: t.tag.to_string(),
            value: convert(t.value),
        })),
    }
}

/// Bottom-up merge-key resolution: children first, so a merged map that itself merges others
/// is already flat when it is merged (a top-down merge would leave nested `<<` keys behind).
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
                        m.insert_absent(k, val);
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
    fn numbers_keep_their_kind_and_yaml_spelling() {
        let v = load("a: 18446744073709551615\nb: -3\nc: 1.0\nd: .inf\ne: 1e16\n").unwrap();
        let n = |k: &str| match &v[k] {
            Value::Number(n) => *n,
            other => panic!("{k}: {other:?}"),
        };
        assert_eq!(n("a"), Number::UInt(u64::MAX));
        assert_eq!(n("b"), Number::Int(-3));
        let spelled: Vec<String> = ["c", "d", "e"].iter().map(|k| n(k).to_string()).collect();
        assert_eq!(spelled, ["1.0", ".inf", "1e16"]);
    }

    #[test]
    fn syntax_errors_say_where_in_bytes() {
        let e = load_raw("é: [1\n").unwrap_err();
        assert_eq!((e.offset, e.line, e.column), (Some(7), 2, 1));
        assert!(
            e.message.starts_with("did not find expected ',' or ']'"),
            "{}",
            e.message
        );
        let several = load_single("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(
            several.message.contains("more than one document"),
            "{}",
            several.message
        );
    }

    #[test]
    fn comma_strings_and_strip() {
        let v = load("age: >-\n  a,\n  b\n").unwrap();
        assert_eq!(strip(&v, "b"), load("age: a").unwrap());
        assert_eq!(count(&v, "b"), 1);
    }
}
