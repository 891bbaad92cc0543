//! Choosing the creation rules an added recipient goes to: `--rule`, `--all`, or every rule
//! that is not clearly another host's own.

use std::collections::BTreeSet;

use super::{AddRecipient, Result, SkippedRule, SopsEditError};
use crate::secrets::sops_yaml::SopsYaml;

/// The identifier-like words of a path regex (`secrets/hosts/doc1/.*` → secrets, hosts, doc1).
pub(super) fn regex_words(re: &str) -> Vec<&str> {
    re.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| !w.is_empty())
        .collect()
}

/// The literal path component after `hosts/` in a regex, when there is one.
pub(super) fn hosts_component(re: &str) -> Option<&str> {
    let at = re.find("hosts/")? + "hosts/".len();
    let rest = &re[at..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// `_` and `-` are interchangeable in host names as people write them in paths.
pub(super) fn norm(s: &str) -> String {
    s.replace('_', "-")
}

/// Why a rule clearly belongs to another host, if it does: a word of its path_regex is another
/// host or anchor, or its `hosts/X…` component starts with one (`hosts/github-runner-vm` for
/// `&github_runner`).
pub(super) fn other_owner(re: &str, name: &str, others: &BTreeSet<String>) -> Option<String> {
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
pub(super) fn select(
    view: &SopsYaml,
    req: &AddRecipient,
) -> Result<(Vec<usize>, Vec<SkippedRule>)> {
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
