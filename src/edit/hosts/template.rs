//! Rendering a new host entry: the minimal form, or the fleet's `hosts-entry.nix` template
//! with its `@placeholder@`s substituted and checked.

use rnix::ast::{self, HasEntry};
use rowan::ast::AstNode;

use super::locate::{attr_text, range_of};
use super::{EntryTemplate, HostsEditError, NewHost, ENTRY_PLACEHOLDERS};
use crate::edit::nix::{self, Fragment};

pub(super) fn minimal_value(new: &NewHost, inner: &str) -> String {
    let hostname = new.hostname.as_deref().unwrap_or(&new.name);
    let alias = new.ssh_alias.as_deref().unwrap_or(&new.name);
    format!(
        "{{\n{inner}hostname = {};\n{inner}sshAlias = {};\n{inner}publicKey = {};\n}}",
        nix::string_literal(hostname),
        nix::string_literal(alias),
        nix::string_literal(&new.public_key)
    )
}

pub(super) fn render_one_line(new: &NewHost) -> Result<String, HostsEditError> {
    let value = minimal_value(new, "").replace('\n', " ");
    let value = Fragment::expr(value).map_err(|e| HostsEditError::Verification {
        reason: e.to_string(),
    })?;
    Fragment::binding(&new.name, &value)
        .map(Fragment::into_string)
        .map_err(|e| HostsEditError::Verification {
            reason: e.to_string(),
        })
}

/// The new entry `name = { … };` as lines (LF-free), from the template or the minimal form.
pub(super) fn render_entry(
    new: &NewHost,
    template: Option<&EntryTemplate>,
    inner: &str,
) -> Result<Vec<String>, HostsEditError> {
    let value = match template {
        Some(t) => render_template_value(t, new)?,
        None => {
            Fragment::expr(minimal_value(new, inner)).map_err(|e| HostsEditError::Verification {
                reason: e.to_string(),
            })?
        }
    };
    let binding = Fragment::binding(&new.name, &value).map_err(|e| HostsEditError::Template {
        reason: e.to_string(),
    })?;
    Ok(binding
        .as_str()
        .split('\n')
        .map(|l| l.trim_end_matches('\r').trim_end().to_string())
        .collect())
}

/// Substitutes the template's placeholders and returns its attribute set (leading and
/// trailing comments of the template file are its documentation and are dropped).
pub fn render_template_value(
    template: &EntryTemplate,
    new: &NewHost,
) -> Result<Fragment, HostsEditError> {
    let err = |reason: String| HostsEditError::Template { reason };
    let hostname = new.hostname.clone().unwrap_or_else(|| new.name.clone());
    let alias = new.ssh_alias.clone().unwrap_or_else(|| new.name.clone());
    let vmid = new.vmid.map(|v| v.to_string()).unwrap_or_default();
    let substituted = substitute(&template.text, |name| match name {
        "name" => Some(nix::string_body(&new.name)),
        "hostname" => Some(nix::string_body(&hostname)),
        "ssh_alias" => Some(nix::string_body(&alias)),
        "public_key" => Some(nix::string_body(&new.public_key)),
        "vmid" => Some(vmid.clone()),
        _ => None,
    })
    .map_err(|UnknownPlaceholder(p)| {
        err(format!(
            "unknown placeholder `@{p}@`; the known ones are {}",
            ENTRY_PLACEHOLDERS
                .iter()
                .map(|p| format!("@{p}@"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let parse = rnix::Root::parse(&substituted);
    if let Some(e) = parse.errors().first() {
        return Err(err(format!(
            "after substitution it does not parse ({e}); placeholders other than @vmid@ belong inside \"…\" strings"
        )));
    }
    let Some(ast::Expr::AttrSet(set)) = parse.tree().expr().map(nix::unparen) else {
        return Err(err(
            "it must be an attribute set `{ publicKey = \"@public_key@\"; … }`".into(),
        ));
    };
    let has_key = set.entries().any(|e| match e {
        ast::Entry::AttrpathValue(av) => {
            let path: Vec<_> = av.attrpath().map(|p| p.attrs().collect()).unwrap_or_default();
            path.len() == 1
                && attr_text(&path[0]).as_deref() == Some("publicKey")
                && matches!(av.value(), Some(ast::Expr::Str(s)) if nix::plain_string(&s).as_deref() == Some(new.public_key.as_str()))
        }
        _ => false,
    });
    if !has_key {
        return Err(err("it must set `publicKey = \"@public_key@\";`".into()));
    }
    let r = range_of(set.syntax());
    Fragment::expr(substituted[r].replace("\r\n", "\n")).map_err(|e| err(e.to_string()))
}

/// A `@name@` placeholder nothing gives a value for (the name, without the `@`s).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown placeholder `@{0}@`")]
pub struct UnknownPlaceholder(pub String);

/// Replaces every `@name@` (name: lowercase letters and `_`) with `value(name)`; the first
/// name `value` does not know is returned as the error.
pub fn substitute(
    text: &str,
    mut value: impl FnMut(&str) -> Option<String>,
) -> Result<String, UnknownPlaceholder> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('@') {
            let name = &after[..name_len];
            out.push_str(&value(name).ok_or_else(|| UnknownPlaceholder(name.to_string()))?);
            rest = &after[name_len + 1..];
        } else {
            out.push('@');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}
