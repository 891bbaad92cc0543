//! How every writing command shows its file changes: one diff style for `--dry-run` and one
//! JSON shape for `--json` (documented in docs/json-output.md, "File changes").

use crate::exec::apply::{ChangeSet, FileChange};

/// The text a command is about to change (`None` when the file does not exist yet); a file
/// that is not UTF-8 is refused, named `name`, with what vmctl edits in it (`kind`).
pub fn read_text_for_change(
    path: &std::path::Path,
    name: &str,
    kind: &str,
) -> miette::Result<Option<String>> {
    match crate::exec::apply::read_for_change(path)? {
        Some(bytes) => Ok(Some(String::from_utf8(bytes).map_err(|_| {
            miette::miette!("`{name}` is not UTF-8 text; vmctl edits only {kind}")
        })?)),
        None => Ok(None),
    }
}

/// A unified diff of one file's change with the fleet-relative name in `a/…`/`b/…` headers
/// and three lines of context. Secret or non-text contents are never shown.
pub fn diff(change: &FileChange) -> Option<String> {
    if change.secret || !change.is_change() {
        return None;
    }
    let old = std::str::from_utf8(change.old.as_deref().unwrap_or_default()).ok()?;
    let new = std::str::from_utf8(&change.new).ok()?;
    let name = &change.shown;
    // `a/` and `b/` prefix fleet-relative names, as git writes them; an absolute path (a file
    // outside the fleet) is shown as it is.
    let (a, b) = if name.starts_with('/') {
        (name.clone(), name.clone())
    } else {
        (format!("a/{name}"), format!("b/{name}"))
    };
    let old_name = if change.old.is_some() {
        a
    } else {
        "/dev/null".to_string()
    };
    Some(
        similar::TextDiff::from_lines(old, new)
            .unified_diff()
            .context_radius(3)
            .header(&old_name, &b)
            .to_string(),
    )
}

/// The JSON of one file change: `{file, action, summary, written, diff, mode?}`.
pub fn change_json(change: &FileChange, written: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "file": change.shown,
        "action": change.action(),
        "summary": change.summary,
        "written": written && change.is_change(),
        "diff": diff(change),
    });
    if change.old.is_none() {
        v["mode"] = serde_json::json!(format!("{:04o}", change.create_mode));
    }
    v
}

/// `{"dry_run", "written", "changes": [...]}` for a change set; commands add their own fields.
pub fn set_json(set: &ChangeSet, dry_run: bool) -> serde_json::Value {
    let written = !dry_run;
    serde_json::json!({
        "dry_run": dry_run,
        "written": written && set.is_change(),
        "changes": set.changes.iter().map(|c| change_json(c, written)).collect::<Vec<_>>(),
    })
}

/// Human output: with `dry_run`, each change's diff and `dry run: FILE not written; would …`;
/// otherwise one `FILE: summary` line per change.
pub fn print_human(set: &ChangeSet, dry_run: bool) {
    for c in &set.changes {
        if dry_run && c.is_change() {
            match diff(c) {
                Some(d) => print!("{d}"),
                None => println!("(contents of {} not shown: secret)", c.shown),
            }
            println!("dry run: {} not written; would have {}", c.shown, c.summary);
        } else {
            println!("{}: {}", c.shown, c.summary);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shape_for_every_change() {
        let c = FileChange::modify("/f/hosts.nix", "hosts.nix", "a\n", "a\nb\n", "added b");
        let v = change_json(&c, true);
        assert_eq!(v["action"], "modify");
        assert_eq!(v["written"], true);
        assert!(v["diff"]
            .as_str()
            .unwrap()
            .contains("--- a/hosts.nix\n+++ b/hosts.nix"));
        let k = FileChange::create("/f/key", "key", "PRIVATE", "created")
            .mode(0o600)
            .secret();
        let v = change_json(&k, false);
        assert_eq!(
            v["diff"],
            serde_json::Value::Null,
            "secrets are never shown"
        );
        assert_eq!(v["mode"], "0600");
        assert_eq!(v["action"], "create");
        assert_eq!(v["written"], false);
    }
}
