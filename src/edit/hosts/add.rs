//! Adding a host: name and key validation, and where the new entry goes (after the last host,
//! like its siblings, or into an empty set).

use super::locate::trivia_to_line_end;
use super::template::{render_entry, render_one_line};
use super::{key_in_use, Change, EntryTemplate, HostsDoc, HostsEditError, NewHost};
use crate::text::{is_blank, leading_indent, line_start, TextEdit};

/// Checks a host name for add: something a hostname or a Nix attribute can be.
pub fn validate_name(name: &str) -> Result<(), HostsEditError> {
    let invalid = |reason| HostsEditError::InvalidName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.starts_with('_') {
        return Err(invalid(
            "names starting with `_` are not hosts in hosts.nix (they hold fleet settings)",
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(invalid(
            "use letters, digits, `-`, `_` and `.`, starting with a letter or digit",
        ));
    }
    Ok(())
}

const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Checks that `key` is one OpenSSH public key line and returns it trimmed.
pub fn validate_public_key(key: &str) -> Result<String, HostsEditError> {
    let key = key.trim();
    let invalid = |reason| HostsEditError::InvalidKey { reason };
    if key.chars().any(char::is_control) {
        return Err(invalid(
            "it spans several lines or holds control characters",
        ));
    }
    let mut fields = key.split_whitespace();
    let kind = fields.next().ok_or(invalid("it is empty"))?;
    if !KEY_TYPES.contains(&kind) {
        return Err(invalid(
            "its type is not an ssh key type (ssh-ed25519, ssh-rsa, …)",
        ));
    }
    let blob = fields
        .next()
        .ok_or(invalid("the base64 key data is missing"))?;
    if !blob
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
    {
        return Err(invalid("the key data is not base64"));
    }
    Ok(key.to_string())
}

/// Type and key data of an OpenSSH key line: two lines naming the same key with different
/// comments are the same key.
pub(super) fn key_identity(key: &str) -> (Option<&str>, Option<&str>) {
    let mut f = key.split_whitespace();
    (f.next(), f.next())
}
pub(super) fn plan_add(
    text: &str,
    doc: &HostsDoc,
    new: &NewHost,
    template: Option<&EntryTemplate>,
) -> Result<(Vec<TextEdit>, Change), HostsEditError> {
    validate_name(&new.name)?;
    let key = validate_public_key(&new.public_key)?;
    if let Some(existing) = doc.host(&new.name) {
        let Some(lit) = existing.public_key.as_ref() else {
            return Err(HostsEditError::NoKeyYet {
                name: new.name.clone(),
                at: existing.name_range.clone(),
            });
        };
        let Some(current) = &lit.value else {
            return Err(HostsEditError::KeyNotLiteral {
                name: new.name.clone(),
                at: lit.range.clone(),
                action: "compare",
            });
        };
        if key_identity(current) != key_identity(&key) {
            return Err(HostsEditError::KeyDiffers {
                name: new.name.clone(),
            });
        }
        if let (Some(wanted), Some(have)) = (&new.ssh_alias, &existing.ssh_alias) {
            if wanted != have {
                return Err(HostsEditError::AliasDiffers {
                    name: new.name.clone(),
                    existing: have.clone(),
                    wanted: wanted.clone(),
                });
            }
        }
        return Ok((
            vec![],
            Change::Unchanged {
                reason: format!("`{}` is already in hosts.nix with this key", new.name),
            },
        ));
    }
    key_in_use(doc, &new.name, &key)?;
    let new = NewHost {
        public_key: key,
        ..new.clone()
    };
    let nl = doc.newline;
    let anchor = doc
        .hosts()
        .last()
        .or_else(|| doc.entries.last())
        .map(|e| (e, doc.entries.iter().position(|x| x.range == e.range)));
    let change = Change::Added {
        name: new.name.clone(),
        line: 0,
    };
    let Some((anchor, Some(anchor_idx))) = anchor else {
        return Ok((vec![add_to_empty_set(text, doc, &new, template)?], change));
    };
    let own_line =
        leading_indent(text, anchor.range.start).zip(trivia_to_line_end(text, anchor.range.end));
    let Some((indent, at)) = own_line else {
        // The anchor shares its line with other code: stay on that line.
        let entry = render_one_line(&new)?;
        return Ok((
            vec![TextEdit::insert(anchor.range.end, format!(" {entry}"))],
            change,
        ));
    };
    let prev_end = if anchor_idx == 0 {
        doc.open
    } else {
        doc.entries[anchor_idx - 1].range.end
    };
    let between: Vec<&str> = text[prev_end..anchor.range.start].split('\n').collect();
    let blank_separated =
        between.len() > 2 && between[1..between.len() - 1].iter().any(|l| is_blank(l));
    let inner = anchor.inner_indent.clone().unwrap_or_else(|| "  ".into());
    let lines = render_entry(&new, template, &inner)?;
    let mut insert = String::new();
    insert.push_str(nl);
    if blank_separated {
        insert.push_str(nl);
    }
    push_lines(&mut insert, &lines, indent, nl);
    Ok((vec![TextEdit::insert(at, insert)], change))
}

/// Appends `lines` to `out`, the first without a leading break, each prefixed by `indent`
/// (empty lines stay empty so no trailing whitespace appears).
pub(super) fn push_lines(out: &mut String, lines: &[String], indent: &str, nl: &str) {
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.push_str(nl);
        }
        if !l.is_empty() {
            out.push_str(indent);
            out.push_str(l);
        }
    }
}

pub(super) fn add_to_empty_set(
    text: &str,
    doc: &HostsDoc,
    new: &NewHost,
    template: Option<&EntryTemplate>,
) -> Result<TextEdit, HostsEditError> {
    let nl = doc.newline;
    let lines = render_entry(new, template, "  ")?;
    let close_line = line_start(text, doc.close);
    if close_line > doc.open && is_blank(&text[close_line..doc.close]) {
        // `}` on its own line: the entry goes on the line(s) just above it, after any comment.
        let base = &text[close_line..doc.close];
        let indent = format!("{base}  ");
        let mut insert = String::new();
        push_lines(&mut insert, &lines, &indent, nl);
        insert.push_str(nl);
        return Ok(TextEdit::insert(close_line, insert));
    }
    // `{ }` or `}` after code on its line: replace the whitespace before `}`.
    let ws_start = doc.open
        + text[doc.open..doc.close]
            .trim_end_matches([' ', '\t', '\r', '\n'])
            .len();
    let open_line = line_start(text, doc.open);
    let base: String = text[open_line..]
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect();
    let indent = format!("{base}  ");
    let mut insert = String::from(nl);
    push_lines(&mut insert, &lines, &indent, nl);
    insert.push_str(nl);
    insert.push_str(&base);
    Ok(TextEdit::replace(ws_start, doc.close, insert))
}
