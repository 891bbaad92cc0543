//! `add-host-rule`: a creation rule for one host's own secrets, placed where sops will pick
//! it for that host's paths.

use std::collections::BTreeSet;

use crate::yaml::value::Value;

use super::{
    append_item, check_name, check_recipient, configs, editable, load_both,
    refuse_non_scalar_anchor, sorted, Result, RuleChange, SopsEdit, SopsEditError,
};
use crate::secrets::sops_yaml::{AgeList, AgeListKind};
use crate::text::{apply, line_start, next_line_start, Newline, TextEdit};
use crate::yaml::value;

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
pub(super) fn sample_path(re: &str) -> Option<String> {
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

pub(super) fn yaml_plain_ok(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with([
            '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%',
            '@', '`', ' ',
        ])
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with([':', ' '])
}

pub(super) fn yaml_scalar(s: &str) -> String {
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
            let mut at = line_start(&doc.text, r.dash);
            while at > 0 {
                let prev = line_start(&doc.text, at - 1);
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
            (next_line_start(&doc.text, end), view.rules.len())
        }
    };

    // Style: copy the first rule written in full block style.
    let col = |off: usize| off - line_start(&doc.text, off);
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
    Newline::follow(text, &mut edits);
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
