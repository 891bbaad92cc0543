//! Verifying a hosts.nix edit: the result reads back as the intended entries, untouched
//! entries are byte-identical, and planning the same intent again changes nothing.

use super::locate::locate_with;
use super::{plan, EntryTemplate, HostIntent, HostsDoc, HostsEditError};

/// Re-reads the edited text and checks it means what was asked, and that the same intent
/// planned again on the result changes nothing.
pub(super) fn verify(
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
