//! `vmctl destroy` over the sandbox (scripts/sandbox.sh): the real binary against the Proxmox
//! simulator behind a real sshd, after a real `vmctl provision` of the demo VM; real git, and
//! the real sops as the oracle of who can still decrypt what.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::provision_sandbox::turn;
use crate::sandbox::Sandbox;
use crate::support::secrets::sops_bin;
use crate::support::{fleet_files as files, git};
use crate::support::{text, unwrapped};

const NAME: &str = "test-automation";

fn up() -> Sandbox {
    Sandbox::up()
}

fn fleet(s: &Sandbox) -> PathBuf {
    s.dir.join("fleet")
}

fn vmctl(s: &Sandbox, args: &[&str]) -> Output {
    crate::support::vmctl_cmd()
        .current_dir(fleet(s))
        .envs(s.env.iter().cloned())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn provision(s: &Sandbox) {
    let key = s.var("SANDBOX_ADMIN_KEY");
    let out = vmctl(s, &["provision", NAME, "--identity", &key]);
    assert!(out.status.success(), "provision: {}", text(&out.stderr));
}

fn destroy(s: &Sandbox, more: &[&str]) -> Output {
    let mut args = vec!["destroy", NAME, "--confirm", NAME];
    args.extend_from_slice(more);
    vmctl(s, &args)
}

/// The simulator's argv log: every Proxmox command run so far.
fn argv_log(s: &Sandbox) -> usize {
    std::fs::read_to_string(s.dir.join("pve/state/argv.jsonl"))
        .unwrap_or_default()
        .lines()
        .count()
}

/// The age identity of an OpenSSH private key file, as `vmctl keys to-age --private` gives it.
fn age_identity(private: &Path) -> String {
    let out = crate::support::vmctl_cmd()
        .args(["keys", "to-age", "--private"])
        .arg(private)
        .output()
        .unwrap();
    assert!(out.status.success(), "keys to-age: {}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_string();
    assert!(id.starts_with("AGE-SECRET-KEY-"), "not an age identity");
    id
}

/// The removed VM's identity: from the host key its sshd presented (the one hosts.nix
/// pinned), read from the guest's disk before the destroy removes it.
fn vm_identity(s: &Sandbox) -> String {
    let public =
        std::fs::read_to_string(s.guest_file(110, "root/etc/ssh/ssh_host_ed25519_key.pub"))
            .unwrap();
    let b64 = public.split_whitespace().nth(1).unwrap().to_string();
    let hosts = std::fs::read_to_string(fleet(s).join("hosts.nix")).unwrap();
    assert!(hosts.contains(&b64), "hosts.nix does not pin the VM's key");
    age_identity(&s.guest_file(110, "root/etc/ssh/ssh_host_ed25519_key"))
}

/// `sops -d FILE` with only `identity`.
fn sops_decrypt(file: &Path, identity: &str) -> Output {
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

/// Every secret file of the fleet but other hosts' own (those never had the VM).
fn secrets(root: &Path) -> Vec<PathBuf> {
    files(root)
        .into_iter()
        .map(|(rel, _)| rel)
        .filter(|rel| rel.starts_with("secrets/") && !rel.starts_with("secrets/hosts/"))
        .map(|rel| root.join(rel))
        .collect()
}

/// The values of `now` under the sops metadata of `old` (a copy the removed host kept): what
/// the old data key would open if the values had kept it.
fn splice(old: &str, now: &str) -> String {
    let meta = |t: &str| t.find("\nsops:").expect("a sops YAML file") + 1;
    format!("{}{}", &now[..meta(now)], &old[meta(old)..])
}

#[test]
fn refusals_then_keep_definition_restores_every_file_then_rotate_locks_the_vm_out() {
    let _turn = turn();
    let s = up();
    let root = fleet(&s);
    // The sandbox's copy declares the demo VM's address statically without regenerating
    // machines.md, which provision then brings up to date: regenerate it first, so the
    // snapshot is a consistent fleet.
    let docs = vmctl(&s, &["docs"]);
    assert!(docs.status.success(), "vmctl docs: {}", text(&docs.stderr));
    if !git(&root, &["status", "--porcelain", "docs/machines.md"]).is_empty() {
        git(
            &root,
            &[
                "commit",
                "-q",
                "-m",
                "docs: regenerate",
                "--",
                "docs/machines.md",
            ],
        );
    }
    let before = files(&root);
    let qm_before = s.pve("qm list");
    provision(&s);
    let identity = vm_identity(&s);
    let common = root.join("secrets/common.yaml");
    let copy_1 = std::fs::read_to_string(&common).unwrap();
    assert!(sops_decrypt(&common, &identity).status.success());

    // Refused, and nothing changes: not a file, not one Proxmox command.
    let provisioned = files(&root);
    let head = git(&root, &["rev-parse", "HEAD"]);
    let log = argv_log(&s);
    for (args, code, says) in [
        (
            vec!["destroy", "doc1", "--confirm", "doc1"],
            2,
            "imported VM",
        ),
        (
            vec!["destroy", "igpu", "--confirm", "igpu", "--rotate"],
            2,
            "imported VM",
        ),
        (
            vec!["destroy", NAME, "--confirm", "test-automatio"],
            1,
            "--confirm `test-automatio` is not `test-automation`",
        ),
    ] {
        let out = vmctl(&s, &args);
        let err = unwrapped(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(files(&root) == provisioned, "{args:?} changed a file");
        assert_eq!(argv_log(&s), log, "{args:?} sent a Proxmox command");
        assert_eq!(git(&root, &["rev-parse", "HEAD"]), head);
    }

    // The dry run lists the exact commands and changes nothing: it only reads the cluster.
    let out = destroy(&s, &["--keep-definition", "--dry-run", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["commands"][0], "qm stop 110");
    assert_eq!(plan["commands"][1], "qm destroy 110 --purge 1");
    assert_eq!(plan["rekeyed_secrets"][0], "secrets/common.yaml");
    assert!(files(&root) == provisioned);
    let sent = std::fs::read_to_string(s.dir.join("pve/state/argv.jsonl")).unwrap();
    for line in sent.lines().skip(log) {
        let argv: Vec<String> = serde_json::from_str(line).unwrap();
        let w: Vec<&str> = argv.iter().map(String::as_str).collect();
        assert!(
            matches!(w.as_slice(), ["pvesh", "get", ..] | ["qm", "config", ..]),
            "the dry run sent {w:?}"
        );
    }
    assert!(s.pve("qm status 110").contains("running"));

    // 1. --keep-definition: the VM goes and every fleet file is as before the provision.
    let out = destroy(&s, &["--keep-definition"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "destroy: {err}");
    assert!(unwrapped(&out.stderr).contains("pass --rotate"), "{err}");
    assert_eq!(
        s.pve("qm list"),
        qm_before,
        "VM 110 is still on the cluster"
    );
    let after = files(&root);
    for ((a, x), (b, y)) in after.iter().zip(&before) {
        assert_eq!(a, b);
        assert!(x == y, "{a} is not byte-for-byte as before the provision");
    }
    assert_eq!(after.len(), before.len());
    let msg = git(&root, &["log", "-1", "--format=%B"]);
    for t in [
        "feat(vms): destroy test-automation (VMID 110)",
        "VMID: 110",
        "Node: prom",
        "Host-Key-Fingerprint: SHA256:",
        "Age-Recipient: age1",
        "Definition: kept",
        "Rotated: no",
    ] {
        assert!(msg.contains(t), "no {t:?} in {msg}");
    }
    assert!(git(&root, &["status", "--porcelain"]).is_empty());
    // Re-keying alone: the removed identity no longer opens the current file, but the old data
    // key still opens its values (the splice decrypts): what --rotate is for.
    let now = std::fs::read_to_string(&common).unwrap();
    assert!(!sops_decrypt(&common, &identity).status.success());
    let spliced = root.join("spliced.yaml");
    std::fs::write(&spliced, splice(&copy_1, &now)).unwrap();
    let d = sops_decrypt(&spliced, &identity);
    assert!(
        d.status.success(),
        "without rotation the old key must still open the values: {}",
        text(&d.stderr)
    );
    std::fs::remove_file(&spliced).unwrap();

    // 2. Provision again, then destroy with --rotate and without --keep-definition.
    provision(&s);
    let identity = vm_identity(&s);
    let copy_2 = std::fs::read_to_string(&common).unwrap();
    let head = git(&root, &["rev-parse", "HEAD"]);
    let out = destroy(&s, &["--rotate"]);
    assert!(
        out.status.success(),
        "destroy --rotate: {}",
        text(&out.stderr)
    );
    assert_eq!(s.pve("qm list"), qm_before);
    let admin = age_identity(Path::new(&s.var("SANDBOX_ADMIN_KEY")));
    let all = secrets(&root);
    assert!(!all.is_empty());
    for f in &all {
        let d = sops_decrypt(f, &identity);
        assert!(
            !d.status.success(),
            "the removed identity still decrypts {}",
            f.display()
        );
        let d = sops_decrypt(f, &admin);
        assert!(
            d.status.success(),
            "the admin cannot decrypt {}: {}",
            f.display(),
            text(&d.stderr)
        );
    }
    // The old data key opens none of the rotated values.
    let now = std::fs::read_to_string(&common).unwrap();
    std::fs::write(&spliced, splice(&copy_2, &now)).unwrap();
    let d = sops_decrypt(&spliced, &identity);
    assert!(
        !d.status.success(),
        "the old data key still opens the rotated values"
    );
    std::fs::remove_file(&spliced).unwrap();
    // The definition and the scaffold are gone; the rest is as before; it lints clean.
    let defs = std::fs::read_to_string(root.join("vms/definitions.nix")).unwrap();
    assert!(!defs.contains("test-automation ="), "{defs}");
    assert!(!root.join("hosts/test-automation").exists());
    for f in ["hosts.nix", ".sops.yaml"] {
        let b = &before.iter().find(|(p, _)| p == f).unwrap().1;
        assert!(&std::fs::read(root.join(f)).unwrap() == b, "{f}");
    }
    let lint = vmctl(&s, &["lint"]);
    assert!(
        lint.status.success(),
        "the fleet does not lint clean after the destroy: {}{}",
        text(&lint.stdout),
        text(&lint.stderr)
    );
    let changed = git(&root, &["diff", "--name-only", &head, "HEAD"]);
    let mut changed: Vec<&str> = changed.lines().collect();
    changed.sort();
    assert_eq!(
        changed,
        [
            ".sops.yaml",
            "docs/machines.md",
            "hosts.nix",
            "hosts/test-automation/configuration.nix",
            "secrets/common.yaml",
            "vms/definitions.nix"
        ]
    );
    let msg = git(&root, &["log", "-1", "--format=%B"]);
    assert!(
        msg.contains("Definition: removed") && msg.contains("Rotated: yes"),
        "{msg}"
    );
    assert!(git(&root, &["status", "--porcelain"]).is_empty());
}

/// Starts `vmctl destroy` with the simulator delaying the first command that starts with
/// `prefix`, waits until that command is sent, and kills vmctl with SIGKILL (and the ssh
/// ControlMaster it leaves behind, by PID).
fn crash_at(s: &Sandbox, prefix: &str) {
    let faults = s.dir.join("pve/state/faults.json");
    std::fs::write(
        &faults,
        format!(r#"[{{"match": "{prefix}", "action": "delay", "ms": 1500, "times": 1}}]"#),
    )
    .unwrap();
    let log0 = argv_log(s);
    let mut child = crate::support::vmctl_cmd()
        .current_dir(fleet(s))
        .envs(s.env.iter().cloned())
        .args(["destroy", NAME, "--confirm", NAME])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let words: Vec<String> = prefix.split(' ').map(str::to_string).collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let sent = std::fs::read_to_string(s.dir.join("pve/state/argv.jsonl"))
            .unwrap_or_default()
            .lines()
            .skip(log0)
            .any(|l| serde_json::from_str::<Vec<String>>(l).is_ok_and(|a| a.starts_with(&words)));
        if sent {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "vmctl ended before `{prefix}`"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "never reached `{prefix}`"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    crate::support::stop_ssh_masters(&s.dir.join("ssh_config"));
    // The delayed command finishes (or dies with its session) before anyone looks.
    std::thread::sleep(std::time::Duration::from_millis(1700));
    std::fs::write(&faults, "[]").unwrap();
}

#[test]
fn kill_9_mid_stop_then_rollback_and_mid_destroy_then_resume() {
    let _turn = turn();
    let s = up();
    let root = fleet(&s);
    provision(&s);
    let head = git(&root, &["rev-parse", "HEAD"]);
    let journal = root.join(".vmctl/journal/destroy/test-automation.json");

    // Uncommitted changes in hosts/test-automation/ are refused (removing it would lose
    // them); a file git does not track stays.
    let config = root.join("hosts/test-automation/configuration.nix");
    std::fs::write(&config, "# edited, not committed\n").unwrap();
    let out = destroy(&s, &["--dry-run"]);
    let err = unwrapped(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("uncommitted changes"), "{err}");
    git(
        &root,
        &["checkout", "--", "hosts/test-automation/configuration.nix"],
    );
    let local = root.join("hosts/test-automation/local.nix");
    std::fs::write(&local, "{ }\n").unwrap();
    let provisioned = files(&root);

    // A protected VM is refused before it is stopped: nothing changes.
    s.pve("qm set 110 --protection 1");
    let log0 = argv_log(&s);
    let out = destroy(&s, &[]);
    let err = unwrapped(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("protect"), "{err}");
    assert!(s.pve("qm status 110").contains("running"));
    let sent = std::fs::read_to_string(s.dir.join("pve/state/argv.jsonl")).unwrap();
    let mutated = sent
        .lines()
        .skip(log0)
        .any(|l| l.contains("\"stop\"") || l.contains("\"destroy\""));
    assert!(!mutated, "a protected VM got a mutation: {sent}");
    assert!(files(&root) == provisioned && !journal.exists());
    s.pve("qm set 110 --protection 0");

    // Killed while stopping: the journal stays; a plain run refuses; --rollback starts the VM
    // again and leaves every file as it was.
    crash_at(&s, "qm stop");
    assert!(journal.is_file(), "no journal after the kill");
    let plain = destroy(&s, &[]);
    assert_eq!(plain.status.code(), Some(1));
    assert!(
        unwrapped(&plain.stderr).contains("--resume"),
        "{}",
        text(&plain.stderr)
    );
    let out = destroy(&s, &["--rollback"]);
    assert!(out.status.success(), "--rollback: {}", text(&out.stderr));
    assert!(s.pve("qm status 110").contains("running"));
    assert!(
        files(&root) == provisioned,
        "the rollback left a file changed"
    );
    assert_eq!(git(&root, &["rev-parse", "HEAD"]), head);
    assert!(!journal.exists());

    // Killed while destroying: --resume finishes the run without repeating the stop.
    crash_at(&s, "qm destroy");
    assert!(journal.is_file(), "no journal after the kill");
    let log0 = argv_log(&s);
    let out = destroy(&s, &["--resume"]);
    assert!(out.status.success(), "--resume: {}", text(&out.stderr));
    let resumed: Vec<Vec<String>> = std::fs::read_to_string(s.dir.join("pve/state/argv.jsonl"))
        .unwrap()
        .lines()
        .skip(log0)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        !resumed
            .iter()
            .any(|a| a.starts_with(&["qm".into(), "stop".into()])),
        "--resume stopped the VM again: {resumed:?}"
    );
    assert!(!s.pve("qm list").contains("test-automation"));
    assert!(
        !config.exists() && local.exists(),
        "only the tracked file goes"
    );
    let subjects = git(&root, &["log", "--format=%s", &format!("{head}..HEAD")]);
    assert_eq!(subjects, "feat(vms): destroy test-automation (VMID 110)");
    assert_eq!(
        git(&root, &["status", "--porcelain", "--untracked-files=all"]),
        "?? hosts/test-automation/local.nix"
    );
    assert!(!journal.exists());
}
