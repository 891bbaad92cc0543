//! hosts.nix edits checked against real Nix: every result parses with `nix-instantiate
//! --parse`, evaluates to the intended attrset, differs from the input only inside the one
//! text edit, and is snapshotted as a unified diff.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};
use vmctl::edit::hosts::{edit_hosts, Change, EntryTemplate, HostIntent, HostsEditError, NewHost};

const NEW_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO8VKyhzcBQ4yMgYmcX8xILCt0u2lTGGk4vH1uMd4X9T root@new";

fn fixtures() -> PathBuf {
    crate::support::fixture("hosts")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap()
}

/// Runs `nix-instantiate ARGS FILE` on `text` and returns stdout; a missing nix fails the test.
fn nix_instantiate(args: &[&str], text: &str) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts.nix");
    std::fs::write(&file, text).unwrap();
    let out = Command::new("nix-instantiate")
        .args(args)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!("nix-instantiate not runnable ({e}): run ./scripts/test.sh or `apt-get install -y nix-bin`")
        });
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn eval(text: &str) -> Value {
    let out = nix_instantiate(&["--eval", "--strict", "--json"], text)
        .unwrap_or_else(|e| panic!("nix cannot evaluate:\n{text}\n{e}"));
    serde_json::from_str(&out).unwrap()
}

fn add(name: &str) -> HostIntent {
    HostIntent::Add(NewHost {
        name: name.into(),
        public_key: NEW_KEY.into(),
        hostname: None,
        ssh_alias: None,
        vmid: None,
    })
}

fn set_key(name: &str) -> HostIntent {
    HostIntent::SetKey {
        name: name.into(),
        public_key: NEW_KEY.into(),
    }
}

fn remove(name: &str) -> HostIntent {
    HostIntent::Remove { name: name.into() }
}

/// What Nix should evaluate the edited file to, given what it evaluated the original to.
fn expected(before: &Value, intent: &HostIntent) -> Value {
    let mut v = before.clone();
    let map = v.as_object_mut().unwrap();
    match intent {
        HostIntent::Add(h) => {
            map.insert(
                h.name.clone(),
                json!({
                    "hostname": h.hostname.clone().unwrap_or_else(|| h.name.clone()),
                    "sshAlias": h.ssh_alias.clone().unwrap_or_else(|| h.name.clone()),
                    "publicKey": h.public_key,
                }),
            );
        }
        HostIntent::SetKey { name, public_key } => {
            map.get_mut(name).unwrap()["publicKey"] = json!(public_key);
        }
        HostIntent::Remove { name } => {
            map.remove(name).unwrap();
        }
    }
    v
}

/// The diff snapshots show (the one diff helper, with this file's context and headers).
fn unified_diff(before: &str, after: &str) -> String {
    crate::support::unified_diff(before, after, 2, ("before", "after"))
}

fn project_template() -> EntryTemplate {
    let path = crate::support::repo().join("hosts-template/hosts-entry.nix");
    EntryTemplate {
        text: std::fs::read_to_string(path).unwrap(),
    }
}

/// The acceptance check for one edit of one fixture.
#[track_caller]
fn check(fixture: &str, intent: HostIntent, template: Option<&EntryTemplate>, snapshot: &str) {
    let before = read(fixture);
    let out = edit_hosts(&before, &intent, template)
        .unwrap_or_else(|e| panic!("{fixture}: {intent:?} failed: {e}"));
    assert!(out.change.is_change(), "{fixture}: {:?}", out.change);

    // Real Nix parses the result and evaluates it to what was asked.
    nix_instantiate(&["--parse"], &out.text)
        .unwrap_or_else(|e| panic!("{fixture}: result does not parse:\n{}\n{e}", out.text));
    assert_eq!(
        eval(&out.text),
        expected(&eval(&before), &intent),
        "{fixture}"
    );

    // Every other byte is kept: one edit, and the text around it is the original's.
    assert_eq!(out.edits.len(), 1, "{fixture}: {:?}", out.edits);
    let e = &out.edits[0];
    assert_eq!(&out.text[..e.start], &before[..e.start]);
    assert_eq!(&out.text[e.start + e.insert.len()..], &before[e.end..]);
    assert_eq!(&out.text[e.start..e.start + e.insert.len()], e.insert);
    match &intent {
        // An insertion replaces nothing but whitespace.
        HostIntent::Add(_) => assert!(before[e.start..e.end].trim().is_empty()),
        // set-key replaces exactly one string literal, and the new one holds the new key.
        HostIntent::SetKey { .. } => {
            let old = &before[e.start..e.end];
            assert!(
                old.starts_with('"') && old.ends_with('"') && !old.contains('\n'),
                "{old}"
            );
            assert_eq!(e.insert, format!("\"{NEW_KEY}\""));
        }
        // A removal only deletes, and what it deletes holds the entry.
        HostIntent::Remove { name } => {
            assert!(e.insert.is_empty());
            assert!(
                before[e.start..e.end].contains(&format!("{name} = {{"))
                    || before[e.start..e.end].contains(&format!("\"{name}\" = {{"))
            );
        }
    }
    // CRLF files stay CRLF: no bare LF is introduced.
    if before.contains("\r\n") {
        assert_eq!(
            out.text.matches('\n').count(),
            out.text.matches("\r\n").count()
        );
    }

    // Apply twice = apply once.
    match edit_hosts(&out.text, &intent, template) {
        Ok(again) => {
            assert!(
                !again.change.is_change(),
                "{fixture}: second run changed {:?}",
                again.change
            );
            assert_eq!(again.text, out.text);
        }
        Err(HostsEditError::NotFound { .. }) if matches!(intent, HostIntent::Remove { .. }) => {}
        Err(e) => panic!("{fixture}: second run failed: {e}"),
    }

    let summary = out.change.summary();
    insta::assert_snapshot!(
        snapshot,
        format!(
            "{summary}\n\n{}",
            unified_diff(&before, &out.text).replace('\r', "␍")
        )
    );
}

#[test]
fn seed_add() {
    check("seed.nix", add("test-automation"), None, "seed_add");
}

#[test]
fn seed_add_from_the_project_template() {
    check(
        "seed.nix",
        add("test-automation"),
        Some(&project_template()),
        "seed_add_template",
    );
}

#[test]
fn seed_set_key() {
    check("seed.nix", set_key("doc1"), None, "seed_set_key");
}

#[test]
fn seed_remove_first_and_last() {
    check("seed.nix", remove("doc1"), None, "seed_remove_doc1");
    check("seed.nix", remove("igpu"), None, "seed_remove_igpu");
}

#[test]
fn no_final_newline() {
    check(
        "seed-no-final-newline.nix",
        add("test-automation"),
        None,
        "nonl_add",
    );
    check(
        "seed-no-final-newline.nix",
        remove("igpu"),
        None,
        "nonl_remove",
    );
    check(
        "seed-no-final-newline.nix",
        set_key("igpu"),
        None,
        "nonl_set_key",
    );
}

#[test]
fn crlf() {
    check("seed-crlf.nix", add("test-automation"), None, "crlf_add");
    check("seed-crlf.nix", set_key("doc1"), None, "crlf_set_key");
    check("seed-crlf.nix", remove("doc1"), None, "crlf_remove");
}

#[test]
fn rec_with_comments_and_non_host_entries() {
    check("rec-comments.nix", add("test-automation"), None, "rec_add");
    check("rec-comments.nix", remove("igpu"), None, "rec_remove_igpu");
    check("rec-comments.nix", set_key("igpu"), None, "rec_set_key");
}

#[test]
fn four_space_indentation_and_host_after_underscore_entries() {
    check(
        "tabs-four-spaces.nix",
        add("test-automation"),
        None,
        "four_add",
    );
    check("tabs-four-spaces.nix", remove("igpu"), None, "four_remove");
}

#[test]
fn empty_set() {
    check("empty.nix", add("test-automation"), None, "empty_add");
}

#[test]
fn quoted_names() {
    check("quoted-names.nix", add("10.0.0.9"), None, "quoted_add");
    check("quoted-names.nix", remove("web.lan"), None, "quoted_remove");
}

#[test]
fn special_characters_in_values_are_escaped() {
    let before = read("seed.nix");
    let intent = HostIntent::Add(NewHost {
        name: "odd".into(),
        public_key: NEW_KEY.into(),
        hostname: Some("odd\"${builtins.abort \"x\"}\\".into()),
        ssh_alias: Some("tab\there$".into()),
        vmid: None,
    });
    let out = edit_hosts(&before, &intent, Some(&project_template())).unwrap();
    assert_eq!(eval(&out.text), expected(&eval(&before), &intent));
}

/// A report as the CLI prints it, without colour.
fn rendered(r: miette::Report) -> String {
    let mut out = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .render_report(&mut out, r.as_ref())
        .unwrap();
    out
}

/// Real-world files: each is either edited correctly or refused with a clear error; the
/// outcome of each is snapshotted.
#[test]
fn real_world_files_edit_or_refuse() {
    let dir = crate::support::repo().join("tests/fixtures/real-world/hosts");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 6);
    let mut report = String::new();
    for name in names {
        let before = std::fs::read_to_string(dir.join(&name)).unwrap();
        let upstream_ok = nix_instantiate(&["--parse"], &before).is_ok();
        for intent in [add("newhost"), remove("newhost")] {
            let verb = match intent {
                HostIntent::Add(_) => "add",
                _ => "remove",
            };
            match edit_hosts(&before, &intent, None) {
                Ok(out) => {
                    assert!(upstream_ok, "{name}: edited a file nix cannot parse");
                    nix_instantiate(&["--parse"], &out.text).unwrap();
                    assert_eq!(eval(&out.text), expected(&eval(&before), &intent));
                    report.push_str(&format!(
                        "{name}: {verb}: edited: {}\n",
                        out.change.summary()
                    ));
                }
                // Shown as the CLI shows it: the refusal points into the file.
                Err(e) => report.push_str(&format!(
                    "{name}: {verb}: refused:\n{}\n",
                    rendered(vmctl::edit::refusal::refusal(e, &name, &before))
                )),
            }
        }
    }
    insta::assert_snapshot!("real_world", report);
}

#[test]
fn identical_add_changes_nothing_and_other_key_names_set_key() {
    let before = read("seed.nix");
    let doc1_key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMlLRoQ0HoeSXd9Rbb9WB51hQUGkEPeKZvmAsJFjg/wH";
    let same = HostIntent::Add(NewHost {
        name: "doc1".into(),
        public_key: doc1_key.into(),
        hostname: None,
        ssh_alias: Some("doc1".into()),
        vmid: Some(104),
    });
    let out = edit_hosts(&before, &same, None).unwrap();
    assert!(matches!(out.change, Change::Unchanged { .. }));
    assert_eq!(out.text, before);
    assert!(out.edits.is_empty());
    let err = edit_hosts(&before, &add("doc1"), None).unwrap_err();
    assert!(matches!(err, HostsEditError::KeyDiffers { .. }));
    assert!(err.to_string().contains("vmctl hosts set-key doc1"));
}

/// The one string-literal helper, checked against real Nix: 400 pseudo-random strings made of
/// the characters Nix treats specially (and some that it does not) evaluate to themselves.
#[test]
fn string_literals_evaluate_to_their_value_in_real_nix() {
    const ALPHABET: &[&str] = &[
        "\\", "\"", "$", "{", "}", "${", "$${", "''", "'", "\n", "\r", "\t", "a", " ", "é", "✓",
        "#", "/*", "*/", ";",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let values: Vec<String> = (0..400)
        .map(|_| {
            let len = (next() % 12) as usize;
            (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect()
        })
        .collect();
    let list = values
        .iter()
        .map(|v| vmctl::edit::nix::string_literal(v))
        .collect::<Vec<_>>()
        .join("\n");
    let got = eval(&format!("[\n{list}\n]"));
    assert_eq!(got, json!(values));
}
