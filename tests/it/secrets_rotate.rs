//! Oracle tests of `vmctl secrets rotate`: after a host is removed from the rule, rotation
//! gives every file a new data key. The real `sops -d` decrypts the rotated file with a
//! remaining identity and fails with the removed one; the data key (unwrapped before and after
//! with the real `age` CLI) changed; the plaintext is unchanged.

use std::path::Path;
use std::process::Command;

use crate::support::secrets::*;
use vmctl::secrets::{Format, SopsFile};

/// The data key of `file`'s first age entry for `recipient`, unwrapped by the real `age` CLI
/// with identity `key` (by name). Hex, so it can be compared.
fn data_key(env: &Env, file: &Path, recipient: &str, key: &str) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let f = SopsFile::parse(Format::for_path(file), &text).unwrap();
    let enc = f.metadata.key_groups[0]
        .age
        .iter()
        .find(|s| s.recipient == recipient)
        .unwrap_or_else(|| panic!("{} has no entry for {recipient}", file.display()))
        .enc
        .clone();
    let armored = env.path("enc.age");
    std::fs::write(&armored, enc).unwrap();
    let o = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(env.key(key))
        .arg(&armored)
        .output()
        .expect("the age CLI is required: apt-get install -y age (./scripts/test.sh does)");
    assert!(o.status.success(), "age -d: {}", stderr(&o));
    assert_eq!(o.stdout.len(), 32, "a sops data key is 32 bytes");
    o.stdout.iter().map(|b| format!("{b:02x}")).collect()
}

fn rotate(env: &Env, files: &[&Path]) -> serde_json::Value {
    let o = env
        .vmctl()
        .args(["secrets", "rotate", "--json", "--identity"])
        .arg(env.key("admin"))
        .args(files)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

#[test]
fn native_rotation_locks_out_the_removed_host_and_keeps_the_plaintext() {
    crate::support::require_tool("age");
    let env = Env::new();
    let mut files = Vec::new();
    for (name, plain) in PLAINTEXTS {
        files.push((env.encrypt(name, plain, &[ADMIN, OLDHOST]), name));
    }
    // oldhost leaves the fleet: the rule no longer lists it.
    env.write_rule(&[ADMIN]);
    let before: Vec<(String, String, String)> = files
        .iter()
        .map(|(p, _)| {
            let d = env.sops_decrypt(p, "admin");
            assert!(d.status.success(), "{}", stderr(&d));
            assert!(env.sops_decrypt(p, "oldhost").status.success());
            (
                stdout(&d),
                data_key(&env, p, ADMIN, "admin"),
                std::fs::read_to_string(p).unwrap(),
            )
        })
        .collect();

    let paths: Vec<&Path> = files.iter().map(|(p, _)| p.as_path()).collect();
    let report = rotate(&env, &paths);
    for f in report["files"].as_array().unwrap() {
        assert_eq!(f["status"], "rotated", "{f}");
        assert_eq!(f["route"], "native", "{f}");
        assert_eq!(f["recipients"], serde_json::json!([ADMIN]), "{f}");
        assert_eq!(f["removed"], serde_json::json!([OLDHOST]), "{f}");
    }

    for ((path, name), (plain, old_key, old_text)) in files.iter().zip(&before) {
        // The real sops: the remaining identity decrypts to the same plaintext...
        let d = env.sops_decrypt(path, "admin");
        assert!(d.status.success(), "{name}: {}", stderr(&d));
        assert_eq!(&stdout(&d), plain, "{name}");
        // ...the removed one does not.
        env.assert_locked_out(path, "oldhost");
        // The data key changed, and no value of the new file opens with the old one.
        let new_key = data_key(&env, path, ADMIN, "admin");
        assert_ne!(&new_key, old_key, "{name}");
        let new_text = std::fs::read_to_string(path).unwrap();
        assert_ne!(&new_text, old_text);
        let f = SopsFile::parse(Format::for_path(path), &new_text).unwrap();
        let old = vmctl::secrets::DataKey::from_bytes(&hex(old_key)).unwrap();
        for leaf in &f.leaves {
            if let vmctl::secrets::document::LeafValue::Encrypted(s) = &leaf.value {
                let aad = format!("{}:", leaf.path.join(":"));
                assert!(
                    vmctl::secrets::cipher::decrypt_str(s, &old, &aad).is_err(),
                    "{name}: a value still opens with the old key"
                );
            }
        }
        assert_eq!(recipients(path), sorted(&[ADMIN]), "{name}");
    }
}

#[test]
fn files_sops_must_rotate_go_through_sops_updatekeys_and_rotate() {
    crate::support::require_tool("age");
    let env = Env::new();
    // INI: vmctl reads its metadata but leaves writing it to sops.
    let path = env.encrypt("app.ini", "[db]\npassword = hunter2\n", &[ADMIN, OLDHOST]);
    env.write_rule(&[ADMIN, NEWVM]);
    let plain = stdout(&env.sops_decrypt(&path, "admin"));
    let old_key = data_key(&env, &path, ADMIN, "admin");

    // A dry run says how, and writes nothing.
    let text = std::fs::read_to_string(&path).unwrap();
    let o = env
        .vmctl()
        .args(["secrets", "rotate", "--dry-run", "--identity"])
        .arg(env.key("admin"))
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("would rotate") && stdout(&o).contains("(sops: INI"),
        "{}",
        stdout(&o)
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);

    let report = rotate(&env, &[path.as_path()]);
    let f = &report["files"][0];
    assert_eq!(f["status"], "rotated", "{f}");
    assert_eq!(f["route"], "sops", "{f}");

    let d = env.sops_decrypt(&path, "admin");
    assert!(d.status.success(), "{}", stderr(&d));
    assert_eq!(stdout(&d), plain);
    assert!(env.sops_decrypt(&path, "newvm").status.success());
    assert!(!env.sops_decrypt(&path, "oldhost").status.success());
    assert_ne!(data_key(&env, &path, ADMIN, "admin"), old_key);
    assert_eq!(
        data_key(&env, &path, NEWVM, "newvm"),
        data_key(&env, &path, ADMIN, "admin")
    );
}

#[test]
fn a_file_no_identity_opens_is_left_alone() {
    let env = Env::new();
    let path = env.encrypt("app.yaml", PLAINTEXTS[0].1, &[OLDHOST]);
    env.write_rule(&[OLDHOST]);
    let text = std::fs::read_to_string(&path).unwrap();
    let o = env
        .vmctl()
        .args(["secrets", "rotate", "--identity"])
        .arg(env.key("admin"))
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("no available identity"),
        "{}",
        stdout(&o)
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn a_failed_sops_rotation_leaves_the_file_as_it_was() {
    let env = Env::new();
    let path = env.encrypt("app.ini", "[db]\npassword = hunter2\n", &[ADMIN, OLDHOST]);
    env.write_rule(&[ADMIN]);
    let before = std::fs::read(&path).unwrap();
    // A sops that re-keys for real, then breaks the file and fails on `rotate`.
    let fake = env.path("fake-sops");
    crate::support::write_script(
        &fake,
        &format!(
            "#!/bin/sh\ncase \" $* \" in *\" rotate \"*) for last; do :; done; echo garbage > \"$last\"; echo 'rotate: boom' >&2; exit 1;; esac\nexec {} \"$@\"\n",
            sops_bin().display()
        ),
    );
    let o = env
        .vmctl()
        .args(["secrets", "rotate", "--sops"])
        .arg(&fake)
        .arg("--identity")
        .arg(env.key("admin"))
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("rotate: boom"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("re-key before it was undone"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the original bytes are back"
    );
}
