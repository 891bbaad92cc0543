//! `vmctl post-provision` over the sandbox (scripts/sandbox.sh): the real binary against the
//! Proxmox simulator behind a real sshd, the VM a real sshd on 127.0.0.110 presenting the host
//! key its first boot made (a VM installed outside vmctl), real ssh-keyscan, real git, the real
//! sops as the oracle, and a pseudo-terminal (`script`) for the interactive answer.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::sandbox::Sandbox;
use crate::support::secrets::sops_bin;
use crate::support::{fleet_files as files, git};
use crate::support::{require_tool, squash, text, unwrapped};

/// Whether `said` holds `needle`, whatever miette's wrapping made of it (a fingerprint may be
/// broken at any `/`).
fn says(said: &str, needle: &str) -> bool {
    squash(said).contains(&squash(needle))
}

fn fleet(s: &Sandbox) -> PathBuf {
    s.dir.join("fleet")
}

/// `vmctl post-provision test-automation 127.0.0.110 VMID --port PORT ARGS` in the sandbox's
/// fleet, stdin not a terminal.
fn post_provision(s: &Sandbox, vmid: &str, more: &[&str]) -> Output {
    let port = s.var("SANDBOX_VM_PORT");
    crate::support::vmctl_cmd()
        .current_dir(fleet(s))
        .envs(s.env.iter().cloned())
        .args(["post-provision", "test-automation", "127.0.0.110", vmid])
        .args(["--port", &port])
        .args(more)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The same in a pseudo-terminal (util-linux `script`), answering `answer` to the question;
/// `redirect` is appended to the command line run there (`2>FILE`: stderr is no terminal).
fn post_provision_at_a_terminal(s: &Sandbox, answer: &str, redirect: &str) -> Output {
    let line = format!(
        "{} post-provision test-automation 127.0.0.110 110 --port {} {redirect}",
        env!("CARGO_BIN_EXE_vmctl"),
        s.var("SANDBOX_VM_PORT")
    );
    let mut child = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .current_dir(fleet(s))
        .envs(s.env.iter().cloned())
        .env_remove("VMCTL_FLEET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{answer}\n").as_bytes()).unwrap();
    // Kept open until vmctl is done: `script` ends the session when its input ends.
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    out
}

/// The fleet as it was: every file byte for byte, HEAD, and no journal.
struct Before {
    files: Vec<(String, Vec<u8>)>,
    head: String,
}

impl Before {
    fn take(root: &Path) -> Before {
        Before {
            files: files(root),
            head: git(root, &["rev-parse", "HEAD"]),
        }
    }

    fn assert_unchanged(&self, root: &Path, case: &str) {
        assert!(
            files(root) == self.files,
            "{case}: the fleet's files changed"
        );
        assert_eq!(git(root, &["rev-parse", "HEAD"]), self.head, "{case}");
        assert!(
            !root.join(".vmctl/journal/test-automation.json").exists(),
            "{case}: a journal was left"
        );
    }
}

/// `SHA256:…` of a public key file, as ssh-keygen prints it: the oracle for vmctl's own.
fn ssh_fingerprint(public: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(public)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

/// The secrets the VM must be able to read: all but other hosts' own.
fn secrets(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.join("secrets")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let s = p.to_string_lossy().to_string();
            if p.is_dir() {
                stack.push(p);
            } else if !s.contains("secrets/hosts/") || s.contains("test-automation") {
                out.push(p);
            }
        }
    }
    assert!(!out.is_empty());
    out
}

fn sops_decrypts(file: &Path, identity: &str) -> Output {
    Command::new(sops_bin())
        .arg("-d")
        .arg(file)
        .env("SOPS_AGE_KEY", identity)
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("SOPS_AGE_SSH_PRIVATE_KEY_FILE")
        .output()
        .unwrap()
}

#[test]
fn post_provision_refuses_until_the_key_is_accepted_then_integrates_it() {
    require_tool("ssh-keyscan");
    require_tool("ssh-keygen");
    require_tool("script");
    let s = Sandbox::up_env(&[], &[]);
    let root = fleet(&s);
    let before = Before::take(&root);
    let any = "SHA256:R68xFgd4FyQMczeAJ7CUqc/etLo3bZ5Et5ClnA1ntjo";

    // VMID 110 is not on the cluster yet: refused, nothing changed.
    let out = post_provision(&s, "110", &["--accept-fingerprint", any]);
    let err = unwrapped(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(says(&err, "VM 110 is not on the cluster"), "{err}");
    before.assert_unchanged(&root, "not on the cluster");

    // VMID 110 is another VM on the cluster: refused before its key is even fetched, even with
    // that VM's exact fingerprint.
    s.pve("qm clone 9001 110 --name intruder --full 1 --storage nvmeprom && qm start 110");
    let intruder = ssh_fingerprint(&s.guest_file(110, "root/etc/ssh/ssh_host_ed25519_key.pub"));
    let out = post_provision(&s, "110", &["--accept-fingerprint", &intruder]);
    let err = unwrapped(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(says(&err, "VM 110 on the cluster is `intruder`"), "{err}");
    assert!(!says(&err, &intruder), "the key was fetched: {err}");
    before.assert_unchanged(&root, "another VM's VMID");
    // A VMID the definition does not give the VM: refused before connecting.
    let out = post_provision(&s, "111", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(says(
        &text(&out.stderr),
        "has vmid 110 in vms/definitions.nix, not 111"
    ));

    // The VM itself, installed outside vmctl: its first boot made its host key.
    s.pve(
        "qm stop 110 && qm destroy 110 --purge 1 && \
         qm clone 9001 110 --name test-automation --full 1 --storage nvmeprom && qm start 110",
    );
    let public = s.guest_file(110, "root/etc/ssh/ssh_host_ed25519_key.pub");
    let fp = ssh_fingerprint(&public);
    assert_ne!(fp, intruder);
    let conv = crate::support::vmctl_cmd()
        .args(["keys", "to-age", "--private"])
        .arg(s.guest_file(110, "root/etc/ssh/ssh_host_ed25519_key"))
        .output()
        .unwrap();
    assert!(conv.status.success(), "{}", text(&conv.stderr));
    let identity = text(&conv.stdout).trim().to_string();
    // Before: the VM's identity reads no secret (so the check after can fail).
    let common = root.join("secrets/common.yaml");
    assert!(!sops_decrypts(&common, &identity).status.success());

    // No flag and no terminal: the fingerprint is shown with the flag to pass; exit 2.
    let out = post_provision(&s, "110", &[]);
    let err = unwrapped(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(says(&err, &format!("--accept-fingerprint {fp}")), "{err}");
    assert!(says(&err, "never trusts a host key on first use"), "{err}");
    before.assert_unchanged(&root, "no flag");
    let out = post_provision(&s, "110", &["--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["exit"], 2, "{v}");
    assert!(v["error"]["help"].as_str().unwrap().contains(&fp), "{v}");

    // A wrong fingerprint (the intruder's): exit 1, nothing changed.
    let out = post_provision(&s, "110", &["--accept-fingerprint", &intruder]);
    let err = unwrapped(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        says(&err, &format!("has fingerprint {fp}, not {intruder}")),
        "{err}"
    );
    assert!(says(&err, "nothing was changed"), "{err}");
    before.assert_unchanged(&root, "wrong fingerprint");

    // The dry run: the same key, every change, nothing written.
    let out = post_provision(&s, "110", &["--dry-run", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["fingerprint"], fp.as_str());
    let shown: Vec<&str> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["file"].as_str().unwrap())
        .collect();
    assert!(
        shown.contains(&"hosts.nix") && shown.contains(&".sops.yaml"),
        "{v}"
    );
    assert_eq!(
        v["secrets"],
        serde_json::json!(["secrets/common.yaml"]),
        "{v}"
    );
    before.assert_unchanged(&root, "--dry-run");

    // At a terminal, anything but `yes` is a no.
    // A terminal on stdin alone is nobody to ask (the question goes to stderr): exit 2.
    let log = s.dir.join("stderr.log");
    let out = post_provision_at_a_terminal(&s, "yes", &format!("2>{}", log.display()));
    let err = std::fs::read_to_string(&log).unwrap();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!says(&err, "Type `yes`"), "{err}");
    assert!(says(&err, &format!("--accept-fingerprint {fp}")), "{err}");
    before.assert_unchanged(&root, "stderr not a terminal");
    let out = post_provision_at_a_terminal(&s, "no", "");
    let all = unwrapped(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(says(&all, &fp) && says(&all, "Type `yes`"), "{all}");
    assert!(says(&all, "was not accepted"), "{all}");
    before.assert_unchanged(&root, "answered no");

    // The right fingerprint: integrated and committed.
    let out = post_provision(&s, "110", &["--accept-fingerprint", &fp, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dry_run"], false, "{v}");
    assert_eq!(v["written"], true, "{v}");
    assert_eq!(v["fingerprint"], fp.as_str(), "{v}");
    assert_eq!(
        v["secrets"],
        serde_json::json!(["secrets/common.yaml"]),
        "{v}"
    );
    assert_eq!(
        v["commit"],
        git(&root, &["rev-parse", "HEAD"]).as_str(),
        "{v}"
    );
    let b64 = std::fs::read_to_string(&public).unwrap();
    let b64 = b64.split_whitespace().nth(1).unwrap();
    let hosts = std::fs::read_to_string(root.join("hosts.nix")).unwrap();
    assert!(hosts.contains(b64), "{hosts}");
    let log = git(
        &root,
        &["log", "--format=%s", &format!("{}..HEAD", before.head)],
    );
    assert_eq!(log, "feat(vms): post-provision test-automation (VMID 110)");
    let msg = git(&root, &["log", "-1", "--format=%B"]);
    for t in [
        "VMID: 110".to_string(),
        "Node: prom".to_string(),
        format!("Host-Key-Fingerprint: {fp}"),
        "Age-Recipient: age1".to_string(),
        "Host-Key-Accepted-By: --accept-fingerprint".to_string(),
    ] {
        assert!(msg.contains(&t), "no {t:?}: {msg}");
    }
    let changed = git(&root, &["diff", "--name-only", "HEAD~1", "HEAD"]);
    for f in changed.lines() {
        assert!(
            ["hosts.nix", ".sops.yaml", "docs/machines.md"].contains(&f)
                || f.starts_with("secrets/")
                || f.starts_with("hosts/test-automation/"),
            "the commit holds {f}: {changed}"
        );
    }
    assert!(git(&root, &["status", "--porcelain"]).is_empty());
    // The VM's own identity, from its private host key, decrypts every secret it is for.
    for f in secrets(&root) {
        let d = sops_decrypts(&f, &identity);
        assert!(
            d.status.success(),
            "sops -d {} with the VM's identity: {}",
            f.display(),
            text(&d.stderr)
        );
    }

    // Again: nothing to do, nothing asked, no commit.
    let head = git(&root, &["rev-parse", "HEAD"]);
    let out = post_provision(&s, "110", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("nothing to do"));
    assert_eq!(git(&root, &["rev-parse", "HEAD"]), head);

    // From the start again, accepted by a person at a terminal.
    git(&root, &["reset", "-q", "--hard", &before.head]);
    before.assert_unchanged(&root, "reset");
    let out = post_provision_at_a_terminal(&s, "yes", "");
    let all = unwrapped(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(says(&all, "integrated `test-automation`"), "{all}");
    assert_eq!(
        git(
            &root,
            &["log", "--format=%s", &format!("{}..HEAD", before.head)]
        ),
        "feat(vms): post-provision test-automation (VMID 110)"
    );
    assert!(git(&root, &["log", "-1", "--format=%B"])
        .contains("Host-Key-Accepted-By: yes at a terminal"));
    assert!(sops_decrypts(&common, &identity).status.success());
}
