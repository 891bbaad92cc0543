//! One model of `.sops.yaml`: every config fixture is read the same way by the checks
//! (`vmlint`), the editor (`vmctl sops …`) and re-keying (`exec::sops::load_config`).

use crate::support;

use std::path::{Path, PathBuf};

use vmctl::edit::sops::{add_recipient, AddRecipient};
use vmctl::exec::lint::{lint, NixFallback};
use vmctl::exec::sops::load_config;
use vmctl::secrets::sops_yaml::SopsModel;
use vmctl::secrets::SopsConfig;

/// A recipient none of the fixtures holds: ssh-to-age's test key, converted.
fn new_recipient() -> String {
    let line = std::fs::read_to_string(support::fixture("sops/ssh-to-age/id_ed25519.pub")).unwrap();
    vmctl::keys::PublicKey::parse(&line)
        .unwrap()
        .age_recipient()
        .unwrap()
}

/// Every `.sops.yaml` configuration among the fixtures (not the encrypted `*.sops.yaml`
/// secrets, which have no `creation_rules`).
fn configs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let real = support::fixture("real-world/sops");
    for e in std::fs::read_dir(&real).unwrap() {
        out.push(e.unwrap().path());
    }
    for e in std::fs::read_dir(support::fixture("lint")).unwrap() {
        let p = e.unwrap().path().join(".sops.yaml");
        if p.is_file() {
            out.push(p);
        }
    }
    out.push(support::fixture(
        "sops/generated/updatekeys-anchors.sops.yaml.config",
    ));
    out.push(support::repo().join(".sops.yaml"));
    out.retain(|p| p.is_file() && !p.to_string_lossy().ends_with(".md"));
    out.sort();
    assert!(out.len() >= 20, "fixtures went missing: {out:?}");
    out
}

/// Lints a fleet made of a minimal definitions.nix and `sops` as its `.sops.yaml`.
fn lint_codes(sops: &Path) -> Vec<&'static str> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("vms")).unwrap();
    std::fs::write(
        dir.path().join("vms/definitions.nix"),
        "{ proxmox = { host = \"pve.lan\"; node = \"pve\"; }; }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("hosts.nix"), "{ }\n").unwrap();
    std::fs::copy(sops, dir.path().join(".sops.yaml")).unwrap();
    let run = lint(&[], None, dir.path(), &NixFallback::Off).unwrap();
    run.diagnostics.iter().map(|d| d.code()).collect()
}

/// A rule as a comparable value: path_regex and every key group's keys.
fn rules(c: &SopsConfig) -> Vec<String> {
    c.rules
        .iter()
        .map(|r| format!("{:?} {:?}", r.path_regex, r.key_groups))
        .collect()
}

#[test]
fn checks_editor_and_rekey_read_every_fixture_the_same_way() {
    let new = new_recipient();
    let new = new.as_str();
    let mut editable = 0;
    for path in configs() {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let codes = lint_codes(&path);
        let rekey = load_config(&path);
        let edit = add_recipient(
            &text,
            &AddRecipient {
                name: "newhost",
                recipient: new,
                rules: &[],
                all: true,
                hosts: &[],
            },
        );
        let model = match SopsModel::parse(&text) {
            Ok(m) => m,
            Err(e) => {
                // sops cannot use it: all three refuse, and the linter says why with an error.
                assert!(
                    rekey.is_err(),
                    "{name}: re-keying accepted what sops rejects ({e})"
                );
                assert!(
                    edit.is_err(),
                    "{name}: the editor accepted what sops rejects ({e})"
                );
                assert!(
                    codes.iter().any(|c| c.starts_with("SP")),
                    "{name}: no SP diagnostic for {e}: {codes:?}"
                );
                continue;
            }
        };
        // Re-keying reads the very rules the model holds.
        let rekey = rekey.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(rules(&rekey.config), rules(&model.config), "{name}");
        match &model.view {
            Ok(view) => {
                editable += 1;
                assert!(!codes.contains(&"SP009"), "{name}: {codes:?}");
                // The editor's spans cover the same rules, with the same first-group recipients.
                assert_eq!(view.rules.len(), model.config.rules.len(), "{name}");
                for (v, c) in view.rules.iter().zip(&model.config.rules) {
                    let mut ours: Vec<&str> = v
                        .age
                        .as_ref()
                        .map(|l| l.recipients().collect())
                        .unwrap_or_default();
                    let mut theirs: Vec<&str> =
                        c.key_groups[0].age.iter().map(String::as_str).collect();
                    ours.sort_unstable();
                    ours.dedup();
                    theirs.sort_unstable();
                    assert_eq!(ours, theirs, "{name}: rule #{}", c.index + 1);
                }
                // What the editor writes, re-keying reads: the recipient is in the first group
                // of exactly the rules the editor says it changed.
                if let Ok(edit) = edit {
                    let after = SopsConfig::parse(&edit.new_text).unwrap();
                    for r in &after.rules {
                        let added = edit
                            .rules
                            .iter()
                            .any(|c| c.index == r.index && c.action == "added");
                        let before = model.config.rules[r.index].key_groups[0]
                            .age
                            .iter()
                            .any(|a| a == new);
                        assert_eq!(
                            r.key_groups[0].age.iter().any(|a| a == new),
                            added || before,
                            "{name}: rule #{}",
                            r.index + 1
                        );
                    }
                }
            }
            Err(why) => {
                // Outside what vmctl edits: the editor refuses and the linter says so.
                assert!(
                    edit.is_err(),
                    "{name}: the editor wrote a file it cannot read ({why})"
                );
                if model.config.rules.is_empty() {
                    assert!(
                        codes.contains(&"SP010") || codes.contains(&"SP006"),
                        "{name}: {codes:?}"
                    );
                } else {
                    assert!(codes.contains(&"SP009"), "{name}: {why}: {codes:?}");
                }
            }
        }
    }
    assert!(editable >= 10, "only {editable} fixtures are editable");
}

#[test]
fn a_view_that_disagrees_with_sops_is_not_used() {
    let new = new_recipient();
    // `merge:` folds another group's recipients into the first group: sops sees both, the
    // lossless view sees only the group's own `age:`. The file is then not editable.
    let text = format!(
        "creation_rules:\n  - path_regex: s/.*\n    key_groups:\n      - age:\n          - {new}\n        merge:\n          - age:\n              - age18ezvkljgmxh28nkhs5j5f845v5nqur4gqsmfta30wuqqwszega7sy7rc0d\n"
    );
    let model = SopsModel::parse(&text).unwrap();
    assert_eq!(model.config.rules[0].key_groups[0].age.len(), 2);
    let err = model.view.unwrap_err().to_string();
    assert!(err.contains("differs from sops"), "{err}");
}

#[test]
fn an_encrypted_secret_named_like_a_config_is_not_read_as_one() {
    // `NAME.sops.yaml` is a common name for encrypted secrets too; vmlint given one (a
    // pre-commit hook passes every changed file) must not report it as a broken config.
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("app.sops.yaml");
    std::fs::copy(
        support::fixture("sops/generated/shamir2of2.sops.yaml"),
        &secret,
    )
    .unwrap();
    let run = lint(&[secret], None, dir.path(), &NixFallback::Off).unwrap();
    let codes: Vec<&str> = run.diagnostics.iter().map(|d| d.code()).collect();
    assert!(codes.iter().all(|c| !c.starts_with("SP")), "{codes:?}");
}

#[test]
fn a_stray_document_marker_is_read_as_sops_reads_it() {
    // sops (go-yaml's Unmarshal) reads the first document only: a trailing `---` is no error
    // for it, so it is none for vmlint or re-keying either; the editor declines (SP009).
    let text = "creation_rules:\n  - path_regex: secrets/.*\n    age: age18ezvkljgmxh28nkhs5j5f845v5nqur4gqsmfta30wuqqwszega7sy7rc0d\n---\n";
    let model = SopsModel::parse(text).unwrap();
    assert_eq!(model.config.rules.len(), 1);
    assert!(model.view.is_err());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".sops.yaml");
    std::fs::write(&path, text).unwrap();
    assert_eq!(lint_codes(&path), ["SP009"]);
    assert_eq!(load_config(&path).unwrap().config.rules.len(), 1);
}
