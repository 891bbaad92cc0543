//! add-recipient on every real-world `.sops.yaml`: the diff (snapshotted), idempotence, and the
//! real sops as the oracle that the new recipient is really in each chosen rule.

use crate::support::secrets::{NEWVM as NEW, NEWVM_KEY as NEW_IDENTITY};
use crate::support::sops_oracle;

use vmctl::edit::sops::{add_recipient, AddRecipient, SopsEdit, SopsEditError};

fn fixtures() -> Vec<(String, String)> {
    let dir = crate::support::repo().join("tests/fixtures/real-world/sops");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".sops.yaml"))
        .map(|p| {
            let name = p
                .file_name()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches(".sops.yaml")
                .to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    assert_eq!(out.len(), 10, "all real-world fixtures are present");
    out
}

fn add(text: &str) -> Result<SopsEdit, SopsEditError> {
    add_recipient(
        text,
        &AddRecipient {
            name: "newvm",
            recipient: NEW,
            rules: &[],
            all: true,
            hosts: &[],
        },
    )
}

/// The diff snapshots show (the one diff helper, with this file's context and headers).
fn unified(old: &str, new: &str) -> String {
    crate::support::unified_diff(old, new, 2, ("a/.sops.yaml", "b/.sops.yaml"))
}

/// Whether `added` is `removed` with text inserted at one place.
fn is_insertion(removed: &str, added: &str) -> bool {
    let p = removed
        .bytes()
        .zip(added.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let s = removed
        .bytes()
        .rev()
        .zip(added.bytes().rev())
        .take_while(|(a, b)| a == b)
        .count();
    added.len() > removed.len() && p + s >= removed.len()
}

/// Only `+` lines, or one `-`/`+` pair where the `+` line is the `-` line with text inserted
/// (an appended scalar tail or flow item).
fn only_additions(diff: &str) {
    let lines: Vec<&str> = diff
        .lines()
        .filter(|l| !l.starts_with("---") && !l.starts_with("+++"))
        .collect();
    let removed: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with('-'))
        .map(|l| &l[1..])
        .collect();
    let added: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with('+'))
        .map(|l| &l[1..])
        .collect();
    assert!(removed.len() <= 1, "at most one line is extended:\n{diff}");
    for r in removed {
        assert!(
            added.iter().any(|a| is_insertion(r, a)),
            "`{r}` is only extended, never changed:\n{diff}"
        );
    }
}

#[test]
fn add_recipient_on_every_real_world_file() {
    let mut succeeded = 0;
    for (name, text) in fixtures() {
        match add(&text) {
            Ok(edit) => {
                assert!(
                    !edit.is_noop(),
                    "{name}: the recipient is new, something must change"
                );
                let diff = unified(&text, &edit.new_text);
                only_additions(&diff);
                let chosen: Vec<String> = edit
                    .rules
                    .iter()
                    .map(|r| format!("{} {:?}", r.action, r.path_regex))
                    .collect();
                let skipped: Vec<String> = edit
                    .skipped
                    .iter()
                    .map(|s| format!("skipped {:?}: {}", s.1, s.2))
                    .collect();
                insta::assert_snapshot!(
                    format!("add_recipient__{name}"),
                    format!("{}\n{}\n\n{diff}", chosen.join("\n"), skipped.join("\n"))
                );
                // Twice equals once.
                let again = add(&edit.new_text).unwrap();
                assert!(again.is_noop(), "{name}: a second add changes nothing");
                assert_eq!(again.new_text, edit.new_text);
                // The real sops: a new file at a path each chosen rule matches gets the recipient.
                let regexes = sops_oracle::rule_regexes(&edit.new_text);
                // The oracle can fail: before the edit, sops does not give the recipient.
                let first = sops_oracle::sample_path(&regexes, edit.rules[0].index);
                let before = sops_oracle::sops_first_group(&text, &first, NEW, NEW_IDENTITY);
                assert!(!before.iter().any(|g| g == NEW), "{name}: {before:?}");
                for r in &edit.rules {
                    let path = sops_oracle::sample_path(&regexes, r.index);
                    let group =
                        sops_oracle::sops_first_group(&edit.new_text, &path, NEW, NEW_IDENTITY);
                    assert!(
                        group.iter().any(|g| g == NEW),
                        "{name}: sops gives {path} the group {group:?}"
                    );
                }
                succeeded += 1;
            }
            Err(e) => {
                insta::assert_snapshot!(format!("add_recipient__{name}"), format!("refused: {e}"));
            }
        }
    }
    assert!(
        succeeded >= 8,
        "most real-world shapes are supported ({succeeded}/10)"
    );
}

/// A file refused by the default choice (every rule is another host's) takes the recipient
/// when the rules are named with --rule.
#[test]
fn refused_files_accept_rules_named_explicitly() {
    let (name, text) = fixtures()
        .into_iter()
        .find(|(n, _)| n.starts_with("0xdsqr"))
        .unwrap();
    assert!(add(&text).is_err(), "{name}");
    let rules: Vec<String> = sops_oracle::rule_regexes(&text)
        .into_iter()
        .flatten()
        .collect();
    let edit = add_recipient(
        &text,
        &AddRecipient {
            name: "newvm",
            recipient: NEW,
            rules: &rules,
            all: false,
            hosts: &[],
        },
    )
    .unwrap();
    insta::assert_snapshot!(
        "add_recipient_explicit_rule__0xdsqr",
        unified(&text, &edit.new_text)
    );
    let regexes = sops_oracle::rule_regexes(&edit.new_text);
    let path = sops_oracle::sample_path(&regexes, 0);
    let group = sops_oracle::sops_first_group(&edit.new_text, &path, NEW, NEW_IDENTITY);
    assert!(group.iter().any(|g| g == NEW), "{group:?}");
}
