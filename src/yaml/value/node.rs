//! The YAML value vmctl reads: what a core-schema YAML parser yields for a document, kept in
//! vmctl's own type so the parser behind it can change without touching its readers.

use std::fmt;

/// One YAML node, with anchors already expanded. Merge keys (`<<`) are plain entries here;
/// [`super::load`] resolves them.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Sequence(Vec<Value>),
    Mapping(Mapping),
    Tagged(Box<TaggedValue>),
}

/// A node carrying a tag the core schema does not know (`!foo x`).
#[derive(Clone, Debug, PartialEq)]
pub struct TaggedValue {
    pub tag: String,
    pub value: Value,
}

/// A core-schema number: go-yaml (sops's parser) reads an integer as int64, else uint64,
/// else a float, and so does this.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    Int(i64),
    UInt(u64),
    Float(f64),
}

impl Number {
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Number::Int(i) => Some(i),
            Number::UInt(u) => i64::try_from(u).ok(),
            Number::Float(_) => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Number::Int(i) => u64::try_from(i).ok(),
            Number::UInt(u) => Some(u),
            Number::Float(_) => None,
        }
    }

    pub fn as_f64(&self) -> f64 {
        match *self {
            Number::Int(i) => i as f64,
            Number::UInt(u) => u as f64,
            Number::Float(f) => f,
        }
    }
}

/// Written as YAML writes it (`.inf`, `.nan`, `1.0`), so a number used as a name or a key
/// reads back as the same number.
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Number::Int(i) => write!(f, "{i}"),
            Number::UInt(u) => write!(f, "{u}"),
            Number::Float(x) if x.is_nan() => f.write_str(".nan"),
            Number::Float(x) if x.is_infinite() => {
                f.write_str(if x > 0.0 { ".inf" } else { "-.inf" })
            }
            // The shortest spelling that reads back, as the YAML emitter writes it: `1.0`,
            // `1e16`, `0.1`.
            Number::Float(x) => f.write_str(ryu::Buffer::new().format_finite(x)),
        }
    }
}

/// A mapping in document order. Two mappings are equal when they hold the same entries,
/// whatever their order, as YAML's data model says.
#[derive(Clone, Debug, Default)]
pub struct Mapping(Vec<(Value, Value)>);

impl Mapping {
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of the string key `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).map(|i| &self.0[i].1)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.position(key).map(|i| &mut self.0[i].1)
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.0
            .iter()
            .position(|(k, _)| matches!(k, Value::String(s) if s == key))
    }

    /// Takes the string key `key` out, keeping the order of the rest.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.position(key).map(|i| self.0.remove(i).1)
    }

    /// Whether `key` is a key here (any kind of key).
    pub fn contains(&self, key: &Value) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// Adds `key: value` at the end; the caller keeps keys unique (the loader refuses
    /// duplicates, as YAML does).
    pub fn push(&mut self, key: Value, value: Value) {
        self.0.push((key, value));
    }

    /// Adds `key: value` unless `key` is already there (how a merge key fills in).
    pub fn insert_absent(&mut self, key: Value, value: Value) {
        if !self.contains(&key) {
            self.0.push((key, value));
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Value, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&Value, &mut Value)> {
        self.0.iter_mut().map(|(k, v)| (&*k, v))
    }

    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.0.iter().map(|(_, v)| v)
    }
}

impl PartialEq for Mapping {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .all(|(k, v)| other.iter().any(|(k2, v2)| k == k2 && v == v2))
    }
}

impl IntoIterator for Mapping {
    type Item = (Value, Value);
    type IntoIter = std::vec::IntoIter<(Value, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Mapping {
    type Item = (&'a Value, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Value, Value)>,
        fn(&'a (Value, Value)) -> (&'a Value, &'a Value),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl FromIterator<(Value, Value)> for Mapping {
    fn from_iter<I: IntoIterator<Item = (Value, Value)>>(iter: I) -> Self {
        Mapping(iter.into_iter().collect())
    }
}

static NULL: Value = Value::Null;

impl Value {
    /// The value of the string key `key` when this is a mapping.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Mapping(m) => m.get(key),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        match self {
            Value::Mapping(m) => m.get_mut(key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_sequence(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Sequence(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_sequence_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Value::Sequence(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_mapping(&self) -> Option<&Mapping> {
        match self {
            Value::Mapping(m) => Some(m),
            _ => None,
        }
    }

    pub fn is_mapping(&self) -> bool {
        matches!(self, Value::Mapping(_))
    }

    /// The value as JSON, keys as strings (sops's metadata is read this way). A key that is
    /// not a scalar has no JSON form.
    pub fn to_json(&self) -> Result<serde_json::Value, String> {
        use serde_json::Value as J;
        Ok(match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Number(Number::Int(i)) => J::from(*i),
            Value::Number(Number::UInt(u)) => J::from(*u),
            Value::Number(Number::Float(f)) => {
                serde_json::Number::from_f64(*f).map_or(J::Null, J::Number)
            }
            Value::String(s) => J::String(s.clone()),
            Value::Sequence(s) => J::Array(s.iter().map(Value::to_json).collect::<Result<_, _>>()?),
            Value::Mapping(m) => J::Object(
                m.iter()
                    .map(|(k, v)| {
                        Ok((
                            k.key_string().ok_or("a mapping key is not a scalar")?,
                            v.to_json()?,
                        ))
                    })
                    .collect::<Result<_, String>>()?,
            ),
            Value::Tagged(t) => t.value.to_json()?,
        })
    }

    /// A scalar key as text (`1`, `true`, `name`); `None` for a key that is not a scalar.
    pub fn key_string(&self) -> Option<String> {
        match self {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// `v["key"]`: the value, or null when there is none (as with `serde_json`).
impl std::ops::Index<&str> for Value {
    type Output = Value;
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }
}

/// `v[0]`: the item, or null when there is none.
impl std::ops::Index<usize> for Value {
    type Output = Value;
    fn index(&self, i: usize) -> &Value {
        self.as_sequence().and_then(|s| s.get(i)).unwrap_or(&NULL)
    }
}
