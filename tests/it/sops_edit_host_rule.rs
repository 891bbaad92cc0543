//! add-host-rule: a rule for one host's own secrets, placed where sops will pick it, holding
//! the admins and the host; and the demo fleet's .sops.yaml agrees with its hosts.nix.

use crate::support::secrets::{ADMIN as B, NEWVM as NEW, NEWVM_KEY as NEW_IDENTITY, OLDHOST as A};
use crate::support::sops_oracle;

use crate::support::read_repo;

use vmctl::edit::sops::{add_host_rule, AddHostRule};
use vmctl::keys::PublicKey;
use vmctl::secrets::SopsConfig;

fn rule_for<'a>(name: &'a str, hosts: &'a [String]) -> AddHostRule<'a> {
    AddHostRule {
        name,
        recipient: NEW,
        path_regex: None,
        admins: None,
        hosts,
    }
}

/// The diff snapshots show (the one diff helper, with this file's context and headers).
fn unified(old: &str, new: &str) -> String {
    crate::support::unified_diff(old, new, 2, ("a/.sops.yaml", "b/.sops.yaml"))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// name -> age recipient of every `name = { … publicKey = "ssh-ed25519 …"; }` and of
/// `admin = "ssh-ed25519 …"` in the demo hosts.nix.
fn demo_recipients() -> Vec<(String, String)> {
    let text = read_repo("hosts.nix");
    let mut out = Vec::new();
    let mut current = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_suffix("= {").map(str::trim) {
            current = Some(name.to_string());
        }
        if let Some(start) = t.find("\"ssh-ed25519") {
            let key = t[start + 1..].split('"').next().unwrap();
            let r = PublicKey::parse(key).unwrap().age_recipient().unwrap();
            let name = if t.starts_with("admin") {
                "admin".to_string()
            } else {
                current.clone().unwrap()
            };
            out.push((name, r));
        }
    }
    out
}

#[test]
fn the_demo_sops_yaml_holds_the_recipients_derived_from_hosts_nix() {
    let r = demo_recipients();
    let get = |n: &str| r.iter().find(|(x, _)| x == n).unwrap().1.clone();
    assert_eq!(r.len(), 3, "admin, doc1, igpu: {r:?}");
    let config = SopsConfig::parse(&read_repo(".sops.yaml")).unwrap();
    let groups: Vec<(String, Vec<String>)> = config
        .rules
        .iter()
        .map(|rule| {
            (
                rule.path_regex.clone().unwrap(),
                sorted(rule.key_groups[0].age.clone()),
            )
        })
        .collect();
    assert_eq!(
        groups,
        vec![
            (
                "secrets/[^/]+\\.yaml$".to_string(),
                sorted(vec![get("admin"), get("doc1"), get("igpu")])
            ),
            (
                "secrets/hosts/doc1/.*".to_string(),
                sorted(vec![get("admin"), get("doc1")])
            ),
            (
                "secrets/hosts/igpu/.*".to_string(),
                sorted(vec![get("admin"), get("igpu")])
            ),
        ]
    );
    // Each inline recipient is commented with its owner's name.
    let text = read_repo(".sops.yaml");
    for (name, recipient) in &r {
        assert!(text.contains(&format!("{recipient} # {name}")), "{name}");
    }
}

#[test]
fn demo_host_rule_for_a_new_vm() {
    let text = read_repo(".sops.yaml");
    let hosts = vec!["doc1".to_string(), "igpu".to_string()];
    let edit = add_host_rule(&text, &rule_for("test-automation", &hosts)).unwrap();
    insta::assert_snapshot!("host_rule_demo", unified(&text, &edit.new_text));
    let again = add_host_rule(&edit.new_text, &rule_for("test-automation", &hosts)).unwrap();
    assert!(again.is_noop());
    let admin = demo_recipients()
        .into_iter()
        .find(|(n, _)| n == "admin")
        .unwrap()
        .1;
    let group = sops_oracle::sops_first_group(
        &edit.new_text,
        "secrets/hosts/test-automation/app.yaml",
        NEW,
        NEW_IDENTITY,
    );
    assert_eq!(sorted(group), sorted(vec![admin, NEW.to_string()]));
}

#[test]
fn the_rule_goes_before_a_catch_all_that_would_shadow_it() {
    let text = format!("creation_rules:\n  # everything else\n  - path_regex: secrets/.*\n    key_groups:\n    - age:\n      - {A} # admin\n      - {B} # other\n");
    let hosts = vec!["other".to_string()];
    let edit = add_host_rule(&text, &rule_for("newvm", &hosts)).unwrap();
    insta::assert_snapshot!(edit.new_text.replace(NEW, "{NEW}").replace(A, "{A}").replace(B, "{B}"), @r"
    creation_rules:
      - path_regex: secrets/hosts/newvm/.*
        key_groups:
        - age:
          - {A} # admin
          - {NEW} # newvm
      # everything else
      - path_regex: secrets/.*
        key_groups:
        - age:
          - {A} # admin
          - {B} # other
    ");
    let group = sops_oracle::sops_first_group(
        &edit.new_text,
        "secrets/hosts/newvm/x.yaml",
        NEW,
        NEW_IDENTITY,
    );
    assert_eq!(sorted(group), sorted(vec![A.to_string(), NEW.to_string()]));
}

#[test]
fn anchored_files_get_aliases_and_a_keys_entry() {
    let text = read_repo("tests/fixtures/real-world/sops/nix-community_infra.sops.yaml");
    let edit = add_host_rule(&text, &rule_for("build05", &[])).unwrap();
    insta::assert_snapshot!("host_rule_nix_community", unified(&text, &edit.new_text));
    let group = sops_oracle::sops_first_group(
        &edit.new_text,
        "secrets/hosts/build05/x.yaml",
        NEW,
        NEW_IDENTITY,
    );
    assert_eq!(group.len(), 3, "mic92, ryantm and the host: {group:?}");
}

#[test]
fn refusals() {
    let exists = format!("creation_rules:\n  - path_regex: secrets/hosts/newvm/.*\n    age: {A}\n");
    let err = add_host_rule(&exists, &rule_for("newvm", &[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("exists without the host") && err.contains("--rule"),
        "{err}"
    );
    let disjoint = format!(
        "creation_rules:\n  - path_regex: a/.*\n    age: {A}\n  - path_regex: b/.*\n    age: {B}\n"
    );
    let err = add_host_rule(&disjoint, &rule_for("newvm", &[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("--admin"), "{err}");
    let admins = vec![A.to_string()];
    let ok = add_host_rule(
        &disjoint,
        &AddHostRule {
            admins: Some(&admins),
            ..rule_for("newvm", &[])
        },
    )
    .unwrap();
    assert!(
        ok.new_text.ends_with(&format!(
            "      - age:\n          - {A}\n          - {NEW} # newvm\n"
        )),
        "{}",
        ok.new_text
    );
    let bad = AddHostRule {
        path_regex: Some("secrets/(["),
        ..rule_for("newvm", &[])
    };
    assert!(add_host_rule(&disjoint, &bad)
        .unwrap_err()
        .to_string()
        .contains("not a valid regex"));
}
