//! Evaluated Nix values, each with the span of the expression that produced it.

use std::path::PathBuf;

use indexmap::IndexMap;
use rustc_hash::FxBuildHasher;

use super::Span;

/// A fully evaluated value (or an opaque stand-in for what cannot be known statically).
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub kind: ValueKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    /// A path literal, resolved against the directory of the file it is written in.
    Path(PathBuf),
    List(Vec<Value>),
    Attrs(AttrSet),
    /// A function: opaque to the static evaluator's consumers.
    Lambda,
    /// Not knowable without a real evaluation (function application of unknown functions,
    /// `pkgs`, `lib`, builtins, …); the reason says what.
    Dynamic(String),
    /// Evaluation failed here; the error was reported separately.
    Error,
}

/// An attribute set in source order (Nix itself sorts names; JSON output does too).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AttrSet {
    pub entries: IndexMap<String, AttrEntry, FxBuildHasher>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttrEntry {
    /// Where the attribute name is written (`vmid` in `vmid = 110;`).
    pub key_span: Span,
    pub value: Value,
}

impl AttrSet {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.entries.get(name).map(|e| &e.value)
    }

    pub fn entry(&self, name: &str) -> Option<&AttrEntry> {
        self.entries.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &AttrEntry)> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Value {
    pub fn as_attrs(&self) -> Option<&AttrSet> {
        match &self.kind {
            ValueKind::Attrs(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            ValueKind::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match &self.kind {
            ValueKind::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match &self.kind {
            ValueKind::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match &self.kind {
            ValueKind::List(l) => Some(l),
            _ => None,
        }
    }

    /// True for values the static evaluator could not determine (dynamic or failed).
    pub fn is_unknown(&self) -> bool {
        matches!(self.kind, ValueKind::Dynamic(_) | ValueKind::Error)
    }

    /// A short name of the value's type, as Nix's error messages say it.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            ValueKind::Null => "null",
            ValueKind::Bool(_) => "a Boolean",
            ValueKind::Int(_) => "an integer",
            ValueKind::Float(_) => "a float",
            ValueKind::String(_) => "a string",
            ValueKind::Path(_) => "a path",
            ValueKind::List(_) => "a list",
            ValueKind::Attrs(_) => "a set",
            ValueKind::Lambda => "a function",
            ValueKind::Dynamic(_) => "a dynamic expression",
            ValueKind::Error => "an erroneous expression",
        }
    }

    /// The first dynamic or failed value inside this one, depth first.
    pub fn first_unknown(&self) -> Option<&Value> {
        match &self.kind {
            ValueKind::Dynamic(_) | ValueKind::Error => Some(self),
            ValueKind::List(l) => l.iter().find_map(Value::first_unknown),
            ValueKind::Attrs(a) => a.entries.values().find_map(|e| e.value.first_unknown()),
            _ => None,
        }
    }

    /// The value as JSON the way `nix-instantiate --eval --strict --json` prints it, or `None`
    /// when part of it is not known statically (or is a function or a path, which Nix would
    /// reject or copy to the store).
    pub fn to_json(&self) -> Option<serde_json::Value> {
        use serde_json::Value as J;
        Some(match &self.kind {
            ValueKind::Null => J::Null,
            ValueKind::Bool(b) => J::Bool(*b),
            ValueKind::Int(i) => J::from(*i),
            ValueKind::Float(f) => J::from(*f),
            ValueKind::String(s) => J::String(s.clone()),
            ValueKind::List(l) => J::Array(l.iter().map(Value::to_json).collect::<Option<_>>()?),
            ValueKind::Attrs(a) => {
                let mut names: Vec<&String> = a.entries.keys().collect();
                names.sort();
                let mut m = serde_json::Map::new();
                for n in names {
                    m.insert(n.clone(), a.entries[n].value.to_json()?);
                }
                J::Object(m)
            }
            ValueKind::Path(_) | ValueKind::Lambda | ValueKind::Dynamic(_) | ValueKind::Error => {
                return None
            }
        })
    }

    /// Builds a value from JSON (e.g. what `nix-instantiate --json` printed), every part of it
    /// carrying `span`.
    pub fn from_json(json: &serde_json::Value, span: Span) -> Value {
        use serde_json::Value as J;
        let kind = match json {
            J::Null => ValueKind::Null,
            J::Bool(b) => ValueKind::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => ValueKind::Int(i),
                None => ValueKind::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => ValueKind::String(s.clone()),
            J::Array(a) => ValueKind::List(a.iter().map(|v| Value::from_json(v, span)).collect()),
            J::Object(o) => ValueKind::Attrs(AttrSet {
                entries: o
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            AttrEntry {
                                key_span: span,
                                value: Value::from_json(v, span),
                            },
                        )
                    })
                    .collect(),
            }),
        };
        Value { kind, span }
    }

    /// Fills the unknown parts of `self` from `known` (a full evaluation of the same
    /// expression, e.g. by Nix), keeping every span the static evaluation had.
    pub fn fill_unknown_from(&mut self, known: &Value) {
        if self.is_unknown() {
            let span = self.span;
            *self = Value::from_json_like(known, span);
            return;
        }
        match (&mut self.kind, &known.kind) {
            (ValueKind::List(l), ValueKind::List(k)) if l.len() == k.len() => {
                for (a, b) in l.iter_mut().zip(k) {
                    a.fill_unknown_from(b);
                }
            }
            (ValueKind::Attrs(a), ValueKind::Attrs(k)) => {
                for (name, e) in a.entries.iter_mut() {
                    if let Some(kv) = k.get(name) {
                        e.value.fill_unknown_from(kv);
                    }
                }
            }
            _ => {}
        }
    }

    fn from_json_like(v: &Value, span: Span) -> Value {
        let kind = match &v.kind {
            ValueKind::List(l) => {
                ValueKind::List(l.iter().map(|x| Value::from_json_like(x, span)).collect())
            }
            ValueKind::Attrs(a) => ValueKind::Attrs(AttrSet {
                entries: a
                    .entries
                    .iter()
                    .map(|(k, e)| {
                        (
                            k.clone(),
                            AttrEntry {
                                key_span: span,
                                value: Value::from_json_like(&e.value, span),
                            },
                        )
                    })
                    .collect(),
            }),
            other => other.clone(),
        };
        Value { kind, span }
    }
}
