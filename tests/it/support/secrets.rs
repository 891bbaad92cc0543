//! Shared helpers for the secrets tests: the real sops (the oracle), test identities from the
//! fixtures, temp fleets and a hermetic way to run the `vmctl` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sops");

/// age recipients of the public test identities in the fixtures.
pub const ADMIN: &str = "age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw";
pub const OLDHOST: &str = "age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs";
pub const NEWVM: &str = "age17044m9wgakla6pzftf4srtl3h5mcsr85jysgt5fg23zpnta8sfdqhzn452";
pub const MOCK: &str = "age1lzd99uklcjnc0e7d860axevet2cz99ce9pq6tzuzd05l5nr28ams36nvun";

/// The matching identities (from tests/fixtures/sops/ssh-to-age-vectors.txt: the sops-nix and
/// ssh-to-age test ssh keys converted, and the age test keys of sops-nix and sops).
pub const ADMIN_KEY: &str =
    "AGE-SECRET-KEY-1NJT5YCS2LWU4V4QAJQ6R4JNU7LXPDX602DZ9NUFANVU5GDTGUWCQ5T59M6";
pub const OLDHOST_KEY: &str =
    "AGE-SECRET-KEY-1D88T3T22862F5SWX0V7M7CG9Q5T9FA90CCN9NVLJRCQATZ3WGL3QMR7CN4";
pub const NEWVM_KEY: &str =
    "AGE-SECRET-KEY-1K3VN4N03PTHJWSJSCCMQCN33RY5FSKQPJ4KRRTG3JMQUYE0TUSEQEDH6V8";
pub const MOCK_KEY: &str =
    "AGE-SECRET-KEY-1G0Q5K9TV4REQ3ZSQRMTMG8NSWQGYT0T7TZ33RAZEE0GZYVZN0APSU24RK7";

pub const SETUP_HINT: &str =
    "run ./scripts/test.sh, or eval \"$(./scripts/setup-test-tools.sh)\" before cargo test";

/// The real sops binary: on PATH, else the one scripts/setup-test-tools.sh installs (the one
/// place the tests look for it; checked once per test process).
pub fn sops_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(find_sops).clone()
}

fn find_sops() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("sops"))
            .find(|p| p.is_file())
    });
    let local = super::repo().join(".tools/venv/bin/sops");
    let bin = on_path
        .or_else(|| local.is_file().then_some(local))
        .unwrap_or_else(|| {
            panic!("the real sops is required as the test oracle but was not found: {SETUP_HINT}")
        });
    let out = Command::new(&bin)
        .arg("--version")
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("sops 3."),
        "{} is not sops 3.x: {SETUP_HINT}",
        bin.display()
    );
    bin
}

/// A temp directory with key files, a home without keys and a fleet layout.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let e = Env { dir };
        std::fs::create_dir_all(e.path("home")).unwrap();
        std::fs::create_dir_all(e.path("sops-home")).unwrap();
        std::fs::create_dir_all(e.path("keys")).unwrap();
        std::fs::create_dir_all(e.path("plain")).unwrap();
        std::fs::create_dir_all(e.path("fleet/secrets")).unwrap();
        for (name, key) in [
            ("admin", ADMIN_KEY),
            ("oldhost", OLDHOST_KEY),
            ("newvm", NEWVM_KEY),
            ("mock", MOCK_KEY),
        ] {
            std::fs::write(e.key(name), format!("# test identity\n{key}\n")).unwrap();
        }
        e
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn fleet(&self) -> PathBuf {
        self.path("fleet")
    }

    pub fn key(&self, name: &str) -> PathBuf {
        self.path(&format!("keys/{name}.txt"))
    }

    /// Writes `.sops.yaml` with one rule for `secrets/` listing `recipients` (through anchors,
    /// as fleets write them).
    pub fn write_rule(&self, recipients: &[&str]) {
        let mut text = String::from("keys:\n");
        for (i, r) in recipients.iter().enumerate() {
            text.push_str(&format!("  - &k{i} {r}\n"));
        }
        text.push_str(
            "creation_rules:\n  - path_regex: ^secrets/[^/]+$\n    key_groups:\n      - age:\n",
        );
        for i in 0..recipients.len() {
            text.push_str(&format!("          - *k{i}\n"));
        }
        std::fs::write(self.fleet().join(".sops.yaml"), text).unwrap();
    }

    /// Encrypts `plaintext` with the real sops for `recipients` into `fleet/secrets/NAME`
    /// (sops picks the layout from the name, as for the file it writes).
    pub fn encrypt(&self, name: &str, plaintext: &str, recipients: &[&str]) -> PathBuf {
        let plain = self.path(&format!("plain/{name}"));
        std::fs::write(&plain, plaintext).unwrap();
        let out = self.fleet().join("secrets").join(name);
        let o = Command::new(sops_bin())
            .current_dir(self.path("plain"))
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .args(["encrypt", "--age", &recipients.join(","), "--output"])
            .arg(&out)
            .arg(&plain)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "sops encrypt {name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    }

    /// The real sops refuses to decrypt `file` with the identity `key` because the key is
    /// not a recipient: that failure and no other (a broken file or a missing sops would
    /// fail too, and prove nothing).
    pub fn assert_locked_out(&self, file: &Path, key: &str) {
        let out = self.sops_decrypt(file, key);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("Failed to get the data key"),
            "{}: `{key}` should be refused the data key, sops said: {err}",
            file.display()
        );
    }

    /// `sops -d FILE` with exactly the identity `key` (by name).
    pub fn sops_decrypt(&self, file: &Path, key: &str) -> Output {
        Command::new(sops_bin())
            .current_dir(self.path("plain"))
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .env("HOME", self.path("sops-home"))
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("SOPS_AGE_KEY")
            .env_remove("SOPS_AGE_SSH_PRIVATE_KEY_FILE")
            .env("SOPS_AGE_KEY_FILE", self.key(key))
            .arg("-d")
            .arg(file)
            .output()
            .unwrap()
    }

    /// `sops updatekeys --yes FILE` in `dir` with its `.sops.yaml`, as an operator runs it.
    pub fn sops_updatekeys(&self, dir: &Path, file: &Path, key: &str) -> Output {
        Command::new(sops_bin())
            .current_dir(dir)
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .env("HOME", self.path("sops-home"))
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("SOPS_AGE_KEY")
            .env_remove("SOPS_AGE_SSH_PRIVATE_KEY_FILE")
            .env("SOPS_AGE_KEY_FILE", self.key(key))
            .args(["updatekeys", "--yes"])
            .arg(file)
            .output()
            .unwrap()
    }

    /// The `vmctl` binary with no identity from the outside world: HOME is an empty temp
    /// directory and every SOPS_* variable is cleared.
    pub fn vmctl(&self) -> Command {
        let mut c = super::vmctl_cmd();
        c.current_dir(self.fleet()).env("HOME", self.path("home"));
        for v in [
            "SOPS_AGE_KEY",
            "SOPS_AGE_KEY_FILE",
            "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
            "SOPS_AGE_KEY_CMD",
            "SOPS_CONFIG",
            "VMCTL_FLEET",
            "VMCTL_SOPS",
            "XDG_CONFIG_HOME",
        ] {
            c.env_remove(v);
        }
        c.env("PATH", path_with_sops());
        c
    }
}

/// PATH with the sops binary's directory in front.
pub fn path_with_sops() -> std::ffi::OsString {
    let sops_dir = sops_bin().parent().unwrap().to_path_buf();
    let mut dirs = vec![sops_dir];
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(dirs).unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The age recipients of a sops file, sorted (read with vmctl's parser).
pub fn recipients(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let f = vmctl::secrets::SopsFile::parse(vmctl::secrets::Format::for_path(file), &text).unwrap();
    let mut r: Vec<String> = f
        .metadata
        .key_groups
        .iter()
        .flat_map(|g| g.keys.age.clone())
        .collect();
    r.sort();
    r
}

pub fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// True when `new` is `old` with one contiguous block inserted (nothing removed or changed).
pub fn is_pure_insertion(old: &str, new: &str) -> bool {
    let prefix = old
        .bytes()
        .zip(new.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let suffix = old
        .bytes()
        .rev()
        .zip(new.bytes().rev())
        .take_while(|(a, b)| a == b)
        .count();
    new.len() > old.len() && prefix + suffix >= old.len()
}

/// Plaintexts for each layout sops writes, keyed by file name.
pub const PLAINTEXTS: [(&str, &str); 4] = [
    (
        "app.yaml",
        "# database settings\ndb:\n    password: hunter2\n    port: 5432\nlist:\n    - a\n    - true\n    - 1.5\nnote_unencrypted: clear\n",
    ),
    ("app.json", "{\"db\":{\"password\":\"hunter2\",\"port\":5432},\"list\":[\"a\",true,1.5],\"note_unencrypted\":\"clear\"}\n"),
    ("blob.bin", "-----BEGIN TEST BLOB-----\nnot really a key\n"),
    ("app.env", "# a comment\nDB_PASSWORD=hunter2\nAPI_TOKEN=t0ken\n"),
];
