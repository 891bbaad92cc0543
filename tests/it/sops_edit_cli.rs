//! `vmctl sops` end to end on a copy of the demo fleet: output, writes, refusals that leave
//! the file untouched, dry runs, JSON.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::{copy_dir, repo, vmctl_in};

const NEW_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOHz+U0YtjINc54dZiJNclfmEFifF7RXCFlNlTbuZBji joerg@turingmachine";
const NEW: &str = "age17044m9wgakla6pzftf4srtl3h5mcsr85jysgt5fg23zpnta8sfdqhzn452";

/// A temp copy of the demo fleet (definitions, hosts.nix, hosts/, .sops.yaml).
fn demo() -> (tempfile::TempDir, PathBuf) {
    let repo = repo();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("fleet");
    copy_dir(&repo.join("vms"), &root.join("vms"));
    copy_dir(&repo.join("hosts"), &root.join("hosts"));
    std::fs::copy(repo.join("hosts.nix"), root.join("hosts.nix")).unwrap();
    std::fs::copy(repo.join(".sops.yaml"), root.join(".sops.yaml")).unwrap();
    (dir, root)
}

fn show(out: &Output, root: &Path) -> String {
    let s = format!(
        "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    s.replace(&root.display().to_string(), "[FLEET]")
}

#[test]
fn add_recipient_uses_hosts_nix_and_writes_the_file() {
    let (_tmp, root) = demo();
    let out = vmctl_in(
        &root,
        &["sops", "add-recipient", "test-automation", NEW_KEY],
    );
    insta::assert_snapshot!("cli_add_recipient", show(&out, &root));
    let text = std::fs::read_to_string(root.join(".sops.yaml")).unwrap();
    assert!(text.contains(&format!("- &test-automation {NEW} # test-automation\n")));
    // Twice equals once, and says so.
    let again = vmctl_in(&root, &["sops", "add-recipient", "test-automation", NEW]);
    assert!(String::from_utf8_lossy(&again.stdout).starts_with("nothing to do"));
    assert_eq!(
        std::fs::read_to_string(root.join(".sops.yaml")).unwrap(),
        text
    );
}

#[test]
fn the_recipient_defaults_to_the_hosts_nix_key() {
    let (_tmp, root) = demo();
    // Drop igpu from the file, then add it back from hosts.nix alone.
    let out = vmctl_in(&root, &["sops", "remove-recipient", "igpu"]);
    assert!(out.status.success(), "{}", show(&out, &root));
    // The removed host keeps the data keys it already has: the command says so and names
    // the command that replaces them.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("igpu still holds the old data key") && err.contains("`vmctl secrets rotate`"),
        "{err}"
    );
    let out = vmctl_in(
        &root,
        &[
            "sops",
            "add-recipient",
            "igpu",
            "--rule",
            "secrets/[^/]+\\.yaml$",
            "--rule",
            "secrets/hosts/igpu/.*",
        ],
    );
    assert!(out.status.success(), "{}", show(&out, &root));
    let text = std::fs::read_to_string(root.join(".sops.yaml")).unwrap();
    assert!(
        text.contains(
            "- &igpu age1zquh934h6es68kaecpcmzasax84nhzm0qdgq8fy8pr0nx96r0eyqkl42up # igpu\n"
        ),
        "{text}"
    );
    assert_eq!(text.matches("- *igpu\n").count(), 1, "{text}");
    let out = vmctl_in(&root, &["sops", "add-recipient", "nohost"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no publicKey for `nohost`"));
}

#[test]
fn refusals_exit_1_and_leave_the_file_untouched() {
    let (_tmp, root) = demo();
    let before = std::fs::read(root.join(".sops.yaml")).unwrap();
    for args in [
        vec!["sops", "add-recipient", "x", NEW, "--rule", "nope/.*"],
        vec!["sops", "add-recipient", "x", "age1notarecipient"],
        vec!["sops", "remove-recipient", "nobody"],
        vec![
            "sops",
            "add-host-rule",
            "doc1",
            "--path-regex",
            "secrets/hosts/doc1/.*",
            "--recipient",
            NEW,
        ],
    ] {
        let out = vmctl_in(&root, &args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            show(&out, &root)
        );
        assert_eq!(
            std::fs::read(root.join(".sops.yaml")).unwrap(),
            before,
            "{args:?}"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = vmctl_in(&root, &["sops", "remove-recipient", "nobody"]);
    insta::assert_snapshot!("cli_remove_refused", show(&out, &root));
}

#[test]
fn dry_run_prints_the_diff_and_writes_nothing() {
    let (_tmp, root) = demo();
    let before = std::fs::read(root.join(".sops.yaml")).unwrap();
    let out = vmctl_in(
        &root,
        &[
            "sops",
            "add-host-rule",
            "test-automation",
            "--recipient",
            NEW,
            "--dry-run",
        ],
    );
    insta::assert_snapshot!("cli_add_host_rule_dry_run", show(&out, &root));
    assert_eq!(std::fs::read(root.join(".sops.yaml")).unwrap(), before);
}

#[test]
fn json_output_and_remove_by_comment() {
    let (_tmp, root) = demo();
    let out = vmctl_in(&root, &["sops", "remove-recipient", "igpu", "--json"]);
    assert!(out.status.success(), "{}", show(&out, &root));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["written"], true);
    assert_eq!(v["rules"].as_array().unwrap().len(), 2);
    assert_eq!(v["rotate"], "vmctl secrets rotate");
    let text = std::fs::read_to_string(root.join(".sops.yaml")).unwrap();
    assert!(!text.contains("# igpu"));
}

#[test]
fn outside_a_fleet_config_flag_works_and_notes_the_missing_host_names() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("custom.yaml");
    std::fs::write(
        &cfg,
        format!("creation_rules:\n  - path_regex: s/.*\n    age: {NEW}\n"),
    )
    .unwrap();
    let out = vmctl_in(
        dir.path(),
        &[
            "sops",
            "add-recipient",
            "b",
            "age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs",
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", show(&out, dir.path()));
    assert!(String::from_utf8_lossy(&out.stderr).contains("host names of hosts.nix are unknown"));
    assert!(std::fs::read_to_string(&cfg)
        .unwrap()
        .contains(&format!("age: {NEW},age1a8pk4")));
}

#[test]
fn every_real_world_file_is_written_as_the_library_says_or_left_untouched() {
    let dir = crate::support::fixture("real-world/sops");
    let tmp = tempfile::tempdir().unwrap();
    let (mut wrote, mut refused) = (0, 0);
    for e in std::fs::read_dir(dir).unwrap() {
        let src = e.unwrap().path();
        let original = std::fs::read(&src).unwrap();
        let cfg = tmp.path().join(src.file_name().unwrap());
        std::fs::write(&cfg, &original).unwrap();
        let out = vmctl_in(
            tmp.path(),
            &[
                "sops",
                "add-recipient",
                "newvm",
                NEW,
                "--all",
                "--config",
                cfg.to_str().unwrap(),
            ],
        );
        let expected = vmctl::edit::sops::add_recipient(
            std::str::from_utf8(&original).unwrap(),
            &vmctl::edit::sops::AddRecipient {
                name: "newvm",
                recipient: NEW,
                rules: &[],
                all: true,
                hosts: &[],
            },
        );
        match expected {
            Ok(edit) => {
                assert!(out.status.success(), "{}", show(&out, tmp.path()));
                assert_eq!(std::fs::read_to_string(&cfg).unwrap(), edit.new_text);
                wrote += 1;
            }
            Err(e) => {
                assert_eq!(out.status.code(), Some(1));
                assert!(String::from_utf8_lossy(&out.stderr).contains("the file was not changed"));
                assert_eq!(std::fs::read(&cfg).unwrap(), original, "{e}");
                refused += 1;
            }
        }
    }
    assert_eq!(wrote + refused, 10);
    assert!(refused >= 1, "0xdsqr's only rule is another host's");
}

/// The demo fleet with a second general rule (`secrets/web/.*`), so two rules could take a
/// new host.
fn two_rules() -> (tempfile::TempDir, PathBuf) {
    let (tmp, root) = demo();
    let mut text = std::fs::read_to_string(root.join(".sops.yaml")).unwrap();
    text.push_str(
        "  - path_regex: secrets/web/.*\n    key_groups:\n      - age:\n          - age18ezvkljgmxh28nkhs5j5f845v5nqur4gqsmfta30wuqqwszega7sy7rc0d # admin\n",
    );
    std::fs::write(root.join(".sops.yaml"), text).unwrap();
    (tmp, root)
}

fn rules_holding(root: &Path, recipient: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root.join(".sops.yaml")).unwrap();
    vmctl::secrets::SopsConfig::parse(&text)
        .unwrap()
        .rules
        .iter()
        .filter(|r| r.key_groups[0].age.iter().any(|a| a == recipient))
        .map(|r| r.path_regex.clone().unwrap_or_default())
        .collect()
}

#[test]
fn several_candidate_rules_need_a_choice() {
    let (_tmp, root) = two_rules();
    let before = std::fs::read(root.join(".sops.yaml")).unwrap();
    let out = vmctl_in(&root, &["sops", "add-recipient", "test-automation", NEW]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out, &root));
    let err = String::from_utf8_lossy(&out.stderr)
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for want in [
        "more than one creation rule could take `test-automation`",
        "`secrets/web/.*`",
        "--rule",
        "--all",
        "sopsRules = [ \"secrets/[^/]+\\\\.yaml$\" ];",
        "the file was not changed",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    assert_eq!(std::fs::read(root.join(".sops.yaml")).unwrap(), before);

    // --rule picks exactly one.
    let out = vmctl_in(
        &root,
        &[
            "sops",
            "add-recipient",
            "test-automation",
            NEW,
            "--rule",
            "secrets/web/.*",
        ],
    );
    assert!(out.status.success(), "{}", show(&out, &root));
    assert_eq!(rules_holding(&root, NEW), ["secrets/web/.*"]);
    // A re-run without a choice keeps the host where it is (provisioning re-runs).
    let out = vmctl_in(&root, &["sops", "add-recipient", "test-automation", NEW]);
    assert!(out.status.success(), "{}", show(&out, &root));
    assert_eq!(rules_holding(&root, NEW), ["secrets/web/.*"]);
}

#[test]
fn all_takes_every_candidate_and_never_another_hosts_rule() {
    let (_tmp, root) = two_rules();
    let out = vmctl_in(
        &root,
        &["sops", "add-recipient", "test-automation", NEW, "--all"],
    );
    assert!(out.status.success(), "{}", show(&out, &root));
    assert_eq!(
        rules_holding(&root, NEW),
        ["secrets/[^/]+\\.yaml$", "secrets/web/.*"]
    );
    // --rule and --all exclude each other.
    let out = vmctl_in(
        &root,
        &[
            "sops",
            "add-recipient",
            "x",
            NEW,
            "--all",
            "--rule",
            "secrets/web/.*",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out, &root));
}

#[test]
fn definitions_nix_records_the_choice_per_vm() {
    let (_tmp, root) = two_rules();
    let defs = root.join("vms/definitions.nix");
    let text = std::fs::read_to_string(&defs).unwrap().replacen(
        "      nixosConfig = \"test-automation\";\n",
        "      nixosConfig = \"test-automation\";\n      sopsRules = [ \"secrets/web/.*\" ];\n",
        1,
    );
    assert!(text.contains("sopsRules"), "the demo VM changed shape");
    std::fs::write(&defs, text).unwrap();
    // vmlint knows the field.
    let lint = crate::support::vmlint_cmd()
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&lint.stdout).contains("sopsRules")
            && !String::from_utf8_lossy(&lint.stderr).contains("sopsRules"),
        "{}",
        show(&lint, &root)
    );
    let out = vmctl_in(&root, &["sops", "add-recipient", "test-automation", NEW]);
    assert!(out.status.success(), "{}", show(&out, &root));
    assert!(String::from_utf8_lossy(&out.stderr).contains("using `sopsRules`"));
    assert_eq!(rules_holding(&root, NEW), ["secrets/web/.*"]);
}

#[test]
fn one_candidate_rule_needs_no_choice() {
    // The demo file: one general rule and doc1's own rule.
    let (_tmp, root) = demo();
    let out = vmctl_in(&root, &["sops", "add-recipient", "test-automation", NEW]);
    assert!(out.status.success(), "{}", show(&out, &root));
    assert_eq!(rules_holding(&root, NEW), ["secrets/[^/]+\\.yaml$"]);
}

#[test]
fn a_recipient_another_host_has_is_refused_and_the_file_unchanged() {
    let (_tmp, root) = demo();
    let before = std::fs::read(root.join(".sops.yaml")).unwrap();
    // doc1's recipient, offered for another host.
    let doc1 = "age1u70sdpv5lzljxuja8cjwjhf3l64lm9prqh4wddzh36mqc6ct5cvsuyshd5";
    let out = vmctl_in(&root, &["sops", "add-recipient", "newhost", doc1]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out, &root));
    let err = String::from_utf8_lossy(&out.stderr)
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(err.contains("already host `doc1`'s recipient"), "{err}");
    assert!(err.contains("the file was not changed"), "{err}");
    assert_eq!(std::fs::read(root.join(".sops.yaml")).unwrap(), before);
}
