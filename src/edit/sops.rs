//! `.sops.yaml` edits: add or remove a host's age recipient, add a per-host creation rule.
//!
//! Each edit is computed as [`TextEdit`]s on the scanned file (only lines added, items or
//! scalar tails appended, or a recipient's own lines deleted), applied, and then verified by
//! loading both versions with a real YAML parser: the recipient must be in exactly the intended
//! rules' first key group and nothing else may change meaning. Anything else is refused and
//! the caller's file stays untouched.

use std::collections::BTreeSet;

use serde_yaml::Value;

use super::{apply, TextEdit};
use crate::keys;
use crate::secrets::config::SopsConfig;
use crate::yaml::scan::{Doc, NodeId, NodeKind, ScalarStyle};
use crate::yaml::sops::{AgeList, AgeListKind, SopsModel, SopsYaml, ViewError};
use crate::yaml::value;

/// Why an edit was refused. The file is never written when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SopsEditError {
    #[error(transparent)]
    View(#[from] ViewError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Refused(String),
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

/// `add-recipient`: which rules, and the host names that make a rule "another host's".
#[derive(Debug, Clone)]
pub struct AddRecipient<'a> {
    pub name: &'a str,
    pub recipient: &'a str,
    /// `--rule` values: rules picked by their exact `path_regex`. Empty: the default choice.
    pub rules: &'a [String],
    /// `--all`: every rule that is not clearly another host's. Without it and without
    /// `rules`, more than one such rule is a [`SopsEditError::ChooseRule`].
    pub all: bool,
    /// Host names of hosts.nix (may be empty when unknown).
    pub hosts: &'a [String],
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

/// The identifier-like words of a path regex (`secrets/hosts/doc1/.*` → secrets, hosts, doc1).
fn regex_words(re: &str) -> Vec<&str> {
    re.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| !w.is_empty())
        .collect()
}

/// The literal path component after `hosts/` in a regex, when there is one.
fn hosts_component(re: &str) -> Option<&str> {
    let at = re.find("hosts/")? + "hosts/".len();
    let rest = &re[at..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// `_` and `-` are interchangeable in host names as people write them in paths.
fn norm(s: &str) -> String {
    s.replace('_', "-")
}

/// Why a rule clearly belongs to another host, if it does: a word of its path_regex is another
/// host or anchor, or its `hosts/X…` component starts with one (`hosts/github-runner-vm` for
/// `&github_runner`).
fn other_owner(re: &str, name: &str, others: &BTreeSet<String>) -> Option<String> {
    let words = regex_words(re);
    if words.contains(&name) {
        return None;
    }
    if let Some(w) = words.iter().find(|w| others.contains(**w)) {
        return Some(format!("its path_regex names `{w}`"));
    }
    let comp = hosts_component(re)?;
    if norm(comp) == norm(name) {
        return None;
    }
    others
        .iter()
        .find(|o| norm(comp).starts_with(&format!("{}-", norm(o))))
        .map(|o| format!("its path_regex is under `hosts/{comp}`, named after `{o}`"))
}

/// Picks the rules to add to: `--rule` values, or every rule but other hosts' own.
fn select(view: &SopsYaml, req: &AddRecipient) -> Result<(Vec<usize>, Vec<SkippedRule>)> {
    let (name, picked, hosts) = (req.name, req.rules, req.hosts);
    if !picked.is_empty() {
        let mut chosen = Vec::new();
        for p in picked {
            let found: Vec<usize> = view
                .rules
                .iter()
                .filter(|r| r.path_regex.as_deref() == Some(p.as_str()))
                .map(|r| r.index)
                .collect();
            if found.is_empty() {
                let known: Vec<String> = view.rules.iter().map(|r| r.label()).collect();
                return Err(SopsEditError::Invalid(format!(
                    "no creation rule has path_regex `{p}`; the rules are: {}",
                    known.join(", ")
                )));
            }
            chosen.extend(found);
        }
        chosen.sort_unstable();
        chosen.dedup();
        return Ok((chosen, Vec::new()));
    }
    let mut others: BTreeSet<String> = hosts.iter().filter(|h| *h != name).cloned().collect();
    for (anchor, _, _) in view.scalar_anchors() {
        if anchor != name {
            others.insert(anchor);
        }
    }
    // Inline recipients name their owner in a comment (`- age1… # doc1`): those count too.
    for r in &view.rules {
        let Ok(list) = &r.age else { continue };
        for item in &list.items {
            let word = item
                .comment
                .as_deref()
                .and_then(|c| c.split_whitespace().next());
            if let Some(w) = word.filter(|w| *w != name && regex_words(w) == [*w]) {
                others.insert(w.to_string());
            }
        }
    }
    let mut chosen = Vec::new();
    let mut skipped = Vec::new();
    for r in &view.rules {
        match r
            .path_regex
            .as_deref()
            .and_then(|re| other_owner(re, name, &others))
        {
            Some(why) => skipped.push((
                r.index,
                r.path_regex.clone(),
                format!("{why}: another host's rule"),
            )),
            None => chosen.push(r.index),
        }
    }
    if chosen.is_empty() {
        return Err(SopsEditError::Refused(
            "every creation rule belongs to another host; pick rules with --rule, or add a rule for this host with `vmctl sops add-host-rule`".into(),
        ));
    }
    // Several rules could take the host: which secrets it may read is the user's choice, not
    // a guess. A host already in some of them keeps exactly those (re-runs change nothing).
    let editable: Vec<usize> = chosen
        .iter()
        .copied()
        .filter(|&i| view.rules[i].age.is_ok())
        .collect();
    if !req.all && editable.len() > 1 {
        let present: Vec<usize> = editable
            .iter()
            .copied()
            .filter(|&i| {
                view.rules[i]
                    .age
                    .as_ref()
                    .is_ok_and(|l| l.contains(req.recipient))
            })
            .collect();
        if !present.is_empty() {
            return Ok((present, skipped));
        }
        let first = editable
            .iter()
            .find_map(|&i| view.rules[i].path_regex.clone())
            .unwrap_or_default();
        return Err(SopsEditError::ChooseRule {
            name: name.to_string(),
            candidates: editable.iter().map(|&i| view.rules[i].label()).collect(),
            example: crate::edit::nix::string_literal(&first),
        });
    }
    Ok((chosen, skipped))
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
            let col = last.dash - doc.line_start(last.dash);
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
            let at = doc.line_end(end_at);
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

/// Adds `recipient` as `name` to the chosen rules' first key group.
pub fn add_recipient(text: &str, req: &AddRecipient) -> Result<SopsEdit> {
    check_name(req.name)?;
    check_recipient(req.recipient)?;
    let view = editable(text)?;
    let doc = &view.doc;
    let anchors = view.scalar_anchors();
    refuse_another_hosts_recipient(&view, &anchors, req)?;
    let (chosen, mut skipped) = select(&view, req)?;

    refuse_non_scalar_anchor(&view, req.name)?;
    if let Some((_, v, _)) = anchors
        .iter()
        .find(|(n, v, _)| n == req.name && v != req.recipient)
    {
        return Err(SopsEditError::Refused(format!(
            "the anchor &{} already names another recipient ({v}); if the host's key changed, run `vmctl sops remove-recipient {}` first",
            req.name, req.name
        )));
    }
    // An existing anchor for this very recipient is reused (its name wins over ours).
    let existing = anchors
        .iter()
        .find(|(n, v, _)| n == req.name && v == req.recipient)
        .or_else(|| anchors.iter().find(|(_, v, _)| v == req.recipient))
        .map(|(n, _, id)| (n.clone(), doc.node(*id).span.start));

    let mut rules = Vec::new();
    let mut targets: Vec<AgeList> = Vec::new();
    for &i in &chosen {
        let rule = &view.rules[i];
        let list = match &rule.age {
            Ok(list) => list,
            // Picked by the default choice: say why it is left alone. Picked by --rule: refuse.
            Err(why) if req.rules.is_empty() => {
                skipped.push((i, rule.path_regex.clone(), why.clone()));
                continue;
            }
            Err(why) => {
                return Err(SopsEditError::Refused(format!(
                    "cannot add to {}: {why}; leave it out of --rule",
                    rule.label()
                )))
            }
        };
        if list.contains(req.recipient) {
            rules.push(RuleChange {
                index: i,
                path_regex: rule.path_regex.clone(),
                action: "already-present",
            });
            continue;
        }
        rules.push(RuleChange {
            index: i,
            path_regex: rule.path_regex.clone(),
            action: "added",
        });
        if !targets.iter().any(|t| t.container == list.container) {
            targets.push(list.clone());
        }
    }
    if rules.is_empty() {
        let why: Vec<String> = skipped
            .iter()
            .filter(|(i, _, _)| chosen.contains(i))
            .map(|(i, _, why)| format!("{}: {why}", view.rules[*i].label()))
            .collect();
        return Err(SopsEditError::Refused(format!(
            "none of the chosen rules has an age list vmctl can add to ({})",
            why.join("; ")
        )));
    }
    // A list shared (through a merge key or an alias) with a rule we were not asked to change
    // cannot be edited without changing that rule too.
    for t in &targets {
        for r in &view.rules {
            if chosen.contains(&r.index) {
                continue;
            }
            if let Ok(l) = &r.age {
                if l.container == t.container {
                    let via = t
                        .via
                        .as_deref()
                        .or(l.via.as_deref())
                        .map(|v| format!(" (through &{v})"))
                        .unwrap_or_default();
                    return Err(SopsEditError::Refused(format!(
                        "{} shares its age list{via} with {}, which was not chosen; choose both with --rule, or split the list by hand",
                        chosen_label(&view, t.container),
                        r.label()
                    )));
                }
            }
        }
    }
    targets.sort_by_key(|t| doc.node(t.container).span.start);

    let mut edits = Vec::new();
    if !targets.is_empty() {
        let first_target = doc.node(targets[0].container).span.start;
        // Where the anchor is defined: an existing anchor, a new `keys:` entry, or the first list.
        let (alias, mut def_in_target, def_at) = match &existing {
            Some((n, at)) => (n.clone(), None, Some(*at)),
            None => {
                let keys_first = view.keys.filter(|&k| doc.node(k).span.start < first_target);
                let seq_target_in_keys = targets
                    .iter()
                    .position(|t| t.kind != AgeListKind::Comma && view.in_keys(t.container));
                match (keys_first, seq_target_in_keys) {
                    (Some(_), Some(i)) => (req.name.to_string(), Some(i), None),
                    (Some(k), None) => {
                        let kind = if doc.seq(k).is_some_and(|s| s.flow) {
                            AgeListKind::Flow
                        } else {
                            AgeListKind::Block
                        };
                        if kind == AgeListKind::Block
                            || !doc.seq(k).expect("keys is a list").items.is_empty()
                        {
                            edits.push(append_item(
                                doc,
                                k,
                                kind,
                                &format!("&{} {}", req.name, req.recipient),
                                None,
                            ));
                            (req.name.to_string(), None, Some(doc.node(k).span.start))
                        } else {
                            (
                                req.name.to_string(),
                                targets.iter().position(|t| t.kind != AgeListKind::Comma),
                                None,
                            )
                        }
                    }
                    (None, _) => (
                        req.name.to_string(),
                        targets.iter().position(|t| t.kind != AgeListKind::Comma),
                        None,
                    ),
                }
            }
        };
        let mut defined_at = def_at;
        for (i, t) in targets.iter().enumerate() {
            let start = doc.node(t.container).span.start;
            let (item, comment) = if t.kind == AgeListKind::Comma {
                (req.recipient.to_string(), None)
            } else if def_in_target == Some(i) {
                def_in_target = None;
                defined_at = Some(start);
                let comment = (!view.in_keys(t.container)).then_some(req.name);
                (format!("&{alias} {}", req.recipient), comment)
            } else if defined_at.is_some_and(|d| d < start) {
                (format!("*{alias}"), None)
            } else {
                (req.recipient.to_string(), Some(req.name))
            };
            let comment = if t.kind == AgeListKind::Block {
                comment
            } else {
                None
            };
            edits.push(append_item(doc, t.container, t.kind, &item, comment));
        }
    }

    crlf(text, &mut edits);
    let new_text = apply(text, &edits).map_err(|e| SopsEditError::Verify(e.to_string()))?;
    let intended: Vec<usize> = rules
        .iter()
        .filter(|r| r.action == "added")
        .map(|r| r.index)
        .collect();
    if !edits.is_empty() {
        verify_add(text, &new_text, req.recipient, &intended)?;
    }
    Ok(SopsEdit {
        edits,
        new_text,
        rules,
        skipped,
        recipient: req.recipient.to_string(),
    })
}

/// An anchor `&name` on a mapping or list cannot also name the recipient.
/// A recipient that already belongs to another host of hosts.nix (its anchor, or the `# name`
/// comment of an inline item) is refused: two hosts cannot share one key, and the edit would
/// hide that under a second name.
fn refuse_another_hosts_recipient(
    view: &SopsYaml,
    anchors: &[(String, String, NodeId)],
    req: &AddRecipient,
) -> Result<()> {
    let other_host = |n: &str| n != req.name && req.hosts.iter().any(|h| h == n);
    let by_anchor = anchors
        .iter()
        .find(|(n, v, _)| v == req.recipient && other_host(n))
        .map(|(n, _, id)| {
            (
                n.clone(),
                format!(
                    "anchor &{n}, line {}",
                    view.doc.line_number(view.doc.node(*id).span.start)
                ),
            )
        });
    let by_comment = || {
        view.rules
            .iter()
            .filter_map(|r| r.age.as_ref().ok())
            .flat_map(|l| l.items.iter())
            .find_map(|i| {
                let word = i.comment.as_deref()?.split_whitespace().next()?;
                (i.recipient.as_deref() == Some(req.recipient) && other_host(word)).then(|| {
                    let line = i
                        .node
                        .map(|n| view.doc.line_number(view.doc.node(n).span.start))
                        .unwrap_or(0);
                    (
                        word.to_string(),
                        format!("commented `# {word}`, line {line}"),
                    )
                })
            })
    };
    match by_anchor.or_else(by_comment) {
        Some((host, where_)) => Err(SopsEditError::Refused(format!(
            "{} is already host `{host}`'s recipient ({where_}); two hosts cannot share one key (vmlint reports HS002 duplicate-public-key when hosts.nix gives both the same key): give `{}` its own host key",
            req.recipient, req.name
        ))),
        None => Ok(()),
    }
}

fn refuse_non_scalar_anchor(view: &SopsYaml, name: &str) -> Result<()> {
    let doc = &view.doc;
    match doc
        .anchors
        .iter()
        .find(|(n, id)| n == name && doc.scalar(*id).is_none())
    {
        Some((_, id)) => Err(SopsEditError::Refused(format!(
            "the anchor &{name} (line {}) already names something else; choose another NAME",
            doc.line_number(doc.node(*id).span.start)
        ))),
        None => Ok(()),
    }
}

/// Inserted lines follow the file's line endings.
fn crlf(text: &str, edits: &mut [TextEdit]) {
    if text.contains("\r\n") {
        for e in edits {
            e.insert = e.insert.replace("\r\n", "\n").replace('\n', "\r\n");
        }
    }
}

fn chosen_label(view: &SopsYaml, container: NodeId) -> String {
    view.rules
        .iter()
        .find(|r| r.age.as_ref().is_ok_and(|l| l.container == container))
        .map(|r| r.label())
        .unwrap_or_else(|| "a chosen rule".into())
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

/// The recipient is in the first group of exactly the intended rules, its membership of every
/// other group is unchanged, and the documents are otherwise equal.
fn verify_add(old: &str, new: &str, recipient: &str, intended: &[usize]) -> Result<()> {
    let (o, n) = load_both(old, new)?;
    let (co, cn) = configs(old, new)?;
    if co.rules.len() != cn.rules.len() {
        return Err(SopsEditError::Verify(
            "the number of creation rules changed".into(),
        ));
    }
    for (i, (a, b)) in co.rules.iter().zip(&cn.rules).enumerate() {
        if a.key_groups.len() != b.key_groups.len() {
            return Err(SopsEditError::Verify(format!(
                "rule #{} would change its number of key groups",
                i + 1
            )));
        }
        for (g, (ga, gb)) in a.key_groups.iter().zip(&b.key_groups).enumerate() {
            let mut expected = ga.age.clone();
            if g == 0 && intended.contains(&i) && !expected.iter().any(|r| r == recipient) {
                expected.push(recipient.to_string());
            }
            if sorted(expected) != sorted(gb.age.clone()) {
                return Err(SopsEditError::Verify(if g == 0 {
                    format!("rule #{} would have the age recipients {:?}", i + 1, gb.age)
                } else {
                    format!(
                        "rule #{} would get the recipient outside its first key group",
                        i + 1
                    )
                }));
            }
            if ga.key_ids().len() - ga.age.len() != gb.key_ids().len() - gb.age.len() {
                return Err(SopsEditError::Verify(format!(
                    "rule #{} would change its other keys",
                    i + 1
                )));
            }
        }
    }
    if value::strip(&o, recipient) != value::strip(&n, recipient) {
        return Err(SopsEditError::Verify(
            "something besides the recipient changed".into(),
        ));
    }
    Ok(())
}

/// Removes the recipient `name` (an anchor, or items commented `# name`, or `recipient`)
/// from every list of the file.
pub fn remove_recipient(text: &str, name: &str, recipient: Option<&str>) -> Result<SopsEdit> {
    let view = editable(text)?;
    let doc = &view.doc;
    let recipient = match view
        .scalar_anchors()
        .into_iter()
        .rev()
        .find(|(n, _, _)| n == name)
    {
        Some((_, v, _)) => v,
        None => {
            let commented: BTreeSet<String> = view
                .rules
                .iter()
                .filter_map(|r| r.age.as_ref().ok())
                .flat_map(|l| l.items.iter())
                .filter(|i| {
                    i.comment
                        .as_deref()
                        .is_some_and(|c| c.split_whitespace().next() == Some(name))
                })
                .filter_map(|i| i.recipient.clone())
                .collect();
            match (commented.len(), recipient) {
                (1, _) => commented.into_iter().next().expect("one"),
                (0, Some(r)) => r.to_string(),
                (0, None) => {
                    return Err(SopsEditError::Refused(format!(
                        "no anchor &{name} and no recipient commented `# {name}` in the file; pass the recipient with --recipient"
                    )))
                }
                _ => {
                    return Err(SopsEditError::Refused(format!(
                        "several different recipients are commented `# {name}`; pass the one to remove with --recipient"
                    )))
                }
            }
        }
    };
    check_recipient(&recipient)?;

    let mut edits = Vec::new();
    let mut deleted: BTreeSet<NodeId> = BTreeSet::new();
    let is_recipient = |id: NodeId| {
        doc.resolve(id)
            .and_then(|t| doc.scalar(t))
            .is_some_and(|s| s.value.trim() == recipient)
    };
    // Every list item that is (or aliases) the recipient.
    for (id, node) in doc.nodes.iter().enumerate() {
        let NodeKind::Seq(seq) = &node.kind else {
            continue;
        };
        let hits: Vec<usize> = (0..seq.items.len())
            .filter(|&i| is_recipient(seq.items[i].node))
            .collect();
        if hits.is_empty() {
            continue;
        }
        if hits.len() == seq.items.len() && Some(id) != view.keys {
            let owner = view
                .rules
                .iter()
                .find(|r| r.age.as_ref().is_ok_and(|l| l.container == id))
                .map(|r| r.label())
                .unwrap_or_else(|| {
                    format!("the list at line {}", doc.line_number(node.span.start))
                });
            return Err(SopsEditError::Refused(format!(
                "{owner} would have no recipient left; remove that rule or list by hand"
            )));
        }
        for &i in &hits {
            let item = &seq.items[i];
            deleted.extend(doc.descendants(item.node));
            let n = doc.node(item.node);
            if seq.flow {
                let (s, e) = if i + 1 < seq.items.len() {
                    (n.span.start, seq.items[i + 1].dash)
                } else {
                    (doc.node(seq.items[i - 1].node).span.end, n.span.end)
                };
                edits.push(TextEdit::delete(s, e));
            } else {
                let first = doc.line_start(item.dash);
                if !doc.text[first..item.dash].chars().all(|c| c == ' ') {
                    return Err(SopsEditError::Refused(format!(
                        "the item at line {} does not start its own line; remove it by hand",
                        doc.line_number(item.dash)
                    )));
                }
                let mut start = first;
                let end = doc.line_end(n.span.end.max(item.dash + 1) - 1);
                if end == doc.text.len() && !doc.text.ends_with('\n') && start > 0 {
                    // The last line has no newline: take the one before it instead.
                    start -= if doc.text[..start].ends_with("\r\n") {
                        2
                    } else {
                        1
                    };
                }
                edits.push(TextEdit::delete(start, end));
            }
        }
    }
    // Comma-separated strings.
    for r in &view.rules {
        let Ok(l) = &r.age else { continue };
        if l.kind != AgeListKind::Comma || !l.contains(&recipient) {
            continue;
        }
        if l.items.len() == 1 {
            return Err(SopsEditError::Refused(format!(
                "{} would have no recipient left; remove that rule by hand",
                r.label()
            )));
        }
        let node = doc.node(l.container);
        let s = doc.scalar(l.container).expect("comma list is a scalar");
        if !matches!(
            s.style,
            ScalarStyle::Plain | ScalarStyle::Folded | ScalarStyle::Literal
        ) {
            return Err(SopsEditError::Refused(format!(
                "{} lists the recipient in a quoted string; remove it by hand",
                r.label()
            )));
        }
        let body = &doc.text[node.span.clone()];
        let at = body
            .find(recipient.as_str())
            .expect("recipient is in the scalar")
            + node.span.start;
        let end = at + recipient.len();
        let after = doc.text[end..node.span.end].trim_start();
        let (s, e) = if after.starts_with(',') {
            // `a, X, b` → `a, b`: drop X, its comma and the whitespace up to the next element.
            let comma = doc.text[end..].find(',').expect("comma") + end + 1;
            let next = comma + doc.text[comma..].len() - doc.text[comma..].trim_start().len();
            (at, next.min(node.span.end))
        } else {
            let before = doc.text[node.span.start..at].trim_end();
            (node.span.start + before.len() - 1, end)
        };
        if edits.iter().any(|x: &TextEdit| x.start < e && s < x.end) {
            continue;
        }
        edits.push(TextEdit::delete(s, e));
    }
    // An alias that survives but points at a deleted anchor would dangle.
    for &a in &doc.aliases {
        if deleted.contains(&a) {
            continue;
        }
        if let Some(t) = doc.resolve(a) {
            if deleted.contains(&t) {
                return Err(SopsEditError::Refused(format!(
                    "*{} at line {} would point at nothing after the removal; remove that use by hand first",
                    doc.node(t).anchor.as_ref().map(|x| x.name.as_str()).unwrap_or(name),
                    doc.line_number(doc.node(a).span.start)
                )));
            }
        }
    }
    let rules: Vec<RuleChange> = view
        .rules
        .iter()
        .filter(|r| r.age.as_ref().is_ok_and(|l| l.contains(&recipient)))
        .map(|r| RuleChange {
            index: r.index,
            path_regex: r.path_regex.clone(),
            action: "removed",
        })
        .collect();
    crlf(text, &mut edits);
    let new_text = apply(text, &edits).map_err(|e| SopsEditError::Verify(e.to_string()))?;
    if !edits.is_empty() {
        let (o, n) = load_both(text, &new_text)?;
        if value::count(&n, &recipient) != 0 {
            return Err(SopsEditError::Refused(format!(
                "the recipient is also used where vmctl does not remove it (line {}); remove it by hand",
                doc.line_number(doc.text.find(recipient.as_str()).unwrap_or(0))
            )));
        }
        if value::strip(&o, &recipient) != value::strip(&n, &recipient) {
            return Err(SopsEditError::Verify(
                "something besides the recipient changed".into(),
            ));
        }
    }
    Ok(SopsEdit {
        edits,
        new_text,
        rules,
        skipped: Vec::new(),
        recipient,
    })
}

/// `add-host-rule`: a creation rule for one host's own secrets.
#[derive(Debug, Clone)]
pub struct AddHostRule<'a> {
    pub name: &'a str,
    pub recipient: &'a str,
    /// Default: `secrets/hosts/NAME/.*`.
    pub path_regex: Option<&'a str>,
    /// Admin recipients; `None`: those in every existing rule's first group that are not hosts.
    pub admins: Option<&'a [String]>,
    pub hosts: &'a [String],
}

/// A path the regex matches, built from its literal prefix, used to find where the new rule
/// must go (sops takes the first matching rule). `None` when no simple candidate matches.
fn sample_path(re: &str) -> Option<String> {
    let mut prefix = String::new();
    let mut chars = re.trim_start_matches('^').chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) if !n.is_ascii_alphanumeric() => prefix.push(n),
                _ => break,
            },
            '?' | '*' | '{' => {
                // The previous character was optional: do not rely on it.
                prefix.pop();
                break;
            }
            '.' | '+' | '(' | ')' | '[' | ']' | '}' | '|' | '^' | '$' => break,
            c => prefix.push(c),
        }
    }
    let compiled = regex::Regex::new(&crate::secrets::config::go_regex(re)).ok()?;
    [
        "secrets.yaml",
        ".yaml",
        "yaml",
        "/secrets.yaml",
        "",
        "ml",
        "aml",
    ]
    .iter()
    .map(|tail| format!("{prefix}{tail}"))
    .find(|p| compiled.is_match(p))
}

fn yaml_plain_ok(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with([
            '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%',
            '@', '`', ' ',
        ])
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with([':', ' '])
}

fn yaml_scalar(s: &str) -> String {
    if yaml_plain_ok(s) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// Adds a creation rule for `name`'s own secrets holding the admins and the host.
pub fn add_host_rule(text: &str, req: &AddHostRule) -> Result<SopsEdit> {
    check_name(req.name)?;
    check_recipient(req.recipient)?;
    let view = editable(text)?;
    let doc = &view.doc;
    let default_re = format!("secrets/hosts/{}/.*", req.name);
    let re = req.path_regex.unwrap_or(&default_re);
    regex::Regex::new(&crate::secrets::config::go_regex(re)).map_err(|e| {
        SopsEditError::Invalid(format!("--path-regex `{re}` is not a valid regex: {e}"))
    })?;

    if let Some(r) = view
        .rules
        .iter()
        .find(|r| r.path_regex.as_deref() == Some(re))
    {
        return match &r.age {
            Ok(l) if l.contains(req.recipient) => Ok(SopsEdit {
                edits: Vec::new(),
                new_text: text.to_string(),
                rules: vec![RuleChange { index: r.index, path_regex: r.path_regex.clone(), action: "already-present" }],
                skipped: Vec::new(),
                recipient: req.recipient.to_string(),
            }),
            _ => Err(SopsEditError::Refused(format!(
                "a rule with path_regex `{re}` exists without the host; use `vmctl sops add-recipient {} RECIPIENT --rule '{re}'`",
                req.name
            ))),
        };
    }

    // Admins: given, or in every rule's first group and not named after a host.
    let host_names: BTreeSet<&str> = req
        .hosts
        .iter()
        .map(String::as_str)
        .chain([req.name])
        .collect();
    let lists: Vec<&AgeList> = view
        .rules
        .iter()
        .filter_map(|r| r.age.as_ref().ok())
        .collect();
    let admins: Vec<String> = match req.admins {
        Some(a) => {
            for r in a {
                check_recipient(r)?;
            }
            a.to_vec()
        }
        None => {
            let Some(first) = lists.first() else {
                return Err(SopsEditError::Refused("no rule has an age list to take the admin recipients from; pass them with --admin".into()));
            };
            first
                .items
                .iter()
                .filter(|i| {
                    let named = i.anchor.as_deref().or(i.alias.as_deref()).or(i
                        .comment
                        .as_deref()
                        .and_then(|c| c.split_whitespace().next()));
                    !named.is_some_and(|n| host_names.contains(n))
                })
                .filter_map(|i| i.recipient.clone())
                .filter(|r| r != req.recipient && lists.iter().all(|l| l.contains(r)))
                .collect()
        }
    };
    if admins.is_empty() {
        return Err(SopsEditError::Refused(
            "cannot tell the admin recipients (no recipient is in every rule); pass them with --admin AGE_RECIPIENT".into(),
        ));
    }

    // Position: before the first rule that would otherwise catch the host's files.
    let sample = sample_path(re);
    let before = view.rules.iter().find(|r| {
        sample.is_some()
            && r.path_regex
                .as_deref()
                .and_then(|p| regex::Regex::new(&crate::secrets::config::go_regex(p)).ok())
                .is_some_and(|p| p.is_match(sample.as_deref().unwrap_or_default()))
    });
    let rules_seq = doc.seq(view.rules_seq).expect("rules are a list");
    let (insert_at, new_index) = match before {
        Some(r) => {
            // Keep the comment lines that sit directly above that rule with it.
            let mut at = doc.line_start(r.dash);
            while at > 0 {
                let prev = doc.line_start(at - 1);
                if doc.text[prev..at].trim_start().starts_with('#') {
                    at = prev;
                } else {
                    break;
                }
            }
            (at, r.index)
        }
        None => {
            let last = rules_seq.items.last().expect("rules are non-empty");
            let end = doc.node(last.node).span.end.max(last.dash + 1) - 1;
            (doc.line_end(end), view.rules.len())
        }
    };

    // Style: copy the first rule written in full block style.
    let col = |off: usize| off - doc.line_start(off);
    let first_dash = rules_seq.items[0].dash;
    let r_col = col(first_dash);
    let mut style = (r_col, r_col + 2, r_col + 4, r_col + 8);
    for r in &view.rules {
        let Some(kg) = doc.get(r.node, "key_groups") else {
            continue;
        };
        let Some(kgs) = doc.seq(kg.value).filter(|s| !s.flow && !s.items.is_empty()) else {
            continue;
        };
        let g = kgs.items[0].node;
        let Some(age) = doc.get(g, "age") else {
            continue;
        };
        let Some(ages) = doc
            .seq(age.value)
            .filter(|s| !s.flow && !s.items.is_empty())
        else {
            continue;
        };
        style = (
            col(r.dash),
            col(kg.key_span.start),
            col(kgs.items[0].dash),
            col(ages.items[0].dash),
        );
        break;
    }
    let (rc, kc, gc, ac) = style;
    let mut edits = Vec::new();
    let anchors = view.scalar_anchors();
    refuse_non_scalar_anchor(&view, req.name)?;
    let item_for = |r: &str, label: Option<&str>| -> String {
        if let Some((n, _, id)) = anchors.iter().find(|(_, v, _)| v == r) {
            if doc.node(*id).span.start < insert_at {
                return format!("*{n}");
            }
        }
        match label {
            Some(l) => format!("{r} # {l}"),
            None => r.to_string(),
        }
    };
    let label_of = |r: &str| -> Option<String> {
        lists
            .iter()
            .flat_map(|l| l.items.iter())
            .find(|i| i.recipient.as_deref() == Some(r))
            .and_then(|i| i.comment.clone().or(i.anchor.clone()).or(i.alias.clone()))
    };
    let mut items: Vec<String> = admins
        .iter()
        .map(|a| item_for(a, label_of(a).as_deref()))
        .collect();
    let host_item = if anchors.iter().any(|(_, v, _)| v == req.recipient) {
        item_for(req.recipient, Some(req.name))
    } else if let Some(k) = view
        .keys
        .filter(|&k| doc.node(k).span.start < insert_at && !doc.seq(k).is_some_and(|s| s.flow))
    {
        if anchors.iter().any(|(n, _, _)| n == req.name) {
            return Err(SopsEditError::Refused(format!(
                "the anchor &{} already names another recipient; run `vmctl sops remove-recipient {}` first",
                req.name, req.name
            )));
        }
        edits.push(append_item(
            doc,
            k,
            AgeListKind::Block,
            &format!("&{} {}", req.name, req.recipient),
            None,
        ));
        format!("*{}", req.name)
    } else {
        format!("{} # {}", req.recipient, req.name)
    };
    items.push(host_item);
    let mut rule = format!(
        "{}- path_regex: {}\n{}key_groups:\n{}- age:\n",
        " ".repeat(rc),
        yaml_scalar(re),
        " ".repeat(kc),
        " ".repeat(gc)
    );
    for i in &items {
        rule.push_str(&format!("{}- {i}\n", " ".repeat(ac)));
    }
    if insert_at == doc.text.len() && !doc.text.ends_with('\n') {
        rule = format!("\n{}", rule.trim_end_matches('\n'));
    }
    edits.push(TextEdit::insert(insert_at, rule));
    crlf(text, &mut edits);
    let new_text = apply(text, &edits).map_err(|e| SopsEditError::Verify(e.to_string()))?;

    // Verify: one new rule at `new_index` with exactly admins + host; the rest unchanged.
    let (o, n) = load_both(text, &new_text)?;
    let (co, cn) = configs(text, &new_text)?;
    if cn.rules.len() != co.rules.len() + 1 {
        return Err(SopsEditError::Verify(
            "the new rule did not appear in creation_rules".into(),
        ));
    }
    let added = &cn.rules[new_index];
    let mut expected = admins.clone();
    expected.push(req.recipient.to_string());
    let mut got: Vec<String> = added
        .key_groups
        .iter()
        .flat_map(|g| g.key_ids())
        .map(|k| k.to_string())
        .collect();
    got.dedup();
    if added.path_regex.as_deref() != Some(re) || sorted(got) != sorted(expected) {
        return Err(SopsEditError::Verify(
            "the new rule does not hold the admins and the host".into(),
        ));
    }
    let rest: Vec<String> = cn
        .rules
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != new_index)
        .map(|(_, r)| format!("{:?}{:?}", r.path_regex, r.key_groups))
        .collect();
    let before: Vec<String> = co
        .rules
        .iter()
        .map(|r| format!("{:?}{:?}", r.path_regex, r.key_groups))
        .collect();
    if rest != before {
        return Err(SopsEditError::Verify("another rule changed".into()));
    }
    let mut n_without = n.clone();
    if let Some(seq) = n_without
        .get_mut("creation_rules")
        .and_then(Value::as_sequence_mut)
    {
        seq.remove(new_index);
    }
    if value::strip(&o, req.recipient) != value::strip(&n_without, req.recipient) {
        return Err(SopsEditError::Verify(
            "something besides the new rule changed".into(),
        ));
    }
    if let Some(sample) = &sample {
        if cn.rule_for(sample).map(|r| r.index) != Some(new_index) {
            return Err(SopsEditError::Verify(format!(
                "sops would not pick the new rule for `{sample}`"
            )));
        }
    }
    Ok(SopsEdit {
        edits,
        new_text,
        rules: vec![RuleChange {
            index: new_index,
            path_regex: Some(re.to_string()),
            action: "created",
        }],
        skipped: Vec::new(),
        recipient: req.recipient.to_string(),
    })
}
