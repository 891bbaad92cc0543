//! `add-recipient`: a host's age recipient appended to the chosen rules' first key group,
//! verified to land in exactly those rules.

use super::select::select;
use super::{
    append_item, check_name, check_recipient, configs, editable, load_both,
    refuse_non_scalar_anchor, sorted, Result, RuleChange, SopsEdit, SopsEditError,
};
use crate::secrets::sops_yaml::{AgeList, AgeListKind, SopsYaml};
use crate::text::{apply, Newline};
use crate::yaml::scan::NodeId;
use crate::yaml::value;

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
                skipped.push((i, rule.path_regex.clone(), why.to_string()));
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

    Newline::follow(text, &mut edits);
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

/// A recipient that already belongs to another host of hosts.nix (its anchor, or the `# name`
/// comment of an inline item) is refused: two hosts cannot share one key, and the edit would
/// hide that under a second name.
pub(super) fn refuse_another_hosts_recipient(
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
                view.doc.node(*id).span.clone(),
                format!("anchor &{n}"),
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
                    let at = i
                        .node
                        .map(|n| view.doc.node(n).span.clone())
                        .unwrap_or(0..0);
                    (word.to_string(), at, format!("commented `# {word}`"))
                })
            })
    };
    match by_anchor.or_else(by_comment) {
        Some((host, at, how)) => Err(SopsEditError::at(
            at,
            format!(
                "{} is already host `{host}`'s recipient ({how})",
                req.recipient
            ),
            format!("`{host}`'s recipient"),
            format!(
                "two hosts cannot share one key (vmlint reports HS002 duplicate-public-key when hosts.nix gives both the same key): give `{}` its own host key",
                req.name
            ),
        )),
        None => Ok(()),
    }
}

pub(super) fn chosen_label(view: &SopsYaml, container: NodeId) -> String {
    view.rules
        .iter()
        .find(|r| r.age.as_ref().is_ok_and(|l| l.container == container))
        .map(|r| r.label())
        .unwrap_or_else(|| "a chosen rule".into())
}

/// The recipient is in the first group of exactly the intended rules, its membership of every
/// other group is unchanged, and the documents are otherwise equal.
pub(super) fn verify_add(old: &str, new: &str, recipient: &str, intended: &[usize]) -> Result<()> {
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
