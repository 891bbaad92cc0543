//! Host key generation checked by the real `ssh-keygen` and `age`.

use crate::support;

use std::process::Command;

use rand_core::{CryptoRng, RngCore};
use vmctl::keys::{self, PrivateKey, PublicKey};

/// A deterministic RNG (splitmix64) so a failure can be replayed; never used outside tests.
struct TestRng(u64);

impl RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for TestRng {}

fn ssh_keygen() -> Command {
    let ok = Command::new("ssh-keygen")
        .arg("-?")
        .output()
        .map(|_| true)
        .unwrap_or(false);
    assert!(
        ok,
        "ssh-keygen is not installed: run ./scripts/test.sh (or `apt-get install -y openssh-client`)"
    );
    Command::new("ssh-keygen")
}

fn write_pair(dir: &std::path::Path, pair: &keys::HostKeyPair) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let key = dir.join("ssh_host_ed25519_key");
    std::fs::write(&key, &pair.private_openssh).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(dir.join("ssh_host_ed25519_key.pub"), &pair.public_openssh).unwrap();
    key
}

fn stdout(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn ssh_keygen_accepts_generated_keys_and_prints_our_fingerprint() {
    let mut rng = TestRng(7);
    for comment in [Some("root@newvm".to_string()), None] {
        let pair = keys::generate_host_key(&mut rng, comment.clone());
        let dir = tempfile::tempdir().unwrap();
        let key = write_pair(dir.path(), &pair);
        let expected = format!("{}\n", pair.public.fingerprint_line());
        // The private key alone (no .pub beside it).
        let lone = dir.path().join("lone");
        std::fs::copy(&key, &lone).unwrap();
        // For a private key file ssh-keygen prints the stored comment, even when it is empty
        // (a public key line without one prints `no comment`).
        let from_private = format!(
            "256 {} {} (ED25519)\n",
            pair.fingerprint,
            comment.as_deref().unwrap_or("")
        );
        assert_eq!(stdout(ssh_keygen().arg("-lf").arg(&lone)), from_private);
        assert_eq!(
            stdout(
                ssh_keygen()
                    .arg("-lf")
                    .arg(dir.path().join("ssh_host_ed25519_key.pub"))
            ),
            expected
        );
        // ssh-keygen derives the same public key from our private key file.
        let derived = stdout(ssh_keygen().arg("-yf").arg(&lone));
        assert_eq!(
            derived.split_whitespace().take(2).collect::<Vec<_>>(),
            pair.public_openssh
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
        );
        assert!(pair
            .private_openssh
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
        assert_eq!(pair.fingerprint, pair.public.fingerprint());
        assert_eq!(pair.public.comment, comment);
    }
}

#[test]
fn our_fingerprints_equal_ssh_keygen_on_the_fixtures() {
    for name in [
        "id_ed25519.pub",
        "sops-nix-ssh-ed25519-key.pub",
        "id_ed25519_passphrase.pub",
    ] {
        let text = std::fs::read_to_string(support::key_fixture(name)).unwrap();
        let ours = PublicKey::parse(&text).unwrap().fingerprint_line();
        assert_eq!(
            stdout(ssh_keygen().arg("-lf").arg(support::key_fixture(name))),
            format!("{ours}\n"),
            "{name}"
        );
    }
}

#[test]
fn we_write_byte_for_byte_what_ssh_keygen_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    stdout(
        ssh_keygen()
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "root@probe", "-f"])
            .arg(&path),
    );
    let theirs = std::fs::read_to_string(&path).unwrap();
    let key = PrivateKey::parse_openssh(&theirs).unwrap();
    // The check integer is random per file: the parsed key keeps ssh-keygen's, so writing it
    // back must give ssh-keygen's bytes exactly (PEM width, padding, comment).
    assert_eq!(key.to_openssh().as_str(), theirs);
    let pub_line = std::fs::read_to_string(dir.path().join("k.pub")).unwrap();
    assert_eq!(format!("{}\n", key.public.to_openssh()), pub_line);
}

#[test]
fn a_generated_key_works_with_age() {
    let pair = keys::generate_host_key(&mut TestRng(42), None);
    let key = PrivateKey::parse_openssh(&pair.private_openssh).unwrap();
    assert_eq!(key.public.age_recipient().unwrap(), pair.age_recipient);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("id"), key.age_identity()).unwrap();
    std::fs::write(dir.path().join("plain"), "x").unwrap();
    let enc = Command::new("age")
        .args(["-e", "-r", &pair.age_recipient, "-o"])
        .arg(dir.path().join("enc"))
        .arg(dir.path().join("plain"))
        .status()
        .expect("age is not installed: run ./scripts/test.sh (or `apt-get install -y age`)");
    assert!(enc.success());
    let out = stdout(
        Command::new("age")
            .args(["-d", "-i"])
            .arg(dir.path().join("id"))
            .arg(dir.path().join("enc")),
    );
    assert_eq!(out, "x");
}

#[test]
fn different_seeds_give_different_keys() {
    let a = keys::generate_host_key(&mut TestRng(1), None);
    let b = keys::generate_host_key(&mut TestRng(2), None);
    assert_ne!(a.public.key, b.public.key);
}
