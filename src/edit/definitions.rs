//! vms/definitions.nix edits: removing one VM from `managed`, as text edits on the rnix tree.
//!
//! # Shapes
//!
//! The file must evaluate to an attribute set literal (possibly inside `let … in`, `rec` or
//! parentheses) that binds `managed` exactly once, as `managed = { … };` with an attribute set
//! literal, and the VM must be one binding `NAME = …;` of that set. vmctl refuses, with the
//! file untouched: syntax errors, `managed` built by a function, an import or `//`, `managed`
//! bound more than once or as a path (`managed.web = …;`), and a VM written as an attribute
//! path (`web.vmid = …;`) or inherited.
//!
//! # Layout policy (the one hosts.nix removals follow)
//!
//! When the binding has lines of its own, those lines go (with a comment that trails it on its
//! last line); comments above it are kept, because they may head a group of VMs rather than
//! describe this one ([`DefinitionsEdit::kept_comment`] reports them). One blank line goes
//! with the binding when it was blank on both sides, or blank on one side and the set's brace
//! on the other. A binding that shares its line with other code loses only its own bytes.
//!
//! Every edit is verified before it is returned: the result parses without errors, the other
//! bindings of `managed` are byte-identical and in the same order, and the result evaluates
//! to the same VMs less the one removed.

use std::ops::Range;

use rnix::ast::{self, HasEntry};
use rowan::ast::AstNode;

use super::nix;
use crate::text::{apply, is_blank, leading_indent, line_end, line_number, line_start, TextEdit};

/// Why definitions.nix cannot be edited as asked. The file is never written when one of
/// these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum DefinitionsEditError {
    #[error("vms/definitions.nix has {count} syntax error(s)")]
    #[diagnostic(help("fix them first (`vmlint` shows them all)"))]
    Syntax {
        count: usize,
        #[label("the first is here")]
        at: Range<usize>,
    },
    #[error("vms/definitions.nix is {found}, not an attribute set: vmctl cannot remove a VM from it; remove `{name}` by hand or keep it (--keep-definition)")]
    UnsupportedShape { found: &'static str, name: String },
    #[error("vms/definitions.nix has no `managed = {{ … }};` binding, so `{name}` is not written there as vmctl can remove it; remove it by hand or keep it (--keep-definition)")]
    NoManaged { name: String },
    #[error("`managed` is {found}, not an attribute set literal: vmctl cannot remove `{name}` from it safely")]
    #[diagnostic(help("remove `{name}` by hand, or keep the definition (--keep-definition)"))]
    ManagedNotLiteral {
        found: &'static str,
        name: String,
        #[label("`managed` is bound here")]
        at: Range<usize>,
    },
    #[error("`managed` is bound more than once or as an attribute path: vmctl cannot remove `{name}` from it safely")]
    #[diagnostic(help("write `managed = {{ … }};` once, or remove `{name}` by hand"))]
    ManagedSplit {
        name: String,
        #[label("another binding of `managed`")]
        at: Range<usize>,
    },
    #[error("managed VM `{name}` is not written as one binding `{name} = {{ … }};`")]
    #[diagnostic(help(
        "write it as one binding so vmctl can remove it, or remove it by hand (or keep it: --keep-definition)"
    ))]
    VmSplit {
        name: String,
        #[label("written here")]
        at: Range<usize>,
    },
    #[error("`{name}` is not a binding of `managed` in vms/definitions.nix; nothing to remove")]
    NotFound { name: String },
    #[error("the removal of `{name}` was computed but does not read back as intended, so nothing was written: {reason}; please report this with the file")]
    Verification { name: String, reason: String },
}

/// A verified removal: the new text, the edit that makes it, and any comment lines kept
/// directly above the removed binding (1-based, inclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionsEdit {
    pub text: String,
    pub edits: Vec<TextEdit>,
    pub kept_comment: Option<(usize, usize)>,
}

impl DefinitionsEdit {
    /// A one-line, human summary.
    pub fn summary(&self, name: &str) -> String {
        match self.kept_comment {
            None => format!("removed the definition of `{name}`"),
            Some((a, b)) if a == b => format!(
                "removed the definition of `{name}`; kept the comment above it (line {a}); delete it by hand if it described `{name}`"
            ),
            Some((a, b)) => format!(
                "removed the definition of `{name}`; kept the comment above it (lines {a}–{b}); delete it by hand if it described `{name}`"
            ),
        }
    }
}

/// The `managed` set as located in the text: its braces and its bindings (name, range).
struct Managed {
    open: usize,
    close: usize,
    bindings: Vec<(Option<String>, Range<usize>)>,
}

fn range_of(node: &rnix::SyntaxNode) -> Range<usize> {
    let r = node.text_range();
    usize::from(r.start())..usize::from(r.end())
}

fn attr_text(attr: &ast::Attr) -> Option<String> {
    match attr {
        ast::Attr::Ident(i) => Some(i.syntax().text().to_string()),
        ast::Attr::Str(s) => nix::plain_string(s),
        ast::Attr::Dynamic(_) => None,
    }
}

/// Finds `managed = { … };` in `text`, refusing every other shape.
fn locate(text: &str, name: &str) -> Result<Managed, DefinitionsEditError> {
    let parse = rnix::Root::parse(text);
    if !parse.errors().is_empty() {
        let at = parse
            .errors()
            .iter()
            .find_map(|e| match e {
                rnix::ParseError::Unexpected(r)
                | rnix::ParseError::UnexpectedExtra(r)
                | rnix::ParseError::UnexpectedWanted(_, r, _)
                | rnix::ParseError::UnexpectedDoubleBind(r)
                | rnix::ParseError::DuplicatedArgs(r, _) => {
                    Some(usize::from(r.start())..usize::from(r.end()))
                }
                _ => None,
            })
            .unwrap_or(text.len()..text.len());
        return Err(DefinitionsEditError::Syntax {
            count: parse.errors().len(),
            at,
        });
    }
    let shape = |found| DefinitionsEditError::UnsupportedShape {
        found,
        name: name.to_string(),
    };
    let mut expr = parse.tree().expr().ok_or_else(|| shape("empty"))?;
    let top = loop {
        expr = nix::unparen(expr);
        match expr {
            ast::Expr::LetIn(l) => expr = l.body().ok_or_else(|| shape("empty"))?,
            ast::Expr::AttrSet(set) => break set,
            other => return Err(shape(nix::describe(&other))),
        }
    };
    let mut found: Option<ast::AttrSet> = None;
    for entry in top.entries() {
        let (first, more, at) = match &entry {
            ast::Entry::AttrpathValue(av) => {
                let mut attrs = av.attrpath().into_iter().flat_map(|p| p.attrs());
                let first = attrs.next().as_ref().and_then(attr_text);
                (first, attrs.next().is_some(), range_of(av.syntax()))
            }
            ast::Entry::Inherit(inh) => {
                let named = inh
                    .attrs()
                    .any(|a| attr_text(&a).as_deref() == Some("managed"));
                (
                    named.then(|| "managed".to_string()),
                    true,
                    range_of(inh.syntax()),
                )
            }
        };
        if first.as_deref() != Some("managed") {
            continue;
        }
        if more || found.is_some() {
            return Err(DefinitionsEditError::ManagedSplit {
                name: name.to_string(),
                at,
            });
        }
        let ast::Entry::AttrpathValue(av) = entry else {
            unreachable!("inherit is refused above")
        };
        match av.value().map(nix::unparen) {
            Some(ast::Expr::AttrSet(set)) => found = Some(set),
            other => {
                return Err(DefinitionsEditError::ManagedNotLiteral {
                    found: other.as_ref().map(nix::describe).unwrap_or("empty"),
                    name: name.to_string(),
                    at,
                })
            }
        }
    }
    let set = found.ok_or_else(|| DefinitionsEditError::NoManaged {
        name: name.to_string(),
    })?;
    let (Some(l), Some(r)) = (set.l_curly_token(), set.r_curly_token()) else {
        return Err(shape("an incomplete attribute set"));
    };
    let mut bindings = Vec::new();
    for entry in set.entries() {
        match entry {
            ast::Entry::AttrpathValue(av) => {
                let mut attrs = av.attrpath().into_iter().flat_map(|p| p.attrs());
                let first = attrs.next().as_ref().and_then(attr_text);
                let range = range_of(av.syntax());
                if first.as_deref() == Some(name) && attrs.next().is_some() {
                    return Err(DefinitionsEditError::VmSplit {
                        name: name.to_string(),
                        at: range,
                    });
                }
                bindings.push((first, range));
            }
            ast::Entry::Inherit(inh) => {
                if inh.attrs().any(|a| attr_text(&a).as_deref() == Some(name)) {
                    return Err(DefinitionsEditError::VmSplit {
                        name: name.to_string(),
                        at: range_of(inh.syntax()),
                    });
                }
                bindings.push((None, range_of(inh.syntax())));
            }
        }
    }
    Ok(Managed {
        open: usize::from(l.text_range().end()),
        close: usize::from(r.text_range().start()),
        bindings,
    })
}

/// Whether everything from `pos` to the end of its line is trivia (spaces, a comment that
/// stays on the line); the line must end with a line break.
fn trivia_to_line_end(text: &str, pos: usize) -> bool {
    let end = line_end(text, pos);
    if end == text.len() {
        return false;
    }
    let rest = text[pos..end]
        .trim_start_matches([' ', '\t'])
        .trim_end_matches('\r');
    rest.is_empty()
        || rest.starts_with('#')
        || (rest.starts_with("/*")
            && rest.trim_end().ends_with("*/")
            && rest.matches("*/").count() == 1)
}

/// The deletion of the binding at `range` inside a set whose braces are at `open`/`close`,
/// after the layout policy of the module doc; and the comment lines kept above it.
fn deletion(
    text: &str,
    range: Range<usize>,
    open: usize,
    close: usize,
) -> (TextEdit, Option<(usize, usize)>) {
    let own_lines =
        leading_indent(text, range.start).is_some() && trivia_to_line_end(text, range.end);
    if !own_lines {
        let (s, e) = (range.start, range.end);
        let before = text[..s].len() - text[..s].trim_end_matches([' ', '\t']).len();
        let after = text[e..].len() - text[e..].trim_start_matches([' ', '\t']).len();
        let edit = if before > 0 && !text[..s - before].ends_with('\n') {
            TextEdit::delete(s - before, e)
        } else {
            TextEdit::delete(s, e + after)
        };
        return (edit, None);
    }
    let mut start = line_start(text, range.start);
    let mut end = line_end(text, range.end) + 1;
    let prev_line = (start > 0).then(|| line_start(text, start - 1)..start - 1);
    let next_line = (end < text.len()).then(|| end..line_end(text, end));
    let open_line = line_start(text, open)..line_end(text, open);
    let close_line = line_start(text, close)..line_end(text, close);
    let blank = |r: &Option<Range<usize>>| r.as_ref().is_some_and(|r| is_blank(&text[r.clone()]));
    let (prev_blank, next_blank) = (blank(&prev_line), blank(&next_line));
    if next_blank && (prev_blank || prev_line.as_ref() == Some(&open_line)) {
        end = next_line
            .as_ref()
            .map(|r| r.end + 1)
            .unwrap_or(end)
            .min(text.len());
    } else if prev_blank && next_line.as_ref() == Some(&close_line) {
        start = prev_line.as_ref().map(|r| r.start).unwrap_or(start);
    }
    let mut kept = None;
    let mut probe = line_start(text, range.start);
    while probe > 0 {
        let s = line_start(text, probe - 1);
        let line = text[s..probe - 1].trim();
        if line.starts_with('#') || line.ends_with("*/") {
            let n = line_number(text, s);
            kept = Some(kept.map_or((n, n), |(_, b)| (n, b)));
            probe = s;
        } else {
            break;
        }
    }
    (TextEdit::delete(start, end), kept)
}

/// Removes managed VM `name` from definitions.nix `text`. Pure: the caller writes the result.
pub fn remove_managed(text: &str, name: &str) -> Result<DefinitionsEdit, DefinitionsEditError> {
    let managed = locate(text, name)?;
    let mut hits = managed
        .bindings
        .iter()
        .filter(|(n, _)| n.as_deref() == Some(name));
    let range = match (hits.next(), hits.next()) {
        (Some((_, r)), None) => r.clone(),
        (Some(_), Some((_, second))) => {
            return Err(DefinitionsEditError::VmSplit {
                name: name.to_string(),
                at: second.clone(),
            })
        }
        (None, _) => {
            return Err(DefinitionsEditError::NotFound {
                name: name.to_string(),
            })
        }
    };
    let (edit, kept_comment) = deletion(text, range, managed.open, managed.close);
    let edits = vec![edit];
    let fail = |reason: String| DefinitionsEditError::Verification {
        name: name.to_string(),
        reason,
    };
    let new_text = apply(text, &edits).map_err(|e| fail(e.to_string()))?;
    verify(text, &managed, &new_text, name).map_err(fail)?;
    Ok(DefinitionsEdit {
        text: new_text,
        edits,
        kept_comment,
    })
}

/// The result parses, keeps every other binding of `managed` byte for byte and in order, and
/// evaluates to the same VMs less `name`.
fn verify(old_text: &str, old: &Managed, new_text: &str, name: &str) -> Result<(), String> {
    let new = match locate(new_text, name) {
        Ok(m) => m,
        Err(e) => return Err(format!("the result does not read back: {e}")),
    };
    let others = |text: &str, m: &Managed| -> Vec<String> {
        m.bindings
            .iter()
            .filter(|(n, _)| n.as_deref() != Some(name))
            .map(|(_, r)| text[r.clone()].to_string())
            .collect()
    };
    if others(old_text, old) != others(new_text, &new) {
        return Err("another binding of `managed` changed".into());
    }
    if new.bindings.iter().any(|(n, _)| n.as_deref() == Some(name)) {
        return Err(format!("`{name}` is still there"));
    }
    let vms = |text: &str| {
        let mut db = crate::syntax::SourceDb::new();
        let file = db.add("vms/definitions.nix", text);
        let eval = crate::syntax::evaluate(&mut db, file, &crate::syntax::NoImports);
        let defs = crate::model::definitions::read_definitions(&eval.value).definitions;
        let names = |v: &[crate::model::Vm]| v.iter().map(|v| v.name.clone()).collect::<Vec<_>>();
        (
            names(&defs.managed),
            names(&defs.imported),
            defs.template.map(|t| t.name),
        )
    };
    let (old_managed, old_imported, old_template) = vms(old_text);
    let (new_managed, new_imported, new_template) = vms(new_text);
    let want: Vec<String> = old_managed.into_iter().filter(|n| n != name).collect();
    if new_managed != want || new_imported != old_imported || new_template != old_template {
        return Err(format!(
            "the VMs read back as managed {new_managed:?}, expected {want:?}"
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "definitions_tests.rs"]
mod tests;
