//! `vmctl keys` end to end: the built binary against fixture keys and a temp directory.

use crate::support::{self, key_fixture, text, vmctl_cmd};

use std::process::{Command, Output, Stdio};

fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut input = child.stdin.take().unwrap();
        if let Some(data) = stdin {
            input.write_all(data).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

#[test]
fn to_age_reads_keyscan_output_and_skips_rsa_with_a_note() {
    let out = run(
        vmctl_cmd().args(["keys", "to-age"]),
        Some(&std::fs::read(key_fixture("keyscan.txt")).unwrap()),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "age1hjm3aujg9e79f5yth8a2cejzdjg5n9vnu96l05p70uvfpeltnpms7yy3pp\nage1v8zjc47jmlqwefyu66s0d4ke98qr4vnuj3cpvs4z9npfdw833dxqwjrhzv\n"
    );
    let err = text(&out.stderr);
    assert_eq!(err.matches("skipping the ssh-rsa key").count(), 2, "{err}");
    assert!(
        err.contains("stdin:2: skipping the ssh-rsa key for eve.thalheim.io"),
        "{err}"
    );
}

#[test]
fn to_age_takes_a_key_argument_or_a_file_and_prints_json() {
    let line = std::fs::read_to_string(key_fixture("id_ed25519.pub")).unwrap();
    let out = run(vmctl_cmd().args(["keys", "to-age", line.trim()]), None);
    assert_eq!(
        text(&out.stdout),
        "age17044m9wgakla6pzftf4srtl3h5mcsr85jysgt5fg23zpnta8sfdqhzn452\n"
    );
    let out = run(
        vmctl_cmd()
            .args(["keys", "to-age", "--json"])
            .arg(key_fixture("id_ed25519.pub")),
        None,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v[0]["recipient"],
        "age17044m9wgakla6pzftf4srtl3h5mcsr85jysgt5fg23zpnta8sfdqhzn452"
    );
    assert_eq!(v[0]["comment"], "joerg@turingmachine");
    assert_eq!(
        v[0]["fingerprint"],
        "SHA256:wEPu5zkkhaJZhOM5BFhVJnRbJC7OEuRKz/lt2XCrN8I"
    );
}

#[test]
fn to_age_private_prints_the_identity_or_refuses_an_encrypted_key() {
    let out = run(
        vmctl_cmd()
            .args(["keys", "to-age", "--private"])
            .arg(key_fixture("id_ed25519")),
        None,
    );
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        "AGE-SECRET-KEY-1K3VN4N03PTHJWSJSCCMQCN33RY5FSKQPJ4KRRTG3JMQUYE0TUSEQEDH6V8\n"
    );
    let out = run(
        vmctl_cmd()
            .args(["keys", "to-age", "--private"])
            .arg(key_fixture("id_ed25519_passphrase")),
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("encrypted with a passphrase"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn to_age_with_no_ed25519_key_fails_with_advice() {
    let out = run(
        vmctl_cmd().args(["keys", "to-age"]),
        Some(b"host ssh-rsa AAAAB3NzaC1yc2E\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("ssh-keyscan -t ed25519"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn generate_writes_a_key_pair_prints_only_public_facts_and_never_overwrites() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("etc/ssh");
    let out = run(
        vmctl_cmd()
            .args(["keys", "generate", "--comment", "root@newvm", "--out"])
            .arg(&out_dir),
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let private = out_dir.join("ssh_host_ed25519_key");
    let public = out_dir.join("ssh_host_ed25519_key.pub");
    assert_eq!(
        std::fs::metadata(&private).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(&public).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(
        format!("{}\n", lines[0]),
        std::fs::read_to_string(&public).unwrap()
    );
    // The real ssh-keygen agrees on the fingerprint, and the recipient is the key's.
    let keygen = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&public)
        .output()
        .expect("ssh-keygen is not installed: run ./scripts/test.sh (or `apt-get install -y openssh-client`)");
    assert_eq!(text(&keygen.stdout).trim_end(), lines[1]);
    let again = run(vmctl_cmd().args(["keys", "to-age"]).arg(&public), None);
    assert_eq!(text(&again.stdout).trim_end(), lines[2]);
    let secret = std::fs::read_to_string(&private).unwrap();
    let body = secret.lines().nth(1).unwrap();
    assert!(
        !stdout.contains(body) && !text(&out.stderr).contains(body),
        "the private key is never printed"
    );

    let second = run(
        vmctl_cmd()
            .args(["keys", "generate", "--out"])
            .arg(&out_dir),
        None,
    );
    assert_eq!(second.status.code(), Some(1));
    assert!(
        text(&second.stderr).contains("already exists"),
        "{}",
        text(&second.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&private).unwrap(),
        secret,
        "untouched"
    );
}

#[test]
fn fingerprint_matches_ssh_keygen() {
    let out = run(
        vmctl_cmd()
            .args(["keys", "fingerprint"])
            .arg(key_fixture("id_ed25519.pub")),
        None,
    );
    assert_eq!(
        text(&out.stdout),
        "256 SHA256:wEPu5zkkhaJZhOM5BFhVJnRbJC7OEuRKz/lt2XCrN8I joerg@turingmachine (ED25519)\n"
    );
}

fn git(dir: &std::path::Path, args: &[&str]) {
    support::require_tool("git");
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
}

#[test]
fn generate_refuses_a_private_key_git_could_commit() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("fleet");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    let out_dir = repo.join("keys/doc2/etc/ssh");

    // Inside the work tree and not ignored: refused, nothing written, advice given.
    let out = run(
        vmctl_cmd()
            .args(["keys", "generate", "--out"])
            .arg(&out_dir),
        None,
    );
    // miette wraps the message: compare it as one line.
    let err = text(&out.stderr)
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not git-ignored"), "{err}");
    assert!(err.contains("echo /keys/doc2/etc/ssh/ >>"), "{err}");
    assert!(err.contains("outside the repository"), "{err}");
    assert!(!repo.join("keys").exists(), "nothing is created");

    // A tracked .gitignore entry of another path does not help.
    std::fs::write(repo.join(".gitignore"), "/other/\n").unwrap();
    let out = run(
        vmctl_cmd()
            .args(["keys", "generate", "--out"])
            .arg(&out_dir),
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));

    // Ignored (as the refusal suggested): written. git agrees it stays out of `git add -A`.
    std::fs::write(repo.join(".gitignore"), "/keys/\n").unwrap();
    let out = run(
        vmctl_cmd()
            .args(["keys", "generate", "--out"])
            .arg(&out_dir),
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out_dir.join("ssh_host_ed25519_key").is_file());
    git(&repo, &["add", "-A"]);
    let staged = Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["diff", "--cached", "--name-only"])
        .output()
        .unwrap();
    assert_eq!(text(&staged.stdout), ".gitignore\n");

    // Outside any work tree: written as before.
    let outside = dir.path().join("elsewhere/etc/ssh");
    let out = run(
        vmctl_cmd()
            .args(["keys", "generate", "--out"])
            .arg(&outside),
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}
