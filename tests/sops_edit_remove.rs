//! remove-recipient: only the recipient's own lines go; add then remove gives the original
//! file back byte for byte; dangling aliases and emptied rules are refused.

mod sops_oracle;
use sops_oracle as support;

use std::path::Path;

use vmctl::edit::sops::{add_recipient, remove_recipient, AddRecipient};

const NEW: &str = "age17044m9wgakla6pzftf4srtl3h5mcsr85jysgt5fg23zpnta8sfdqhzn452";
const NEW_IDENTITY: &str =
    "AGE-SECRET-KEY-1K3VN4N03PTHJWSJSCCMQCN33RY5FSKQPJ4KRRTG3JMQUYE0TUSEQEDH6V8";
const A: &str = "age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs";

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

fn unified(old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(1)
        .header("a/.sops.yaml", "b/.sops.yaml")
        .to_string()
}

#[test]
fn add_then_remove_restores_every_real_world_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real-world/sops");
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
    let text = read("tests/fixtures/real-world/sops/TUM-DSE_doctor-cluster-config.sops.yaml");
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
    let err = remove_recipient(&text, "h", None).unwrap_err().to_string();
    assert!(err.contains("*h at line 3 would point at nothing"), "{err}");
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
    let text = read(".sops.yaml");
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
    let group = support::sops_first_group(&edit.new_text, "b/x.yaml", NEW, NEW_IDENTITY);
    assert!(!group.contains(&NEW.to_string()), "{group:?}");
}
