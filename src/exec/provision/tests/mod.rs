//! The runner against a stateful fake cluster and fake installer, SSH, git and re-keyer: a
//! full run, a fault at every step (rollback restores the before-state), a crash at every step
//! boundary then `--resume` (same end state) or `--rollback` (before-state).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

mod fakes;

use super::journal;
use super::test_fleet::Fleet;
use super::*;
use crate::plan::provision::{self as pp, ProvisionPlan};
use crate::proxmox::VmId;
use fakes::{Cluster, FakeVm, World};

const ADMIN: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHxM2a6DvE298UXZdhKYSMrTPvzvceh5+ZJ77tKj9n0D admin@workstation";

/// The runner's calls over the shared demo fleet.
impl Fleet {
    fn plan(&self, cluster: &Cluster) -> ProvisionPlan {
        let keys = vec![ADMIN.to_string()];
        let obs = cluster.observe();
        let p = pp::plan(&pp::Inputs {
            defs: &self.defs,
            name: "test-automation",
            lint_errors: 0,
            admin_keys: &keys,
            linked: false,
            host_known: false,
            observation: Some(&obs),
            identity: None,
        })
        .unwrap();
        *cluster.fence.borrow_mut() = Some(p.fence.clone());
        p
    }

    fn run(
        &self,
        cluster: &Cluster,
        world: &World,
        plan: &ProvisionPlan,
        report: &dyn Fn(&str),
        resume: Option<journal::Journal>,
    ) -> Result<Outcome, ProvisionError> {
        self.run_only(None, (cluster, world, plan), report, resume)
    }

    /// `run` with `--phases`' selection.
    fn run_only(
        &self,
        only: Option<&std::collections::BTreeSet<StepId>>,
        (cluster, world, plan): (&Cluster, &World, &ProvisionPlan),
        report: &dyn Fn(&str),
        resume: Option<journal::Journal>,
    ) -> Result<Outcome, ProvisionError> {
        let env = Env {
            proxmox: cluster,
            installer: world,
            ssh: world,
            git: world,
            rekeyer: world,
        };
        let opts = Options {
            keep_on_failure: false,
            commit: true,
            attempts: 2,
            interval: Duration::ZERO,
            report,
            only,
        };
        let lock = FleetLock::acquire(self.root(), &Default::default()).unwrap();
        run(&env, &opts, self.root(), &self.defs, plan, &lock, resume)
    }
}

fn quiet(_: &str) {}

/// A copy of the demo fleet, the demo cluster, well-behaved fakes and the plan.
fn setup() -> (Fleet, Cluster, World, ProvisionPlan) {
    let fleet = Fleet::demo();
    let cluster = Cluster::demo();
    let plan = fleet.plan(&cluster);
    (fleet, cluster, World::default(), plan)
}

/// The end state of a run, with the run's random key replaced so two runs compare equal.
fn end_state(
    fleet: &Fleet,
    cluster: &Cluster,
    world: &World,
) -> (BTreeMap<PathBuf, String>, BTreeMap<VmId, FakeVm>) {
    let (_, msg) = world.commits.borrow().last().cloned().unwrap();
    let trailer = |k: &str| {
        msg.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap()
            .trim()
            .to_string()
    };
    let recipient = trailer("Age-Recipient:");
    let kh = world.known_hosts.borrow().clone().unwrap();
    let public = kh.split_whitespace().nth(2).unwrap().to_string();
    let files = fleet
        .files()
        .into_iter()
        .map(|(p, b)| {
            let t = String::from_utf8_lossy(&b)
                .replace(&recipient, "<RECIPIENT>")
                .replace(&public, "<KEY>");
            (p, t)
        })
        .collect();
    (files, cluster.vms.borrow().clone())
}

#[test]
fn a_full_run_provisions_integrates_and_commits_only_its_files() {
    let (fleet, cluster, world, plan) = setup();
    let out = fleet.run(&cluster, &world, &plan, &quiet, None).unwrap();
    assert_eq!(
        out,
        Outcome::Done {
            commit: Some("abc123".into())
        }
    );
    let vm = cluster.vms.borrow()[&110].clone();
    assert!(vm.running);
    assert!(vm.config.contains(&("cores".into(), "2".into())));
    assert!(vm
        .config
        .contains(&("scsi0".into(), "nvmeprom:disk,size=20G".into())));
    assert!(vm.config.contains(&("ipconfig0".into(), "ip=dhcp".into())));
    // The keys file was on the host for the `qm set` only.
    assert!(cluster.host_files.borrow().is_empty());
    let log = cluster.log.borrow().join("\n");
    assert!(
        log.contains("upload .vmctl-sshkeys-110.pub\nqm set 110 --ide2"),
        "{log}"
    );
    // What the plan listed is what ran, in order.
    let planned: Vec<String> = plan
        .mutations()
        .iter()
        .map(|m| crate::proxmox::display_line(&m.argv()))
        .collect();
    let sent: Vec<String> = cluster
        .log
        .borrow()
        .iter()
        .filter(|l| l.starts_with("qm "))
        .cloned()
        .collect();
    assert_eq!(sent, planned);
    // The pinned key is the one installed and written to hosts.nix.
    let kh = world.known_hosts.borrow().clone().unwrap();
    let key = kh
        .split_whitespace()
        .skip(1)
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let hosts = std::fs::read_to_string(fleet.root().join("hosts.nix")).unwrap();
    assert!(hosts.contains(&key), "{hosts}");
    let installed = &world.installed.borrow()[0];
    assert_eq!(
        installed[..3],
        ["nixos-anywhere", "--flake", ".#test-automation"]
    );
    assert_eq!(installed.last().unwrap(), "root@127.0.0.10");
    // Committed: exactly the files changed, with the trailers.
    let (files, msg) = world.commits.borrow()[0].clone();
    let mut files: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    files.sort();
    assert!(files.contains(&"hosts.nix".to_string()));
    assert!(files.contains(&".sops.yaml".to_string()));
    assert!(files.contains(&"secrets/common.yaml".to_string()));
    assert!(files.contains(&"hosts/test-automation/configuration.nix".to_string()));
    assert!(!files
        .iter()
        .any(|f| f.starts_with("hosts-template") || f.starts_with("vms/")));
    assert!(msg.starts_with("feat(vms): provision test-automation (VMID 110)\n"));
    assert!(msg.contains("\nVMID: 110\nNode: prom\nHost-Key-Fingerprint: SHA256:"));
    // The key and the journal are gone.
    for d in world.key_dirs.borrow().iter() {
        assert!(!d.exists(), "{}", d.display());
    }
    assert_eq!(
        journal::load(fleet.root(), "test-automation").unwrap(),
        None
    );
}

/// Where a fault is injected, and the step it hits.
const FAULTS: &[&str] = &[
    "qm clone",
    "qm set 110 --cores",
    "qm set 110 --serial0",
    "qm resize",
    "upload",
    "qm set 110 --ide2",
    "rm -f",
    "qm start",
    "get-ip",
    "wait-ssh",
    "rekey",
    "install",
    "verify",
    "git",
];

#[test]
fn a_fault_at_every_step_rolls_back_to_the_before_state() {
    for fault in FAULTS {
        let (fleet, cluster, world, plan) = setup();
        let (before, before_vms) = (fleet.files(), cluster.vms.borrow().clone());
        cluster.faults.set(fault);
        world.faults.set(fault);
        let e = fleet
            .run(&cluster, &world, &plan, &quiet, None)
            .unwrap_err();
        assert!(
            matches!(&e, ProvisionError::RolledBack { rollback, .. } if rollback.starts_with("rolled back")),
            "{fault}: {e}"
        );
        assert_eq!(fleet.files(), before, "{fault}: files differ");
        assert_eq!(
            *cluster.vms.borrow(),
            before_vms,
            "{fault}: cluster differs"
        );
        assert!(
            cluster.host_files.borrow().is_empty(),
            "{fault}: keys file left"
        );
        for d in world.key_dirs.borrow().iter() {
            assert!(!d.exists(), "{fault}: key dir left");
        }
        assert_eq!(
            journal::load(fleet.root(), "test-automation").unwrap(),
            None
        );
    }
}

/// Runs the demo with `world` and checks the run failed saying each of `want`, leaving the
/// files and the cluster as before and committing nothing.
fn fails_closed_and_rolls_back(world: World, want: &[&str]) {
    let fleet = Fleet::demo();
    let before = fleet.files();
    let cluster = Cluster::demo();
    let plan = fleet.plan(&cluster);
    let e = fleet
        .run(&cluster, &world, &plan, &quiet, None)
        .unwrap_err();
    for w in want {
        assert!(e.to_string().contains(w), "{e}");
    }
    assert_eq!(fleet.files(), before);
    assert!(!cluster.vms.borrow().contains_key(&110));
    assert!(world.commits.borrow().is_empty());
}

#[test]
fn a_different_host_key_after_install_fails_closed_and_rolls_back() {
    let world = World {
        wrong_key: true,
        ..Default::default()
    };
    fails_closed_and_rolls_back(world, &["Host key verification failed"]);
}

#[test]
fn phases_run_in_two_goes_end_where_an_uninterrupted_run_does() {
    use crate::plan::provision::phases;
    let (fleet, cluster, world, plan) = setup();
    let infra = phases::parse("infra").unwrap();
    let out = fleet
        .run_only(Some(&infra), (&cluster, &world, &plan), &quiet, None)
        .unwrap();
    let Outcome::Partial { ran, remaining } = out else {
        panic!("not partial: {out:?}")
    };
    assert!(ran.contains(&StepId::WaitSsh) && !ran.contains(&StepId::KeyCeremony));
    assert_eq!(remaining.first(), Some(&StepId::KeyCeremony));
    // The VM exists, no fleet file is touched yet, the journal waits for the rest.
    assert!(cluster.vms.borrow().contains_key(&110));
    assert!(world.installed.borrow().is_empty());
    let j = journal::load(fleet.root(), "test-automation")
        .unwrap()
        .unwrap();
    let rest = phases::parse("keys,install,integrate").unwrap();
    let planned: Vec<StepId> = plan.steps.iter().map(|s| s.id).collect();
    assert_eq!(phases::check(&planned, &rest, &j.completed), Ok(()));
    // `keys` alone before the infrastructure would have been refused.
    assert!(phases::check(&planned, &rest, &[]).is_err());
    let out = fleet
        .run_only(Some(&rest), (&cluster, &world, &plan), &quiet, Some(j))
        .unwrap();
    assert!(matches!(out, Outcome::Done { commit: Some(_) }), "{out:?}");
    assert_eq!(world.commits.borrow().len(), 1);
    assert_eq!(
        journal::load(fleet.root(), "test-automation").unwrap(),
        None
    );
}

#[test]
fn a_vm_without_nixos_version_fails_verification_and_rolls_back() {
    let world = World {
        not_nixos: true,
        ..Default::default()
    };
    fails_closed_and_rolls_back(world, &["step verify", "nixos-version"]);
}

#[test]
fn rollback_refuses_a_file_changed_since_the_run_wrote_it() {
    let (fleet, cluster, world, plan) = setup();
    let crash = |l: &str| {
        if l.starts_with("== install") {
            panic!("crash")
        }
    };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fleet.run(&cluster, &world, &plan, &crash, None)
    }));
    std::fs::write(fleet.root().join("hosts.nix"), "# edited by hand\n").unwrap();
    let j = journal::load(fleet.root(), "test-automation")
        .unwrap()
        .unwrap();
    let lock = FleetLock::acquire(fleet.root(), &Default::default()).unwrap();
    let e = rollback(&cluster, fleet.root(), &j, &lock, &quiet).unwrap_err();
    assert!(
        e.to_string()
            .contains("`hosts.nix` changed since this run wrote it"),
        "{e}"
    );
    // Nothing else was undone: the VM is still there.
    assert!(cluster.vms.borrow().contains_key(&110));
    let _ = std::fs::remove_dir_all(j.key.unwrap().dir);
}

/// Killed (a panic here) inside the re-keying, after a secret was written: the journal holds
/// the re-keyed bytes announced before the write, so rollback knows the file as the run's own.
fn killed_after_the_rekeyers_write(
) -> (Fleet, Cluster, BTreeMap<PathBuf, Vec<u8>>, journal::Journal) {
    let (fleet, cluster, world, plan) = setup();
    let before = fleet.files();
    world.faults.set("kill-mid-secrets");
    let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fleet.run(&cluster, &world, &plan, &quiet, None)
    }));
    assert!(crashed.is_err(), "the re-keyer was not reached");
    let secret = std::fs::read_to_string(fleet.root().join("secrets/common.yaml")).unwrap();
    assert!(
        secret.ends_with("# rekeyed\n"),
        "the re-keyer did not write"
    );
    let j = journal::load(fleet.root(), "test-automation")
        .unwrap()
        .unwrap();
    assert!(!j.is_done(StepId::KeyCeremony));
    (fleet, cluster, before, j)
}

#[test]
fn a_kill_while_rekeying_rolls_back_the_rekeyers_own_write() {
    let (fleet, cluster, before, j) = killed_after_the_rekeyers_write();
    let lock = FleetLock::acquire(fleet.root(), &Default::default()).unwrap();
    rollback(&cluster, fleet.root(), &j, &lock, &quiet).unwrap();
    assert_eq!(fleet.files(), before);
    assert!(!cluster.vms.borrow().contains_key(&110));
}

#[test]
fn a_foreign_edit_of_a_secret_while_rekeying_is_still_refused() {
    let (fleet, cluster, _, j) = killed_after_the_rekeyers_write();
    let p = fleet.root().join("secrets/common.yaml");
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str("# and an edit of someone else's\n");
    std::fs::write(&p, text).unwrap();
    let lock = FleetLock::acquire(fleet.root(), &Default::default()).unwrap();
    let e = rollback(&cluster, fleet.root(), &j, &lock, &quiet).unwrap_err();
    assert!(
        e.to_string()
            .contains("`secrets/common.yaml` changed since this run wrote it"),
        "{e}"
    );
    // Nothing was undone: the VM and the ceremony's edits are still there.
    assert!(cluster.vms.borrow().contains_key(&110));
    let hosts = std::fs::read_to_string(fleet.root().join("hosts.nix")).unwrap();
    assert!(hosts.contains("test-automation"));
    let _ = std::fs::remove_dir_all(j.key.unwrap().dir);
}

#[test]
fn a_crash_at_every_step_boundary_then_resume_or_rollback() {
    // The reference: one uninterrupted run.
    let (fleet, cluster, world, plan) = setup();
    fleet.run(&cluster, &world, &plan, &quiet, None).unwrap();
    let want = end_state(&fleet, &cluster, &world);

    for step in &plan.steps {
        let heading = format!("== {}", step.id.as_str());
        let crash = |l: &str| {
            if l.starts_with(&heading) {
                panic!("crash at {heading}")
            }
        };
        for resume in [true, false] {
            let (fleet, cluster, world, plan) = setup();
            let (before, before_vms) = (fleet.files(), cluster.vms.borrow().clone());
            let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                fleet.run(&cluster, &world, &plan, &crash, None)
            }));
            assert!(crashed.is_err(), "{heading}: did not crash");
            let j = journal::load(fleet.root(), "test-automation")
                .unwrap()
                .unwrap();
            if resume {
                fleet.run(&cluster, &world, &plan, &quiet, Some(j)).unwrap();
                assert_eq!(
                    end_state(&fleet, &cluster, &world),
                    want,
                    "resume after {heading}"
                );
                for d in world.key_dirs.borrow().iter() {
                    assert!(!d.exists(), "{heading}: key dir left");
                }
            } else {
                let lock = FleetLock::acquire(fleet.root(), &Default::default()).unwrap();
                rollback(&cluster, fleet.root(), &j, &lock, &quiet).unwrap();
                assert_eq!(fleet.files(), before, "rollback after {heading}");
                assert_eq!(
                    *cluster.vms.borrow(),
                    before_vms,
                    "rollback after {heading}"
                );
                if let Some(k) = &j.key {
                    assert!(!k.dir.exists(), "{heading}: key dir left");
                }
            }
        }
    }
}
