//! The one applier, driven through the built binary: 16 concurrent writers, a re-key racing
//! another writer, symlinked files, the mode of a private key while it is being written, the
//! sops fallback killed mid-write, and the fleet lock.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::secrets::{Env, ADMIN, FIX, NEWVM, OLDHOST};
use crate::support::{demo_fleet, new_public_key, text, vmctl};

fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn temps_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".vmctl-"))
        .collect()
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn sixteen_concurrent_hosts_add_keep_every_entry() {
    let fleet = demo_fleet();
    let root = fleet.path();
    let keys: Vec<String> = (0..16).map(|_| new_public_key(Some("root@test"))).collect();
    let children: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            crate::support::vmctl_cmd()
                .arg("--fleet")
                .arg(root)
                .args(["hosts", "add", &format!("host{i:02}"), "--key", key])
                .env_remove("VMCTL_FLEET")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    }
    let hosts = std::fs::read_to_string(root.join("hosts.nix")).unwrap();
    for (i, key) in keys.iter().enumerate() {
        assert!(
            hosts.contains(&format!("host{i:02} = {{")),
            "host{i:02} lost:\n{hosts}"
        );
        assert!(hosts.contains(key.as_str()), "key of host{i:02} lost");
    }
    // Real Nix parses and evaluates the result: 2 hosts + _proxmox + 16 new entries.
    let v = support::nix_eval_json(&root.join("hosts.nix")).expect("hosts.nix evaluates");
    assert_eq!(v.as_object().unwrap().len(), 19);
    assert!(temps_in(root).is_empty(), "temp files left behind");
}

#[test]
fn a_held_lock_makes_a_writer_wait_and_then_give_up_without_writing() {
    let fleet = demo_fleet();
    let root = fleet.path();
    std::fs::create_dir_all(root.join(".vmctl")).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join(".vmctl/lock"))
        .unwrap();
    lock.lock().unwrap();
    let before = std::fs::read(root.join("hosts.nix")).unwrap();
    let o = crate::support::vmctl_cmd()
        .arg("--fleet")
        .arg(root)
        .args([
            "hosts",
            "add",
            "web",
            "--key",
            &new_public_key(Some("root@test")),
        ])
        .env("VMCTL_LOCK_TIMEOUT", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("another vmctl is changing this fleet"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(std::fs::read(root.join("hosts.nix")).unwrap(), before);
    lock.unlock().unwrap();
    let o = vmctl(
        root,
        &[
            "hosts",
            "add",
            "web",
            "--key",
            &new_public_key(Some("root@test")),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

#[test]
fn rekey_racing_a_writer_refuses_and_keeps_the_writers_update() {
    let env = Env::new();
    let file = env.encrypt(
        "app.yaml",
        "db:\n    password: hunter2\n",
        &[ADMIN, OLDHOST],
    );
    env.write_rule(&[ADMIN, OLDHOST, NEWVM]);
    // What another writer (an editor, another tool) puts there meanwhile: a valid sops file.
    let theirs_path = env.encrypt(
        "theirs.yaml",
        "db:\n    password: changed-by-them\n",
        &[ADMIN, OLDHOST],
    );
    let theirs = std::fs::read(&theirs_path).unwrap();
    let hooks = tempfile::tempdir().unwrap();
    // Only the pause before the renames is wanted here.
    std::fs::write(hooks.path().join("temp-created.go"), "").unwrap();
    let child = env
        .vmctl()
        .args(["secrets", "rekey", "-i"])
        .arg(env.key("admin"))
        .arg(&file)
        .env("VMCTL_TEST_HOOK_DIR", hooks.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // vmctl has read the file and staged its re-keyed version: now the other writer writes.
    wait_for(&hooks.path().join("before-commit.ready"));
    std::fs::write(&file, &theirs).unwrap();
    std::fs::write(hooks.path().join("before-commit.go"), "").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert!(
        text(&o.stdout).contains("changed while vmctl was editing it"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        theirs,
        "the writer's update was lost"
    );
    assert!(temps_in(&env.fleet().join("secrets")).is_empty());

    // Run again: the writer's version is re-keyed, its value intact.
    let o = env
        .vmctl()
        .args(["secrets", "rekey", "-i"])
        .arg(env.key("admin"))
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    let d = env.sops_decrypt(&file, "newvm");
    assert!(
        text(&d.stdout).contains("changed-by-them"),
        "{}",
        text(&d.stderr)
    );
}

#[cfg(unix)]
#[test]
fn symlinked_hosts_nix_and_secret_stay_links_and_their_targets_change() {
    use std::os::unix::fs::symlink;

    let fleet = demo_fleet();
    let root = fleet.path();
    std::fs::create_dir(root.join("identity")).unwrap();
    std::fs::rename(root.join("hosts.nix"), root.join("identity/hosts.nix")).unwrap();
    symlink("identity/hosts.nix", root.join("hosts.nix")).unwrap();
    let o = vmctl(
        root,
        &[
            "hosts",
            "add",
            "web",
            "--key",
            &new_public_key(Some("root@test")),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(std::fs::symlink_metadata(root.join("hosts.nix"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(root.join("identity/hosts.nix"))
        .unwrap()
        .contains("web = {"));

    let env = Env::new();
    let real = env.encrypt(
        "app.yaml",
        "db:\n    password: hunter2\n",
        &[ADMIN, OLDHOST],
    );
    std::fs::create_dir(env.fleet().join("vault")).unwrap();
    let target = env.fleet().join("vault/app.yaml");
    std::fs::rename(&real, &target).unwrap();
    symlink("../vault/app.yaml", &real).unwrap();
    env.write_rule(&[ADMIN, OLDHOST, NEWVM]);
    let o = env
        .vmctl()
        .args(["secrets", "rekey", "-i"])
        .arg(env.key("admin"))
        .arg(&real)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(std::fs::symlink_metadata(&real)
        .unwrap()
        .file_type()
        .is_symlink());
    let d = env.sops_decrypt(&target, "newvm");
    assert!(d.status.success(), "{}", text(&d.stderr));
}

#[cfg(unix)]
#[test]
fn a_generated_private_key_is_never_readable_by_others() {
    use std::os::unix::process::CommandExt;

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keys");
    let hooks = tempfile::tempdir().unwrap();
    let mut cmd = crate::support::vmctl_cmd();
    cmd.args(["keys", "generate", "--out"])
        .arg(&out)
        .env("VMCTL_TEST_HOOK_DIR", hooks.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // With umask 0 a file created with the default mode would be world-readable: the mode
    // must come from vmctl, not from the umask.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    // The private key's temp file, right after it was created and before any byte is in it.
    wait_for(&hooks.path().join("temp-created.ready"));
    let tmp =
        PathBuf::from(std::fs::read_to_string(hooks.path().join("temp-created.ready")).unwrap());
    assert!(
        tmp.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".ssh_host_ed25519_key.vmctl-tmp-"),
        "{}",
        tmp.display()
    );
    assert_eq!(
        mode(&tmp),
        0o600,
        "the temp file was born with another mode"
    );
    std::fs::write(hooks.path().join("temp-created.go"), "").unwrap();
    // Both temp files written, before the renames: the private key is in its temp, 0600.
    wait_for(&hooks.path().join("before-commit.ready"));
    let private_tmp: Vec<PathBuf> = temps_in(&out)
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains(".pub."))
        .collect();
    assert_eq!(private_tmp.len(), 1, "{private_tmp:?}");
    assert!(
        std::fs::metadata(&private_tmp[0]).unwrap().len() > 100,
        "the key is written by now"
    );
    assert_eq!(mode(&private_tmp[0]), 0o600);
    std::fs::write(hooks.path().join("before-commit.go"), "").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(mode(&out.join("ssh_host_ed25519_key")), 0o600);
    assert_eq!(mode(&out.join("ssh_host_ed25519_key.pub")), 0o644);
    assert!(temps_in(&out).is_empty());
}

/// A stand-in for sops that writes garbage into the file (as a sops killed mid-write leaves
/// it), records its PID, then hangs until killed.
fn dying_sops(env: &Env) -> (PathBuf, PathBuf) {
    let script = env.path("dying-sops");
    let pid = env.path("sops.pid");
    crate::support::write_script(
        &script,
        &format!(
            "#!/bin/sh\nfor last; do :; done\nprintf 'half a file from a dying sops' > \"$last\"\necho $$ > '{}'\nexec sleep 60\n",
            pid.display()
        ),
    );
    (script, pid)
}

/// A file re-keyed by the sops fallback (it holds pgp keys).
fn fallback_file(env: &Env) -> PathBuf {
    let dest = env.fleet().join("secrets/host.yaml");
    std::fs::copy(format!("{FIX}/sops-nix/secrets.yaml"), &dest).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    env.write_rule(&[ADMIN, OLDHOST, NEWVM]);
    dest
}

fn read_pid(pid: &Path) -> i32 {
    wait_for(pid);
    let start = Instant::now();
    loop {
        if let Ok(n) = std::fs::read_to_string(pid).unwrap().trim().parse() {
            return n;
        }
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `vmctl secrets rekey` of `file` through the sops CLI at `sops`, started in the background.
#[cfg(unix)]
fn rekey_with_fallback(env: &Env, sops: &Path, file: &Path) -> std::process::Child {
    env.vmctl()
        .args(["secrets", "rekey", "--sops"])
        .arg(sops)
        .arg("-i")
        .arg(env.key("admin"))
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[cfg(unix)]
#[test]
fn kill_9_of_the_sops_fallback_mid_write_restores_the_original() {
    let env = Env::new();
    let file = fallback_file(&env);
    let original = std::fs::read(&file).unwrap();
    let (sops, pid) = dying_sops(&env);
    let child = rekey_with_fallback(&env, &sops, &file);
    let sops_pid = read_pid(&pid);
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"half a file from a dying sops"
    );
    assert_eq!(unsafe { libc::kill(sops_pid, libc::SIGKILL) }, 0);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert!(
        text(&o.stdout).contains("the original file was restored"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(std::fs::read(&file).unwrap(), original);
    assert_eq!(mode(&file), 0o640, "the restored file keeps its mode");
    assert!(
        temps_in(&env.fleet().join("secrets")).is_empty(),
        "no copy left behind"
    );
}

#[cfg(unix)]
#[test]
fn sigterm_to_vmctl_while_sops_runs_restores_the_original_and_ends_sops() {
    let env = Env::new();
    let file = fallback_file(&env);
    let original = std::fs::read(&file).unwrap();
    let (sops, pid) = dying_sops(&env);
    let child = rekey_with_fallback(&env, &sops, &file);
    let sops_pid = read_pid(&pid);
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(128 + libc::SIGTERM),
        "{}",
        text(&o.stderr)
    );
    assert!(
        text(&o.stderr).contains("the original file was restored"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(std::fs::read(&file).unwrap(), original);
    assert!(temps_in(&env.fleet().join("secrets")).is_empty());
    // vmctl killed and reaped its sops: the PID is gone.
    assert_eq!(unsafe { libc::kill(sops_pid, 0) }, -1, "sops still runs");
}

#[test]
fn a_copy_left_by_an_interrupted_run_stops_the_next_one() {
    let env = Env::new();
    let file = fallback_file(&env);
    let original = std::fs::read(&file).unwrap();
    let copy = env.fleet().join("secrets/.host.yaml.vmctl-orig");
    std::fs::write(&copy, b"the original from an interrupted run").unwrap();
    let o = env
        .vmctl()
        .args(["secrets", "rekey", "-i"])
        .arg(env.key("admin"))
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert!(
        text(&o.stdout).contains("was interrupted"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(std::fs::read(&file).unwrap(), original);
    assert!(copy.exists(), "the copy is the user's to restore");
}

#[test]
fn the_lock_directory_never_shows_up_in_git() {
    support::require_tool("git");
    let fleet = demo_fleet();
    let root = fleet.path();
    let git = |args: &[&str]| {
        let o = Command::new("git")
            .current_dir(root)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", root)
            .output()
            .unwrap();
        assert!(o.status.success(), "git {args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    let o = vmctl(
        root,
        &[
            "hosts",
            "add",
            "web",
            "--key",
            &new_public_key(Some("root@test")),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(root.join(".vmctl/lock").exists());
    let status = git(&["status", "--porcelain", "--untracked-files=all"]);
    assert!(status.lines().any(|l| l == "AM hosts.nix"), "{status}");
    assert!(!status.contains(".vmctl"), "{status}");
}

#[test]
fn the_sops_fallback_success_path_leaves_no_copy_and_the_real_sops_decrypts() {
    let env = Env::new();
    let file = fallback_file(&env);
    let o = env
        .vmctl()
        .args(["secrets", "rekey", "-i"])
        .arg(env.key("admin"))
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("(sops:"), "{}", text(&o.stdout));
    assert!(temps_in(&env.fleet().join("secrets")).is_empty());
    let d = env.sops_decrypt(&file, "newvm");
    assert!(d.status.success(), "{}", text(&d.stderr));
}

/// Checks the common shape of `--json` (docs/json-output.md, "File changes").
fn assert_common_shape(what: &str, v: &serde_json::Value, dry_run: bool) {
    assert_eq!(v["dry_run"], dry_run, "{what}: {v}");
    assert!(v["written"].is_boolean(), "{what}: {v}");
    let changes = v["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: {v}"));
    assert!(!changes.is_empty(), "{what}: {v}");
    for c in changes {
        assert!(c["file"].is_string(), "{what}: {c}");
        assert!(
            ["create", "modify", "unchanged"].contains(&c["action"].as_str().unwrap()),
            "{what}: {c}"
        );
        assert!(c["summary"].is_string(), "{what}: {c}");
        assert_eq!(
            c["written"],
            !dry_run && c["action"] != "unchanged",
            "{what}: {c}"
        );
        assert!(c["diff"].is_string() || c["diff"].is_null(), "{what}: {c}");
    }
}

#[test]
fn every_writer_reports_changes_in_one_json_shape_and_one_diff_style() {
    let fleet = demo_fleet();
    let root = fleet.path();
    std::fs::copy(support::repo().join(".sops.yaml"), root.join(".sops.yaml")).unwrap();
    let json = |args: &[&str]| -> serde_json::Value {
        let o = vmctl(root, args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o.stderr));
        serde_json::from_str(&text(&o.stdout)).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    };
    let key = new_public_key(Some("root@test"));
    let hosts = json(&["hosts", "add", "web", "--key", &key, "--dry-run", "--json"]);
    assert_common_shape("hosts", &hosts, true);
    let sops = json(&["sops", "add-recipient", "web", &key, "--dry-run", "--json"]);
    assert_common_shape("sops", &sops, true);
    let docs = json(&["docs", "--dry-run", "--json"]);
    assert_common_shape("docs", &docs, true);
    let _ = std::fs::remove_dir_all(root.join("hosts/test-automation"));
    let scaffold = json(&["scaffold", "test-automation", "--dry-run", "--json"]);
    assert_common_shape("scaffold", &scaffold, true);
    let out = tempfile::tempdir().unwrap();
    let keys = json(&[
        "keys",
        "generate",
        "--json",
        "--out",
        &out.path().join("k").display().to_string(),
    ]);
    assert_common_shape("keys", &keys, false);
    let private = &keys["changes"][0];
    assert_eq!(
        private["diff"],
        serde_json::Value::Null,
        "a private key is never shown"
    );
    assert_eq!(private["mode"], "0600");

    // One diff style for every --dry-run: `a/` and `b/` headers with the fleet-relative name.
    for (args, file) in [
        (
            vec!["hosts", "add", "web", "--key", key.as_str(), "--dry-run"],
            "hosts.nix",
        ),
        (
            vec!["sops", "add-recipient", "web", key.as_str(), "--dry-run"],
            ".sops.yaml",
        ),
        (vec!["docs", "--dry-run"], "docs/machines.md"),
    ] {
        let o = vmctl(root, &args);
        let out = text(&o.stdout);
        assert!(out.contains(&format!("+++ b/{file}\n")), "{args:?}:\n{out}");
    }
    let o = vmctl(root, &["scaffold", "test-automation", "--dry-run"]);
    assert!(
        text(&o.stdout).contains("--- /dev/null\n+++ b/hosts/test-automation/"),
        "{}",
        text(&o.stdout)
    );
}
