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

mod add;
mod locate;
mod remove;
mod template;
mod verify;

#[cfg(test)]
mod tests;

use std::ops::Range;

use super::nix;
use crate::text::{apply, leading_indent, line_number, line_start, TextEdit};

pub use add::{validate_name, validate_public_key};
pub use locate::locate;
pub use template::{render_template_value, substitute, UnknownPlaceholder};

use add::{key_identity, plan_add};
use remove::plan_remove;
use verify::verify;

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
///
/// A refusal about a place in the file carries that place (`at`, byte offsets into hosts.nix)
/// and renders like a lint finding: the message, the file's snippet with a label, and what to
/// do as help. The caller attaches the file's text (`Report::with_source_code`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum HostsEditError {
    #[error("hosts.nix has {count} syntax error(s)")]
    #[diagnostic(help("fix them first (`vmlint` shows them all)"))]
    Syntax {
        count: usize,
        #[label("the first is here")]
        at: Range<usize>,
    },
    #[error("hosts.nix is {found}, not an attribute set of hosts: vmctl only edits files shaped `{{ name = {{ publicKey = \"…\"; … }}; … }}` (optionally inside `let … in` or `rec`); edit this file by hand")]
    UnsupportedShape { found: &'static str },
    #[error("an attribute name built by interpolation cannot be edited safely")]
    #[diagnostic(help("write the name out, or edit hosts.nix by hand"))]
    InterpolatedName {
        #[label("built by interpolation")]
        at: Range<usize>,
    },
    #[error("host `{name}` is written as an attribute path (`{name}.…`)")]
    #[diagnostic(help("write it as `{name} = {{ … }};` so vmctl can edit it"))]
    NestedPath {
        name: String,
        #[label("an attribute path")]
        at: Range<usize>,
    },
    #[error("`inherit` of host names in the hosts set is not supported")]
    #[diagnostic(help("write the entries out, or prefix non-host names with `_`"))]
    Inherit {
        #[label("inherits a host name")]
        at: Range<usize>,
    },
    #[error("entry `{name}` is {found}, not `{{ publicKey = …; }}`")]
    #[diagnostic(help(
        "vmctl only edits hosts written as attribute sets (prefix non-host entries with `_`)"
    ))]
    EntryNotAttrset {
        name: String,
        #[label("this is {found}")]
        at: Range<usize>,
        found: &'static str,
    },
    #[error("entry `{name}` has none of `publicKey`, `hostname`, `sshAlias`, so this does not look like a vmctl hosts file")]
    #[diagnostic(help("add its key or prefix non-host entries with `_`"))]
    EntryWithoutKey {
        name: String,
        #[label("no publicKey, hostname or sshAlias")]
        at: Range<usize>,
    },
    #[error("`{name}` is defined twice")]
    #[diagnostic(help("remove one definition first"))]
    Duplicate {
        name: String,
        #[label("defined again here")]
        at: Range<usize>,
    },
    #[error("invalid host name `{name}`: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("invalid public key: {reason}; pass an OpenSSH public key line like `ssh-ed25519 AAAAC3… comment`")]
    InvalidKey { reason: &'static str },
    #[error("host `{name}` is in hosts.nix without a publicKey")]
    #[diagnostic(help("set it with `vmctl hosts set-key {name} --key …`"))]
    NoKeyYet {
        name: String,
        #[label("no publicKey")]
        at: Range<usize>,
    },
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
    #[error(
        "the publicKey of `{name}` is not a plain string literal, so vmctl cannot {action} it"
    )]
    #[diagnostic(help("edit hosts.nix by hand"))]
    KeyNotLiteral {
        name: String,
        #[label("not a plain string")]
        at: Range<usize>,
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
    /// The binding's attribute path (the host's name as written), where refusals point.
    pub name_range: Range<usize>,
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

pub(super) fn plan(
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
                        at: entry.name_range.clone(),
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
                    at: lit.range.clone(),
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
                    line: line_number(text, lit.range.start),
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
pub(super) fn key_in_use(doc: &HostsDoc, name: &str, key: &str) -> Result<(), HostsEditError> {
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
