//! ssh-ed25519 → age conversion against the ssh-to-age vectors and the real `age` CLI.

use crate::support::key_fixture;

use std::process::Command;

use vmctl::keys::{self, KeyError, KeyLine, PrivateKey, PublicKey};

fn read(name: &str) -> String {
    std::fs::read_to_string(key_fixture(name)).unwrap()
}

/// Upstream names in the vectors file → our copies.
fn local_name(upstream: &str) -> String {
    upstream
        .replace("sops-nix/ssh-ed25519-key", "sops-nix-ssh-ed25519-key")
        .replace("ssh-to-age/", "")
}

#[test]
fn every_ssh_vector_matches() {
    let mut checked = 0;
    for line in read("ssh-to-age-vectors.txt").lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        let (source, recipient, identity) = (fields[0], fields[1], fields[2]);
        if !(source.starts_with("sops-nix/ssh") || source.starts_with("ssh-to-age/")) {
            continue; // native age keys: nothing to convert
        }
        let mut words = source.split_whitespace();
        let file = local_name(words.next().unwrap());
        let got = if let Some(host) = words.next() {
            // `keyscan.txt HOST ssh-ed25519`: the ed25519 line of that host.
            let text = read(&file);
            let key = text
                .lines()
                .filter_map(|l| match keys::parse_key_line(l).unwrap() {
                    KeyLine::Ed25519 { hosts, key } if hosts.as_deref() == Some(host) => Some(key),
                    _ => None,
                })
                .next()
                .unwrap_or_else(|| panic!("no ed25519 key for {host} in {file}"));
            key.age_recipient().unwrap()
        } else {
            let base = file.trim_end_matches("(.pub)").trim_end_matches(".pub");
            let public = PublicKey::parse(&read(&format!("{base}.pub"))).unwrap();
            if identity.starts_with("AGE-SECRET-KEY-1") {
                let private = PrivateKey::parse_openssh(&read(base)).unwrap();
                assert_eq!(private.age_identity(), identity, "identity of {base}");
                assert_eq!(private.public.key, public.key);
            }
            public.age_recipient().unwrap()
        };
        assert_eq!(got, recipient, "recipient of {source}");
        checked += 1;
    }
    assert_eq!(checked, 5, "every ssh vector of the file was checked");
}

#[test]
fn keyscan_output_yields_only_the_ed25519_keys() {
    let lines: Vec<KeyLine> = read("keyscan.txt")
        .lines()
        .map(|l| keys::parse_key_line(l).unwrap())
        .collect();
    let ed: Vec<_> = lines
        .iter()
        .filter(|l| matches!(l, KeyLine::Ed25519 { .. }))
        .collect();
    let other = lines
        .iter()
        .filter(|l| matches!(l, KeyLine::Other { kind, .. } if kind == "ssh-rsa"))
        .count();
    assert_eq!((ed.len(), other), (2, 2));
}

#[test]
fn an_encrypted_private_key_is_refused_with_advice() {
    let err = PrivateKey::parse_openssh(&read("id_ed25519_passphrase")).unwrap_err();
    assert_eq!(err, KeyError::Encrypted("aes256-ctr".into()));
    assert!(err.to_string().contains("ssh-keygen -p"));
}

#[test]
fn a_public_key_is_not_a_private_key() {
    assert_eq!(
        PrivateKey::parse_openssh(&read("id_ed25519.pub")).unwrap_err(),
        KeyError::NotOpenSshPrivateKey
    );
}

fn tool(name: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is not on PATH: run ./scripts/test.sh (or `apt-get install -y age openssh-client`)"
    );
    Command::new(name)
}

/// Encrypts with the real `age` CLI to `recipient`, then decrypts with the real `age` CLI using
/// only `identity`: the pair we derived must work together in age itself.
fn age_round_trip(recipient: &str, identity: &str) {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.txt");
    let enc = dir.path().join("plain.txt.age");
    let id_file = dir.path().join("identity.txt");
    std::fs::write(&plain, "the data key of a sops file\n").unwrap();
    std::fs::write(&id_file, format!("{identity}\n")).unwrap();
    let st = tool("age")
        .args(["--encrypt", "--recipient", recipient, "--output"])
        .arg(&enc)
        .arg(&plain)
        .status()
        .unwrap();
    assert!(st.success(), "age --encrypt failed");
    let out = tool("age")
        .args(["--decrypt", "--identity"])
        .arg(&id_file)
        .arg(&enc)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "age --decrypt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"the data key of a sops file\n");
}

#[test]
fn derived_identities_decrypt_what_age_encrypted_to_derived_recipients() {
    for base in ["id_ed25519", "sops-nix-ssh-ed25519-key"] {
        let key = PrivateKey::parse_openssh(&read(base)).unwrap();
        let recipient = PublicKey::parse(&read(&format!("{base}.pub")))
            .unwrap()
            .age_recipient()
            .unwrap();
        age_round_trip(&recipient, &key.age_identity());
    }
}

#[test]
fn a_wrong_identity_does_not_decrypt() {
    // The oracle must be able to fail: another key's identity is rejected by age.
    let other = PrivateKey::parse_openssh(&read("sops-nix-ssh-ed25519-key")).unwrap();
    let recipient = PublicKey::parse(&read("id_ed25519.pub"))
        .unwrap()
        .age_recipient()
        .unwrap();
    let result = std::panic::catch_unwind(|| age_round_trip(&recipient, &other.age_identity()));
    // Only decryption may fail: an encryption failure would mean a bad recipient.
    let payload = result.expect_err("another key's identity decrypted");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("age --decrypt failed") && message.contains("no identity matched"),
        "{message}"
    );
}
