//! Helpers for the `.sops.yaml` checks: finding the file in the fleet and spans in it.

use crate::model::fleet::Fleet;
use crate::secrets::config::ConfigError;
use crate::secrets::sops_yaml::{SopsModel, SopsYaml};
use crate::syntax::{FileId, Span, TextRange, TextSize};
use crate::yaml::scan::NodeId;

/// The fleet's `.sops.yaml` (the first source whose file name ends in `.sops.yaml` or
/// `.sops.yml`): its file and text.
pub(super) fn sops_source(fleet: &Fleet) -> Option<(FileId, &str)> {
    (0..fleet.db.len() as u32).map(FileId).find_map(|id| {
        let name = fleet.db.path(id).file_name()?.to_str()?;
        if !(name.ends_with(".sops.yaml") || name.ends_with(".sops.yml")) {
            return None;
        }
        let text = fleet.db.text(id);
        // `NAME.sops.yaml` is also how people name encrypted secrets: those carry sops's
        // top-level `sops:` metadata and are no config.
        let encrypted = text
            .lines()
            .any(|l| l.strip_prefix("sops:").is_some_and(|r| r.trim().is_empty()));
        (!encrypted).then_some((id, text))
    })
}

/// The fleet's `.sops.yaml` read by the one model (the reader the editor and re-keying use),
/// or why sops cannot use it (the SP checks for broken files report that).
pub(super) fn sops_model(fleet: &Fleet) -> Option<(FileId, Result<SopsModel, ConfigError>)> {
    sops_source(fleet).map(|(id, text)| (id, SopsModel::parse(text)))
}

/// The fleet's `.sops.yaml` as vmctl edits it, with spans. `None` when the fleet has none, when
/// sops cannot use it, or when it is outside what vmctl edits (SP009 says so).
pub(super) fn sops_file(fleet: &Fleet) -> Option<(FileId, SopsYaml)> {
    let (id, model) = sops_model(fleet)?;
    model.ok()?.view.ok().map(|v| (id, v))
}

/// A span from `offset` to the end of the word there (at least one character, within the text),
/// for errors the YAML parser reports at a position.
pub(super) fn point(file: FileId, text: &str, offset: usize) -> Span {
    let mut start = offset.min(text.len());
    // At the end of the file (an unclosed list, say) point at the last line that has text.
    if text[start..].trim().is_empty() {
        let body = text.trim_end();
        let line = body.rfind('\n').map_or(0, |i| i + 1);
        start = line + (body.len() - line - body[line..].trim_start().len());
    }
    let rest = &text[start..];
    let len = rest
        .find(|c: char| c.is_whitespace())
        .unwrap_or(rest.len())
        .max(rest.chars().next().map_or(0, char::len_utf8));
    span(file, start, start + len)
}

/// The span of the top-level `creation_rules` key (or of the file's start when there is none).
pub(super) fn rules_key(file: FileId, text: &str) -> Span {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.starts_with("creation_rules") {
            return span(file, at, at + "creation_rules".len());
        }
        at += line.len();
    }
    span(file, 0, 0)
}

pub(super) fn span(file: FileId, start: usize, end: usize) -> Span {
    Span::new(
        file,
        TextRange::new(TextSize::from(start as u32), TextSize::from(end as u32)),
    )
}

/// The span of a node's value, without its `&anchor`.
pub(super) fn value_span(file: FileId, sops: &SopsYaml, id: NodeId) -> Span {
    let node = sops.doc.node(id);
    let start = match &node.anchor {
        Some(a) => {
            let rest = &sops.doc.text[a.span.end..node.span.end];
            a.span.end + (rest.len() - rest.trim_start().len())
        }
        None => node.span.start,
    };
    span(file, start, node.span.end)
}

/// Every host of hosts.nix with its derived age recipient (hosts without a valid ed25519 key
/// are left to the HS checks).
pub(super) fn host_recipients(fleet: &Fleet) -> Vec<(FileId, &crate::model::Host, String)> {
    let Some((file, hosts)) = fleet.hosts_file() else {
        return Vec::new();
    };
    hosts
        .hosts
        .iter()
        .filter_map(|h| {
            let key = crate::keys::PublicKey::parse(h.public_key.as_deref()?).ok()?;
            Some((file.file, h, key.age_recipient().ok()?))
        })
        .collect()
}

/// Why the YAML parser (the one sops's config reader uses) rejects the file, classified so
/// each cause gets its own code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum YamlProblem {
    /// Byte ranges of tab characters in the indentation of lines.
    Tabs(Vec<(usize, usize)>),
    /// An alias whose anchor is not defined before it: offset of the `*` and the name.
    UndefinedAlias(usize, String),
    /// Any other syntax error: offset (when known) and the parser's message.
    Syntax(Option<usize>, String),
}

/// At most this many tab lines are reported: one fix fixes them all.
const MAX_TAB_LINES: usize = 20;

/// The file's YAML problem, or `None` when it loads.
pub(super) fn yaml_problem(text: &str) -> Option<YamlProblem> {
    let (message, offset) = match crate::yaml::value::load_located(text) {
        Ok(_) => return None,
        Err(e) => e,
    };
    let tabs = indentation_tabs(text);
    if !tabs.is_empty() {
        return Some(YamlProblem::Tabs(tabs));
    }
    if message.contains("unknown anchor") {
        if let Some(at) = offset.and_then(|o| alias_at(text, o)) {
            let name: String = text[at + 1..]
                .chars()
                .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ']' | '}'))
                .collect();
            return Some(YamlProblem::UndefinedAlias(at, name));
        }
    }
    // The loader appends " at line L column C"; the span already says where.
    let message = match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    };
    Some(YamlProblem::Syntax(offset, message))
}

/// The `*` of the alias at or right before `offset` (the parser points at the alias or just
/// after it, depending on the version).
fn alias_at(text: &str, offset: usize) -> Option<usize> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = &text[line_start..line_end];
    let rel = offset - line_start;
    line[..=rel.min(line.len().saturating_sub(1))]
        .rfind('*')
        .or_else(|| line.find('*'))
        .map(|i| line_start + i)
}

/// Tabs before the first character of a non-blank line (YAML forbids them in indentation).
fn indentation_tabs(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let indent = body.len() - body.trim_start_matches([' ', '\t']).len();
        if indent < body.len() && body[..indent].contains('\t') {
            let first = body.find('\t').expect("has a tab");
            out.push((at + first, at + indent));
            if out.len() == MAX_TAB_LINES {
                break;
            }
        }
        at += line.len();
    }
    out
}
