//! `.sops.yaml` edits: add or remove a host's age recipient, add a per-host creation rule.
//!
//! Each edit is computed as [`TextEdit`]s on the scanned file (only lines added, items or
//! scalar tails appended, or a recipient's own lines deleted), applied, and then verified by
//! loading both versions with a real YAML parser: the recipient must be in exactly the intended
//! rules' first key group and nothing else may change meaning. Anything else is refused and
//! the caller's file stays untouched.

mod add;
mod host_rule;
mod remove;
mod select;

use crate::yaml::value::Value;

use crate::keys;
use crate::secrets::config::SopsConfig;
use crate::secrets::sops_yaml::{AgeListKind, SopsModel, SopsYaml, ViewError};
use crate::text::{line_start, next_line_start, TextEdit};
use crate::yaml::scan::{Doc, NodeId, ScalarStyle};
use crate::yaml::value;

pub use add::{add_recipient, AddRecipient};
pub use host_rule::{add_host_rule, AddHostRule};
pub use remove::remove_recipient;

/// Why an edit was refused. The file is never written when one of these is returned.
///
/// A refusal about a place in the file ([`SopsEditError::At`]) carries that place (byte
/// offsets into the file) and renders like a lint finding: message, the file's snippet with a
/// label, what to do as help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum SopsEditError {
    #[error(transparent)]
    View(#[from] ViewError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Refused(String),
    /// A refusal about one place in the file.
    #[error("{message}")]
    #[diagnostic(help("{help}; the file was not changed"))]
    At {
        message: String,
        #[label("{label}")]
        at: std::ops::Range<usize>,
        label: String,
        help: String,
    },
    #[error("the edit was computed but does not mean what was asked, so nothing was written: {0}; please report this with the file")]
    Verify(String),
    /// More than one rule could take the recipient and nothing says which.
    #[error("more than one creation rule could take `{name}`: {}; choose with --rule REGEX (repeatable) or --all, or record the choice on the VM in definitions.nix (`sopsRules = [ {} ];`) so provisioning does not have to ask", candidates.join(", "), example)]
    ChooseRule {
        name: String,
        /// The candidate rules' labels.
        candidates: Vec<String>,
        /// A `sopsRules` list naming the first candidate, as Nix.
        example: String,
    },
}

type Result<T> = std::result::Result<T, SopsEditError>;

impl SopsEditError {
    /// A refusal about the place `at`: `message` says what is wrong, `label` marks the place,
    /// `help` says what to do.
    fn at(
        at: std::ops::Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        SopsEditError::At {
            message: message.into(),
            at,
            label: label.into(),
            help: help.into(),
        }
    }

    /// The place in the file a refusal is about, when it is about one.
    pub fn place(&self) -> Option<std::ops::Range<usize>> {
        match self {
            SopsEditError::At { at, .. } => Some(at.clone()),
            _ => None,
        }
    }
}

/// What happened to one creation rule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleChange {
    pub index: usize,
    pub path_regex: Option<String>,
    /// `added`, `already-present`, `removed`, `created`.
    pub action: &'static str,
}

/// A rule left alone: its index, its path_regex and why.
pub type SkippedRule = (usize, Option<String>, String);

/// A verified edit: the text edits, the resulting text and what it does.
#[derive(Debug, Clone)]
pub struct SopsEdit {
    pub edits: Vec<TextEdit>,
    pub new_text: String,
    pub rules: Vec<RuleChange>,
    /// Rules left alone on purpose, with the reason (printed to the user).
    pub skipped: Vec<SkippedRule>,
    /// The recipient the edit is about.
    pub recipient: String,
}

impl SopsEdit {
    pub fn is_noop(&self) -> bool {
        self.edits.is_empty()
    }
}
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(SopsEditError::Invalid(format!(
            "`{name}` cannot be a YAML anchor name; use letters, digits, `-` or `_`"
        )))
    }
}

fn check_recipient(r: &str) -> Result<()> {
    keys::validate_age_recipient(r).map_err(|e| {
        SopsEditError::Invalid(format!(
            "{e}; derive it with `vmctl keys to-age` from the host's ssh-ed25519 key"
        ))
    })
}

/// Text to append one item to an age list (or to the keys list), and where.
fn append_item(
    doc: &Doc,
    list: NodeId,
    kind: AgeListKind,
    item: &str,
    comment: Option<&str>,
) -> TextEdit {
    let text = &doc.text;
    let node = doc.node(list);
    match kind {
        AgeListKind::Block => {
            let seq = doc.seq(list).expect("block list is a sequence");
            let last = seq.items.last().expect("a block sequence has an item");
            let last_node = doc.node(last.node);
            // Copy the last item's look: its column and the spaces after its dash.
            let col = last.dash - line_start(&doc.text, last.dash);
            let content_at = if last_node.span.end > last_node.span.start {
                last_node.span.start
            } else {
                last.dash + 2
            };
            let gap = text[last.dash + 1..content_at.max(last.dash + 1)]
                .chars()
                .take_while(|c| *c == ' ')
                .count()
                .max(1);
            let mut line = format!("{}-{}{}", " ".repeat(col), " ".repeat(gap), item);
            if let Some(c) = comment {
                line.push_str(" # ");
                line.push_str(c);
            }
            let end_at = last_node.span.end.max(last.dash + 1) - 1;
            let at = next_line_start(&doc.text, end_at);
            if at == text.len() && !text.ends_with('\n') {
                TextEdit::insert(at, format!("\n{line}"))
            } else {
                TextEdit::insert(at, format!("{line}\n"))
            }
        }
        AgeListKind::Flow => {
            let seq = doc.seq(list).expect("flow list is a sequence");
            match seq.items.last() {
                Some(last) => TextEdit::insert(doc.node(last.node).span.end, format!(", {item}")),
                None => TextEdit::insert(seq.close.expect("flow close"), item.to_string()),
            }
        }
        AgeListKind::Comma => {
            let s = doc.scalar(list).expect("comma list is a scalar");
            let body_end = match s.style {
                ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => node.span.end - 1,
                _ => node.span.end,
            };
            let before = text[..body_end].trim_end();
            let comma = if before.ends_with(',') { "" } else { "," };
            match s.style {
                ScalarStyle::Literal | ScalarStyle::Folded => {
                    let indent = s.block_indent.unwrap_or(0);
                    TextEdit::insert(body_end, format!("{comma}\n{}{item}", " ".repeat(indent)))
                }
                _ => {
                    let sep = if s.value.contains(", ") { " " } else { "" };
                    TextEdit::insert(body_end, format!("{comma}{sep}{item}"))
                }
            }
        }
    }
}

/// An anchor `&name` on a mapping or list cannot also name the recipient.
fn refuse_non_scalar_anchor(view: &SopsYaml, name: &str) -> Result<()> {
    let doc = &view.doc;
    match doc
        .anchors
        .iter()
        .find(|(n, id)| n == name && doc.scalar(*id).is_none())
    {
        Some((_, id)) => Err(SopsEditError::at(
            doc.node(*id).span.clone(),
            format!("the anchor &{name} already names something else"),
            format!("&{name} names this"),
            "choose another NAME",
        )),
        None => Ok(()),
    }
}

/// The file's lossless view, from the one model: refused when sops cannot read the file or
/// when the view does not read every rule as sops does.
fn editable(text: &str) -> Result<SopsYaml> {
    match SopsModel::parse(text) {
        Ok(model) => Ok(model.view?),
        Err(e) => {
            // The scanner's own error names the line more precisely when it has one.
            SopsYaml::parse(text)?;
            Err(SopsEditError::Refused(format!(
                "sops cannot use the file ({e}); fix it first (`vmlint` shows where)"
            )))
        }
    }
}

fn load_both(old: &str, new: &str) -> Result<(Value, Value)> {
    let o = value::load(old)
        .map_err(|e| SopsEditError::Refused(format!("the file does not load as YAML: {e}")))?;
    let n = value::load(new)
        .map_err(|e| SopsEditError::Verify(format!("the result does not load as YAML: {e}")))?;
    Doc::parse(new).map_err(|e| SopsEditError::Verify(format!("the result does not scan: {e}")))?;
    Ok((o, n))
}

/// Both texts as sops reads them (the reader re-keying and the checks use).
fn configs(old: &str, new: &str) -> Result<(SopsConfig, SopsConfig)> {
    let o = SopsConfig::parse(old)
        .map_err(|e| SopsEditError::Refused(format!("sops cannot use the file: {e}")))?;
    let n = SopsConfig::parse(new)
        .map_err(|e| SopsEditError::Verify(format!("sops could not use the result: {e}")))?;
    Ok((o, n))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}
