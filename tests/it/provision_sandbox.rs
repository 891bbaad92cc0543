//! `vmctl provision` over the sandbox (scripts/sandbox.sh): the real binary against the Proxmox
//! simulator behind a real sshd, the VM as a real sshd on 127.0.0.110 (a free high port that
//! vmctl and the installer learn from the sandbox's ssh_config), the labelled
//! nixos-anywhere stand-in, real git and the real sops as oracle; and the README's main
//! command (scripts/demo.sh), run exactly as README.md writes it.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use crate::sandbox::Sandbox;
use crate::support::pve::pve_sim_bin;
use crate::support::secrets::{path_with_sops, sops_bin};
use crate::support::{fleet_files as files, git};
use crate::support::{repo, text, unwrapped};

/// The demo VM is 127.0.0.110 in every sandbox these tests bring up, so they take turns.
static VM_110_PORT_22: Mutex<()> = Mutex::new(());

pub(crate) fn turn() -> std::sync::MutexGuard<'static, ()> {
    VM_110_PORT_22.lock().unwrap_or_else(|e| e.into_inner())
}

fn up() -> Sandbox {
    // No port given: a free one, which vmctl finds through VMCTL_SSH_CONFIG (`ssh -G`).
    Sandbox::up()
}

fn fleet(s: &Sandbox) -> std::path::PathBuf {
    s.dir.join("fleet")
}

/// `vmctl ARGS` in the sandbox's fleet, with its environment.
fn vmctl(s: &Sandbox, args: &[&str], extra: &[(&str, &str)]) -> Output {
    crate::support::vmctl_cmd()
        .current_dir(fleet(s))
        .envs(s.env.iter().cloned())
        .envs(extra.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn provision(s: &Sandbox, more: &[&str], extra: &[(&str, &str)]) -> Output {
    let key = s.var("SANDBOX_ADMIN_KEY");
    let mut args = vec!["provision", "test-automation", "--identity", &key];
    args.extend_from_slice(more);
    vmctl(s, &args, extra)
}

#[test]
fn readme_main_command_provisions_the_demo_vm_in_the_sandbox() {
    let readme = crate::support::read_repo("README.md");
    let line = readme
        .lines()
        .find(|l| l.trim_start().starts_with("./scripts/demo.sh"))
        .expect("README.md shows ./scripts/demo.sh as a command line");
    let _turn = turn();
    let tmp = tempfile::tempdir().unwrap();
    // The line as written, from the repository's root; the prebuilt binaries spare a release
    // build (demo.sh's documented VMCTL_BIN and VMCTL_PVE_SIM).
    let out = Command::new("bash")
        .args(["-c", line])
        .current_dir(repo())
        .env("PATH", path_with_sops())
        .env("TMPDIR", tmp.path())
        .env("VMCTL_BIN", env!("CARGO_BIN_EXE_vmctl"))
        .env("VMCTL_PVE_SIM", pve_sim_bin())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{line}: {all}");
    for want in [
        "provisioned `test-automation`: VM 110, commit ",
        "feat(vms): provision test-automation (VMID 110)",
        "VMID: 110",
        "Host-Key-Fingerprint: SHA256:",
        "+  test-automation = {",
        "+          - &test-automation age1",
        "sandbox: stopped",
    ] {
        assert!(
            all.contains(want),
            "no {want:?} in the demo's output: {all}"
        );
    }
    let listed = all
        .lines()
        .find(|l| l.split_whitespace().take(2).eq(["110", "test-automation"]))
        .unwrap_or_else(|| panic!("VM 110 not in `vmctl ops list`: {all}"));
    assert!(
        listed.contains("running") && listed.contains("managed"),
        "{listed}"
    );
    // Taken down and cleaned up: nothing left in its temporary directory.
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "demo.sh left {left:?}");
}

#[test]
fn provision_end_to_end_in_the_sandbox_then_a_second_run_is_a_no_op() {
    let _turn = turn();
    let s = up();
    let root = fleet(&s);
    let before_head = git(&root, &["rev-parse", "HEAD"]);
    let out = provision(&s, &[], &[]);
    assert!(out.status.success(), "provision: {}", text(&out.stderr));

    // The VM: running, with the declared resources and cloud-init.
    let status = s.pve("qm status 110");
    assert!(status.contains("running"), "{status}");
    let conf = s.pve("qm config 110");
    for want in [
        "cores: 2",
        "memory: 4096",
        "name: test-automation",
        "ciuser: root",
        "ipconfig0: ip=127.0.0.110/8",
        "agent: enabled=1",
        "serial0: socket",
        // `--net0 virtio,bridge=vmbr0` declares no MAC: Proxmox's (BC:24:11…, stable per VM).
        "net0: virtio=BC:24:11:00:00:6E,bridge=vmbr0",
    ] {
        assert!(
            conf.contains(want),
            "no {want:?} in VM 110's config: {conf}"
        );
    }
    let agent = s.pve("qm guest cmd 110 network-get-interfaces");
    assert!(
        agent.contains("\"hardware-address\": \"bc:24:11:00:00:6e\""),
        "the guest agent does not report net0's MAC: {agent}"
    );
    assert!(
        conf.lines()
            .any(|l| l.starts_with("scsi0:") && l.contains("size=20G")),
        "{conf}"
    );
    let admin_pub = std::fs::read_to_string(format!("{}.pub", s.var("SANDBOX_ADMIN_KEY"))).unwrap();
    let admin_b64 = admin_pub.split_whitespace().nth(1).unwrap();
    let user_data = s.pve("qm cloudinit dump 110 user");
    assert!(user_data.contains(admin_b64), "{user_data}");

    // hosts.nix holds the key the VM's sshd now presents.
    let installed =
        std::fs::read_to_string(s.guest_file(110, "root/etc/ssh/ssh_host_ed25519_key.pub"))
            .unwrap();
    let installed_b64 = installed.split_whitespace().nth(1).unwrap();
    let hosts = std::fs::read_to_string(root.join("hosts.nix")).unwrap();
    assert!(hosts.contains(installed_b64), "{hosts}");
    let scan = Command::new("ssh-keyscan")
        .args([
            "-t",
            "ed25519",
            "-p",
            &s.var("SANDBOX_VM_PORT"),
            "127.0.0.110",
        ])
        .output()
        .unwrap();
    assert!(
        text(&scan.stdout).contains(installed_b64),
        "the VM's sshd presents another key: {}",
        text(&scan.stdout)
    );

    // The new host's age identity, from the private key the guest got, decrypts every secret.
    let private = s.guest_file(110, "root/etc/ssh/ssh_host_ed25519_key");
    let conv = crate::support::vmctl_cmd()
        .args(["keys", "to-age", "--private"])
        .arg(&private)
        .output()
        .unwrap();
    assert!(
        conv.status.success(),
        "keys to-age --private: {}",
        text(&conv.stderr)
    );
    let identity = text(&conv.stdout).trim().to_string();
    assert!(
        identity.starts_with("AGE-SECRET-KEY-"),
        "not an age identity"
    );
    let mut secrets = Vec::new();
    let mut stack = vec![root.join("secrets")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains("hosts/")
                && !p.to_string_lossy().contains("test-automation")
            {
                // Other hosts' own secrets are for those hosts only.
            } else {
                secrets.push(p);
            }
        }
    }
    assert!(!secrets.is_empty());
    for f in &secrets {
        let d = Command::new(sops_bin())
            .args(["-d"])
            .arg(f)
            .env("SOPS_AGE_KEY", &identity)
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .env_remove("SOPS_AGE_KEY_FILE")
            .env_remove("SOPS_AGE_SSH_PRIVATE_KEY_FILE")
            .output()
            .unwrap();
        assert!(
            d.status.success(),
            "sops -d {} with the new host's identity: {}",
            f.display(),
            text(&d.stderr)
        );
    }

    // Docs and scaffold present.
    assert!(root.join("hosts/test-automation").is_dir());
    let docs = std::fs::read_to_string(root.join("docs/machines.md")).unwrap();
    assert!(docs.contains("test-automation"), "{docs}");

    // One commit with the trailers and only this run's files.
    let log = git(
        &root,
        &["log", "--format=%H", &format!("{before_head}..HEAD")],
    );
    assert_eq!(log.lines().count(), 1, "{log}");
    let msg = git(&root, &["log", "-1", "--format=%B"]);
    for t in [
        "VMID: 110",
        "Node: prom",
        "Host-Key-Fingerprint: SHA256:",
        "Age-Recipient: age1",
    ] {
        assert!(msg.contains(t), "no trailer {t:?}: {msg}");
    }
    let changed = git(&root, &["diff", "--name-only", "HEAD~1", "HEAD"]);
    for f in changed.lines() {
        assert!(
            f == "hosts.nix"
                || f == ".sops.yaml"
                || f == "docs/machines.md"
                || f.starts_with("secrets/")
                || f.starts_with("hosts/test-automation/"),
            "the commit holds {f}, not this run's: {changed}"
        );
    }
    assert!(git(&root, &["status", "--porcelain"]).trim().is_empty());

    // A second run changes nothing and says so.
    let head = git(&root, &["rev-parse", "HEAD"]);
    let again = provision(&s, &[], &[]);
    let said = format!("{}{}", text(&again.stdout), text(&again.stderr));
    assert!(again.status.success(), "second run: {said}");
    assert!(
        said.contains("nothing to do") || said.contains("already"),
        "the second run does not say it is a no-op: {said}"
    );
    assert_eq!(git(&root, &["rev-parse", "HEAD"]), head);
}

#[test]
fn a_different_host_key_after_the_reboot_fails_closed_and_rolls_back() {
    let _turn = turn();
    let s = up();
    let root = fleet(&s);
    let before = files(&root);
    let head = git(&root, &["rev-parse", "HEAD"]);
    let qm_before = s.pve("qm list");
    let out = provision(&s, &[], &[("SANDBOX_INSTALLER_FAULT", "other-host-key")]);
    let err = unwrapped(&out.stderr);
    assert!(
        !out.status.success(),
        "provision accepted a host key it did not install: {err}"
    );
    assert!(err.contains("host key"), "{err}");
    assert!(err.contains("rolled back"), "{err}");
    assert_eq!(s.pve("qm list"), qm_before, "the cluster is not as before");
    assert!(
        files(&root) == before,
        "the fleet's files are not as before"
    );
    assert_eq!(git(&root, &["rev-parse", "HEAD"]), head);
}

/// What a failed run must leave as it found it: the cluster's VMs, every fleet file byte for
/// byte, HEAD, and no temporary key directory.
struct Before {
    qm_list: String,
    files: Vec<(String, Vec<u8>)>,
    head: String,
}

impl Before {
    fn take(s: &Sandbox) -> Before {
        let root = fleet(s);
        Before {
            qm_list: s.pve("qm list"),
            files: files(&root),
            head: git(&root, &["rev-parse", "HEAD"]),
        }
    }

    fn assert_restored(&self, s: &Sandbox, tmp: &Path, case: &str) {
        let root = fleet(s);
        assert_eq!(
            s.pve("qm list"),
            self.qm_list,
            "{case}: the cluster is not as before"
        );
        assert!(
            files(&root) == self.files,
            "{case}: the fleet's files are not as before"
        );
        assert_eq!(
            git(&root, &["rev-parse", "HEAD"]),
            self.head,
            "{case}: HEAD moved"
        );
        let left: Vec<_> = std::fs::read_dir(tmp).unwrap().collect();
        assert!(left.is_empty(), "{case}: temporary files left: {left:?}");
    }
}

#[test]
fn a_fault_at_every_step_rolls_back_to_the_before_state() {
    let _turn = turn();
    let s = up();
    let root = fleet(&s);
    let before = Before::take(&s);
    let tmp = tempfile::tempdir().unwrap();
    let tmpdir = tmp.path().to_str().unwrap();
    let faults = s.dir.join("pve/state/faults.json");
    // One simulator fault per qm command the run sends (a prefix of its argv words).
    for m in [
        "qm clone",
        "qm set 110 --cores",
        "qm set 110 --serial0",
        "qm resize",
        "qm set 110 --ide2",
        "qm start",
    ] {
        std::fs::write(
            &faults,
            format!(
                r#"[{{"match": "{m}", "action": "fail", "message": "sandbox fault", "exit": 255}}]"#
            ),
        )
        .unwrap();
        let out = provision(&s, &[], &[("TMPDIR", tmpdir)]);
        let err = unwrapped(&out.stderr);
        assert!(
            !out.status.success(),
            "{m}: the run succeeded despite the fault: {err}"
        );
        assert!(
            err.contains("sandbox fault") && err.contains("rolled back"),
            "{m}: {err}"
        );
        before.assert_restored(&s, tmp.path(), m);
    }
    std::fs::write(&faults, "[]").unwrap();
    // The installer failing, and SSH never coming up after its reboot.
    for (fault, wait) in [("fail", "300"), ("fail:kexec", "300"), ("no-ssh", "2")] {
        let out = provision(
            &s,
            &["--wait", wait],
            &[("TMPDIR", tmpdir), ("SANDBOX_INSTALLER_FAULT", fault)],
        );
        let err = unwrapped(&out.stderr);
        assert!(!out.status.success(), "{fault}: {err}");
        assert!(err.contains("rolled back"), "{fault}: {err}");
        before.assert_restored(&s, tmp.path(), fault);
    }
    // git failing at the commit: a hook that refuses it.
    let hook = root.join(".git/hooks/pre-commit");
    crate::support::write_script(
        &hook,
        "#!/bin/sh\necho 'sandbox: commit refused' >&2\nexit 1\n",
    );
    let out = provision(&s, &[], &[("TMPDIR", tmpdir)]);
    let err = unwrapped(&out.stderr);
    assert!(!out.status.success(), "git failure: {err}");
    assert!(err.contains("rolled back"), "git failure: {err}");
    std::fs::remove_file(&hook).unwrap();
    before.assert_restored(&s, tmp.path(), "git failure");
    // And after all that, a clean run still works.
    let out = provision(&s, &[], &[("TMPDIR", tmpdir)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// The words of a command line as `proxmox::quote` writes them: bare words and '…' quoting
/// (with '\'' for a quote inside).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut any = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' if any => out.push(std::mem::take(&mut cur)),
            ' ' => {}
            '\'' => {
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    cur.push(q);
                }
            }
            '\\' => cur.extend(chars.next()),
            c => cur.push(c),
        }
        any = c != ' ';
    }
    if any {
        out.push(cur);
    }
    out
}

/// The simulator's argv log: every Proxmox command run so far.
fn argv_log(s: &Sandbox) -> Vec<Vec<String>> {
    std::fs::read_to_string(s.dir.join("pve/state/argv.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn accepted(s: &Sandbox) -> usize {
    std::fs::read_to_string(s.dir.join("pve/sshd/sshd.log"))
        .unwrap_or_default()
        .matches("Accepted publickey")
        .count()
}

fn is_read_only(argv: &[String]) -> bool {
    let w: Vec<&str> = argv.iter().map(String::as_str).collect();
    matches!(
        w.as_slice(),
        ["pvesh", "get", ..] | ["pvesm", "status", ..] | ["qm", "config" | "list" | "status", ..]
    )
}

#[test]
fn dry_runs_change_nothing_and_list_the_argv_the_real_run_executes() {
    let _turn = turn();
    let s = up();
    let root = fleet(&s);
    let before = Before::take(&s);
    let tmp = tempfile::tempdir().unwrap();
    let tmpdir = tmp.path().to_str().unwrap();

    // Offline: no connection at all, nothing written.
    let (log0, ssh0) = (argv_log(&s).len(), accepted(&s));
    let out = provision(
        &s,
        &["--dry-run", "--offline", "--json"],
        &[("TMPDIR", tmpdir)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let offline: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        accepted(&s),
        ssh0,
        "--offline connected to the Proxmox host"
    );
    assert_eq!(argv_log(&s).len(), log0, "--offline ran a Proxmox command");
    before.assert_restored(&s, tmp.path(), "--dry-run --offline");

    // Observed: reads only, nothing written.
    let out = provision(&s, &["--dry-run", "--json"], &[("TMPDIR", tmpdir)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let observed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reads = argv_log(&s);
    assert!(reads.len() > log0, "the dry run observed nothing");
    for argv in &reads[log0..] {
        assert!(is_read_only(argv), "--dry-run ran a mutation: {argv:?}");
    }
    before.assert_restored(&s, tmp.path(), "--dry-run");

    // The real run executes exactly the mutations both plans list, in their order.
    let out = provision(&s, &[], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let executed: Vec<Vec<String>> = argv_log(&s)[reads.len()..]
        .iter()
        .filter(|a| !is_read_only(a))
        .cloned()
        .collect();
    for plan in [&observed, &offline] {
        let planned: Vec<Vec<String>> = plan["commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| words(c.as_str().unwrap()))
            .collect();
        assert!(!planned.is_empty());
        assert_eq!(executed, planned, "the run's argv differ from the plan's");
        // The installer's argv too, with the plan's placeholders for what only the run knows:
        // the address and the temporary key directory.
        let install = plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|st| st["id"] == "install")
            .unwrap();
        let log = std::fs::read_to_string(s.var("NIXOS_ANYWHERE_LOG")).unwrap();
        let ran = words(log.lines().last().unwrap());
        let want: Vec<String> = install["action"]["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                w.as_str()
                    .unwrap()
                    .replace("<IP>", "127.0.0.110")
                    .replace("<PORT>", &s.var("SANDBOX_VM_PORT"))
            })
            .collect();
        assert_eq!(ran.len(), want.len(), "{ran:?} vs {want:?}");
        for (r, w) in ran.iter().zip(&want) {
            if w == "<DIR>" {
                assert!(r.contains("vmctl-hostkey-"), "{ran:?}");
            } else {
                assert_eq!(r, w, "{ran:?} vs {want:?}");
            }
        }
    }
    assert!(root.join("hosts/test-automation").is_dir());
}

/// Where a run is killed: a simulator command delayed (the journal holds every step before
/// it), or a hook that hangs (the installer, git's commit) and writes its PID to the mark.
enum Boundary {
    Delay(&'static str),
    Hang(&'static str),
    /// A simulator gate the test enabled in sim.json: the command waits there, mid-way.
    Gate(&'static str),
    /// A pause point of vmctl's own (`VMCTL_TEST_HOOK_DIR`): the run waits there, mid-step.
    Pause(&'static str),
}

/// Starts `vmctl provision`, waits until it reaches `b`, and kills it with SIGKILL (and
/// whatever hook it left hanging, by PID).
fn crash_at(s: &Sandbox, b: &Boundary, wrapper: &Path) {
    let faults = s.dir.join("pve/state/faults.json");
    let mark = s.dir.join("hang.mark");
    let _ = std::fs::remove_file(&mark);
    let log0 = argv_log(s).len();
    let mut cmd = crate::support::vmctl_cmd();
    cmd.current_dir(fleet(s))
        .envs(s.env.iter().cloned())
        .env("VMCTL_NIXOS_ANYWHERE", wrapper)
        .args(["provision", "test-automation", "--identity"])
        .arg(s.var("SANDBOX_ADMIN_KEY"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let prefix = match b {
        Boundary::Delay(m) => {
            std::fs::write(
                &faults,
                format!(r#"[{{"match": "{m}", "action": "delay", "ms": 1500, "times": 1}}]"#),
            )
            .unwrap();
            Some(m.split(' ').map(str::to_string).collect::<Vec<_>>())
        }
        Boundary::Hang(what) => {
            cmd.env("HANG_MARK", &mark).env("HANG_AT", what);
            None
        }
        Boundary::Gate(_) => None,
        Boundary::Pause(_) => {
            let hooks = s.dir.join("hooks");
            let _ = std::fs::remove_dir_all(&hooks);
            std::fs::create_dir_all(&hooks).unwrap();
            // The applier's own pause points pass at once: only the named one holds the run.
            for point in ["temp-created", "before-commit"] {
                std::fs::write(hooks.join(format!("{point}.go")), "").unwrap();
            }
            cmd.env("VMCTL_TEST_HOOK_DIR", &hooks);
            None
        }
    };
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let reached = match (&prefix, b) {
            (Some(p), _) => argv_log(s)[log0..].iter().any(|a| a.starts_with(p)),
            (None, Boundary::Gate(g)) => {
                s.dir.join(format!("pve/state/gates/{g}.reached")).exists()
            }
            (None, Boundary::Pause(p)) => s.dir.join(format!("hooks/{p}.ready")).exists(),
            (None, _) => std::fs::read_to_string(&mark).is_ok_and(|t| t.ends_with('\n')),
        };
        if reached {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "vmctl ended before {prefix:?}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "vmctl never reached the boundary"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    crate::support::stop_ssh_masters(&s.dir.join("ssh_config"));
    if let Ok(t) = std::fs::read_to_string(&mark) {
        let pid: i32 = t.trim().parse().unwrap();
        // SAFETY: kill(2) on the PID of the hook this test's vmctl started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    // The delayed command finishes (or dies with its session) before anyone looks.
    if prefix.is_some() {
        std::thread::sleep(std::time::Duration::from_millis(1700));
    }
    std::fs::write(&faults, "[]").unwrap();
}

#[test]
fn kill_9_at_step_boundaries_then_rollback_or_resume() {
    let _turn = turn();
    let s = up();
    let root = fleet(&s);
    let before = Before::take(&s);
    // The installer stand-in behind a hang switch, and a commit hook behind the same.
    let wrapper = s.dir.join("nixos-anywhere-hang");
    crate::support::write_script(
        &wrapper,
        "#!/bin/sh\nif [ \"$HANG_AT\" = install ]; then echo $$ >\"$HANG_MARK\"; exec sleep 60; fi\nexec nixos-anywhere \"$@\"\n",
    );
    crate::support::write_script(
        &root.join(".git/hooks/pre-commit"),
        "#!/bin/sh\nif [ \"$HANG_AT\" = commit ]; then echo $$ >\"$HANG_MARK\"; exec sleep 60; fi\n",
    );
    // Inside `qm clone` (killed mid-clone, the clone dies holding the VM's lock as a real one
    // would) is the stale-lock test below; inside `qm start` the start goes through and
    // `--resume` must not send it twice.
    let boundaries = [
        Boundary::Delay("qm start"),
        Boundary::Delay("qm set 110 --cores"),
        Boundary::Delay("qm resize"),
        Boundary::Delay("qm set 110 --ide2"),
        // The secrets re-keyed on disk, the key ceremony not yet recorded as done: the journal
        // knows the re-keyed bytes from before the write, so rollback restores them.
        Boundary::Pause("rekeyed"),
        Boundary::Hang("install"),
        Boundary::Hang("commit"),
    ];
    for b in &boundaries {
        let case = match b {
            Boundary::Delay(m) | Boundary::Hang(m) | Boundary::Gate(m) | Boundary::Pause(m) => *m,
        };
        crash_at(&s, b, &wrapper);
        let out = provision(&s, &["--rollback"], &[]);
        assert!(
            out.status.success(),
            "{case}: --rollback: {}",
            text(&out.stderr)
        );
        let tmp = tempfile::tempdir().unwrap();
        before.assert_restored(&s, tmp.path(), &format!("{case}: --rollback"));

        crash_at(&s, b, &wrapper);
        let out = provision(&s, &["--resume"], &[]);
        assert!(
            out.status.success(),
            "{case}: --resume: {}",
            text(&out.stderr)
        );
        // The end state of an uninterrupted run: the VM runs, presents the key hosts.nix
        // holds, and one commit holds this run's files.
        assert!(s.pve("qm status 110").contains("running"), "{case}");
        let installed =
            std::fs::read_to_string(s.guest_file(110, "root/etc/ssh/ssh_host_ed25519_key.pub"))
                .unwrap();
        let b64 = installed.split_whitespace().nth(1).unwrap().to_string();
        let hosts = std::fs::read_to_string(root.join("hosts.nix")).unwrap();
        assert!(hosts.contains(&b64), "{case}: {hosts}");
        let commits = git(
            &root,
            &["log", "--format=%s", &format!("{}..HEAD", before.head)],
        );
        assert_eq!(
            commits, "feat(vms): provision test-automation (VMID 110)",
            "{case}"
        );
        assert!(git(&root, &["status", "--porcelain"]).is_empty(), "{case}");
        let again = provision(&s, &[], &[]);
        assert!(again.status.success(), "{case}: {}", text(&again.stderr));

        // Back to the before-state for the next boundary, by hand.
        git(&root, &["reset", "-q", "--hard", &before.head]);
        s.pve("qm stop 110 && qm destroy 110 --purge 1");
        let _ = std::fs::remove_dir_all(root.join(".vmctl/journal"));
    }

    // The same window, and someone else edits a secret the run re-keyed: rollback refuses,
    // names the file and undoes nothing; once the file holds the run's bytes again, it rolls
    // back.
    crash_at(&s, &Boundary::Pause("rekeyed"), &wrapper);
    let secret = root.join("secrets/common.yaml");
    let rekeyed = std::fs::read(&secret).unwrap();
    let mut edited = rekeyed.clone();
    edited.extend_from_slice(b"# someone else's edit\n");
    std::fs::write(&secret, &edited).unwrap();
    let out = provision(&s, &["--rollback"], &[]);
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "a foreign edit was rolled back: {err}"
    );
    assert!(
        unwrapped(&out.stderr)
            .contains("rollback refused: `secrets/common.yaml` changed since this run wrote it"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&secret).unwrap(),
        edited,
        "the edit was undone"
    );
    assert!(
        s.pve("qm list").contains("test-automation"),
        "the VM was undone"
    );
    std::fs::write(&secret, &rekeyed).unwrap();
    let out = provision(&s, &["--rollback"], &[]);
    assert!(out.status.success(), "--rollback: {}", text(&out.stderr));
    let tmp = tempfile::tempdir().unwrap();
    before.assert_restored(&s, tmp.path(), "rekeyed, edited, restored: --rollback");
}

/// Killed inside `qm clone`, held mid-way at the simulator's clone gate (the VM reserved with
/// `lock: clone`, the worker task running). Rollback and resume stop at once and say who holds
/// the lock: first the running task (wait for it), then, once the worker is killed too, nobody
/// (a stale lock: `qm unlock`, which vmctl never runs itself). Once the user has unlocked, the
/// rollback restores the before-state, and a new run completes.
#[test]
fn kill_9_inside_the_clone_names_the_task_or_the_stale_lock() {
    let _turn = turn();
    let s = up();
    let root = fleet(&s);
    let before = Before::take(&s);
    let wrapper = s.dir.join("nixos-anywhere-hang");
    crate::support::write_script(&wrapper, "#!/bin/sh\nexec nixos-anywhere \"$@\"\n");
    let sim_json = s.dir.join("pve/state/sim.json");
    let settings = std::fs::read_to_string(&sim_json).unwrap();
    let mut gated: serde_json::Value = serde_json::from_str(&settings).unwrap();
    gated["gates"] = serde_json::json!(["clone"]);
    for how in ["--rollback", "--resume"] {
        std::fs::write(&sim_json, gated.to_string()).unwrap();
        let _ = std::fs::remove_dir_all(s.dir.join("pve/state/gates"));
        crash_at(&s, &Boundary::Gate("clone"), &wrapper);
        assert!(s.pve("qm config 110").contains("lock: clone"), "{how}");
        let refused = |want: &[&str]| {
            let t0 = std::time::Instant::now();
            let out = provision(&s, &[how], &[]);
            let err = unwrapped(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{how}: {err}");
            for w in ["locked (clone)"].iter().chain(want) {
                assert!(err.contains(w), "{how}: no `{w}` in {err}");
            }
            // Refused on what it read, not after waiting out the lock retries.
            assert!(t0.elapsed() < std::time::Duration::from_secs(20), "{how}");
            assert!(s.pve("qm config 110").contains("lock: clone"), "{how}");
            assert!(root.join(".vmctl/journal/test-automation.json").exists());
        };
        refused(&["still running", "pvenode task status UPID:"]);
        // The worker dies too (killed by its PID, which the simulator's task file holds).
        let tasks = s.dir.join("pve/state/tasks");
        for e in std::fs::read_dir(&tasks).unwrap().flatten() {
            let pid: i32 = std::fs::read_to_string(e.path())
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            // SAFETY: kill(2) on the simulator worker this test's run started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            while std::path::Path::new(&format!("/proc/{pid}/status")).exists()
                && !std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .unwrap_or_default()
                    .contains("State:\tZ")
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        refused(&["no task", "qm unlock 110"]);

        std::fs::write(&sim_json, &settings).unwrap();
        s.pve("qm unlock 110");
        let out = provision(&s, &["--rollback"], &[]);
        assert!(out.status.success(), "{how}: {}", text(&out.stderr));
        let tmp = tempfile::tempdir().unwrap();
        before.assert_restored(&s, tmp.path(), &format!("clone, {how}"));
    }
    // After all that, a plain run provisions as if nothing had happened.
    let out = provision(&s, &[], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(s.pve("qm status 110").contains("running"));
}

/// A Nix older than nixos-anywhere needs (Debian's 2.8 here, the real one) is refused before
/// anything changes, with what to do; exit 2 (vmctl cannot act, docs/cli.md).
#[test]
fn a_nix_too_old_for_the_installer_is_refused_before_any_change() {
    let _turn = turn();
    let s = up();
    let before = Before::take(&s);
    let log0 = argv_log(&s).len();
    let out = provision(&s, &[], &[("VMCTL_NIX", "nix")]);
    let err = unwrapped(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("needs Nix 2.18.0 or later"), "{err}");
    assert!(err.contains("upgrade Nix"), "{err}");
    assert!(argv_log(&s)[log0..].iter().all(|a| is_read_only(a)));
    let tmp = tempfile::tempdir().unwrap();
    before.assert_restored(&s, tmp.path(), "nix too old");
}
