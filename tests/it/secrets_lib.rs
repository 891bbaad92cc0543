//! Library-level tests of `vmctl::secrets` on the sops fixtures (files written by real sops).

use vmctl::secrets::{
    self, check, config::SopsConfig, mac, rekey, Format, Identities, SecretsError, SopsFile,
};

use crate::support::secrets::{ADMIN, FIX, NEWVM, OLDHOST};

fn read(rel: &str) -> String {
    std::fs::read_to_string(format!("{FIX}/{rel}")).unwrap()
}

fn ids(files: &[&str]) -> Identities {
    let mut ids = Identities::new();
    for f in files {
        ids.add_text(&read(f), f).unwrap();
    }
    ids
}

fn rule(recipients: &[&str]) -> SopsConfig {
    SopsConfig::parse(&format!(
        "creation_rules:\n  - age: {}\n",
        recipients.join(",")
    ))
    .unwrap()
}

#[test]
fn sops_nix_yaml_opens_with_either_identity_and_its_mac_verifies() {
    let f = SopsFile::parse(Format::Yaml, &read("sops-nix/secrets.yaml")).unwrap();
    assert_eq!(f.metadata.key_groups.len(), 1);
    assert_eq!(f.metadata.key_groups[0].keys.age, vec![ADMIN, OLDHOST]);
    assert_eq!(f.metadata.key_groups[0].keys.pgp.len(), 2);
    for id in ["sops-nix/age-keys.txt", "sops-nix/ssh-ed25519-key"] {
        let key = rekey::open(&f, &ids(&[id])).unwrap();
        mac::verify(&f, &key).unwrap();
    }
    let err = rekey::open(&f, &ids(&["ssh-to-age/id_ed25519"])).unwrap_err();
    assert!(matches!(err, SecretsError::NoIdentity { .. }), "{err}");
}

#[test]
fn json_with_numbers_bools_and_unencrypted_values_verifies() {
    let f = SopsFile::parse(Format::Json, &read("generated/age2.sops.json")).unwrap();
    let key = rekey::open(&f, &ids(&["sops-nix/age-keys.txt"])).unwrap();
    mac::verify(&f, &key).unwrap();
    assert!(!format!("{key:?}").contains(char::is_numeric));
}

#[test]
fn updatekeys_output_opens_with_the_ssh_to_age_identity() {
    let f = SopsFile::parse(
        Format::Yaml,
        &read("generated/updatekeys-added-newvm.sops.yaml"),
    )
    .unwrap();
    let key = rekey::open(&f, &ids(&["ssh-to-age/id_ed25519"])).unwrap();
    mac::verify(&f, &key).unwrap();
}

#[test]
fn tampered_mac_and_tampered_value_are_refused() {
    let text = read("generated/age2.sops.json");
    let tampered = text.replacen("data:NFzl", "data:NFzm", 1);
    assert_ne!(tampered, text);
    let f = SopsFile::parse(Format::Json, &tampered).unwrap();
    let key = rekey::open(&f, &ids(&["sops-nix/age-keys.txt"])).unwrap();
    assert_eq!(
        mac::verify(&f, &key).unwrap_err(),
        SecretsError::MacMismatch
    );
    // A changed unencrypted value is caught by the MAC too.
    let f = SopsFile::parse(Format::Json, &text.replace("\"clear\"", "\"clean\"")).unwrap();
    assert_eq!(
        mac::verify(&f, &key).unwrap_err(),
        SecretsError::MacMismatch
    );
}

#[test]
fn every_truncation_of_an_age_file_is_refused() {
    let ids = ids(&["sops-nix/age-keys.txt"]);
    let cfg = rule(&[ADMIN, OLDHOST, NEWVM]);
    for (rel, fmt) in [
        ("generated/updatekeys-added-newvm.sops.yaml", Format::Yaml),
        ("generated/age2.sops.json", Format::Json),
    ] {
        let text = read(rel);
        // Remove OLDHOST so that a re-key has work to do, then cut the file everywhere.
        let cfg2 = rule(&[ADMIN, NEWVM]);
        let full = SopsFile::parse(fmt, &text).unwrap();
        assert!(
            rekey::rekey_native(&full, &cfg2.rules[0], &ids).is_ok(),
            "{rel}"
        );
        for cut in (1..text.len() - 1).step_by(13) {
            let r = SopsFile::parse(fmt, &text[..cut])
                .and_then(|f| rekey::rekey_native(&f, &cfg.rules[0], &ids))
                .and_then(|_| {
                    let f = SopsFile::parse(fmt, &text[..cut])?;
                    rekey::rekey_native(&f, &cfg2.rules[0], &ids)
                });
            // A damaged file, and nothing else: the identities are right.
            assert!(
                matches!(
                    r,
                    Err(SecretsError::Syntax { .. }
                        | SecretsError::NotSops
                        | SecretsError::Metadata(_)
                        | SecretsError::UnsupportedLayout(_)
                        | SecretsError::DataKey(_)
                        | SecretsError::Value { .. }
                        | SecretsError::MacMismatch)
                ),
                "{rel} cut at {cut}: {r:?}"
            );
        }
    }
}

#[test]
fn truncated_and_plain_files_are_clear_errors() {
    let err = SopsFile::parse(Format::Json, &read("generated/age2.sops.json")[..500]).unwrap_err();
    assert!(matches!(err, SecretsError::Syntax { .. }), "{err}");
    assert_eq!(
        SopsFile::parse(Format::Json, &read("generated/plain.json")).unwrap_err(),
        SecretsError::NotSops
    );
}

#[test]
fn native_rekey_of_json_adds_only_the_new_entry() {
    let text = read("generated/age2.sops.json");
    let f = SopsFile::parse(Format::Json, &text).unwrap();
    let cfg = rule(&[ADMIN, OLDHOST, NEWVM]);
    let r = cfg.rule_for("x.json").unwrap();
    assert_eq!(rekey::route(&f, r), rekey::Route::Native);
    let out = rekey::rekey_native(&f, r, &ids(&["sops-nix/age-keys.txt"])).unwrap();
    assert_eq!(out.added, vec![NEWVM]);
    assert!(out.removed.is_empty());
    // Everything up to the end of the last old entry and everything after the new one is
    // byte-identical.
    let old_end = text.find("\n\t\t\t}\n\t\t],").unwrap();
    assert_eq!(&out.text[..old_end], &text[..old_end]);
    let tail = &text[text.find("\t\t],\n\t\t\"lastmodified\"").unwrap()..];
    assert!(out.text.ends_with(tail));
    let g = SopsFile::parse(Format::Json, &out.text).unwrap();
    let key = rekey::open(&g, &ids(&["ssh-to-age/id_ed25519"])).unwrap();
    mac::verify(&g, &key).unwrap();
}

#[test]
fn native_rekey_of_yaml_removes_an_entry() {
    let text = read("generated/updatekeys-added-newvm.sops.yaml");
    let f = SopsFile::parse(Format::Yaml, &text).unwrap();
    let cfg = rule(&[ADMIN, NEWVM]);
    let out = rekey::rekey_native(&f, &cfg.rules[0], &ids(&["sops-nix/age-keys.txt"])).unwrap();
    assert_eq!(out.removed, vec![OLDHOST]);
    assert!(out.added.is_empty());
    let g = SopsFile::parse(Format::Yaml, &out.text).unwrap();
    assert_eq!(g.metadata.key_groups[0].keys.age, vec![ADMIN, NEWVM]);
    assert!(matches!(
        rekey::open(&g, &ids(&["sops-nix/ssh-ed25519-key"])),
        Err(SecretsError::NoIdentity { .. })
    ));
    // Exactly the removed entry's lines disappear.
    let start = text
        .find(&format!("        - recipient: {OLDHOST}"))
        .unwrap();
    let end = text.find(&format!("        - recipient: {NEWVM}")).unwrap();
    assert_eq!(out.text, format!("{}{}", &text[..start], &text[end..]));
}

#[test]
fn pgp_and_shamir_files_route_to_sops_and_check_reports_them() {
    let yaml = SopsFile::parse(Format::Yaml, &read("sops-nix/secrets.yaml")).unwrap();
    let cfg = rule(&[ADMIN, OLDHOST]);
    let r = &cfg.rules[0];
    assert!(matches!(rekey::route(&yaml, r), rekey::Route::Sops(reason) if reason.contains("pgp")));
    let stale = check::check_file("secrets.yaml", &yaml, r).unwrap();
    assert_eq!(stale.changes[0].removed.len(), 2);
    assert!(stale.changes[0].added.is_empty());
    let shamir = SopsFile::parse(Format::Yaml, &read("generated/shamir2of2.sops.yaml")).unwrap();
    assert!(matches!(rekey::route(&shamir, r), rekey::Route::Sops(_)));
    for (rel, fmt) in [
        ("sops-nix/secrets.env", Format::Dotenv),
        ("sops-nix/secrets.ini", Format::Ini),
        ("sops-nix/secrets.bin", Format::Binary),
        ("sops-repo/example.json", Format::Json),
        ("sops-repo/example.yaml", Format::Yaml),
    ] {
        let f = SopsFile::parse(fmt, &read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert!(!f.metadata.key_groups[0].keys.pgp.is_empty(), "{rel}");
        assert!(
            matches!(rekey::route(&f, r), rekey::Route::Sops(_)),
            "{rel}"
        );
    }
    let up_to_date = SopsFile::parse(Format::Json, &read("generated/age2.sops.json")).unwrap();
    assert!(check::check_file("x", &up_to_date, &rule(&[OLDHOST, ADMIN]).rules[0]).is_none());
    let _ = secrets::DataKey::from_bytes(&[0; 32]).unwrap();
}

/// Every target recipient set, on every layout: the re-keyed file parses, keeps its data and
/// MAC, lists exactly the target recipients and opens with each target identity.
#[test]
fn every_recipient_subset_on_every_layout() {
    const MOCK: &str = "age1lzd99uklcjnc0e7d860axevet2cz99ce9pq6tzuzd05l5nr28ams36nvun";
    let all = [ADMIN, OLDHOST, NEWVM, MOCK];
    let key_of = |r: &str| match r {
        ADMIN => "sops-nix/age-keys.txt",
        OLDHOST => "sops-nix/ssh-ed25519-key",
        NEWVM => "ssh-to-age/id_ed25519",
        _ => "sops-repo/age-test-keys.txt",
    };
    let opener = ids(&["sops-nix/age-keys.txt"]);
    for (rel, fmt) in [
        ("generated/age2.sops.json", Format::Json),
        ("generated/updatekeys-added-newvm.sops.yaml", Format::Yaml),
        ("generated/age2.sops.env", Format::Dotenv),
        ("generated/age2.sops.bin", Format::Binary),
    ] {
        let text = read(rel);
        let f = SopsFile::parse(fmt, &text).unwrap();
        for mask in 1u32..16 {
            let target: Vec<&str> = (0..4)
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| all[i])
                .collect();
            let cfg = rule(&target);
            let r = &cfg.rules[0];
            if rekey::diff_key_groups(&f.metadata.key_id_groups(), &r.key_groups).is_empty() {
                continue;
            }
            let out = rekey::rekey_native(&f, r, &opener)
                .unwrap_or_else(|e| panic!("{rel} {target:?}: {e}"));
            let g = SopsFile::parse(fmt, &out.text).unwrap();
            let mut got = g.metadata.key_groups[0].keys.age.clone();
            got.sort();
            let mut want: Vec<String> = target.iter().map(|s| s.to_string()).collect();
            want.sort();
            assert_eq!(got, want, "{rel}");
            assert_eq!(g.leaves, f.leaves);
            assert_eq!(g.metadata.lastmodified, f.metadata.lastmodified);
            assert_eq!(g.metadata.mac, f.metadata.mac);
            for t in &target {
                let key = rekey::open(&g, &ids(&[key_of(t)])).unwrap();
                mac::verify(&g, &key).unwrap();
            }
            for gone in all.iter().filter(|a| !target.contains(a)) {
                let refused = rekey::open(&g, &ids(&[key_of(gone)]));
                assert!(
                    matches!(refused, Err(SecretsError::NoIdentity { .. })),
                    "{rel}: {gone} should find no recipient of its own: {refused:?}"
                );
            }
        }
    }
}
