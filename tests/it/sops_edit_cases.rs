//! add-recipient on minimal files, one shape each: how the text changes (inline snapshots),
//! and the refusals. The real sops checks the shapes whose meaning is least obvious.

use crate::support::secrets::{ADMIN as B, NEWVM as NEW, NEWVM_KEY as NEW_IDENTITY, OLDHOST as A};
use crate::support::sops_oracle;

use vmctl::edit::sops::{add_recipient, AddRecipient, SopsEdit, SopsEditError};

fn file(template: &str) -> String {
    template
        .replace("{A}", A)
        .replace("{B}", B)
        .replace("{NEW}", NEW)
}

fn add_with(
    text: &str,
    name: &str,
    rules: &[String],
    hosts: &[String],
) -> Result<SopsEdit, SopsEditError> {
    add_recipient(
        text,
        &AddRecipient {
            name,
            recipient: NEW,
            rules,
            // These cases are about placement: an empty --rule list means --all.
            all: rules.is_empty(),
            hosts,
        },
    )
}

/// Adds NEW as `newvm` by default and returns the new text with NEW shortened to `{NEW}`.
fn add(template: &str) -> String {
    let text = file(template);
    let edit = add_with(&text, "newvm", &[], &[]).unwrap_or_else(|e| panic!("{e}"));
    let again = add_with(&edit.new_text, "newvm", &[], &[]).unwrap();
    assert!(again.is_noop(), "twice equals once");
    edit.new_text
        .replace(NEW, "{NEW}")
        .replace(A, "{A}")
        .replace(B, "{B}")
}

fn refused(template: &str, rules: &[&str]) -> String {
    let rules: Vec<String> = rules.iter().map(|s| s.to_string()).collect();
    add_with(&file(template), "newvm", &rules, &[])
        .map(|_| ())
        .unwrap_err()
        .to_string()
}

/// A refusal as the CLI prints it, without colour.
fn rendered(e: vmctl::edit::sops::SopsEditError, text: &str) -> String {
    let mut out = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .with_width(200)
        .render_report(
            &mut out,
            vmctl::edit::refusal::refusal(e, ".sops.yaml", text).as_ref(),
        )
        .unwrap();
    out
}

/// The first group sops gives a file at `path`.
fn sops_group(text: &str, path: &str) -> Vec<String> {
    sops_oracle::sops_first_group(text, path, NEW, NEW_IDENTITY)
}

#[test]
fn plain_comma_string() {
    let out = add("creation_rules:\n  - path_regex: s/.*\n    age: {A},{B}\n");
    insta::assert_snapshot!(out, @r"
    creation_rules:
      - path_regex: s/.*
        age: {A},{B},{NEW}
    ");
    let text = file(&out);
    assert_eq!(sops_group(&text, "s/x.yaml").len(), 3);
}

#[test]
fn quoted_comma_string_with_spaces() {
    let out = add("creation_rules:\n  - path_regex: s/.*\n    age: \"{A}, {B}\"\n");
    insta::assert_snapshot!(out, @r#"
    creation_rules:
      - path_regex: s/.*
        age: "{A}, {B}, {NEW}"
    "#);
}

#[test]
fn literal_block_comma_list_reaches_sops() {
    let out = add("creation_rules:\n  - path_regex: s/.*\n    age: |\n      {A},\n      {B}\n");
    insta::assert_snapshot!(out, @r"
    creation_rules:
      - path_regex: s/.*
        age: |
          {A},
          {B},
          {NEW}
    ");
    let group = sops_group(&file(&out), "s/x.yaml");
    assert!(
        group.contains(&NEW.to_string()) && group.len() == 3,
        "{group:?}"
    );
}

#[test]
fn empty_flow_list_and_no_final_newline() {
    let out = add(
        "keys:\n  - &a {A}\ncreation_rules:\n  - path_regex: s/.*\n    key_groups:\n    - age: []",
    );
    insta::assert_snapshot!(out, @r"
    keys:
      - &a {A}
      - &newvm {NEW}
    creation_rules:
      - path_regex: s/.*
        key_groups:
        - age: [*newvm]
    ");
}

#[test]
fn inline_recipients_get_an_anchor_in_the_first_rule_and_aliases_after() {
    let out = add("creation_rules:\n  - path_regex: a/.*\n    key_groups:\n      - age:\n          - {A} # admin\n  - path_regex: b/.*\n    key_groups:\n      - age:\n          - {A} # admin\n          - {B} # other\n");
    insta::assert_snapshot!(out, @r"
    creation_rules:
      - path_regex: a/.*
        key_groups:
          - age:
              - {A} # admin
              - &newvm {NEW} # newvm
      - path_regex: b/.*
        key_groups:
          - age:
              - {A} # admin
              - {B} # other
              - *newvm
    ");
}

#[test]
fn a_second_group_is_never_created_and_other_groups_stay() {
    let out = add("creation_rules:\n  - path_regex: s/.*\n    shamir_threshold: 2\n    key_groups:\n      - age:\n          - {A}\n      - age:\n          - {B}\n");
    insta::assert_snapshot!(out, @r"
    creation_rules:
      - path_regex: s/.*
        shamir_threshold: 2
        key_groups:
          - age:
              - {A}
              - &newvm {NEW} # newvm
          - age:
              - {B}
    ");
}

#[test]
fn an_existing_anchor_for_the_recipient_is_reused() {
    let text = file("keys:\n  - &vm {NEW}\ncreation_rules:\n  - path_regex: s/.*\n    key_groups:\n    - age:\n      - {A}\n");
    let edit = add_with(&text, "newvm", &[], &[]).unwrap();
    assert!(edit.new_text.contains("      - *vm\n"), "{}", edit.new_text);
    assert!(!edit.new_text.contains("&newvm"));
}

#[test]
fn another_hosts_recipient_is_refused() {
    // By anchor: &vm is a host of hosts.nix.
    let text = file("keys:\n  - &vm {NEW}\ncreation_rules:\n  - path_regex: s/.*\n    key_groups:\n    - age:\n      - {A}\n      - *vm\n");
    let hosts = ["vm".to_string(), "newvm".to_string()];
    // Shown as the CLI shows it: the refusal points at the place in the file.
    let err = rendered(add_with(&text, "newvm", &[], &hosts).unwrap_err(), &text);
    assert!(
        err.contains("already host `vm`'s recipient (anchor &vm)"),
        "{err}"
    );
    assert!(err.contains("[.sops.yaml:2:"), "{err}");
    assert!(err.contains("HS002"), "{err}");
    // By comment.
    let text = file("creation_rules:\n  - path_regex: s/.*\n    age:\n      - {A} # admin\n      - {NEW} # vm\n");
    let err = rendered(add_with(&text, "newvm", &[], &hosts).unwrap_err(), &text);
    assert!(err.contains("commented `# vm`"), "{err}");
    assert!(err.contains("[.sops.yaml:5:"), "{err}");
    // The host itself re-adding its own recipient is fine (a no-op).
    assert!(add_with(&text, "vm", &[], &hosts).unwrap().is_noop());
}

#[test]
fn already_present_everywhere_changes_nothing() {
    let text = file("creation_rules:\n  - path_regex: s/.*\n    age: {A},{NEW}\n");
    let edit = add_with(&text, "newvm", &[], &[]).unwrap();
    assert!(edit.is_noop());
    assert_eq!(edit.new_text, text);
    assert_eq!(edit.rules[0].action, "already-present");
}

#[test]
fn host_names_from_hosts_nix_exclude_their_rules() {
    let text = file("creation_rules:\n  - path_regex: secrets/doc1/.*\n    age: {A}\n  - path_regex: secrets/.*\n    age: {A}\n");
    let edit = add_with(&text, "newvm", &[], &["doc1".into()]).unwrap();
    assert_eq!(edit.rules.len(), 1);
    assert_eq!(edit.rules[0].index, 1);
    assert_eq!(edit.skipped[0].0, 0);
    // Without hosts.nix, nothing marks `doc1` as a host: both rules are chosen.
    assert_eq!(add_with(&text, "newvm", &[], &[]).unwrap().rules.len(), 2);
    // The host's own rule is chosen.
    let own = add_with(&text, "doc1", &[], &["doc1".into()]).unwrap();
    assert_eq!(own.rules.len(), 2);
}

#[test]
fn rules_without_an_age_list_are_left_alone_by_default_and_refused_by_name() {
    let text = file("creation_rules:\n  - path_regex: p/.*\n    pgp: ABCD\n  - path_regex: s/.*\n    age: {A}\n");
    let edit = add_with(&text, "newvm", &[], &[]).unwrap();
    assert_eq!(edit.rules.iter().map(|r| r.index).collect::<Vec<_>>(), [1]);
    assert_eq!(edit.skipped[0].0, 0);
    assert!(
        edit.skipped[0].2.contains("no age recipients"),
        "{:?}",
        edit.skipped
    );
    let err = add_with(&text, "newvm", &["p/.*".into()], &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot add to `p/.*`"), "{err}");
}

#[test]
fn tabs_separate_but_never_indent() {
    let text = file("creation_rules:\n  - path_regex:\ts/.* # tab\n    age:\t{A}\n");
    let edit = add_with(&text, "newvm", &[], &[]).unwrap();
    assert!(edit.new_text.contains(&format!("age:\t{A},{NEW}\n")));
    assert!(refused("creation_rules:\n\t- path_regex: s\n", &[]).contains("tabs are not allowed"));
}

#[test]
fn rule_flag_picks_rules_by_exact_path_regex() {
    let text = file(
        "creation_rules:\n  - path_regex: a/.*\n    age: {A}\n  - path_regex: b/.*\n    age: {A}\n",
    );
    let edit = add_with(&text, "newvm", &["b/.*".into()], &[]).unwrap();
    assert_eq!(edit.rules.iter().map(|r| r.index).collect::<Vec<_>>(), [1]);
    let err = add_with(&text, "newvm", &["c/.*".into()], &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no creation rule has path_regex `c/.*`") && err.contains("`a/.*`"),
        "{err}"
    );
}

#[test]
fn refusals_say_why() {
    let cases = [
        (refused("keys:\n  - &newvm {B}\ncreation_rules:\n  - path_regex: s/.*\n    age: {A}\n", &[]),
         "the anchor &newvm already names another recipient"),
        (refused("creation_rules:\n  - path_regex: a/.*\n    key_groups:\n    - &g\n      age:\n      - {A}\n  - path_regex: b/.*\n    key_groups:\n    - *g\n", &["a/.*"]),
         "shares its age list (through &g) with `b/.*`"),
        (refused("creation_rules:\n  - path_regex: s/.*\n    pgp: ABCD\n", &[]),
         "has no age recipients"),
        (refused("creation_rules:\n  - path_regex: s/.*\n    age: !!str {A}\n", &[]),
         "YAML tags are not supported"),
        (refused("creation_rules:\n  - path_regex: s/.*\n    age:\n", &[]),
         "`age:` is empty"),
        (refused("rules: []\n", &[]), "no top-level `creation_rules:`"),
        (refused("keys:\n  - &newvm\n    age:\n    - {A}\ncreation_rules:\n  - path_regex: s/.*\n    key_groups:\n    - <<: *newvm\n", &[]),
         "the anchor &newvm already names something else"),
    ];
    for (got, want) in cases {
        assert!(got.contains(want), "`{got}` should say `{want}`");
    }
    let bad_name = add_recipient(
        "creation_rules: []\n",
        &AddRecipient {
            name: "a b",
            recipient: NEW,
            rules: &[],
            all: true,
            hosts: &[],
        },
    );
    assert!(bad_name
        .unwrap_err()
        .to_string()
        .contains("cannot be a YAML anchor name"));
    let bad_recipient = add_recipient(
        "creation_rules: []\n",
        &AddRecipient {
            name: "x",
            recipient: "age1nope",
            rules: &[],
            all: true,
            hosts: &[],
        },
    );
    assert!(bad_recipient
        .unwrap_err()
        .to_string()
        .contains("vmctl keys to-age"));
}

#[test]
fn both_rules_sharing_a_merged_group_are_edited_once() {
    let text = file("keys:\n  - &g\n    age:\n    - {A}\ncreation_rules:\n  - path_regex: a/.*\n    key_groups:\n    - <<: *g\n  - path_regex: b/.*\n    key_groups:\n    - <<: *g\n");
    let edit = add_with(&text, "newvm", &[], &[]).unwrap();
    assert_eq!(edit.edits.len(), 1);
    insta::assert_snapshot!(edit.new_text.replace(NEW, "{NEW}").replace(A, "{A}"), @r"
    keys:
      - &g
        age:
        - {A}
        - &newvm {NEW}
    creation_rules:
      - path_regex: a/.*
        key_groups:
        - <<: *g
      - path_regex: b/.*
        key_groups:
        - <<: *g
    ");
    for path in ["a/x.yaml", "b/x.yaml"] {
        assert!(sops_group(&edit.new_text, path).contains(&NEW.to_string()));
    }
}
