//! Rotating a file's data key natively: a new random key, every value re-encrypted under it
//! (fresh IVs, same AAD), a new MAC, `lastmodified` set to now, and the new key wrapped for
//! the rule's recipients. The result is verified before it is returned; the caller writes it.
//!
//! A host removed from a rule still holds the old data key (and any copy of the old file).
//! Re-keying alone only stops it reading future versions if their values change; rotating
//! makes every value of the current file unreadable with the old key.

use rand_core::CryptoRngCore;

use super::config::CreationRule;
use super::document::{self, AgeStanza, LeafValue, SopsFile};
use super::identity::{self, Identities};
use super::rekey;
use super::{cipher, layout, mac, DataKey, SecretsError};

/// The outcome of a native rotation: the new text and the recipients the new key is wrapped
/// for (and which of the file's recipients were dropped on the way, per the rule).
#[derive(Clone)]
pub struct Rotation {
    pub text: String,
    pub recipients: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl std::fmt::Debug for Rotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rotation")
            .field("recipients", &self.recipients)
            .field("added", &self.added)
            .field("removed", &self.removed)
            .finish_non_exhaustive()
    }
}

/// `secs` since the Unix epoch as RFC 3339 in UTC with whole seconds, as sops writes
/// `lastmodified` (Go's `time.RFC3339` of a UTC time).
pub fn rfc3339_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Replaces the occurrence of `old` at or after `from` with `new`; returns where the search
/// may go on.
fn replace_from(
    text: &mut String,
    from: usize,
    old: &str,
    new: &str,
) -> Result<usize, SecretsError> {
    let at = text[from..].find(old).map(|i| from + i).ok_or_else(|| {
        SecretsError::UnsupportedLayout("a value was not found where it was read".into())
    })?;
    text.replace_range(at..at + old.len(), new);
    Ok(at + new.len())
}

/// Rotates `file`'s data key for `rule` (its recipients become the rule's, as with a re-key).
/// `now` is the new `lastmodified` (see [`rfc3339_utc`]).
pub fn rotate_native(
    file: &SopsFile,
    rule: &CreationRule,
    ids: &Identities,
    rng: &mut impl CryptoRngCore,
    now: &str,
) -> Result<Rotation, SecretsError> {
    let existing = &file.metadata.key_groups[0].age;
    let old_key = rekey::open_native(file, rule, ids)?;
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rng.fill_bytes(&mut bytes[..]);
    let new_key = DataKey::from_bytes(&bytes[..]).expect("32 bytes");
    if new_key == old_key {
        return Err(SecretsError::DataKey(
            "the random generator repeated the old key".into(),
        ));
    }

    // 1. The new key, wrapped for every recipient of the rule, replaces every entry.
    let target = &rule.key_groups[0].age;
    let mut stanzas = Vec::new();
    for r in target {
        if stanzas.iter().any(|s: &AgeStanza| &s.recipient == r) {
            continue;
        }
        let enc = identity::wrap_data_key(&new_key, r)
            .map_err(|e| SecretsError::Recipient(e.to_string()))?;
        stanzas.push(AgeStanza {
            recipient: r.clone(),
            enc,
        });
    }
    let mut text = layout::replace_age_entries(file, &[], &stanzas)?;

    // 2. Every encrypted value, in document order, under the new key (same AAD and type).
    let mut cursor = 0;
    let mut plaintexts = Vec::new();
    let mut comments = Vec::new();
    for leaf in &file.leaves {
        let LeafValue::Encrypted(old) = &leaf.value else {
            continue;
        };
        let aad = format!("{}:", leaf.path.join(":"));
        let (plain, kind) =
            cipher::decrypt_str(old, &old_key, &aad).map_err(|e| SecretsError::Value {
                path: leaf.path.join(":"),
                reason: e.to_string(),
            })?;
        let new = cipher::encrypt(&plain, &kind, &new_key, &aad, rng).map_err(|e| {
            SecretsError::Value {
                path: leaf.path.join(":"),
                reason: e.to_string(),
            }
        })?;
        cursor = replace_from(&mut text, cursor, old, &new)?;
        plaintexts.push((plain, kind));
    }

    // 2b. YAML and dotenv comments, which sops encrypts too (`#ENC[…,type:comment]`) and no YAML parser
    //     reports: each is bound to the path of the mapping it sits in, found by trying the
    //     file's paths (GCM authenticates, so only the right one opens it).
    if matches!(file.format, super::Format::Yaml | super::Format::Dotenv) {
        let mut paths: Vec<String> = vec![":".into()];
        for leaf in &file.leaves {
            for n in 1..=leaf.path.len() {
                let p = format!("{}:", leaf.path[..n].join(":"));
                if !paths.contains(&p) {
                    paths.push(p);
                }
            }
        }
        for old in yaml_comments(&file.text) {
            let (aad, plain, kind) = paths
                .iter()
                .find_map(|aad| {
                    cipher::decrypt_str(&old, &old_key, aad)
                        .ok()
                        .map(|(p, k)| (aad, p, k))
                })
                .ok_or_else(|| {
                    SecretsError::UnsupportedLayout(
                        "an encrypted comment is bound to a path vmctl does not know".into(),
                    )
                })?;
            let new = cipher::encrypt(&plain, &kind, &new_key, aad, rng)
                .map_err(|e| SecretsError::Metadata(e.to_string()))?;
            replace_from(&mut text, 0, &old, &new)?;
            comments.push((new, aad.clone(), plain));
        }
    }

    // 3. lastmodified and the MAC (same plaintext, so the same digest, sealed with the new
    //    key and the new lastmodified). Both live in the metadata, after the data.
    let digest = mac::compute(file, &old_key)?;
    let old_lm = &file.metadata.lastmodified;
    let lm_at = text[cursor..]
        .rfind(old_lm.as_str())
        .map(|i| cursor + i)
        .ok_or_else(|| SecretsError::UnsupportedLayout("lastmodified not found".into()))?;
    text.replace_range(lm_at..lm_at + old_lm.len(), now);
    let new_mac = cipher::encrypt(digest.as_bytes(), "str", &new_key, now, rng)
        .map_err(|e| SecretsError::Metadata(e.to_string()))?;
    replace_from(&mut text, cursor, &file.metadata.mac, &new_mac)?;

    verify_rotated(
        file,
        &text,
        &old_key,
        &new_key,
        &plaintexts,
        target,
        ids,
        now,
    )?;
    for (enc, aad, plain) in &comments {
        let ok = text.contains(enc.as_str())
            && cipher::decrypt_str(enc, &new_key, aad).is_ok_and(|(p, _)| p[..] == plain[..]);
        if !ok {
            return Err(SecretsError::Verification(
                "a comment did not re-encrypt".into(),
            ));
        }
    }
    if matches!(file.format, super::Format::Yaml | super::Format::Dotenv)
        && !yaml_comments(&text)
            .iter()
            .all(|c| comments.iter().any(|(enc, _, _)| enc == c))
    {
        return Err(SecretsError::Verification(
            "a comment is still under the old key".into(),
        ));
    }
    Ok(Rotation {
        text,
        recipients: stanzas.iter().map(|s| s.recipient.clone()).collect(),
        added: target
            .iter()
            .filter(|r| !existing.iter().any(|s| &s.recipient == *r))
            .cloned()
            .collect(),
        removed: existing
            .iter()
            .filter(|s| !target.contains(&s.recipient))
            .map(|s| s.recipient.clone())
            .collect(),
    })
}

/// The `ENC[…]` of every encrypted YAML or dotenv comment (`#ENC[AES256_GCM,…]`), in order.
fn yaml_comments(text: &str) -> Vec<String> {
    let needle = "#ENC[AES256_GCM,";
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find(needle) {
        let start = from + i + 1;
        let Some(end) = text[start..].find(']') else {
            break;
        };
        out.push(text[start..=start + end].to_string());
        from = start + end;
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn verify_rotated(
    before: &SopsFile,
    text: &str,
    old_key: &DataKey,
    new_key: &DataKey,
    plaintexts: &[(zeroize::Zeroizing<Vec<u8>>, String)],
    target: &[String],
    ids: &Identities,
    now: &str,
) -> Result<(), SecretsError> {
    let fail = |what: &str| SecretsError::Verification(what.to_string());
    let after =
        SopsFile::parse(before.format, text).map_err(|e| fail(&format!("re-parse: {e}")))?;
    if after.leaves.len() != before.leaves.len() {
        return Err(fail("the data changed shape"));
    }
    let mut enc = plaintexts.iter();
    for (a, b) in before.leaves.iter().zip(&after.leaves) {
        if a.path != b.path {
            return Err(fail("a value moved"));
        }
        match (&a.value, &b.value) {
            (LeafValue::Plain(x), LeafValue::Plain(y)) if x == y => {}
            (LeafValue::Encrypted(old), LeafValue::Encrypted(new)) => {
                let aad = format!("{}:", b.path.join(":"));
                if cipher::decrypt_str(new, old_key, &aad).is_ok() {
                    return Err(fail("a value still opens with the old key"));
                }
                let (plain, kind) = cipher::decrypt_str(new, new_key, &aad)
                    .map_err(|e| fail(&format!("value at {}: {e}", b.path.join(":"))))?;
                let (want, want_kind) = enc.next().ok_or_else(|| fail("too many values"))?;
                if plain[..] != want[..] || &kind != want_kind || old == new {
                    return Err(fail("a value's plaintext changed"));
                }
            }
            _ => return Err(fail("a value changed between encrypted and plain")),
        }
    }
    let strip = |raw: &serde_json::Value| {
        let mut m = document::metadata_without_age(raw);
        if let Some(o) = m.as_object_mut() {
            o.remove("mac");
            o.remove("lastmodified");
        }
        m
    };
    if strip(&after.metadata.raw) != strip(&before.metadata.raw) {
        return Err(fail(
            "metadata other than the keys, MAC and lastmodified changed",
        ));
    }
    if after.metadata.lastmodified != now {
        return Err(fail("lastmodified was not updated"));
    }
    mac::verify(&after, new_key).map_err(|e| fail(&format!("MAC: {e}")))?;
    let got: Vec<&str> = after.metadata.key_groups[0]
        .age
        .iter()
        .map(|s| s.recipient.as_str())
        .collect();
    let mut want: Vec<&str> = Vec::new();
    for r in target {
        if !want.contains(&r.as_str()) {
            want.push(r);
        }
    }
    if got != want {
        return Err(fail("the age entries are not the rule's recipients"));
    }
    let ours: Vec<&str> = ids.recipients().collect();
    for s in after.metadata.key_groups[0]
        .age
        .iter()
        .filter(|s| ours.contains(&s.recipient.as_str()))
    {
        let k = identity::unwrap_data_key(&s.enc, ids)
            .map_err(|e| fail(&format!("entry for {}: {e}", s.recipient)))?;
        if &k != new_key {
            return Err(fail("an entry opens to another data key"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::rfc3339_utc;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_utc(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
