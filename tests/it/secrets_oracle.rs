//! Oracle tests: native `vmctl secrets rekey` checked against the real sops (and npm's
//! sops-age) on files the real sops wrote, in every layout (YAML, JSON, binary, dotenv).

use std::path::Path;
use std::process::Command;

use crate::support::copy_dir;
use crate::support::secrets::*;

fn assert_decrypts(env: &Env, file: &Path, key: &str, plaintext_name: &str) {
    let o = env.sops_decrypt(file, key);
    assert!(
        o.status.success(),
        "sops -d {} with {key} failed: {}",
        file.display(),
        stderr(&o)
    );
    // The decrypted content is the original plaintext (modulo the layout sops re-emits).
    let plain = std::fs::read_to_string(env.path(&format!("plain/{plaintext_name}"))).unwrap();
    if plaintext_name.ends_with(".bin") || plaintext_name.ends_with(".env") {
        assert_eq!(stdout(&o), plain, "{}", file.display());
    } else {
        assert!(stdout(&o).contains("hunter2"), "{}", file.display());
    }
}

#[test]
fn native_add_then_sops_decrypts_with_new_and_old_identity_and_matches_updatekeys() {
    let env = Env::new();
    let mut files = Vec::new();
    for (name, plain) in PLAINTEXTS {
        files.push((env.encrypt(name, plain, &[ADMIN, OLDHOST]), name));
    }
    env.write_rule(&[ADMIN, OLDHOST, NEWVM]);
    let oracle = env.path("oracle");
    copy_dir(&env.fleet(), &oracle);
    let before: Vec<String> = files
        .iter()
        .map(|(p, _)| std::fs::read_to_string(p).unwrap())
        .collect();

    let o = env
        .vmctl()
        .args(["secrets", "rekey", "--json", "--identity"])
        .arg(env.key("admin"))
        .args(files.iter().map(|(p, _)| p))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    for f in report["files"].as_array().unwrap() {
        assert_eq!(f["status"], "rekeyed", "{f}");
        assert_eq!(f["route"], "native", "{f}");
        assert_eq!(f["changes"][0]["added"][0], NEWVM);
    }

    for ((path, name), old) in files.iter().zip(&before) {
        let new = std::fs::read_to_string(path).unwrap();
        // Only the new recipient entry was inserted: values, lastmodified, mac, version,
        // comments and formatting are byte for byte the same.
        assert!(is_pure_insertion(old, &new), "{name}:\n{new}");
        assert_decrypts(&env, path, "newvm", name);
        assert_decrypts(&env, path, "admin", name);
        assert_decrypts(&env, path, "oldhost", name);

        // sops updatekeys on a copy yields the same recipient set.
        let copy = oracle.join("secrets").join(name);
        let u = env.sops_updatekeys(&oracle, &copy, "admin");
        assert!(u.status.success(), "sops updatekeys {name}: {}", stderr(&u));
        assert_eq!(recipients(path), recipients(&copy), "{name}");
        assert_eq!(recipients(path), sorted(&[ADMIN, OLDHOST, NEWVM]));
    }
}

#[test]
fn native_remove_locks_out_the_removed_identity_and_matches_updatekeys() {
    let env = Env::new();
    let mut files = Vec::new();
    for (name, plain) in PLAINTEXTS {
        files.push((env.encrypt(name, plain, &[ADMIN, OLDHOST, NEWVM]), name));
    }
    env.write_rule(&[NEWVM, ADMIN]);
    let oracle = env.path("oracle");
    copy_dir(&env.fleet(), &oracle);

    // The identity comes from SOPS_AGE_SSH_PRIVATE_KEY_FILE: the ssh-to-age/id_ed25519 test
    // key, converted to its age identity (NEWVM).
    let o = env
        .vmctl()
        .env(
            "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
            format!("{FIX}/ssh-to-age/id_ed25519"),
        )
        .args(["secrets", "rekey"])
        .args(files.iter().map(|(p, _)| p))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    // The removed host still holds the old data key: re-keying says so and offers rotation.
    assert!(
        stderr(&o).contains(&format!("{OLDHOST} still hold(s) the old data key"))
            && stderr(&o).contains("run `vmctl secrets rotate "),
        "{}",
        stderr(&o)
    );
    assert!(
        stdout(&o).contains(&format!("-{OLDHOST}")),
        "{}",
        stdout(&o)
    );

    for (path, name) in &files {
        env.assert_locked_out(path, "oldhost");
        assert_decrypts(&env, path, "admin", name);
        assert_decrypts(&env, path, "newvm", name);
        let copy = oracle.join("secrets").join(name);
        let u = env.sops_updatekeys(&oracle, &copy, "admin");
        assert!(u.status.success(), "sops updatekeys {name}: {}", stderr(&u));
        assert_eq!(recipients(path), recipients(&copy), "{name}");
        assert_eq!(recipients(path), sorted(&[ADMIN, NEWVM]));
    }
}

#[test]
fn files_sops_calls_up_to_date_are_not_written_by_us_either() {
    let env = Env::new();
    let mut files = Vec::new();
    for (name, plain) in PLAINTEXTS {
        files.push(env.encrypt(name, plain, &[ADMIN, OLDHOST]));
    }
    // Same set, another order: sops compares sets.
    env.write_rule(&[OLDHOST, ADMIN]);
    let oracle = env.path("oracle");
    copy_dir(&env.fleet(), &oracle);
    let meta: Vec<_> = files
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .collect();
    let before: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let o = env
        .vmctl()
        .args(["secrets", "rekey", "--identity"])
        .arg(env.key("admin"))
        .args(&files)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).matches("up to date").count(),
        files.len(),
        "{}",
        stdout(&o)
    );
    for ((p, m), b) in files.iter().zip(&meta).zip(&before) {
        assert_eq!(&std::fs::read(p).unwrap(), b);
        assert_eq!(
            std::fs::metadata(p).unwrap().modified().unwrap(),
            *m,
            "{} was rewritten",
            p.display()
        );
        let copy = oracle.join("secrets").join(p.file_name().unwrap());
        let u = env.sops_updatekeys(&oracle, &copy, "admin");
        assert!(stderr(&u).contains("already up to date"), "{}", stderr(&u));
        assert_eq!(&std::fs::read(&copy).unwrap(), b);
    }
}

#[test]
fn sops_age_npm_decrypts_natively_rekeyed_yaml_and_json() {
    let dir = std::env::var("VMCTL_SOPS_AGE_DIR").unwrap_or_else(|_| {
        format!(
            "{}/.tools/npm/node_modules/sops-age",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    assert!(
        Path::new(&dir).join("package.json").is_file(),
        "npm sops-age not found at {dir}: {SETUP_HINT}"
    );
    let env = Env::new();
    let yaml = env.encrypt("app.yaml", PLAINTEXTS[0].1, &[ADMIN]);
    let json = env.encrypt("app.json", PLAINTEXTS[1].1, &[ADMIN]);
    env.write_rule(&[ADMIN, NEWVM]);
    let o = env
        .vmctl()
        .args(["secrets", "rekey", "-i"])
        .arg(env.key("admin"))
        .arg(&yaml)
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for f in [&yaml, &json] {
        let out = Command::new("node")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/sops_age_decrypt.mjs"
            ))
            .arg(&dir)
            .arg(f)
            .arg(env.key("newvm"))
            .output()
            .expect("node is required for the sops-age cross-check: apt-get install -y nodejs npm");
        assert!(
            out.status.success(),
            "sops-age on {}: {}",
            f.display(),
            stderr(&out)
        );
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(v["db"]["password"], "hunter2", "{v}");
        assert_eq!(v["db"]["port"], 5432, "{v}");
    }
}
