//! The pure part of `vmctl migrate`: the lossless edit that sets a managed VM's `node` in
//! vms/definitions.nix (its value replaced, or one line added after the VM's last binding with
//! that binding's indentation), verified by reading the result back.

use rnix::ast::{self, HasEntry};
use rowan::ast::AstNode;

use crate::edit::nix::string_literal;
use crate::text::{apply, leading_indent, line_end, TextEdit};

/// Why the node cannot be written; the file (and the cluster) stay untouched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum MigrateError {
    #[error("vms/definitions.nix has syntax errors: vmctl does not edit it")]
    #[diagnostic(help("fix them first (`vmlint` shows them all)"))]
    Syntax,
    #[error("`{0}` is not written as one binding `{0} = {{ … }};` of one `managed = {{ … }};` in vms/definitions.nix: vmctl cannot record its node there")]
    #[diagnostic(help(
        "write it that way, or migrate with `vmctl ops migrate VMID NODE` and edit `node` by hand"
    ))]
    NotEditable(String),
    #[error("`node` of `{0}` is not a plain string in vms/definitions.nix: vmctl cannot replace it safely")]
    #[diagnostic(help(
        "write it as `node = \"NAME\";`, or edit it by hand after `vmctl ops migrate`"
    ))]
    NodeNotString(String),
    #[error("the edit of `{name}`'s node does not read back as intended, so nothing was changed: {reason}; please report this with the file")]
    Verification { name: String, reason: String },
}

fn range(node: &rnix::SyntaxNode) -> std::ops::Range<usize> {
    let r = node.text_range();
    usize::from(r.start())..usize::from(r.end())
}

/// The one binding of `set` whose attribute path is exactly `name`; more than one, or one
/// written as a longer path, is `Err`.
fn binding<T: HasEntry>(set: &T, name: &str) -> Result<Option<ast::AttrpathValue>, ()> {
    let mut found = None;
    for e in set.attrpath_values() {
        let Some(path) = e.attrpath() else { continue };
        let attrs: Vec<String> = path
            .attrs()
            .map(|a| a.syntax().text().to_string())
            .collect();
        if attrs.first().map(String::as_str) != Some(name) {
            continue;
        }
        if attrs.len() != 1 || found.is_some() {
            return Err(());
        }
        found = Some(e);
    }
    Ok(found)
}

fn attrset(e: &ast::AttrpathValue) -> Option<ast::AttrSet> {
    match crate::edit::nix::unparen(e.value()?) {
        ast::Expr::AttrSet(s) => Some(s),
        _ => None,
    }
}

/// The top-level attribute set (inside `let … in` and parentheses).
fn top(root: &ast::Root) -> Option<ast::AttrSet> {
    let mut e = crate::edit::nix::unparen(root.expr()?);
    loop {
        match e {
            ast::Expr::LetIn(l) => e = crate::edit::nix::unparen(l.body()?),
            ast::Expr::AttrSet(s) => return Some(s),
            _ => return None,
        }
    }
}

/// definitions.nix with `managed.NAME.node` set to `node`; unchanged text when it already is.
pub fn set_node(text: &str, name: &str, node: &str) -> Result<String, MigrateError> {
    let parse = rnix::Root::parse(text);
    if !parse.errors().is_empty() {
        return Err(MigrateError::Syntax);
    }
    let not = || MigrateError::NotEditable(name.to_string());
    let root = parse.tree();
    let top = top(&root).ok_or_else(not)?;
    let managed = binding(&top, "managed")
        .map_err(|()| not())?
        .ok_or_else(not)?;
    let managed = attrset(&managed).ok_or_else(not)?;
    let vm = binding(&managed, name)
        .map_err(|()| not())?
        .ok_or_else(not)?;
    let vm = attrset(&vm).ok_or_else(not)?;
    let value = string_literal(node);
    let edit = match binding(&vm, "node").map_err(|()| not())? {
        Some(b) => {
            let v = b.value().ok_or_else(not)?;
            if !matches!(v, ast::Expr::Str(_)) {
                return Err(MigrateError::NodeNotString(name.to_string()));
            }
            {
                let r = range(v.syntax());
                TextEdit::replace(r.start, r.end, value)
            }
        }
        None => {
            let last = vm.attrpath_values().last().ok_or_else(not)?;
            let r = range(last.syntax());
            let mut eol = line_end(text, r.end);
            if eol > r.end && text.as_bytes()[eol - 1] == b'\r' {
                eol -= 1;
            }
            let rest = text[r.end..eol].trim();
            match leading_indent(text, r.start) {
                // The last binding has its own line (a trailing comment may follow): a line of
                // its own after it, indented the same, with the file's line ending.
                Some(indent) if rest.is_empty() || rest.starts_with('#') => {
                    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
                    TextEdit::insert(eol, format!("{nl}{indent}node = {value};"))
                }
                // A set written on one line: the binding joins it.
                _ => TextEdit::insert(r.end, format!(" node = {value};")),
            }
        }
    };
    let new = apply(text, &[edit]).map_err(|e| MigrateError::Verification {
        name: name.to_string(),
        reason: e.to_string(),
    })?;
    verify(text, &new, name, node)?;
    Ok(new)
}

/// The result parses, reads as the same VMs, and this one's node is `node`.
fn verify(old: &str, new: &str, name: &str, node: &str) -> Result<(), MigrateError> {
    let fail = |reason: &str| MigrateError::Verification {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    let read = |t: &str| {
        let mut db = crate::syntax::SourceDb::new();
        let f = db.add("/fleet/vms/definitions.nix", t);
        let v = crate::syntax::evaluate(&mut db, f, &crate::syntax::NoImports).value;
        crate::model::definitions::read_definitions(&v).definitions
    };
    if !rnix::Root::parse(new).errors().is_empty() {
        return Err(fail("the result does not parse"));
    }
    let (a, b) = (read(old), read(new));
    let names = |d: &crate::model::Definitions| {
        d.all_vms()
            .map(|v| (v.name.clone(), v.vmid, v.cores, v.memory))
            .collect::<Vec<_>>()
    };
    if names(&a) != names(&b) {
        return Err(fail("the VMs read differently"));
    }
    match b.vm_by_name(name).and_then(|v| v.node.as_deref()) {
        Some(n) if n == node => Ok(()),
        _ => Err(fail("the VM's node is not the new one")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFS: &str = "{\n  proxmox = { host = \"h\"; node = \"prom\"; };\n  managed = {\n    # the web VM\n    web = {\n      vmid = 110;\n      cores = 2; # two\n    };\n    db = { vmid = 111; node = \"prom\"; };\n  };\n}\n";

    #[test]
    fn a_missing_node_gets_its_own_line_and_a_present_one_its_value() {
        let new = set_node(DEFS, "web", "prom2").unwrap();
        assert_eq!(
            new,
            DEFS.replace(
                "cores = 2; # two\n",
                "cores = 2; # two\n      node = \"prom2\";\n"
            )
        );
        let new = set_node(DEFS, "db", "prom3").unwrap();
        assert_eq!(
            new,
            DEFS.replace("111; node = \"prom\"", "111; node = \"prom3\"")
        );
        // Again: nothing changes.
        assert_eq!(set_node(&new, "db", "prom3").unwrap(), new);
    }

    #[test]
    fn shapes_vmctl_cannot_edit_safely_are_refused() {
        assert!(matches!(
            set_node(DEFS, "nosuch", "p"),
            Err(MigrateError::NotEditable(_))
        ));
        let split = "{ managed.web = { vmid = 110; }; }\n";
        assert!(set_node(split, "web", "p").is_err());
        let dynamic = "{ managed = { web = { vmid = 110; node = n; }; }; }\n";
        assert!(matches!(
            set_node(dynamic, "web", "p"),
            Err(MigrateError::NodeNotString(_))
        ));
        assert!(matches!(
            set_node("{ managed = {", "web", "p"),
            Err(MigrateError::Syntax)
        ));
        let one_line = "{ managed = { web = { vmid = 110; }; }; }\n";
        assert_eq!(
            set_node(one_line, "web", "p2").unwrap(),
            "{ managed = { web = { vmid = 110; node = \"p2\"; }; }; }\n"
        );
        let crlf = DEFS.replace('\n', "\r\n");
        assert_eq!(
            set_node(&crlf, "web", "prom2").unwrap(),
            set_node(DEFS, "web", "prom2")
                .unwrap()
                .replace('\n', "\r\n")
        );
    }
}
