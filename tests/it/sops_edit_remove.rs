//! remove-recipient: only the recipient's own lines go; add then remove gives the original
//! file back byte for byte; dangling aliases and emptied rules are refused.

use crate::support::secrets::{NEWVM as NEW, NEWVM_KEY as NEW_IDENTITY, OLDHOST as A};
use crate::support::sops_oracle;

use crate::support::read_repo;

use vmctl::edit::sops::{add_recipient, remove_recipient, AddRecipient};

/// The diff snapshots show (the one diff helper, with this file's context and headers).
fn unified(old: &str, new: &str) -> String {
    crate::support::unified_diff(old, new, 1, ("a/.sops.yaml", "b/.sops.yaml"))
}

#[test]
fn add_then_remove_restores_every_real_world_file() {
    let dir = crate::support::repo().join("tests/fixtures/real-world/sops");
    let mut restored = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let Ok(added) = add_recipient(
            &text,
            &AddRecipient {
                name: "newvm",
                recipient: NEW,
                rules: &[],
                all: true,
                hosts: &[],
            },
        ) else {
            continue;
        };
        // A comma string holds no name: the recipient is passed (the CLI derives it from hosts.nix).
        let removed = remove_recipient(&added.new_text, "newvm", Some(NEW)).unwrap();
        assert_eq!(removed.new_text, text, "{}", path.display());
        assert_eq!(removed.recipient, NEW);
        restored += 1;
    }
    assert!(restored >= 8);
}

#[test]
fn removing_a_host_deletes_its_lines_and_its_anchor() {
    let text = read_repo("tests/fixtures/real-world/sops/TUM-DSE_doctor-cluster-config.sops.yaml");
    let edit = remove_recipient(&text, "amy", None).unwrap();
    let diff = unified(&text, &edit.new_text);
    assert!(
        diff.lines()
            .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
            .count()
            == 0,
        "only deletions:\n{diff}"
    );
    insta::assert_snapshot!("remove_amy_TUM", diff);
    assert!(!edit.new_text.contains("&amy") && !edit.new_text.contains("*amy"));
    // Removing again: the anchor is gone and nothing names `amy` any more.
    let again = remove_recipient(&edit.new_text, "amy", None)
        .unwrap_err()
        .to_string();
    assert!(again.contains("no anchor &amy"), "{again}");
}

#[test]
fn an_alias_kept_elsewhere_is_refused() {
    let text = format!("keys:\n  - &h {A}\nnote: *h\ncreation_rules:\n  - path_regex: s/.*\n    age:\n    - {NEW}\n    - *h\n");
    let err = remove_recipient(&text, "h", None).unwrap_err();
    // The refusal points at the alias on line 3.
    let line = err
        .place()
        .map(|at| text[..at.start].matches('\n').count() + 1);
    assert_eq!(line, Some(3), "{err}");
    assert!(
        err.to_string().contains("*h would point at nothing"),
        "{err}"
    );
}

#[test]
fn a_rule_left_without_recipients_is_refused() {
    let text = format!(
        "creation_rules:\n  - path_regex: s/.*\n    key_groups:\n    - age:\n      - &h {A}\n"
    );
    let err = remove_recipient(&text, "h", None).unwrap_err().to_string();
    assert!(err.contains("`s/.*` would have no recipient left"), "{err}");
}

#[test]
fn inline_recipients_are_found_by_their_comment() {
    let text = read_repo(".sops.yaml");
    let edit = remove_recipient(&text, "igpu", None).unwrap();
    insta::assert_snapshot!("remove_igpu_demo", unified(&text, &edit.new_text));
}

#[test]
fn comma_lists_and_flow_lists_lose_one_element() {
    let text = format!("creation_rules:\n  - path_regex: a/.*\n    age: {A}, {NEW}\n  - path_regex: b/.*\n    age: [{NEW}, {A}]\n  - path_regex: c/.*\n    age: >-\n      {NEW},\n      {A}\n");
    let edit = remove_recipient(&text, "x", Some(NEW)).unwrap();
    assert_eq!(
        edit.new_text,
        format!("creation_rules:\n  - path_regex: a/.*\n    age: {A}\n  - path_regex: b/.*\n    age: [{A}]\n  - path_regex: c/.*\n    age: >-\n      {A}\n")
    );
    // The real sops no longer gives the recipient to a new file.
    let group = sops_oracle::sops_first_group(&edit.new_text, "b/x.yaml", NEW, NEW_IDENTITY);
    assert!(!group.contains(&NEW.to_string()), "{group:?}");
}
