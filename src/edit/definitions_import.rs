//! `vmctl import`: one cluster VM written into the `imported` set of vms/definitions.nix, as a
//! text insertion that leaves every other byte as it was (`readonly = true`, its node,
//! resources, tags and description from the live config).
//!
//! Shapes: the file evaluates to an attribute set literal (possibly inside `let … in` or
//! parentheses); `imported = { … };` bound once as a literal gets the new binding before its
//! closing brace, in the indent of its other bindings; without `imported`, the set gets
//! `imported = { … };` before its own closing brace. Anything else is refused with the file
//! untouched. The result is verified: it parses, evaluates to the same VMs plus this one.

use rnix::ast::{self, HasEntry};
use rowan::ast::AstNode;

use super::nix;
use crate::text::{apply, TextEdit};

/// What to write for one imported VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedVm {
    pub name: String,
    pub vmid: u32,
    pub node: String,
    pub cores: Option<u64>,
    pub memory: Option<u64>,
    pub disk: Option<String>,
    pub tags: Vec<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportEditError {
    #[error("vms/definitions.nix has syntax errors; fix them first (`vmlint` shows them)")]
    Syntax,
    #[error("vms/definitions.nix is not an attribute set literal vmctl can add to; add `{name}` to `imported` by hand")]
    Shape { name: String },
    #[error("`imported` in vms/definitions.nix is not one attribute set literal (`imported = {{ … }};`); add `{name}` by hand")]
    ImportedShape { name: String },
    #[error("the import of `{name}` was computed but does not read back as intended, so nothing was written: {reason}; please report this with the file")]
    Verification { name: String, reason: String },
}

fn range_of(node: &rnix::SyntaxNode) -> std::ops::Range<usize> {
    let r = node.text_range();
    usize::from(r.start())..usize::from(r.end())
}

fn top_set(expr: ast::Expr) -> Option<ast::AttrSet> {
    match nix::unparen(expr) {
        ast::Expr::AttrSet(s) => Some(s),
        ast::Expr::LetIn(l) => top_set(l.body()?),
        _ => None,
    }
}

fn path_of(e: &ast::AttrpathValue) -> Vec<String> {
    e.attrpath()
        .map(|p| {
            p.attrs()
                .map(|a| match a {
                    ast::Attr::Ident(i) => i.syntax().text().to_string(),
                    ast::Attr::Str(s) => nix::plain_string(&s).unwrap_or_default(),
                    ast::Attr::Dynamic(_) => String::new(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The indent of the line `pos` is on.
fn indent_at(text: &str, pos: usize) -> String {
    let start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    text[start..]
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect()
}

/// The binding text, each line after the first prefixed with `indent`.
pub fn binding(vm: &ImportedVm, indent: &str, step: &str) -> String {
    let i2 = format!("{indent}{step}");
    let i3 = format!("{i2}{step}");
    let mut out = format!("{} = {{\n", nix::attr_name(&vm.name));
    out.push_str(&format!("{i2}vmid = {};\n", vm.vmid));
    out.push_str(&format!("{i2}readonly = true;\n"));
    out.push_str(&format!("{i2}node = {};\n", nix::string_literal(&vm.node)));
    if let Some(d) = &vm.description {
        out.push_str(&format!("{i2}description = {};\n", nix::string_literal(d)));
    }
    if !vm.tags.is_empty() {
        let tags: Vec<String> = vm.tags.iter().map(|t| nix::string_literal(t)).collect();
        out.push_str(&format!("{i2}tags = [ {} ];\n", tags.join(" ")));
    }
    if vm.cores.is_some() || vm.memory.is_some() || vm.disk.is_some() {
        out.push_str(&format!("{i2}specs = {{\n"));
        if let Some(c) = vm.cores {
            out.push_str(&format!("{i3}cores = {c};\n"));
        }
        if let Some(m) = vm.memory {
            out.push_str(&format!("{i3}memory = {m};\n"));
        }
        if let Some(d) = &vm.disk {
            out.push_str(&format!("{i3}disk = {};\n", nix::string_literal(d)));
        }
        out.push_str(&format!("{i2}}};\n"));
    }
    out.push_str(&format!("{indent}}};"));
    out
}

/// The new text with `vm` in `imported`; `None` when it is already there with this VMID
/// (a second import changes nothing).
pub fn add_imported(text: &str, vm: &ImportedVm) -> Result<Option<String>, ImportEditError> {
    let parse = rnix::Root::parse(text);
    if !parse.errors().is_empty() {
        return Err(ImportEditError::Syntax);
    }
    let shape = || ImportEditError::Shape {
        name: vm.name.clone(),
    };
    let top = parse.tree().expr().and_then(top_set).ok_or_else(shape)?;
    let imported: Vec<ast::AttrpathValue> = top
        .attrpath_values()
        .filter(|e| path_of(e).first().map(String::as_str) == Some("imported"))
        .collect();
    if already(text, vm) {
        return Ok(None);
    }
    let edit = match imported.as_slice() {
        [] => {
            let close = top.r_curly_token().ok_or_else(shape)?.text_range().start();
            let close = usize::from(close);
            let first = top.attrpath_values().next().ok_or_else(shape)?;
            let indent = indent_at(text, range_of(first.syntax()).start);
            let step = if indent.is_empty() { "  " } else { &indent };
            let inner = format!("{indent}{step}");
            let body = binding(vm, &inner, step);
            let line_start = text[..close].rfind('\n').map_or(0, |i| i + 1);
            let at = if text[line_start..close].trim().is_empty() {
                line_start
            } else {
                close
            };
            TextEdit::insert(
                at,
                format!("\n{indent}imported = {{\n{inner}{body}\n{indent}}};\n"),
            )
        }
        [one] if path_of(one).len() == 1 => {
            let set = match one.value().map(nix::unparen) {
                Some(ast::Expr::AttrSet(s)) => s,
                _ => {
                    return Err(ImportEditError::ImportedShape {
                        name: vm.name.clone(),
                    })
                }
            };
            let close = usize::from(set.r_curly_token().ok_or_else(shape)?.text_range().start());
            let outer = indent_at(text, range_of(one.syntax()).start);
            let inner = match set.attrpath_values().next() {
                Some(first) => indent_at(text, range_of(first.syntax()).start),
                None => format!("{outer}  "),
            };
            let step = inner.strip_prefix(outer.as_str()).unwrap_or("  ");
            let step = if step.is_empty() { "  " } else { step };
            let body = binding(vm, &inner, step);
            let line_start = text[..close].rfind('\n').map_or(0, |i| i + 1);
            if text[line_start..close].trim().is_empty() {
                // Before the line of the closing brace, after a blank line like its siblings.
                let blank = if set.attrpath_values().next().is_some() {
                    "\n"
                } else {
                    ""
                };
                TextEdit::insert(line_start, format!("{blank}{inner}{body}\n"))
            } else {
                TextEdit::insert(close, format!(" {body} "))
            }
        }
        _ => {
            return Err(ImportEditError::ImportedShape {
                name: vm.name.clone(),
            })
        }
    };
    let new = apply(text, &[edit]).map_err(|e| ImportEditError::Verification {
        name: vm.name.clone(),
        reason: e.to_string(),
    })?;
    verify(text, &new, vm).map_err(|reason| ImportEditError::Verification {
        name: vm.name.clone(),
        reason,
    })?;
    Ok(Some(new))
}

/// The definitions a text evaluates to (the static evaluator; what lint and the docs read).
pub fn read(text: &str) -> crate::model::Definitions {
    let mut db = crate::syntax::SourceDb::new();
    let file = db.add("vms/definitions.nix", text);
    let eval = crate::syntax::evaluate(&mut db, file, &crate::syntax::NoImports);
    crate::model::definitions::read_definitions(&eval.value).definitions
}

/// Whether `imported` already holds `vm.name` with its VMID.
fn already(text: &str, vm: &ImportedVm) -> bool {
    read(text)
        .imported
        .iter()
        .any(|v| v.name == vm.name && v.vmid == Some(vm.vmid))
}

fn verify(old: &str, new: &str, vm: &ImportedVm) -> Result<(), String> {
    if !rnix::Root::parse(new).errors().is_empty() {
        return Err("the result does not parse".into());
    }
    let (a, b) = (read(old), read(new));
    let names = |v: &[crate::model::Vm]| v.iter().map(|v| v.name.clone()).collect::<Vec<_>>();
    let mut want = names(&a.imported);
    want.push(vm.name.clone());
    if names(&b.imported) != want || names(&a.managed) != names(&b.managed) {
        return Err(format!(
            "imported reads back as {:?}, expected {want:?}",
            names(&b.imported)
        ));
    }
    let got = b
        .imported
        .iter()
        .find(|v| v.name == vm.name)
        .expect("checked");
    if got.vmid != Some(vm.vmid) || !got.readonly || got.node.as_deref() != Some(&vm.node) {
        return Err("the new VM does not read back with its vmid, readonly and node".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm() -> ImportedVm {
        ImportedVm {
            name: "nas".into(),
            vmid: 105,
            node: "pve2".into(),
            cores: Some(4),
            memory: Some(8192),
            disk: Some("64G".into()),
            tags: vec!["storage".into()],
            description: Some("NAS \"main\"".into()),
        }
    }

    #[test]
    fn inserts_into_imported_keeping_every_other_byte() {
        let text = "# c\n{\n  proxmox = { host = \"h\"; };\n  imported = {\n    doc1 = { vmid = 104; readonly = true; };\n  };\n}\n";
        let new = add_imported(text, &vm()).unwrap().unwrap();
        assert!(new.starts_with("# c\n{\n  proxmox = { host = \"h\"; };\n  imported = {\n    doc1 = { vmid = 104; readonly = true; };\n\n    nas = {\n      vmid = 105;\n"), "{new}");
        assert!(new.ends_with("    };\n  };\n}\n"), "{new}");
        // A second import is a no-op.
        assert_eq!(add_imported(&new, &vm()).unwrap(), None);
    }

    #[test]
    fn adds_imported_when_missing_and_refuses_other_shapes() {
        let text = "{\n  proxmox = { host = \"h\"; };\n}\n";
        let new = add_imported(text, &vm()).unwrap().unwrap();
        assert!(new.contains("\n  imported = {\n    nas = {\n"), "{new}");
        assert!(matches!(
            add_imported("{ imported = import ./x.nix; }", &vm()),
            Err(ImportEditError::ImportedShape { .. })
        ));
        assert!(matches!(
            add_imported("[ ]", &vm()),
            Err(ImportEditError::Shape { .. })
        ));
    }
}
