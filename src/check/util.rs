//! Helpers shared by the checks: walking the evaluated definitions by VM, and turning the
//! model's reading issues into diagnostics.

use super::{Diagnostic, Rule};
use crate::model::fleet::{Fleet, NixRole};
use crate::model::read::Issue;
use crate::model::VmKind;
use crate::syntax::{AttrSet, Span, Value};

/// One VM entry of definitions.nix as written: its kind, name, where the name is and its set.
pub(super) struct VmEntry<'a> {
    pub kind: VmKind,
    pub name: &'a str,
    pub key: Span,
    pub set: &'a AttrSet,
}

impl<'a> VmEntry<'a> {
    pub fn get(&self, field: &str) -> Option<&'a Value> {
        self.set.get(field)
    }

    /// A resource field, flat or (for imported VMs) under `specs`.
    pub fn resource(&self, field: &str) -> Option<&'a Value> {
        self.set.get(field).or_else(|| {
            self.set
                .get("specs")
                .and_then(Value::as_attrs)
                .and_then(|s| s.get(field))
        })
    }
}

/// The evaluated top-level set of definitions.nix, if it is one.
pub(super) fn definitions_top(fleet: &Fleet) -> Option<&AttrSet> {
    let (file, _) = fleet.definitions_file()?;
    file.eval.value.as_attrs()
}

/// Every VM entry of definitions.nix in file order: the template, imported, managed.
pub(super) fn vm_entries(fleet: &Fleet) -> Vec<VmEntry<'_>> {
    let mut out = Vec::new();
    let Some(top) = definitions_top(fleet) else {
        return out;
    };
    if let Some(t) = top.entry("template") {
        if let Some(set) = t.value.as_attrs() {
            let (name, key) = match set.entry("name") {
                Some(n) => (n.value.as_str().unwrap_or("template"), n.value.span),
                None => ("template", t.key_span),
            };
            out.push(VmEntry {
                kind: VmKind::Template,
                name,
                key,
                set,
            });
        }
    }
    for (field, kind) in [("imported", VmKind::Imported), ("managed", VmKind::Managed)] {
        let Some(group) = top.get(field).and_then(Value::as_attrs) else {
            continue;
        };
        // `_`-prefixed entries are annotations, not VMs (as in hosts.nix).
        for (name, entry) in group.iter().filter(|(n, _)| !n.starts_with('_')) {
            if let Some(set) = entry.value.as_attrs() {
                out.push(VmEntry {
                    kind,
                    name,
                    key: entry.key_span,
                    set,
                });
            }
        }
    }
    out
}

/// Every `Unsupported` issue of the files of this role, as diagnostics of `rule`.
pub(super) fn report_unsupported(
    fleet: &Fleet,
    role: NixRole,
    rule: &'static Rule,
    out: &mut Vec<Diagnostic>,
) {
    for f in fleet.files.iter().filter(|f| f.role == role) {
        for issue in &f.issues {
            if let Issue::Unsupported { span, message } = issue {
                out.push(Diagnostic::new(rule, *span, message.clone()));
            }
        }
    }
}

/// Every `MissingPath` issue whose `error` flag is `error`, as diagnostics of `rule`.
pub(super) fn report_missing_paths(
    fleet: &Fleet,
    error: bool,
    rule: &'static Rule,
    out: &mut Vec<Diagnostic>,
) {
    for f in &fleet.files {
        for issue in &f.issues {
            if let Issue::MissingPath {
                span,
                message,
                help,
                error: e,
            } = issue
            {
                if *e == error {
                    out.push(Diagnostic::new(rule, *span, message.clone()).help(help.clone()));
                }
            }
        }
    }
}
