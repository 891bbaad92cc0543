//! The destroy runner against fakes: a cluster in memory that can fail a command once, git,
//! the re-keyer and the rotator writing into a temporary fleet. The run, a failure that keeps
//! the journal, resume, rollback and a file changed underneath.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::exec::provision::test_fleet::Commits;
use crate::exec::provision::Rekeyer;
use crate::exec::proxmox::QmProxmox;
use crate::exec::remote::{Remote, RemoteError, RemoteOutput};
use crate::model::{Definitions, Vm, VmKind};
use crate::plan::destroy::{DestroyPlan, Live, PlannedFile, Step};
use crate::proxmox::{Fence, RetryPolicy, VmId};

/// A Proxmox host in memory behind the real `QmProxmox` (so its fences and live checks run):
/// VMs by VMID (name, running), every mutation's command line, one injectable failure.
#[derive(Default)]
struct Host {
    vms: RefCell<BTreeMap<VmId, (String, bool)>>,
    log: RefCell<Vec<String>>,
    fail_once: RefCell<Option<&'static str>>,
}

impl Host {
    fn with_110(running: bool) -> Self {
        let h = Host::default();
        h.vms
            .borrow_mut()
            .insert(110, ("test-automation".into(), running));
        h
    }
}

impl Remote for Host {
    fn run_with_input(
        &self,
        argv: &[String],
        _: Option<&[u8]>,
    ) -> Result<RemoteOutput, RemoteError> {
        let w: Vec<&str> = argv.iter().map(String::as_str).collect();
        if w.starts_with(&["pvesh", "get", "/cluster/resources"]) {
            let list: Vec<serde_json::Value> = self
                .vms
                .borrow()
                .iter()
                .map(|(id, (name, running))| {
                    serde_json::json!({"type": "qemu", "vmid": id, "name": name, "node": "prom",
                        "status": if *running { "running" } else { "stopped" }})
                })
                .collect();
            return Ok(RemoteOutput::ok(serde_json::to_string(&list).unwrap()));
        }
        let id: VmId = w.get(2).and_then(|i| i.parse().ok()).unwrap_or_default();
        if w.starts_with(&["qm", "config"]) {
            return Ok(match self.vms.borrow().get(&id) {
                Some((name, _)) => RemoteOutput::ok(format!("name: {name}\n")),
                None => RemoteOutput::failed(
                    2,
                    format!(
                        "Configuration file 'nodes/prom/qemu-server/{id}.conf' does not exist\n"
                    ),
                ),
            });
        }
        let line = w.join(" ");
        self.log.borrow_mut().push(line.clone());
        let fail = self.fail_once.borrow().is_some_and(|f| line.contains(f));
        if fail {
            *self.fail_once.borrow_mut() = None;
            return Ok(RemoteOutput::failed(1, "injected fault\n"));
        }
        let mut vms = self.vms.borrow_mut();
        match w.get(1) {
            Some(&"stop") => vms.get_mut(&id).unwrap().1 = false,
            Some(&"start") => vms.get_mut(&id).unwrap().1 = true,
            Some(&"destroy") => {
                vms.remove(&id);
            }
            _ => panic!("unexpected {line}"),
        }
        Ok(RemoteOutput::ok(""))
    }

    fn target(&self) -> String {
        "fake".into()
    }
}

/// The fenced `Proxmox` of the demo fleet's one managed VM, over `host`.
fn proxmox(host: &Host) -> QmProxmox<&Host> {
    let fence = Fence::from_definitions(&Definitions {
        managed: vec![Vm::new("test-automation", VmKind::Managed, Some(110))],
        ..Default::default()
    });
    let retry = RetryPolicy {
        retries: 0,
        initial: Duration::from_millis(1),
        max: Duration::from_millis(1),
    };
    QmProxmox::new(host, fence, retry)
}

/// Git, the re-keyer and the rotator: each writes what the real one would change.
#[derive(Default)]
struct World {
    commits: Commits,
    fail_commit: bool,
    /// Killed (a panic) right after the re-keyer's write.
    kill_in_rekey: bool,
}

impl Git for World {
    fn commit(&self, _: &Path, files: &[PathBuf], message: &str) -> Result<String, GitError> {
        self.commits.commit(files, message, self.fail_commit)
    }
}

impl Rekeyer for World {
    fn rekey(&self, root: &Path, _: &FleetLock) -> Result<(), RekeyError> {
        std::fs::write(root.join("secrets/common.yaml"), "rekeyed\n").unwrap();
        Ok(())
    }

    fn rekey_announcing(
        &self,
        root: &Path,
        lock: &FleetLock,
        announce: &mut crate::exec::provision::Announce<'_>,
    ) -> Result<(), RekeyError> {
        if !self.kill_in_rekey {
            return self.rekey(root, lock);
        }
        // As the native re-keyer: the new bytes announced, written, then the run is killed.
        crate::exec::provision::test_fleet::rekey_common(root, announce)?;
        panic!("killed while re-keying");
    }
}

impl Rotator for World {
    fn rotate(&self, root: &Path, _: &FleetLock, files: &[PathBuf]) -> Result<(), RotateError> {
        assert_eq!(files, [PathBuf::from("secrets/common.yaml")]);
        std::fs::write(root.join("secrets/common.yaml"), "rotated\n").unwrap();
        Ok(())
    }
}

fn fleet() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    for (p, t) in [
        ("hosts.nix", "hosts with vm\n"),
        ("vms/definitions.nix", "defs with vm\n"),
        ("hosts/test-automation/configuration.nix", "{ }\n"),
        ("secrets/common.yaml", "secret\n"),
        ("secrets/other/plain.yaml", "untouched\n"),
    ] {
        std::fs::create_dir_all(r.join(p).parent().unwrap()).unwrap();
        std::fs::write(r.join(p), t).unwrap();
    }
    dir
}

fn plan(live: Live, rotate: bool) -> DestroyPlan {
    let file = |p: &str, old: &str, new: Option<&str>| PlannedFile {
        path: p.into(),
        old: old.as_bytes().to_vec(),
        new: new.map(|n| n.as_bytes().to_vec()),
        summary: "edited".into(),
    };
    let mut steps = Vec::new();
    let mut step = |id| {
        steps.push(Step {
            id,
            title: "t".into(),
        })
    };
    if live == Live::Running {
        step(StepId::Stop);
    }
    step(StepId::Destroy);
    step(StepId::FleetFiles);
    step(StepId::Rekey);
    if rotate {
        step(StepId::Rotate);
    }
    step(StepId::Commit);
    DestroyPlan {
        name: "test-automation".into(),
        vmid: 110,
        node: Some("prom".into()),
        live,
        steps,
        files: vec![
            file("hosts.nix", "hosts with vm\n", Some("hosts\n")),
            file("vms/definitions.nix", "defs with vm\n", Some("defs\n")),
            file("hosts/test-automation/configuration.nix", "{ }\n", None),
        ],
        removed_key: None,
        removed_recipient: Some("age1example".into()),
        keep_definition: false,
        rotate,
        secrets_dir: "secrets".into(),
        notes: Vec::new(),
    }
}

/// The run's world: `qm` for Proxmox, `world` for git, the re-keyer and the rotator.
fn env<'a>(qm: &'a QmProxmox<&'a Host>, world: &'a World) -> Env<'a, QmProxmox<&'a Host>> {
    Env {
        proxmox: qm,
        git: world,
        rekeyer: world,
        rotator: world,
    }
}

fn read(root: &Path, p: &str) -> Option<String> {
    std::fs::read_to_string(root.join(p)).ok()
}

fn quiet(_: &str) {}

#[test]
fn a_run_stops_destroys_edits_rekeys_rotates_and_commits_only_its_files() {
    let dir = fleet();
    let root = dir.path();
    let cluster = Host::with_110(true);
    let world = World::default();
    let qm = proxmox(&cluster);
    let env = env(&qm, &world);
    let lock = FleetLock::acquire(root, &Default::default()).unwrap();
    let opts = Options { report: &quiet };
    let out = run(&env, &opts, root, &lock, plan(Live::Running, true), None).unwrap();
    assert_eq!(
        *cluster.log.borrow(),
        ["qm stop 110", "qm destroy 110 --purge 1"]
    );
    assert!(cluster.vms.borrow().is_empty());
    assert_eq!(read(root, "hosts.nix").as_deref(), Some("hosts\n"));
    assert_eq!(read(root, "vms/definitions.nix").as_deref(), Some("defs\n"));
    assert!(
        !root.join("hosts/test-automation").exists(),
        "the scaffold dir goes"
    );
    assert_eq!(
        read(root, "secrets/common.yaml").as_deref(),
        Some("rotated\n")
    );
    assert!(out.destroyed);
    assert_eq!(out.commit.as_deref(), Some("abc123"));
    assert_eq!(out.secrets, [PathBuf::from("secrets/common.yaml")]);
    let (files, msg) = world.commits.borrow()[0].clone();
    let shown: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    assert_eq!(
        shown,
        [
            "hosts.nix",
            "vms/definitions.nix",
            "hosts/test-automation/configuration.nix",
            "secrets/common.yaml"
        ]
    );
    assert!(msg.contains("Rotated: yes"), "{msg}");
    assert!(journal::load(root, "test-automation").unwrap().is_none());
}

#[test]
fn a_failure_keeps_the_journal_then_resume_finishes_without_repeating_steps() {
    let dir = fleet();
    let root = dir.path();
    let cluster = Host::with_110(true);
    *cluster.fail_once.borrow_mut() = Some("qm destroy");
    let world = World::default();
    let qm = proxmox(&cluster);
    let env = env(&qm, &world);
    let lock = FleetLock::acquire(root, &Default::default()).unwrap();
    let opts = Options { report: &quiet };
    let e = run(&env, &opts, root, &lock, plan(Live::Running, false), None).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("injected fault") && msg.contains("--resume"),
        "{msg}"
    );
    let j = journal::load(root, "test-automation").unwrap().unwrap();
    assert_eq!(j.completed, [StepId::Stop]);
    assert!(j.stop_sent && j.destroy_sent);
    assert_eq!(read(root, "hosts.nix").as_deref(), Some("hosts with vm\n"));
    let out = run(&env, &opts, root, &lock, j.plan.clone(), Some(j)).unwrap();
    assert!(out.destroyed);
    // The stop was not sent again.
    assert_eq!(
        *cluster.log.borrow(),
        [
            "qm stop 110",
            "qm destroy 110 --purge 1",
            "qm destroy 110 --purge 1"
        ]
    );
    assert_eq!(read(root, "hosts.nix").as_deref(), Some("hosts\n"));
    assert!(journal::load(root, "test-automation").unwrap().is_none());
}

#[test]
fn a_vm_started_since_the_plan_saw_it_stopped_is_stopped_before_the_destroy() {
    let dir = fleet();
    let root = dir.path();
    let cluster = Host::with_110(true);
    let world = World::default();
    let qm = proxmox(&cluster);
    let env = env(&qm, &world);
    let lock = FleetLock::acquire(root, &Default::default()).unwrap();
    let opts = Options { report: &quiet };
    run(&env, &opts, root, &lock, plan(Live::Stopped, false), None).unwrap();
    assert_eq!(
        *cluster.log.borrow(),
        ["qm stop 110", "qm destroy 110 --purge 1"]
    );
}

#[test]
fn a_failure_before_any_change_leaves_no_journal() {
    let dir = fleet();
    let root = dir.path();
    let cluster = Host::with_110(false);
    // The VMID names another VM now: refused before anything is sent.
    cluster.vms.borrow_mut().get_mut(&110).unwrap().0 = "someone-else".into();
    let world = World::default();
    let qm = proxmox(&cluster);
    let env = env(&qm, &world);
    let lock = FleetLock::acquire(root, &Default::default()).unwrap();
    let opts = Options { report: &quiet };
    let e = run(&env, &opts, root, &lock, plan(Live::Stopped, false), None).unwrap_err();
    assert!(matches!(e, DestroyError::NothingChanged { .. }), "{e}");
    assert!(e.to_string().contains("someone-else"), "{e}");
    assert!(cluster.log.borrow().is_empty());
    assert!(journal::load(root, "test-automation").unwrap().is_none());
}

#[test]
fn rollback_restores_the_files_and_restarts_a_vm_it_only_stopped() {
    let dir = fleet();
    let root = dir.path();
    let cluster = Host::with_110(true);
    let world = World {
        fail_commit: true,
        ..World::default()
    };
    let qm = proxmox(&cluster);
    let env = env(&qm, &world);
    let lock = FleetLock::acquire(root, &Default::default()).unwrap();
    let opts = Options { report: &quiet };
    let files = ["hosts.nix", "vms/definitions.nix", "secrets/common.yaml"];
    let before: Vec<Option<String>> = files.iter().map(|f| read(root, f)).collect();
    // A run that stopped the VM, edited the files, re-keyed, and failed at the commit (the
    // destroy left out, so the VM is there to start again).
    let mut p = plan(Live::Running, false);
    p.steps.retain(|s| s.id != StepId::Destroy);
    let e = run(&env, &opts, root, &lock, p, None).unwrap_err();
    assert!(e.to_string().contains("git commit failed"), "{e}");
    assert!(!e.to_string().contains("gone for good"), "{e}");
    let j = journal::load(root, "test-automation").unwrap().unwrap();
    assert_eq!(
        read(root, "secrets/common.yaml").as_deref(),
        Some("rekeyed\n")
    );
    rollback(&qm, root, &j, &lock, &quiet).unwrap();
    let after: Vec<Option<String>> = files.iter().map(|f| read(root, f)).collect();
    assert_eq!(after, before);
    assert_eq!(
        read(root, "hosts/test-automation/configuration.nix").as_deref(),
        Some("{ }\n")
    );
    assert!(cluster.vms.borrow()[&110].1, "started again");
    assert_eq!(cluster.log.borrow().last().unwrap(), "qm start 110");
}

#[test]
fn a_kill_while_rekeying_rolls_back_the_rekeyers_own_write() {
    let dir = fleet();
    let root = dir.path();
    let cluster = Host::with_110(false);
    let world = World {
        kill_in_rekey: true,
        ..World::default()
    };
    let qm = proxmox(&cluster);
    let env = env(&qm, &world);
    let lock = FleetLock::acquire(root, &Default::default()).unwrap();
    let opts = Options { report: &quiet };
    let files = ["hosts.nix", "vms/definitions.nix", "secrets/common.yaml"];
    let before: Vec<Option<String>> = files.iter().map(|f| read(root, f)).collect();
    let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(&env, &opts, root, &lock, plan(Live::Stopped, false), None)
    }));
    assert!(killed.is_err(), "the re-keyer was not reached");
    assert_eq!(
        read(root, "secrets/common.yaml").as_deref(),
        Some("secret\n# rekeyed\n")
    );
    let j = journal::load(root, "test-automation").unwrap().unwrap();
    rollback(&qm, root, &j, &lock, &quiet).unwrap();
    let after: Vec<Option<String>> = files.iter().map(|f| read(root, f)).collect();
    assert_eq!(after, before);
}

#[test]
fn a_file_changed_underneath_stops_the_run_and_the_rollback() {
    let dir = fleet();
    let root = dir.path();
    std::fs::write(root.join("hosts.nix"), "edited by hand\n").unwrap();
    let cluster = Host::with_110(false);
    let world = World::default();
    let qm = proxmox(&cluster);
    let env = env(&qm, &world);
    let lock = FleetLock::acquire(root, &Default::default()).unwrap();
    let opts = Options { report: &quiet };
    let e = run(&env, &opts, root, &lock, plan(Live::Stopped, false), None).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("`hosts.nix` changed"), "{msg}");
    assert!(msg.contains("the VM itself is gone for good"), "{msg}");
    assert_eq!(read(root, "hosts.nix").as_deref(), Some("edited by hand\n"));
    let j = journal::load(root, "test-automation").unwrap().unwrap();
    let e = rollback(&qm, root, &j, &lock, &quiet).unwrap_err();
    assert!(matches!(e, DestroyError::FileChanged { .. }), "{e}");
}
