//! hosts.nix edits: add a host, change its key, remove it, as text edits on the rnix tree.
//!
//! # Shapes
//!
//! The file must evaluate to an attribute set literal, possibly inside `let … in`, `rec` or
//! parentheses. Attributes whose name starts with `_` (like `_proxmox`) are not hosts and may
//! hold anything. Every other attribute is a host and must be written `name = { … };` with an
//! attribute set literal holding `publicKey`. vmctl refuses, with the file untouched: lists,
//! functions, `with`, names built by interpolation, `inherit` of host names, host entries
//! written as attribute paths (`doc1.publicKey = …;`) or whose value is not an attribute set
//! literal, duplicated names, and files with syntax errors.
//!
//! # Layout policy
//!
//! * add: the new entry goes after the last host entry (after the last entry of any kind when
//!   there is no host yet), with that entry's indentation, separated by a blank line when that
//!   entry is separated from its predecessor by one, before any trailing comment of the set.
//!   An empty set gets the entry indented two spaces deeper than its closing brace. When the
//!   last entry shares its line with other code (`{ a = { … }; }`), the new entry is written on
//!   that line too, in one-line form. CRLF files get CRLF line breaks.
//! * remove: when the entry has lines of its own, those lines go (with a comment that trails
//!   the entry on its last line); comments above the entry are kept, because they may head a
//!   group of hosts rather than describe this one ([`Change::Removed`] reports them). One blank
//!   line goes with the entry when it was blank on both sides, or blank on one side and the
//!   set's brace on the other, so groups stay separated and no blank line hugs a brace.
//! * set-key: only the bytes of the `publicKey` string literal change.
//!
//! Every edit is verified before it is returned: the result parses without errors, reads
//! back as the intended entries (untouched entries byte-identical), and planning the same
//! intent on the result changes nothing.

use std::ops::Range;

use rnix::ast::{self, HasEntry};
use rnix::SyntaxNode;
use rowan::ast::AstNode;

use super::nix::{self, Fragment};
use super::{apply, TextEdit};
use crate::model::hosts::{classify, EntryKind, HOST_MARKERS};

/// What to do to hosts.nix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostIntent {
    Add(NewHost),
    SetKey { name: String, public_key: String },
    Remove { name: String },
}

/// A host to add. `hostname` and `ssh_alias` default to the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHost {
    pub name: String,
    pub public_key: String,
    pub hostname: Option<String>,
    pub ssh_alias: Option<String>,
    pub vmid: Option<u32>,
}

/// The fleet's `hosts-template/hosts-entry.nix`: the value of a new entry, with placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryTemplate {
    pub text: String,
}

/// The placeholders an entry template may use.
pub const ENTRY_PLACEHOLDERS: &[&str] = &["name", "hostname", "ssh_alias", "public_key", "vmid"];

/// Why hosts.nix cannot be edited as asked. The file is never written when one of these is
/// returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostsEditError {
    #[error("hosts.nix has {count} syntax error(s), the first at line {line}: fix them first (`vmlint` shows them all)")]
    Syntax { count: usize, line: usize },
    #[error("hosts.nix is {found}, not an attribute set of hosts: vmctl only edits files shaped `{{ name = {{ publicKey = \"…\"; … }}; … }}` (optionally inside `let … in` or `rec`); edit this file by hand")]
    UnsupportedShape { found: &'static str },
    #[error("line {line}: an attribute name built by interpolation cannot be edited safely; write the name out, or edit hosts.nix by hand")]
    InterpolatedName { line: usize },
    #[error("line {line}: host `{name}` is written as an attribute path (`{name}.…`); write it as `{name} = {{ … }};` so vmctl can edit it")]
    NestedPath { name: String, line: usize },
    #[error("line {line}: `inherit` of host names in the hosts set is not supported; write the entries out, or prefix non-host names with `_`")]
    Inherit { line: usize },
    #[error("line {line}: entry `{name}` is {found}, not `{{ publicKey = …; }}`; vmctl only edits hosts written as attribute sets (prefix non-host entries with `_`)")]
    EntryNotAttrset {
        name: String,
        line: usize,
        found: &'static str,
    },
    #[error("line {line}: entry `{name}` has none of `publicKey`, `hostname`, `sshAlias`, so this does not look like a vmctl hosts file; add its key or prefix non-host entries with `_`")]
    EntryWithoutKey { name: String, line: usize },
    #[error("line {line}: `{name}` is defined twice; remove one definition first")]
    Duplicate { name: String, line: usize },
    #[error("invalid host name `{name}`: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("invalid public key: {reason}; pass an OpenSSH public key line like `ssh-ed25519 AAAAC3… comment`")]
    InvalidKey { reason: &'static str },
    #[error("line {line}: host `{name}` is in hosts.nix without a publicKey; set it with `vmctl hosts set-key {name} --key …`")]
    NoKeyYet { name: String, line: usize },
    #[error("host `{name}` already exists in hosts.nix with another key; to replace its key run `vmctl hosts set-key {name} --key …`")]
    KeyDiffers { name: String },
    #[error("this key is already the publicKey of `{other}` in hosts.nix; every host needs its own host key (check you copied the right one)")]
    KeyInUse { other: String },
    #[error("host `{name}` already exists in hosts.nix with sshAlias `{existing}`, not `{wanted}`; edit the entry by hand or drop --alias")]
    AliasDiffers {
        name: String,
        existing: String,
        wanted: String,
    },
    #[error("line {line}: the publicKey of `{name}` is not a plain string literal, so vmctl cannot {action} it; edit hosts.nix by hand")]
    KeyNotLiteral {
        name: String,
        line: usize,
        action: &'static str,
    },
    #[error("host `{name}` is not in hosts.nix{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    NotFound {
        name: String,
        suggestion: Option<String>,
    },
    #[error("hosts-entry.nix: {reason}")]
    Template { reason: String },
    #[error("the edit did not verify ({reason}); hosts.nix was not changed; please report this as a vmctl bug")]
    Verification { reason: String },
}

/// The result of an edit: the new text, the edits that produce it and what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsEdit {
    pub text: String,
    pub edits: Vec<TextEdit>,
    pub change: Change,
}

/// What an edit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added {
        name: String,
        line: usize,
    },
    KeyChanged {
        name: String,
        line: usize,
    },
    /// `kept_comment` is the 1-based line range of comment lines directly above the removed
    /// entry that were kept.
    Removed {
        name: String,
        kept_comment: Option<(usize, usize)>,
    },
    Unchanged {
        reason: String,
    },
}

impl Change {
    /// A one-line, human summary.
    pub fn summary(&self) -> String {
        match self {
            Change::Added { name, line } => format!("added host `{name}` at line {line}"),
            Change::KeyChanged { name, line } => {
                format!("changed the publicKey of `{name}` (line {line})")
            }
            Change::Removed { name, kept_comment } => match kept_comment {
                None => format!("removed host `{name}`"),
                Some((a, b)) => format!(
                    "removed host `{name}`; kept the comment above it (line{} {a}{}); delete it by hand if it described `{name}`",
                    if a == b { "" } else { "s" },
                    if a == b { String::new() } else { format!("–{b}") }
                ),
            },
            Change::Unchanged { reason } => format!("nothing to change: {reason}"),
        }
    }

    pub fn is_change(&self) -> bool {
        !matches!(self, Change::Unchanged { .. })
    }
}

/// One attribute of the hosts set, as located in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// False for `_`-prefixed attributes.
    pub is_host: bool,
    /// The `name = …;` binding, semicolon included.
    pub range: Range<usize>,
    /// 1-based line of the binding's start.
    pub line: usize,
    pub public_key: Option<KeyLiteral>,
    pub ssh_alias: Option<String>,
    pub hostname: Option<String>,
    /// Indentation of the host's first inner attribute relative to the entry, when both start
    /// their lines (used to lay out a new minimal entry like its siblings).
    inner_indent: Option<String>,
    /// Start of the `}` closing the host's attribute set (where a missing key is added).
    set_close: Option<usize>,
}

/// The `publicKey` value of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLiteral {
    pub range: Range<usize>,
    /// The string's value when it is a literal without interpolation.
    pub value: Option<String>,
}

/// hosts.nix located: the hosts set and its entries, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsDoc {
    /// End of the set's `{`.
    pub open: usize,
    /// Start of the set's `}`.
    pub close: usize,
    pub entries: Vec<Entry>,
    /// Line break style of the file (`\r\n` when it has any).
    pub newline: &'static str,
}

impl HostsDoc {
    pub fn hosts(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.is_host)
    }

    pub fn host(&self, name: &str) -> Option<&Entry> {
        self.hosts().find(|e| e.name == name)
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].bytes().filter(|&b| b == b'\n').count() + 1
}

/// Line numbers for many offsets of one text, without rescanning it for each.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    /// 1-based line of `offset`.
    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }
}

fn range_of(node: &SyntaxNode) -> Range<usize> {
    let r = node.text_range();
    usize::from(r.start())..usize::from(r.end())
}

/// Reads hosts.nix into a [`HostsDoc`], refusing shapes vmctl cannot edit.
pub fn locate(text: &str) -> Result<HostsDoc, HostsEditError> {
    locate_with(text, None)
}

/// [`locate`]; with `only = Some(name)`, host entries other than `name` are only checked to be
/// attribute sets and their inner attributes are not read (their `publicKey` is `None`). The
/// verification uses this: those entries are byte-identical to ones already read in full.
fn locate_with(text: &str, only: Option<&str>) -> Result<HostsDoc, HostsEditError> {
    let parse = rnix::Root::parse(text);
    if let Some(first) = parse.errors().first() {
        let offset = match first {
            rnix::ParseError::Unexpected(r)
            | rnix::ParseError::UnexpectedExtra(r)
            | rnix::ParseError::UnexpectedWanted(_, r, _)
            | rnix::ParseError::UnexpectedDoubleBind(r)
            | rnix::ParseError::DuplicatedArgs(r, _) => usize::from(r.start()),
            _ => text.len(),
        };
        return Err(HostsEditError::Syntax {
            count: parse.errors().len(),
            line: line_of(text, offset),
        });
    }
    let mut expr = parse
        .tree()
        .expr()
        .ok_or(HostsEditError::UnsupportedShape { found: "empty" })?;
    let set = loop {
        expr = nix::unparen(expr);
        match expr {
            ast::Expr::LetIn(l) => match l.body() {
                Some(body) => expr = body,
                None => return Err(HostsEditError::UnsupportedShape { found: "empty" }),
            },
            ast::Expr::AttrSet(set) => break set,
            other => {
                return Err(HostsEditError::UnsupportedShape {
                    found: nix::describe(&other),
                })
            }
        }
    };
    let (Some(l), Some(r)) = (set.l_curly_token(), set.r_curly_token()) else {
        return Err(HostsEditError::UnsupportedShape {
            found: "an incomplete attribute set",
        });
    };
    let lines = LineIndex::new(text);
    let mut entries: Vec<Entry> = Vec::new();
    let mut host_names: std::collections::HashSet<String> = std::collections::HashSet::new();
    for entry in set.entries() {
        match entry {
            ast::Entry::Inherit(inh) => {
                let line = lines.line(range_of(inh.syntax()).start);
                for attr in inh.attrs() {
                    let name = attr_text(&attr).ok_or(HostsEditError::InterpolatedName { line })?;
                    if !name.starts_with('_') {
                        return Err(HostsEditError::Inherit { line });
                    }
                }
            }
            ast::Entry::AttrpathValue(av) => {
                let range = range_of(av.syntax());
                let line = lines.line(range.start);
                let mut attrs = av.attrpath().into_iter().flat_map(|p| p.attrs());
                let first = attrs
                    .next()
                    .ok_or(HostsEditError::InterpolatedName { line })?;
                let nested = attrs.next().is_some();
                let name = attr_text(&first).ok_or(HostsEditError::InterpolatedName { line })?;
                if name.starts_with('_') {
                    // Non-host attributes may hold anything; several bindings may share a
                    // `_name.` prefix, so they are not checked for duplicates.
                    entries.push(Entry {
                        name,
                        is_host: false,
                        range,
                        line,
                        public_key: None,
                        ssh_alias: None,
                        hostname: None,
                        inner_indent: None,
                        set_close: None,
                    });
                    continue;
                }
                if nested {
                    return Err(HostsEditError::NestedPath { name, line });
                }
                if !host_names.insert(name.clone()) {
                    return Err(HostsEditError::Duplicate { name, line });
                }
                let value = av.value();
                let Some(ast::Expr::AttrSet(host_set)) = value else {
                    return Err(HostsEditError::EntryNotAttrset {
                        name,
                        line,
                        found: value.as_ref().map(nix::describe).unwrap_or("empty"),
                    });
                };
                let mut public_key = None;
                let mut ssh_alias = None;
                let mut hostname = None;
                let mut inner_indent = None;
                if only.is_some_and(|o| o != name) {
                    entries.push(Entry {
                        name,
                        is_host: true,
                        range,
                        line,
                        public_key,
                        ssh_alias,
                        hostname,
                        inner_indent,
                        set_close: None,
                    });
                    continue;
                }
                // The first name of every binding, for the shared host classification.
                // Whether a binding's first name is a host marker, for the shared host
                // classification (computed without allocating: this loop runs per host).
                let marker_of = |attr: &ast::Attr| -> Option<&'static str> {
                    let wanted = |k: &str| HOST_MARKERS.iter().copied().find(|w| *w == k);
                    match attr {
                        ast::Attr::Ident(i) => i.ident_token().and_then(|t| wanted(t.text())),
                        other => attr_text(other).and_then(|k| wanted(&k)),
                    }
                };
                let mut markers: Vec<&'static str> = Vec::new();
                for inner in host_set.entries() {
                    let ast::Entry::AttrpathValue(iav) = inner else {
                        if let ast::Entry::Inherit(inh) = inner {
                            markers.extend(inh.attrs().filter_map(|a| marker_of(&a)));
                        }
                        continue;
                    };
                    if inner_indent.is_none() {
                        inner_indent = relative_indent(text, range.start, iav.syntax());
                    }
                    let mut path = iav.attrpath().into_iter().flat_map(|p| p.attrs());
                    let Some(first) = path.next() else {
                        continue;
                    };
                    let marker = marker_of(&first);
                    markers.extend(marker);
                    // Only single-name bindings matter here (`publicKey = …;`).
                    let (Some(key), None) = (marker, path.next()) else {
                        continue;
                    };
                    let value = iav.value();
                    let string = match &value {
                        Some(ast::Expr::Str(s)) => Some(s),
                        _ => None,
                    };
                    match key {
                        "publicKey" => {
                            public_key = Some(match (string, &value) {
                                (Some(s), _) => KeyLiteral {
                                    range: range_of(s.syntax()),
                                    value: nix::plain_string(s),
                                },
                                (None, Some(v)) => KeyLiteral {
                                    range: range_of(v.syntax()),
                                    value: None,
                                },
                                (None, None) => KeyLiteral {
                                    range: range_of(iav.syntax()),
                                    value: None,
                                },
                            })
                        }
                        "sshAlias" => ssh_alias = string.and_then(nix::plain_string),
                        "hostname" => hostname = string.and_then(nix::plain_string),
                        _ => {}
                    }
                }
                // Lint and edit agree on what a host is (`model::hosts::classify`): a set
                // with `publicKey`, `hostname` or `sshAlias`; its key may be missing yet.
                if classify(&name, Some(markers.iter().copied())) != EntryKind::Host {
                    return Err(HostsEditError::EntryWithoutKey { name, line });
                }
                entries.push(Entry {
                    name,
                    is_host: true,
                    range,
                    line,
                    public_key,
                    ssh_alias,
                    hostname,
                    inner_indent,
                    set_close: host_set
                        .r_curly_token()
                        .map(|t| usize::from(t.text_range().start())),
                });
            }
        }
    }
    Ok(HostsDoc {
        open: usize::from(l.text_range().end()),
        close: usize::from(r.text_range().start()),
        entries,
        newline: if text.contains("\r\n") { "\r\n" } else { "\n" },
    })
}

/// The name an attribute spells, when it is an identifier or a string without interpolation.
fn attr_text(attr: &ast::Attr) -> Option<String> {
    match attr {
        ast::Attr::Ident(i) => Some(i.syntax().text().to_string()),
        ast::Attr::Str(s) => nix::plain_string(s),
        ast::Attr::Dynamic(_) => None,
    }
}

/// The indentation of `inner` beyond that of the line holding `outer_start`, when both begin
/// their lines.
fn relative_indent(text: &str, outer_start: usize, inner: &SyntaxNode) -> Option<String> {
    let outer = leading_indent(text, outer_start)?;
    let inner = leading_indent(text, range_of(inner).start)?;
    inner.strip_prefix(outer).map(str::to_string)
}

/// The whitespace between the start of `pos`'s line and `pos`, when only whitespace precedes
/// `pos` on its line.
fn leading_indent(text: &str, pos: usize) -> Option<&str> {
    let start = line_start(text, pos);
    let prefix = &text[start..pos];
    prefix
        .chars()
        .all(|c| c == ' ' || c == '\t')
        .then_some(prefix)
}

fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map_or(0, |i| i + 1)
}

/// Index of the `\n` ending `pos`'s line (or the text's end).
fn line_end(text: &str, pos: usize) -> usize {
    text[pos..].find('\n').map_or(text.len(), |i| pos + i)
}

fn is_blank(line: &str) -> bool {
    line.chars().all(|c| c == ' ' || c == '\t' || c == '\r')
}

/// The end of `pos`'s line content when everything from `pos` to the line break is trivia
/// (spaces and comments that stay on this line); that end excludes a `\r` before the `\n`.
fn trivia_to_line_end(text: &str, pos: usize) -> Option<usize> {
    let end = line_end(text, pos);
    if end == text.len() {
        return None;
    }
    let rest = &text[pos..end];
    let trimmed = rest.trim_start_matches([' ', '\t']);
    let only_trivia = trimmed.trim_end_matches('\r').is_empty()
        || trimmed.starts_with('#')
        || (trimmed.starts_with("/*")
            && trimmed.trim_end_matches([' ', '\t', '\r']).ends_with("*/")
            && trimmed.matches("*/").count() == 1);
    only_trivia.then(|| {
        if end > pos && text.as_bytes()[end - 1] == b'\r' {
            end - 1
        } else {
            end
        }
    })
}

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
fn key_identity(key: &str) -> (Option<&str>, Option<&str>) {
    let mut f = key.split_whitespace();
    (f.next(), f.next())
}

/// Plans, applies and verifies `intent` on hosts.nix `text`. Pure: the caller writes the
/// returned text (atomically) when [`Change::is_change`].
pub fn edit_hosts(
    text: &str,
    intent: &HostIntent,
    template: Option<&EntryTemplate>,
) -> Result<HostsEdit, HostsEditError> {
    let doc = locate(text)?;
    let (edits, change) = plan(text, &doc, intent, template)?;
    if edits.is_empty() {
        return Ok(HostsEdit {
            text: text.to_string(),
            edits,
            change,
        });
    }
    let new_text = apply(text, &edits).map_err(|e| HostsEditError::Verification {
        reason: e.to_string(),
    })?;
    let new_doc = verify(&doc, text, &new_text, intent, template)?;
    let change = match change {
        Change::Added { name, .. } => {
            let line = new_doc.host(&name).map(|e| e.line).unwrap_or_default();
            Change::Added { name, line }
        }
        other => other,
    };
    Ok(HostsEdit {
        text: new_text,
        edits,
        change,
    })
}

fn plan(
    text: &str,
    doc: &HostsDoc,
    intent: &HostIntent,
    template: Option<&EntryTemplate>,
) -> Result<(Vec<TextEdit>, Change), HostsEditError> {
    match intent {
        HostIntent::Add(new) => plan_add(text, doc, new, template),
        HostIntent::SetKey { name, public_key } => {
            let key = validate_public_key(public_key)?;
            let entry = find(doc, name)?;
            let Some(lit) = entry.public_key.as_ref() else {
                // A host whose key was not known yet: the key goes in as its last attribute.
                key_in_use(doc, name, &key)?;
                let edit = insert_key(text, doc, entry, &key).ok_or_else(|| {
                    HostsEditError::EntryWithoutKey {
                        name: name.clone(),
                        line: entry.line,
                    }
                })?;
                return Ok((
                    vec![edit],
                    Change::KeyChanged {
                        name: name.clone(),
                        line: entry.line,
                    },
                ));
            };
            let Some(current) = &lit.value else {
                return Err(HostsEditError::KeyNotLiteral {
                    name: name.clone(),
                    line: entry.line,
                    action: "change",
                });
            };
            if *current == key {
                return Ok((
                    vec![],
                    Change::Unchanged {
                        reason: format!("`{name}` already has this publicKey"),
                    },
                ));
            }
            key_in_use(doc, name, &key)?;
            Ok((
                vec![TextEdit::replace(
                    lit.range.start,
                    lit.range.end,
                    nix::string_literal(&key),
                )],
                Change::KeyChanged {
                    name: name.clone(),
                    line: line_of(text, lit.range.start),
                },
            ))
        }
        HostIntent::Remove { name } => {
            let entry = find(doc, name)?;
            let idx = doc
                .entries
                .iter()
                .position(|e| e.range == entry.range)
                .expect("the entry is in the doc");
            Ok(plan_remove(text, doc, idx))
        }
    }
}

/// The edit adding `publicKey = "KEY";` to a host entry that has none: on a line of its own
/// before the closing brace (indented like the entry's other attributes) when the brace
/// starts its line, else just before the brace. `None` when the entry's brace is unknown.
fn insert_key(text: &str, doc: &HostsDoc, entry: &Entry, key: &str) -> Option<TextEdit> {
    let close = entry.set_close?;
    let binding = format!("publicKey = {};", nix::string_literal(key));
    let start = line_start(text, close);
    match (&entry.inner_indent, leading_indent(text, close)) {
        (Some(inner), Some(_)) => {
            let outer = leading_indent(text, entry.range.start).unwrap_or("");
            Some(TextEdit::insert(
                start,
                format!("{outer}{inner}{binding}{}", doc.newline),
            ))
        }
        _ => {
            let pad = if text[..close].ends_with([' ', '\t']) {
                ""
            } else {
                " "
            };
            Some(TextEdit::insert(close, format!("{pad}{binding} ")))
        }
    }
}

/// Refuses a key another host already has: two hosts sharing a host key is a copy-paste
/// mistake, and lint rejects it.
fn key_in_use(doc: &HostsDoc, name: &str, key: &str) -> Result<(), HostsEditError> {
    let other = doc.hosts().find(|e| {
        e.name != name
            && e.public_key
                .as_ref()
                .and_then(|k| k.value.as_deref())
                .is_some_and(|v| key_identity(v) == key_identity(key))
    });
    match other {
        Some(e) => Err(HostsEditError::KeyInUse {
            other: e.name.clone(),
        }),
        None => Ok(()),
    }
}

fn find<'d>(doc: &'d HostsDoc, name: &str) -> Result<&'d Entry, HostsEditError> {
    doc.host(name).ok_or_else(|| HostsEditError::NotFound {
        name: name.to_string(),
        suggestion: doc
            .hosts()
            .map(|e| (strsim::levenshtein(name, &e.name), &e.name))
            .filter(|(d, n)| *d <= 2.max(n.len() / 3))
            .min()
            .map(|(_, n)| n.clone()),
    })
}

fn plan_add(
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
                line: existing.line,
            });
        };
        let Some(current) = &lit.value else {
            return Err(HostsEditError::KeyNotLiteral {
                name: new.name.clone(),
                line: existing.line,
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
fn push_lines(out: &mut String, lines: &[String], indent: &str, nl: &str) {
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

fn add_to_empty_set(
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

fn minimal_value(new: &NewHost, inner: &str) -> String {
    let hostname = new.hostname.as_deref().unwrap_or(&new.name);
    let alias = new.ssh_alias.as_deref().unwrap_or(&new.name);
    format!(
        "{{\n{inner}hostname = {};\n{inner}sshAlias = {};\n{inner}publicKey = {};\n}}",
        nix::string_literal(hostname),
        nix::string_literal(alias),
        nix::string_literal(&new.public_key)
    )
}

fn render_one_line(new: &NewHost) -> Result<String, HostsEditError> {
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
fn render_entry(
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
    .map_err(|p| {
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

/// Replaces every `@name@` (name: lowercase letters and `_`) with `value(name)`; the first
/// name `value` does not know is returned as the error.
pub fn substitute(
    text: &str,
    mut value: impl FnMut(&str) -> Option<String>,
) -> Result<String, String> {
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
            out.push_str(&value(name).ok_or_else(|| name.to_string())?);
            rest = &after[name_len + 1..];
        } else {
            out.push('@');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn plan_remove(text: &str, doc: &HostsDoc, idx: usize) -> (Vec<TextEdit>, Change) {
    let entry = &doc.entries[idx];
    let name = entry.name.clone();
    let own_lines = leading_indent(text, entry.range.start).is_some()
        && trivia_to_line_end(text, entry.range.end).is_some();
    if !own_lines {
        let (s, e) = (entry.range.start, entry.range.end);
        let before = text[..s].len() - text[..s].trim_end_matches([' ', '\t']).len();
        let after = text[e..].len() - text[e..].trim_start_matches([' ', '\t']).len();
        let edit = if before > 0 && !text[..s - before].ends_with('\n') {
            TextEdit::delete(s - before, e)
        } else {
            TextEdit::delete(s, e + after)
        };
        return (
            vec![edit],
            Change::Removed {
                name,
                kept_comment: None,
            },
        );
    }
    let mut start = line_start(text, entry.range.start);
    let mut end = line_end(text, entry.range.end) + 1;
    // The lines around the entry, to decide about blank lines and report kept comments.
    let prev_line = (start > 0).then(|| {
        let s = line_start(text, start - 1);
        s..start - 1
    });
    let next_line = (end < text.len()).then(|| end..line_end(text, end));
    let open_line = line_start(text, doc.open)..line_end(text, doc.open);
    let close_line = line_start(text, doc.close)..line_end(text, doc.close);
    let blank = |r: &Option<Range<usize>>| r.as_ref().is_some_and(|r| is_blank(&text[r.clone()]));
    let is_brace = |r: &Option<Range<usize>>, brace: &Range<usize>| r.as_ref() == Some(brace);
    let (prev_blank, next_blank) = (blank(&prev_line), blank(&next_line));
    if next_blank && (prev_blank || is_brace(&prev_line, &open_line)) {
        end = next_line
            .as_ref()
            .map(|r| r.end + 1)
            .unwrap_or(end)
            .min(text.len());
    } else if prev_blank && is_brace(&next_line, &close_line) {
        start = prev_line.as_ref().map(|r| r.start).unwrap_or(start);
    }
    // Comment lines directly above the entry are kept; say so.
    let mut kept = None;
    let mut probe = line_start(text, entry.range.start);
    while probe > 0 {
        let s = line_start(text, probe - 1);
        let line = text[s..probe - 1].trim();
        if line.starts_with('#') || line.ends_with("*/") {
            let n = line_of(text, s);
            kept = Some(match kept {
                None => (n, n),
                Some((_, b)) => (n, b),
            });
            probe = s;
        } else {
            break;
        }
    }
    (
        vec![TextEdit::delete(start, end)],
        Change::Removed {
            name,
            kept_comment: kept,
        },
    )
}

/// Re-reads the edited text and checks it means what was asked, and that the same intent
/// planned again on the result changes nothing.
fn verify(
    old: &HostsDoc,
    old_text: &str,
    new_text: &str,
    intent: &HostIntent,
    template: Option<&EntryTemplate>,
) -> Result<HostsDoc, HostsEditError> {
    let fail = |reason: String| HostsEditError::Verification { reason };
    let target = match intent {
        HostIntent::Add(h) => Some(h.name.as_str()),
        HostIntent::SetKey { name, .. } | HostIntent::Remove { name } => Some(name.as_str()),
    };
    let new = locate_with(new_text, target)
        .map_err(|e| fail(format!("the result does not read back: {e}")))?;
    let (expect_names, changed): (Vec<&str>, Option<&str>) = match intent {
        HostIntent::Add(h) => {
            let mut names: Vec<&str> = old.entries.iter().map(|e| e.name.as_str()).collect();
            names.push(&h.name);
            (names, Some(&h.name))
        }
        HostIntent::SetKey { name, .. } => (
            old.entries.iter().map(|e| e.name.as_str()).collect(),
            Some(name),
        ),
        HostIntent::Remove { name } => (
            old.entries
                .iter()
                .filter(|e| !(e.is_host && e.name == *name))
                .map(|e| e.name.as_str())
                .collect(),
            None,
        ),
    };
    let mut got: Vec<&str> = new.entries.iter().map(|e| e.name.as_str()).collect();
    let mut want = expect_names.clone();
    got.sort_unstable();
    want.sort_unstable();
    if got != want {
        return Err(fail(format!("entries are {got:?}, expected {want:?}")));
    }
    // `_` entries may share a name (`_a.x = …; _a.y = …;`), so compare in file order.
    let mut old_texts: std::collections::HashMap<&str, Vec<&str>> =
        std::collections::HashMap::new();
    for o in old.entries.iter().rev() {
        old_texts
            .entry(&o.name)
            .or_default()
            .push(&old_text[o.range.clone()]);
    }
    for e in &new.entries {
        if Some(e.name.as_str()) == changed {
            continue;
        }
        let same = old_texts
            .get_mut(e.name.as_str())
            .and_then(Vec::pop)
            .is_some_and(|t| t == &new_text[e.range.clone()]);
        if !same {
            return Err(fail(format!("entry `{}` changed", e.name)));
        }
    }
    let expected_key = match intent {
        HostIntent::Add(h) => Some((&h.name, &h.public_key)),
        HostIntent::SetKey { name, public_key } => Some((name, public_key)),
        HostIntent::Remove { .. } => None,
    };
    if let Some((name, key)) = expected_key {
        let got = new
            .host(name)
            .and_then(|e| e.public_key.as_ref())
            .and_then(|k| k.value.clone());
        if got.as_deref() != Some(key.trim()) {
            return Err(fail(format!(
                "the publicKey of `{name}` reads back as {got:?}"
            )));
        }
    }
    let again = plan(new_text, &new, intent, template);
    match (intent, again) {
        (_, Ok((edits, _))) if edits.is_empty() => Ok(new),
        (HostIntent::Remove { .. }, Err(HostsEditError::NotFound { .. })) => Ok(new),
        (_, other) => Err(fail(format!(
            "applying the edit twice is not a no-op: {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHxM2a6DvE298UXZdhKYSMrTPvzvceh5+ZJ77tKj9n0D new@host";

    fn add(name: &str) -> HostIntent {
        HostIntent::Add(NewHost {
            name: name.into(),
            public_key: KEY.into(),
            hostname: None,
            ssh_alias: None,
            vmid: None,
        })
    }

    #[track_caller]
    fn check(before: &str, intent: HostIntent, after: &str) {
        let out = edit_hosts(before, &intent, None).unwrap();
        assert_eq!(out.text, after);
    }

    #[test]
    fn binding_ranges_end_at_the_semicolon() {
        let doc = locate("{\n  a = { publicKey = \"k\"; }; # c\n}").unwrap();
        let text = "{\n  a = { publicKey = \"k\"; }; # c\n}";
        assert_eq!(
            &text[doc.entries[0].range.clone()],
            "a = { publicKey = \"k\"; };"
        );
    }

    #[test]
    fn adds_after_the_last_host_with_its_indentation() {
        check(
            "{\n    a = {\n      publicKey = \"ssh-ed25519 AAAA\";\n    };\n    # trailing\n}",
            add("b"),
            &format!("{{\n    a = {{\n      publicKey = \"ssh-ed25519 AAAA\";\n    }};\n    b = {{\n      hostname = \"b\";\n      sshAlias = \"b\";\n      publicKey = \"{KEY}\";\n    }};\n    # trailing\n}}"),
        );
    }

    #[test]
    fn adds_into_empty_sets() {
        check(
            "{ }",
            add("b"),
            &format!("{{\n  b = {{\n    hostname = \"b\";\n    sshAlias = \"b\";\n    publicKey = \"{KEY}\";\n  }};\n}}"),
        );
        check(
            "let x = 1; in {\n  # none yet\n}\n",
            add("b"),
            &format!("let x = 1; in {{\n  # none yet\n  b = {{\n    hostname = \"b\";\n    sshAlias = \"b\";\n    publicKey = \"{KEY}\";\n  }};\n}}\n"),
        );
    }

    #[test]
    fn one_line_sets_stay_on_one_line() {
        check(
            "{ a = { publicKey = \"ssh-ed25519 AAAA\"; }; }",
            add("b"),
            &format!("{{ a = {{ publicKey = \"ssh-ed25519 AAAA\"; }}; b = {{ hostname = \"b\"; sshAlias = \"b\"; publicKey = \"{KEY}\"; }}; }}"),
        );
        check(
            "{ a = { publicKey = \"k\"; }; b = { publicKey = \"k\"; }; }",
            HostIntent::Remove { name: "b".into() },
            "{ a = { publicKey = \"k\"; }; }",
        );
        check(
            "{ a = { publicKey = \"k\"; }; b = { publicKey = \"k\"; }; }",
            HostIntent::Remove { name: "a".into() },
            "{ b = { publicKey = \"k\"; }; }",
        );
    }

    #[test]
    fn removal_keeps_comments_above_and_group_separation() {
        let text = "{\n  a = { publicKey = \"k\"; };\n\n  # about b\n  b = { publicKey = \"k\"; }; # trailing\n\n  c = { publicKey = \"k\"; };\n}";
        let out = edit_hosts(text, &HostIntent::Remove { name: "b".into() }, None).unwrap();
        assert_eq!(
            out.text,
            "{\n  a = { publicKey = \"k\"; };\n\n  # about b\n\n  c = { publicKey = \"k\"; };\n}"
        );
        assert_eq!(
            out.change,
            Change::Removed {
                name: "b".into(),
                kept_comment: Some((4, 4))
            }
        );
        check(
            "{\n  a = { publicKey = \"k\"; };\n\n  c = { publicKey = \"k\"; };\n}",
            HostIntent::Remove { name: "c".into() },
            "{\n  a = { publicKey = \"k\"; };\n}",
        );
        check(
            "{\n  a = { publicKey = \"k\"; };\n\n  c = { publicKey = \"k\"; };\n}",
            HostIntent::Remove { name: "a".into() },
            "{\n  c = { publicKey = \"k\"; };\n}",
        );
    }

    #[test]
    fn set_key_replaces_only_the_literal() {
        check(
            "{ a = { publicKey = \"ssh-ed25519 AAAA\"; x = 1; }; }",
            HostIntent::SetKey {
                name: "a".into(),
                public_key: KEY.into(),
            },
            &format!("{{ a = {{ publicKey = \"{KEY}\"; x = 1; }}; }}"),
        );
    }

    #[test]
    fn refuses_shapes_it_cannot_edit() {
        let refuse = |text: &str| edit_hosts(text, &add("z"), None).unwrap_err();
        assert!(matches!(
            refuse("[ ]"),
            HostsEditError::UnsupportedShape { .. }
        ));
        assert!(matches!(
            refuse("{ config, ... }: { }"),
            HostsEditError::UnsupportedShape { .. }
        ));
        assert!(matches!(
            refuse("with x; { }"),
            HostsEditError::UnsupportedShape { .. }
        ));
        assert!(matches!(
            refuse("{ ${x} = { publicKey = \"k\"; }; }"),
            HostsEditError::InterpolatedName { .. }
        ));
        assert!(matches!(
            refuse("{ \"${x}\" = { publicKey = \"k\"; }; }"),
            HostsEditError::InterpolatedName { .. }
        ));
        assert!(matches!(
            refuse("{ a.publicKey = \"k\"; }"),
            HostsEditError::NestedPath { .. }
        ));
        assert!(matches!(
            refuse("{ a = \"k\"; }"),
            HostsEditError::EntryNotAttrset { .. }
        ));
        assert!(matches!(
            refuse("{ a = { x = 1; }; }"),
            HostsEditError::EntryWithoutKey { .. }
        ));
        assert!(matches!(
            refuse("{ inherit a; }"),
            HostsEditError::Inherit { .. }
        ));
        assert!(matches!(
            refuse("{ a = { publicKey = \"k\"; }; a = { publicKey = \"k\"; }; }"),
            HostsEditError::Duplicate { .. }
        ));
        assert!(matches!(
            refuse("{ a = { publicKey = \"k\" }; }"),
            HostsEditError::Syntax { .. }
        ));
    }

    #[test]
    fn existing_names_are_unchanged_or_refused() {
        let text = format!("{{\n  z = {{ publicKey = \"{KEY}\"; }};\n}}");
        let same = edit_hosts(&text, &add("z"), None).unwrap();
        assert!(!same.change.is_change());
        assert_eq!(same.text, text);
        let other = HostIntent::Add(NewHost {
            name: "z".into(),
            public_key: "ssh-ed25519 BBBB".into(),
            hostname: None,
            ssh_alias: None,
            vmid: None,
        });
        let err = edit_hosts(&text, &other, None).unwrap_err();
        assert!(err.to_string().contains("vmctl hosts set-key z"), "{err}");
        let missing =
            edit_hosts(&text, &HostIntent::Remove { name: "y".into() }, None).unwrap_err();
        assert!(
            missing.to_string().contains("did you mean `z`"),
            "{missing}"
        );
    }

    #[test]
    fn templates_render_inside_strings_and_are_checked() {
        let t = EntryTemplate {
            text: "# doc\n{\n  hostname = \"@hostname@\";\n  publicKey = \"@public_key@\"; # vmid @vmid@\n}\n".into(),
        };
        let out = edit_hosts("{\n}", &add("b"), Some(&t)).unwrap();
        assert_eq!(
            out.text,
            format!(
                "{{\n  b = {{\n    hostname = \"b\";\n    publicKey = \"{KEY}\"; # vmid\n  }};\n}}"
            )
        );
        let bad = EntryTemplate {
            text: "{ publicKey = \"@public_key@\"; x = \"@nope@\"; }".into(),
        };
        assert!(matches!(
            edit_hosts("{ }", &add("b"), Some(&bad)),
            Err(HostsEditError::Template { .. })
        ));
        let no_key = EntryTemplate {
            text: "{ hostname = \"@hostname@\"; }".into(),
        };
        assert!(matches!(
            edit_hosts("{ }", &add("b"), Some(&no_key)),
            Err(HostsEditError::Template { .. })
        ));
    }

    #[test]
    fn names_and_keys_are_validated() {
        assert!(validate_name("test-automation").is_ok());
        assert!(validate_name("_proxmox").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_public_key("ssh-ed25519 AAAA x\ny").is_err());
        assert!(validate_public_key("age1xyz").is_err());
        assert_eq!(
            validate_public_key(" ssh-rsa AAAA= c ").unwrap(),
            "ssh-rsa AAAA= c"
        );
    }

    #[test]
    fn a_host_without_a_key_is_a_host_and_set_key_adds_it() {
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO8VKyhzcBQ4yMgYmcX8xILCt0u2lTGGk4vH1uMd4X9T";
        let set_key = HostIntent::SetKey {
            name: "web".into(),
            public_key: key.into(),
        };
        let text = "{\n  web = {\n    hostname = \"web\";\n  };\n}\n";
        let doc = locate(text).unwrap();
        assert!(doc.host("web").is_some_and(|e| e.public_key.is_none()));
        let out = edit_hosts(text, &set_key, None).unwrap();
        assert_eq!(
            out.text,
            format!(
                "{{\n  web = {{\n    hostname = \"web\";\n    publicKey = \"{key}\";\n  }};\n}}\n"
            )
        );
        let one_line = "{ web = { sshAlias = \"w\"; }; }";
        let out = edit_hosts(one_line, &set_key, None).unwrap();
        assert_eq!(
            out.text,
            format!("{{ web = {{ sshAlias = \"w\"; publicKey = \"{key}\"; }}; }}")
        );
        // `hosts add` of it says how to set its key; removing it works.
        let add = HostIntent::Add(NewHost {
            name: "web".into(),
            public_key: key.into(),
            hostname: None,
            ssh_alias: None,
            vmid: None,
        });
        assert!(matches!(
            edit_hosts(text, &add, None),
            Err(HostsEditError::NoKeyYet { .. })
        ));
        let removed = edit_hosts(text, &HostIntent::Remove { name: "web".into() }, None).unwrap();
        assert_eq!(removed.text, "{\n}\n");
    }

    #[test]
    fn lint_and_edit_agree_on_which_entries_are_hosts() {
        use crate::syntax::{evaluate, NoImports, SourceDb};
        let files = [
            include_str!("../../hosts.nix"),
            "{ _p = 1; a = { hostname = \"a\"; }; b = { publicKey = \"k\"; x = 1; }; }",
            "let k = \"x\"; in rec { _s = { y = 2; }; c = { sshAlias = \"c\"; publicKey = k; }; }",
            "{ a = { ip = \"10.0.0.1\"; }; }",
            "{ a = \"ssh-ed25519 AAAA\"; }",
        ];
        for text in files {
            let mut db = SourceDb::new();
            let f = db.add("/fleet/hosts.nix", text);
            let lint = crate::model::hosts::read_hosts(&evaluate(&mut db, f, &NoImports).value);
            let lint_names: Vec<&str> = lint.hosts.hosts.iter().map(|h| h.name.as_str()).collect();
            match locate(text) {
                Ok(doc) => {
                    let edit_names: Vec<&str> = doc.hosts().map(|e| e.name.as_str()).collect();
                    assert_eq!(lint_names, edit_names, "{text}");
                    assert!(lint.issues.is_empty(), "{text}: {:?}", lint.issues);
                }
                // What edit refuses as "not a host", lint reports as not a host either.
                Err(_) => assert!(
                    lint.issues
                        .iter()
                        .any(|i| matches!(i, crate::model::read::Issue::Unsupported { .. })),
                    "{text}: edit refused but lint saw {lint_names:?}"
                ),
            }
        }
    }
}
