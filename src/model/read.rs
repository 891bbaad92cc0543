//! Reading evaluated values into the typed model, collecting what does not fit as [`Issue`]s.
//!
//! The readers never fail: a missing or mistyped field becomes an issue (which `check/` turns
//! into a diagnostic) and the model gets `None`/a default for it.

use crate::syntax::{AttrSet, Span, Value, ValueKind};

/// The type a field must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Int,
    Str,
    Bool,
    StrList,
    Attrs,
    /// Documentation fields: anything goes.
    Any,
}

impl Ty {
    pub fn describe(self) -> &'static str {
        match self {
            Ty::Int => "an integer",
            Ty::Str => "a string",
            Ty::Bool => "a Boolean (`true` or `false`)",
            Ty::StrList => "a list of strings",
            Ty::Attrs => "an attribute set",
            Ty::Any => "any value",
        }
    }

    fn accepts(self, v: &Value) -> bool {
        match (self, &v.kind) {
            (Ty::Any, _) => true,
            (Ty::Int, ValueKind::Int(_)) => true,
            (Ty::Str, ValueKind::String(_)) => true,
            (Ty::Bool, ValueKind::Bool(_)) => true,
            (Ty::Attrs, ValueKind::Attrs(_)) => true,
            (Ty::StrList, ValueKind::List(items)) => {
                items.iter().all(|i| i.as_str().is_some() || i.is_unknown())
            }
            _ => false,
        }
    }
}

/// Which field of which part of a fleet file an issue is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The field's name as written (`memroy`).
    pub name: String,
    /// What holds it, for messages (``managed VM `web` ``).
    pub context: String,
}

impl Field {
    pub fn new(name: impl Into<String>, context: impl Into<String>) -> Self {
        Field {
            name: name.into(),
            context: context.into(),
        }
    }
}

/// "`memory` of managed VM `web`".
impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` of {}", self.name, self.context)
    }
}

/// Something in a fleet file that does not fit the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Issue {
    /// A required field is absent; `span` is the set that should hold it.
    Missing { span: Span, field: Field },
    /// A field has the wrong type; `span` is the value.
    WrongType {
        span: Span,
        field: Field,
        expected: &'static str,
        found: &'static str,
    },
    /// A field the model does not know; `span` is the name.
    Unknown {
        span: Span,
        field: Field,
        suggestion: Option<String>,
    },
    /// A needed value that is not known statically; `span` is the expression.
    Dynamic {
        span: Span,
        field: Field,
        reason: String,
    },
    /// The file (or a part of it) has a shape vmctl cannot read.
    Unsupported { span: Span, message: String },
    /// A field vmctl does not read whose name is close to one it does (`readOnly`, `vmId`) in
    /// a part of the file where other fields are free-form annotations; `span` is the name.
    Misspelled {
        span: Span,
        field: Field,
        suggestion: String,
    },
    /// The Nix fallback could not supply the values the static evaluator left unknown (a
    /// timeout, a read outside the fleet, an evaluation error); `span` is the first of them.
    Evaluator {
        span: Span,
        message: String,
        help: String,
    },
    /// Which checks ran on a file read as plain Nix (no fleet role); `span` is its start.
    Role {
        span: Span,
        message: String,
        help: String,
    },
    /// A fleet file or directory is missing: one `settings` names (`span` is the setting), or
    /// one the fleet needs (`span` is the start of definitions.nix). `error` for the files
    /// vmctl edits, which a typo would make it create twice.
    MissingPath {
        span: Span,
        message: String,
        help: String,
        error: bool,
    },
    /// A documentation value (an imported VM's resources, the template's specs) vmctl cannot
    /// show or that looks wrong; never stops anything. `span` is the value.
    Documentation {
        span: Span,
        field: Field,
        message: String,
        help: String,
    },
}

impl Issue {
    /// Where an issue is, with the message and help its reader wrote, for the issues about a
    /// whole file or value (unsupported shapes, the Nix fallback, roles, missing paths,
    /// documentation); `None` for the field issues, which the checks word themselves.
    pub fn said(&self) -> Option<(Span, &str, Option<&str>)> {
        match self {
            Issue::Unsupported { span, message } => Some((*span, message, None)),
            Issue::Evaluator {
                span,
                message,
                help,
            }
            | Issue::Role {
                span,
                message,
                help,
            }
            | Issue::MissingPath {
                span,
                message,
                help,
                ..
            }
            | Issue::Documentation {
                span,
                message,
                help,
                ..
            } => Some((*span, message, Some(help))),
            Issue::Missing { .. }
            | Issue::WrongType { .. }
            | Issue::Unknown { .. }
            | Issue::Dynamic { .. }
            | Issue::Misspelled { .. } => None,
        }
    }
}

/// What a set is, for messages ("managed VM `web`"): formatted only when an issue is
/// recorded, so reading ten thousand valid VMs builds no strings.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub prefix: &'static str,
    pub name: &'a str,
    pub suffix: &'static str,
}

impl<'a> Ctx<'a> {
    /// `prefix` + `name` + `suffix`, e.g. `Ctx::named("host `", name, "`")`.
    pub fn named(prefix: &'static str, name: &'a str, suffix: &'static str) -> Self {
        Ctx {
            prefix,
            name,
            suffix,
        }
    }

    pub fn render(&self) -> String {
        format!("{}{}{}", self.prefix, self.name, self.suffix)
    }
}

impl From<&'static str> for Ctx<'_> {
    fn from(text: &'static str) -> Self {
        Ctx {
            prefix: text,
            name: "",
            suffix: "",
        }
    }
}

/// Reads fields of one attribute set against a schema, recording issues.
pub struct Fields<'a> {
    pub set: &'a AttrSet,
    pub span: Span,
    pub context: Ctx<'a>,
}

impl<'a> Fields<'a> {
    pub fn new(set: &'a AttrSet, span: Span, context: impl Into<Ctx<'a>>) -> Self {
        Fields {
            set,
            span,
            context: context.into(),
        }
    }

    /// The value of `name` when it has type `ty`; records wrong types and dynamic values.
    pub fn get(&self, name: &str, ty: Ty, issues: &mut Vec<Issue>) -> Option<&'a Value> {
        let v = self.set.get(name)?;
        if v.is_unknown() {
            if let ValueKind::Dynamic(reason) = &v.kind {
                issues.push(Issue::Dynamic {
                    span: v.span,
                    field: Field::new(name, self.context.render()),
                    reason: reason.clone(),
                });
            }
            return None;
        }
        if !ty.accepts(v) {
            issues.push(Issue::WrongType {
                span: v.span,
                field: Field::new(name, self.context.render()),
                expected: ty.describe(),
                found: v.type_name(),
            });
            return None;
        }
        Some(v)
    }

    pub fn required(&self, name: &str, ty: Ty, issues: &mut Vec<Issue>) -> Option<&'a Value> {
        if self.set.get(name).is_none() {
            issues.push(Issue::Missing {
                span: self.span,
                field: Field::new(name, self.context.render()),
            });
            return None;
        }
        self.get(name, ty, issues)
    }

    pub fn str(&self, name: &str, issues: &mut Vec<Issue>) -> Option<String> {
        self.get(name, Ty::Str, issues)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    }

    pub fn str_list(&self, name: &str, issues: &mut Vec<Issue>) -> Vec<String> {
        self.get(name, Ty::StrList, issues)
            .and_then(|v| v.as_list())
            .map(|l| {
                l.iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records every field not in `known` (names starting with `_` are always allowed).
    pub fn unknown_fields(&self, known: &[&str], issues: &mut Vec<Issue>) {
        for (name, entry) in self.set.iter() {
            if name.starts_with('_') || known.contains(&name.as_str()) {
                continue;
            }
            issues.push(Issue::Unknown {
                span: entry.key_span,
                field: Field::new(name.clone(), self.context.render()),
                suggestion: did_you_mean(name, known),
            });
        }
    }
}

impl Fields<'_> {
    /// Records fields not in `known` whose name is close to one of `hard` (the fields vmctl
    /// acts on) as likely misspellings; every other unknown field is an annotation.
    pub fn misspelled_fields(&self, known: &[&[&str]], hard: &[&str], issues: &mut Vec<Issue>) {
        for (name, entry) in self.set.iter() {
            if name.starts_with('_') || known.iter().any(|k| k.contains(&name.as_str())) {
                continue;
            }
            if let Some(suggestion) = did_you_mean(name, hard) {
                issues.push(Issue::Misspelled {
                    span: entry.key_span,
                    field: Field::new(name.clone(), self.context.render()),
                    suggestion,
                });
            }
        }
    }
}

/// A documentation value as text for the docs: strings as written, numbers and Booleans
/// printed, lists joined with `, `, sets as `name: value` pairs (`true` values as the bare
/// name, `false` ones left out). `None` for what has no text (null, functions, unknown).
pub fn doc_text(v: &Value) -> Option<String> {
    let text = match &v.kind {
        ValueKind::String(s) => s.clone(),
        ValueKind::Int(i) => i.to_string(),
        ValueKind::Float(f) => f.to_string(),
        ValueKind::Bool(b) => b.to_string(),
        ValueKind::Path(p) => p.display().to_string(),
        ValueKind::List(items) => {
            let parts: Vec<String> = items.iter().filter_map(doc_text).collect();
            parts.join(", ")
        }
        ValueKind::Attrs(set) => {
            let parts: Vec<String> = set
                .iter()
                .filter(|(k, _)| !k.starts_with('_'))
                .filter_map(|(k, e)| match &e.value.kind {
                    ValueKind::Bool(true) => Some(k.clone()),
                    ValueKind::Bool(false) => None,
                    _ => doc_text(&e.value).map(|t| format!("{k}: {t}")),
                })
                .collect();
            parts.join(", ")
        }
        ValueKind::Null | ValueKind::Lambda | ValueKind::Dynamic(_) | ValueKind::Error => {
            return None
        }
    };
    (!text.trim().is_empty()).then_some(text)
}

/// A documentation list as names (`services`, `tags`): a list's items as text (a set item by
/// its `name`), a set's enabled names (`{ samba = true; nfs.enable = false; }` is `samba`), a
/// comma-separated string split.
pub fn doc_names(v: &Value) -> Vec<String> {
    match &v.kind {
        ValueKind::List(items) => items
            .iter()
            .filter_map(|i| match i.as_attrs().and_then(|a| a.get("name")) {
                Some(n) => doc_text(n),
                None => doc_text(i),
            })
            .collect(),
        ValueKind::Attrs(set) => set
            .iter()
            .filter(|(k, _)| !k.starts_with('_'))
            .filter(|(_, e)| {
                let off = |v: &Value| v.as_bool() == Some(false);
                !(off(&e.value)
                    || e.value
                        .as_attrs()
                        .and_then(|a| a.get("enable"))
                        .is_some_and(off))
            })
            .map(|(k, _)| k.clone())
            .collect(),
        ValueKind::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
        _ => doc_text(v).into_iter().collect(),
    }
}

/// The closest known name to a mistyped one, if any is close enough to be a likely typo.
pub fn did_you_mean(name: &str, known: &[&str]) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    known
        .iter()
        .map(|k| {
            (
                strsim::damerau_levenshtein(&lower, &k.to_ascii_lowercase()),
                *k,
            )
        })
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.to_string())
}

#[cfg(test)]
mod tests {
    use super::{did_you_mean, doc_names, doc_text};
    use crate::syntax::{evaluate, NoImports, SourceDb, Value};

    fn eval(src: &str) -> Value {
        let mut db = SourceDb::new();
        let f = db.add("/x.nix", src);
        evaluate(&mut db, f, &NoImports).value
    }

    #[test]
    fn documentation_values_of_any_type_have_text() {
        assert_eq!(doc_text(&eval(r#""running""#)).as_deref(), Some("running"));
        assert_eq!(
            doc_text(&eval(r#"[ "running" "backed up" ]"#)).as_deref(),
            Some("running, backed up")
        );
        assert_eq!(
            doc_text(&eval("{ gpu = true; tpm = false; nics = 2; }")).as_deref(),
            Some("gpu, nics: 2")
        );
        assert_eq!(doc_text(&eval("null")), None);
        assert_eq!(doc_text(&eval("[ ]")), None);
        assert_eq!(
            doc_names(&eval(
                "{ samba = true; nfs.enable = false; jellyfin = { port = 8096; }; }"
            )),
            ["samba", "jellyfin"]
        );
        assert_eq!(
            doc_names(&eval(r#"[ "a" { name = "b"; port = 1; } ]"#)),
            ["a", "b"]
        );
        assert_eq!(doc_names(&eval(r#""Samba, NFS""#)), ["Samba", "NFS"]);
    }

    #[test]
    fn suggests_close_names_only() {
        let known = ["memory", "cores", "disk", "nixosConfig", "storage"];
        assert_eq!(did_you_mean("memroy", &known).as_deref(), Some("memory"));
        assert_eq!(did_you_mean("core", &known).as_deref(), Some("cores"));
        assert_eq!(
            did_you_mean("nixosconfig", &known).as_deref(),
            Some("nixosConfig")
        );
        assert_eq!(did_you_mean("banana", &known), None);
    }
}
