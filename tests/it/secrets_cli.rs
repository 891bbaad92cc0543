//! `vmctl secrets rekey|check` driven as a binary on temp fleets: the sops fallback, failures
//! that must leave files untouched, dry runs, JSON, identity discovery and fleet discovery.

use std::path::{Path, PathBuf};

use crate::support::copy_dir;
use crate::support::secrets::*;

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

fn copy_fixture(env: &Env, fixture: &str, name: &str) -> PathBuf {
    let dest = env.fleet().join("secrets").join(name);
    std::fs::copy(format!("{FIX}/{fixture}"), &dest).unwrap();
    let mut perm = std::fs::metadata(&dest).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(&dest, perm).unwrap();
    dest
}

/// No secret value, data key or identity in anything vmctl printed.
fn assert_no_secrets(o: &std::process::Output) {
    let all = format!("{}{}", stdout(o), stderr(o));
    for s in [
        "hunter2",
        "t0ken",
        "AGE-SECRET-KEY",
        "test_value",
        "not really a key",
    ] {
        assert!(!all.contains(s), "output leaks {s:?}:\n{all}");
    }
}

#[test]
fn pgp_and_age_fixture_goes_to_sops_and_shamir_too() {
    let env = Env::new();
    let yaml = copy_fixture(&env, "sops-nix/secrets.yaml", "host.yaml");
    env.write_rule(&[ADMIN, OLDHOST, NEWVM]);
    let o = env
        .vmctl()
        .args(["secrets", "rekey", "--identity"])
        .arg(env.key("admin"))
        .arg(&yaml)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("(sops: the file also holds pgp keys)"),
        "{}",
        stdout(&o)
    );
    assert_no_secrets(&o);
    let d = env.sops_decrypt(&yaml, "newvm");
    assert!(d.status.success(), "{}", stderr(&d));
    assert!(stdout(&d).contains("test_value"));
    let f = vmctl::secrets::SopsFile::parse(
        vmctl::secrets::Format::Yaml,
        &std::fs::read_to_string(&yaml).unwrap(),
    )
    .unwrap();
    assert!(
        f.metadata.key_groups[0].keys.pgp.is_empty(),
        "pgp keys were not dropped"
    );
    assert_eq!(recipients(&yaml), sorted(&[ADMIN, OLDHOST, NEWVM]));

    // Two key groups (Shamir 2 of 2): sops re-keys it with both identities vmctl hands over.
    let shamir = copy_fixture(&env, "generated/shamir2of2.sops.yaml", "shamir.yaml");
    std::fs::write(
        env.fleet().join(".sops.yaml"),
        format!(
            "creation_rules:\n  - path_regex: shamir\n    shamir_threshold: 2\n    key_groups:\n      - age: [{ADMIN}]\n      - age: [{OLDHOST}, {NEWVM}]\n"
        ),
    )
    .unwrap();
    let o = env
        .vmctl()
        .args(["secrets", "rekey", "--dry-run", "--json", "-i"])
        .arg(env.key("admin"))
        .arg(&shamir)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["files"][0]["route"], "sops");
    assert_eq!(v["files"][0]["changes"][0]["group"], 1);
    assert_eq!(v["files"][0]["changes"][0]["added"][0], NEWVM);
    let o = env
        .vmctl()
        .args(["secrets", "rekey", "-i"])
        .arg(env.key("admin"))
        .arg("-i")
        .arg(env.key("oldhost"))
        .arg(&shamir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(recipients(&shamir), sorted(&[ADMIN, OLDHOST, NEWVM]));
}

#[test]
fn without_sops_the_fallback_fails_clearly_and_writes_nothing() {
    let env = Env::new();
    let pgp = copy_fixture(&env, "sops-nix/secrets.yaml", "host.yaml");
    let age = env.encrypt("app.json", PLAINTEXTS[1].1, &[ADMIN]);
    env.write_rule(&[ADMIN, NEWVM]);
    let pgp_before = read(&pgp);
    let empty_path = env.path("empty-bin");
    std::fs::create_dir_all(&empty_path).unwrap();
    let o = env
        .vmctl()
        .env("PATH", &empty_path)
        .args(["secrets", "rekey", "-i"])
        .arg(env.key("admin"))
        .arg(&pgp)
        .arg(&age)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let line = out.lines().find(|l| l.contains("host.yaml")).unwrap();
    assert!(line.starts_with("failed"), "{line}");
    assert!(
        line.contains("pgp")
            && line.contains("sops was not found")
            && line.contains("install sops"),
        "{line}"
    );
    assert_eq!(read(&pgp), pgp_before, "the pgp file was written");
    // The other file is still processed.
    assert!(
        out.contains("rekeyed      ") && out.contains("app.json (native)"),
        "{out}"
    );
    assert_eq!(recipients(&age), sorted(&[ADMIN, NEWVM]));
    assert_no_secrets(&o);
}

#[test]
fn tampered_truncated_and_unopenable_files_fail_alone_and_stay_untouched() {
    let env = Env::new();
    let good = env.encrypt("good.yaml", PLAINTEXTS[0].1, &[ADMIN]);
    let tampered = env.encrypt("tampered.yaml", PLAINTEXTS[0].1, &[ADMIN]);
    let truncated = env.encrypt("truncated.json", PLAINTEXTS[1].1, &[ADMIN]);
    let foreign = env.encrypt("foreign.env", PLAINTEXTS[3].1, &[MOCK]);
    env.write_rule(&[ADMIN, NEWVM]);
    // Change one character of the stored MAC.
    let t = std::fs::read_to_string(&tampered).unwrap();
    let at = t.find("mac: ENC[AES256_GCM,data:").unwrap() + "mac: ENC[AES256_GCM,data:".len();
    let c = if &t[at..at + 1] == "A" { "B" } else { "A" };
    std::fs::write(&tampered, format!("{}{c}{}", &t[..at], &t[at + 1..])).unwrap();
    let j = read(&truncated);
    std::fs::write(&truncated, &j[..j.len() * 2 / 3]).unwrap();
    let bad = [&tampered, &truncated, &foreign];
    let before: Vec<Vec<u8>> = bad.iter().map(|p| read(p)).collect();

    let o = env
        .vmctl()
        .args(["secrets", "rekey", "--json", "-i"])
        .arg(env.key("admin"))
        .arg(&good)
        .args(bad)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}\n{}", stdout(&o), stderr(&o));
    assert_no_secrets(&o);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let files = v["files"].as_array().unwrap();
    assert_eq!(files[0]["status"], "rekeyed");
    let err = |i: usize| files[i]["error"].as_str().unwrap().to_string();
    assert!(err(1).contains("MAC mismatch"), "{}", err(1));
    assert!(err(2).contains("not a valid sops json file"), "{}", err(2));
    assert!(
        err(3).contains("no available identity opens the file") && err(3).contains(MOCK),
        "{}",
        err(3)
    );
    for (p, b) in bad.iter().zip(&before) {
        assert_eq!(&read(p), b, "{} was written", p.display());
    }
    assert_eq!(v["ok"], false);
}

#[test]
fn dry_run_writes_nothing_and_check_reports_stale_files() {
    let env = Env::new();
    let a = env.encrypt("a.yaml", PLAINTEXTS[0].1, &[ADMIN, OLDHOST]);
    let b = env.encrypt("b.env", PLAINTEXTS[3].1, &[ADMIN, NEWVM]);
    env.write_rule(&[ADMIN, NEWVM]);
    let (ba, bb) = (read(&a), read(&b));
    let o = env
        .vmctl()
        .args([
            "secrets",
            "rekey",
            "--dry-run",
            "--config",
            ".sops.yaml",
            "secrets/a.yaml",
            "secrets/b.env",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "would rekey  secrets/a.yaml (native): +{NEWVM} -{OLDHOST}"
        )),
        "{out}"
    );
    assert!(out.contains("up to date   secrets/b.env"), "{out}");
    assert_eq!((read(&a), read(&b)), (ba, bb));

    let o = env
        .vmctl()
        .args([
            "secrets",
            "check",
            "--json",
            "secrets/a.yaml",
            "secrets/b.env",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["checked"], 2);
    assert_eq!(v["stale"].as_array().unwrap().len(), 1);
    assert_eq!(v["stale"][0]["path"], "secrets/a.yaml");
    assert_eq!(v["stale"][0]["rule"], 1);
    assert_eq!(v["stale"][0]["changes"][0]["added"][0], NEWVM);
    assert_eq!(v["stale"][0]["changes"][0]["removed"][0], OLDHOST);

    let o = env
        .vmctl()
        .args(["secrets", "rekey", "-i"])
        .arg(env.key("admin"))
        .arg("secrets/a.yaml")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = env
        .vmctl()
        .args(["secrets", "check", "secrets/a.yaml", "secrets/b.env"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("2 sops files match"), "{}", stderr(&o));
}

#[test]
fn fleet_discovery_default_identities_and_permissions() {
    let env = Env::new();
    let fleet = env.fleet();
    std::fs::create_dir_all(fleet.join("vms")).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/vms/definitions.nix"),
        fleet.join("vms/definitions.nix"),
    )
    .unwrap();
    let a = env.encrypt("a.yaml", PLAINTEXTS[0].1, &[OLDHOST]);
    let b = env.encrypt("b.bin", PLAINTEXTS[2].1, &[OLDHOST]);
    std::fs::create_dir_all(fleet.join("secrets/hosts")).unwrap();
    let c = fleet.join("secrets/hosts/c.json");
    std::fs::rename(env.encrypt("c.json", PLAINTEXTS[1].1, &[OLDHOST]), &c).unwrap();
    std::fs::write(fleet.join("secrets/README.md"), "not a secret\n").unwrap();
    std::fs::write(
        fleet.join(".sops.yaml"),
        format!("creation_rules:\n  - path_regex: ^secrets/.*\\.(yaml|json|bin)$\n    age: '{OLDHOST},{NEWVM}'\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o600)).unwrap();

    // The only identity is the user's ~/.ssh/id_ed25519 (the sops-nix host key, converted).
    std::fs::create_dir_all(env.path("home/.ssh")).unwrap();
    std::fs::copy(
        format!("{FIX}/sops-nix/ssh-ed25519-key"),
        env.path("home/.ssh/id_ed25519"),
    )
    .unwrap();
    let o = env
        .vmctl()
        .current_dir(fleet.join("secrets"))
        .args(["secrets", "rekey"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.matches("rekeyed").count(), 3, "{out}");
    assert!(!out.contains("README"), "{out}");
    for f in [&a, &b, &c] {
        assert_eq!(recipients(f), sorted(&[OLDHOST, NEWVM]), "{}", f.display());
        assert!(env.sops_decrypt(f, "newvm").status.success());
    }
    assert_eq!(
        std::fs::metadata(&a).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // ~/.config/sops/age/keys.txt is read too; check agrees that all is up to date.
    std::fs::remove_file(env.path("home/.ssh/id_ed25519")).unwrap();
    std::fs::create_dir_all(env.path("home/.config/sops/age")).unwrap();
    std::fs::copy(env.key("newvm"), env.path("home/.config/sops/age/keys.txt")).unwrap();
    std::fs::write(
        fleet.join(".sops.yaml"),
        format!(
            "creation_rules:\n  - path_regex: ^secrets/.*\\.(yaml|json|bin)$\n    age: '{NEWVM}'\n"
        ),
    )
    .unwrap();
    let o = env
        .vmctl()
        .args(["--fleet"])
        .arg(&fleet)
        .args(["secrets", "rekey"])
        .current_dir(env.path("home"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o).matches(&format!("-{OLDHOST}")).count(),
        3,
        "{}",
        stdout(&o)
    );
    let o = env.vmctl().args(["secrets", "check"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    for f in [&a, &b, &c] {
        assert_eq!(recipients(f), sorted(&[NEWVM]), "{}", f.display());
        env.assert_locked_out(f, "oldhost");
    }
}

#[test]
fn identity_and_config_errors_say_what_to_do() {
    let env = Env::new();
    let a = env.encrypt("a.yaml", PLAINTEXTS[0].1, &[ADMIN]);
    let before = read(&a);
    // No .sops.yaml anywhere up from a directory outside the fleet.
    let o = env
        .vmctl()
        .current_dir(env.path("home"))
        .args(["secrets", "rekey"])
        .arg(&a)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--config PATH"), "{}", stderr(&o));
    env.write_rule(&[ADMIN, NEWVM]);
    let o = env
        .vmctl()
        .env("SOPS_AGE_KEY_FILE", env.path("keys/missing.txt"))
        .args(["secrets", "rekey"])
        .arg(&a)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("SOPS_AGE_KEY_FILE="), "{}", stderr(&o));
    // An identity file with a broken line: the error names the line, not its content.
    std::fs::write(env.path("keys/bad.txt"), "AGE-SECRET-KEY-1BROKENSECRET\n").unwrap();
    let o = env
        .vmctl()
        .args(["secrets", "rekey", "-i"])
        .arg(env.path("keys/bad.txt"))
        .arg(&a)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("line 1 is not a valid"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("BROKENSECRET"));
    // No identity at all: a clear per-file error.
    let o = env
        .vmctl()
        .args(["secrets", "rekey"])
        .arg(&a)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("no available identity opens the file"),
        "{}",
        stdout(&o)
    );
    // A file no rule matches.
    let stray = env.path("plain/stray.yaml");
    std::fs::copy(&a, &stray).unwrap();
    let o = env
        .vmctl()
        .args(["secrets", "check"])
        .arg(&stray)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("no creation rule"), "{}", stdout(&o));
    assert_eq!(read(&a), before);
}

#[test]
fn fleet_settings_choose_the_secrets_dir_and_sops_config() {
    let env = Env::new();
    let fleet = env.path("demo");
    let repo = crate::support::repo();
    copy_dir(&repo.join("vms"), &fleet.join("vms"));
    copy_dir(&repo.join("hosts"), &fleet.join("hosts"));
    std::fs::copy(repo.join("hosts.nix"), fleet.join("hosts.nix")).unwrap();
    let defs = fleet.join("vms/definitions.nix");
    let text = std::fs::read_to_string(&defs).unwrap();
    let at = text.find("{\n").unwrap() + 2;
    std::fs::write(
        &defs,
        format!(
            "{}  settings = {{ secretsDir = \"private\"; sopsConfig = \"private/.sops.yaml\"; }};\n{}",
            &text[..at],
            &text[at..]
        ),
    )
    .unwrap();
    std::fs::create_dir_all(fleet.join("private")).unwrap();
    std::fs::write(
        fleet.join("private/.sops.yaml"),
        format!("creation_rules:\n  - path_regex: ^[^/]+\\.yaml$\n    age: {ADMIN},{NEWVM}\n"),
    )
    .unwrap();
    let a = fleet.join("private/a.yaml");
    std::fs::rename(env.encrypt("a.yaml", PLAINTEXTS[0].1, &[ADMIN]), &a).unwrap();
    // A decoy in the default places of this fleet (secrets/ and a root .sops.yaml whose rule
    // matches it and asks for NEWVM): a command that ignored the settings would check it
    // and re-key it.
    std::fs::create_dir_all(fleet.join("secrets")).unwrap();
    let decoy = fleet.join("secrets/decoy.yaml");
    std::fs::rename(env.encrypt("decoy.yaml", PLAINTEXTS[0].1, &[ADMIN]), &decoy).unwrap();
    std::fs::write(
        fleet.join(".sops.yaml"),
        format!("creation_rules:\n  - path_regex: ^secrets/.*\\.yaml$\n    age: {ADMIN},{NEWVM}\n"),
    )
    .unwrap();
    let decoy_before = read(&decoy);

    let o = env
        .vmctl()
        .current_dir(&fleet)
        .args(["secrets", "check"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}\n{}", stdout(&o), stderr(&o));
    assert!(!stderr(&o).contains("did not load"), "{}", stderr(&o));
    assert!(stdout(&o).contains("private/a.yaml"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("decoy"), "{}", stdout(&o));
    let o = env
        .vmctl()
        .current_dir(&fleet)
        .args(["secrets", "rekey", "-i"])
        .arg(env.key("admin"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(recipients(&a), sorted(&[ADMIN, NEWVM]));
    assert_eq!(read(&decoy), decoy_before);
    let o = env
        .vmctl()
        .current_dir(&fleet)
        .args(["secrets", "check"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
}
