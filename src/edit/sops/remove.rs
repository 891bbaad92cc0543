//! `remove-recipient`: a host's recipient (anchor, `# name` items or the key itself) deleted
//! from every list of the file, with its own lines.

use std::collections::BTreeSet;

use super::{check_recipient, editable, load_both, Result, RuleChange, SopsEdit, SopsEditError};
use crate::secrets::sops_yaml::AgeListKind;
use crate::text::{apply, line_start, next_line_start, Newline, TextEdit};
use crate::yaml::scan::{NodeId, NodeKind, ScalarStyle};
use crate::yaml::value;

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
                .unwrap_or_else(|| "a list".to_string());
            return Err(SopsEditError::at(
                node.span.clone(),
                format!("{owner} would have no recipient left"),
                "only this recipient is left here",
                "remove that rule or list by hand",
            ));
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
                let first = line_start(&doc.text, item.dash);
                if !doc.text[first..item.dash].chars().all(|c| c == ' ') {
                    return Err(SopsEditError::at(
                        item.dash..item.dash + 1,
                        "the item does not start its own line",
                        "this item shares its line",
                        "remove it by hand",
                    ));
                }
                let mut start = first;
                let end = next_line_start(&doc.text, n.span.end.max(item.dash + 1) - 1);
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
                let anchor = doc
                    .node(t)
                    .anchor
                    .as_ref()
                    .map(|x| x.name.as_str())
                    .unwrap_or(name);
                return Err(SopsEditError::at(
                    doc.node(a).span.clone(),
                    format!("*{anchor} would point at nothing after the removal"),
                    format!("*{anchor} is used here"),
                    "remove that use by hand first",
                ));
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
    Newline::follow(text, &mut edits);
    let new_text = apply(text, &edits).map_err(|e| SopsEditError::Verify(e.to_string()))?;
    if !edits.is_empty() {
        let (o, n) = load_both(text, &new_text)?;
        if value::count(&n, &recipient) != 0 {
            let at = doc.text.find(recipient.as_str()).unwrap_or(0);
            return Err(SopsEditError::at(
                at..at + recipient.len().min(doc.text.len() - at),
                "the recipient is also used where vmctl does not remove it",
                "used here",
                "remove it by hand",
            ));
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
