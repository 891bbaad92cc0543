//! Planning and performing a re-key: what `sops updatekeys` would change, whether vmctl can
//! do it natively, and the native edit itself (verified before it is returned).

use serde::Serialize;

use super::config::{CreationRule, KeyGroup, KeyId};
use super::document::{self, AgeStanza, Format, SopsFile};
use super::identity::{self, Identities, WrapError};
use super::{layout, mac, DataKey, SecretsError};

/// Keys to add to and remove from one key group (0-based `group`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupChange {
    pub group: usize,
    pub added: Vec<KeyId>,
    pub removed: Vec<KeyId>,
}

/// The group-by-group difference between a file's keys and a rule's, as `sops updatekeys`
/// computes it (keys compared by identifier, order ignored). Only groups that change are
/// returned; an empty result means the file is up to date.
pub fn diff_key_groups(file: &[KeyGroup], rule: &[KeyGroup]) -> Vec<GroupChange> {
    let empty = KeyGroup::default();
    (0..file.len().max(rule.len()))
        .filter_map(|i| {
            let ours = file.get(i).unwrap_or(&empty).key_ids();
            let theirs = rule.get(i).unwrap_or(&empty).key_ids();
            let added: Vec<KeyId> = theirs
                .iter()
                .filter(|k| !ours.contains(k))
                .cloned()
                .collect();
            let removed: Vec<KeyId> = ours
                .iter()
                .filter(|k| !theirs.contains(k))
                .cloned()
                .collect();
            (!added.is_empty() || !removed.is_empty()).then_some(GroupChange {
                group: i,
                added,
                removed,
            })
        })
        .collect()
}

/// Who re-keys a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// vmctl edits the age entries itself.
    Native,
    /// The real `sops updatekeys`, for the given reason.
    Sops(String),
}

/// Native re-keying covers the common fleet: one key group of age keys only, in the file and
/// in the rule, every rule recipient an X25519 `age1…` recipient, in a layout vmctl parses.
pub fn route(file: &SopsFile, rule: &CreationRule) -> Route {
    if file.format == Format::Ini {
        return Route::Sops("INI files are re-keyed by sops".into());
    }
    let m = &file.metadata;
    if m.uses_key_groups || m.key_groups.len() != 1 {
        return Route::Sops(format!(
            "the file uses {} key groups (Shamir)",
            m.key_groups.len()
        ));
    }
    if rule.key_groups.len() != 1 {
        return Route::Sops(format!(
            "{} asks for {} key groups (Shamir)",
            rule.label(),
            rule.key_groups.len()
        ));
    }
    let other = document::non_age_kinds(&m.key_groups[0].keys);
    if !other.is_empty() {
        return Route::Sops(format!("the file also holds {} keys", other.join(", ")));
    }
    let other = document::non_age_kinds(&rule.key_groups[0]);
    if !other.is_empty() {
        return Route::Sops(format!("{} lists {} keys", rule.label(), other.join(", ")));
    }
    if rule.key_groups[0].age.is_empty() {
        return Route::Sops(format!("{} lists no keys", rule.label()));
    }
    if let Some(r) = rule.key_groups[0]
        .age
        .iter()
        .find(|r| identity::parse_recipient(r).is_err())
    {
        return Route::Sops(format!("recipient {r} is not an X25519 age recipient"));
    }
    Route::Native
}

/// Unwraps the data key of a single-group file with any identity.
pub fn open(file: &SopsFile, ids: &Identities) -> Result<DataKey, SecretsError> {
    let m = &file.metadata;
    if m.key_groups.len() != 1 {
        return Err(SecretsError::UnsupportedLayout(
            "files with several key groups are opened by sops".into(),
        ));
    }
    let mut malformed = false;
    for stanza in &m.key_groups[0].age {
        match identity::unwrap_data_key(&stanza.enc, ids) {
            Ok(k) => return Ok(k),
            Err(WrapError::NoMatchingIdentity) => {}
            Err(WrapError::BadKeyLength) => {
                return Err(SecretsError::DataKey(format!(
                    "the entry for {} does not hold a 32-byte key",
                    stanza.recipient
                )))
            }
            Err(_) => malformed = true,
        }
    }
    let recipients = m.key_groups[0].keys.age.join(", ");
    if malformed && ids.is_empty() {
        return Err(SecretsError::Metadata(
            "an age entry is not a valid age file".into(),
        ));
    }
    Err(SecretsError::NoIdentity {
        recipients: if recipients.is_empty() {
            "none".into()
        } else {
            recipients
        },
    })
}

/// The outcome of a native re-key: the new text and what changed.
#[derive(Clone)]
pub struct NativeRekey {
    pub text: String,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl std::fmt::Debug for NativeRekey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeRekey")
            .field("added", &self.added)
            .field("removed", &self.removed)
            .finish_non_exhaustive()
    }
}

/// What native re-keying and rotation both do first: refuse a layout only sops handles and
/// age entries that are not whole age files, then open the data key and verify the MAC.
pub(crate) fn open_native(
    file: &SopsFile,
    rule: &CreationRule,
    ids: &Identities,
) -> Result<DataKey, SecretsError> {
    if let Route::Sops(reason) = route(file, rule) {
        return Err(SecretsError::UnsupportedLayout(reason));
    }
    for s in &file.metadata.key_groups[0].age {
        identity::check_armor(&s.enc).map_err(|_| {
            SecretsError::Metadata(format!(
                "the age entry for {} is not a complete age file (truncated or corrupted)",
                s.recipient
            ))
        })?;
    }
    let key = open(file, ids)?;
    mac::verify(file, &key)?;
    Ok(key)
}

/// Re-keys `file` for `rule` natively: opens the data key, verifies the MAC, wraps the key for
/// the rule's new recipients, drops the removed entries and returns the edited text after
/// checking that it re-parses to the same data and metadata with exactly the new entries, that
/// the MAC still verifies and that every entry we hold an identity for opens to the same key.
pub fn rekey_native(
    file: &SopsFile,
    rule: &CreationRule,
    ids: &Identities,
) -> Result<NativeRekey, SecretsError> {
    let existing = &file.metadata.key_groups[0].age;
    let key = open_native(file, rule, ids)?;
    let target = &rule.key_groups[0].age;
    let mut keep = Vec::new();
    for (i, s) in existing.iter().enumerate() {
        let first_of_its_kind = existing[..i].iter().all(|e| e.recipient != s.recipient);
        if target.contains(&s.recipient) && first_of_its_kind {
            keep.push(i);
        }
    }
    let removed: Vec<String> = existing
        .iter()
        .filter(|s| !target.contains(&s.recipient))
        .map(|s| s.recipient.clone())
        .collect();
    let mut added_stanzas = Vec::new();
    for r in target {
        if !existing.iter().any(|s| &s.recipient == r) {
            let enc = identity::wrap_data_key(&key, r)
                .map_err(|e| SecretsError::Recipient(e.to_string()))?;
            added_stanzas.push(AgeStanza {
                recipient: r.clone(),
                enc,
            });
        }
    }
    let text = layout::replace_age_entries(file, &keep, &added_stanzas)?;
    let expected: Vec<AgeStanza> = keep
        .iter()
        .map(|&i| existing[i].clone())
        .chain(added_stanzas.iter().cloned())
        .collect();
    verify_rekeyed(file, &text, &expected, &key, ids)?;
    Ok(NativeRekey {
        text,
        added: added_stanzas.into_iter().map(|s| s.recipient).collect(),
        removed,
    })
}

fn verify_rekeyed(
    before: &SopsFile,
    text: &str,
    expected: &[AgeStanza],
    key: &DataKey,
    ids: &Identities,
) -> Result<(), SecretsError> {
    let fail = |what: &str| SecretsError::Verification(what.to_string());
    let after =
        SopsFile::parse(before.format, text).map_err(|e| fail(&format!("re-parse: {e}")))?;
    if after.leaves != before.leaves {
        return Err(fail("the data changed"));
    }
    if document::metadata_without_age(&after.metadata.raw)
        != document::metadata_without_age(&before.metadata.raw)
    {
        return Err(fail("metadata other than the age entries changed"));
    }
    let got = &after.metadata.key_groups[0].age;
    if got.as_slice() != expected {
        return Err(fail("the age entries are not the expected ones"));
    }
    mac::verify(&after, key).map_err(|e| fail(&format!("MAC: {e}")))?;
    let ours: Vec<&str> = ids.recipients().collect();
    for s in got.iter().filter(|s| ours.contains(&s.recipient.as_str())) {
        let k = identity::unwrap_data_key(&s.enc, ids)
            .map_err(|e| fail(&format!("entry for {}: {e}", s.recipient)))?;
        if &k != key {
            return Err(fail("an entry opens to a different data key"));
        }
    }
    Ok(())
}
