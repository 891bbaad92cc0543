//! The integration over a copy of the demo fleet with a fake re-keyer and git: every file
//! written and committed; a failure at the re-key or the commit restores every file byte for
//! byte; a pending journal and an already-integrated host are handled without writing.

use super::*;
use crate::exec::provision::test_fleet::{rekey_common, Commits, Fleet};
use crate::exec::provision::Announce;
use crate::exec::proxmox::QmProxmox;
use crate::exec::remote::Recording;
use crate::keys::PrivateKey;

impl Fleet {
    fn vm(&self) -> &Vm {
        &self.defs.managed[0]
    }
}

/// A re-keyer and git that record, and fail where told.
#[derive(Default)]
struct World {
    fail_rekey: bool,
    /// Dies at the commit, as a `kill -9` would leave it.
    crash_git: bool,
    fail_git: bool,
    commits: Commits,
}

impl Rekeyer for World {
    fn rekey(&self, root: &Path, lock: &FleetLock) -> Result<(), RekeyError> {
        self.rekey_announcing(root, lock, &mut |_, _| Ok(()))
    }

    fn rekey_announcing(
        &self,
        root: &Path,
        _: &FleetLock,
        announce: &mut Announce<'_>,
    ) -> Result<(), RekeyError> {
        // The journal exists while the secrets change: a crash here can be undone.
        assert!(journal::load(root, "test-automation").unwrap().is_some());
        rekey_common(root, announce)?;
        if self.fail_rekey {
            return Err(RekeyError::File {
                path: "secrets/common.yaml".into(),
                reason: "injected fault after writing".into(),
            });
        }
        Ok(())
    }
}

impl Git for World {
    fn commit(&self, _: &Path, files: &[PathBuf], message: &str) -> Result<String, GitError> {
        assert!(!self.crash_git, "crashed while committing");
        self.commits.commit(files, message, self.fail_git)
    }
}

fn key() -> PublicKey {
    PrivateKey::from_seed([9; 32], Some("root@test-automation".into())).public
}

fn run(fleet: &Fleet, world: &World, key: &PublicKey) -> Result<Integrated, IntegrateError> {
    let rec = Recording::new();
    let p = QmProxmox::new(
        &rec,
        crate::plan::ops::fence(&fleet.defs, false),
        Default::default(),
    );
    let lock = FleetLock::acquire(fleet.root(), &Default::default()).unwrap();
    let it = Integration {
        root: fleet.root(),
        defs: &fleet.defs,
        vm: fleet.vm(),
        vmid: 110,
        node: Some("prom"),
        key,
        from: "127.0.0.110:22",
        accepted: crate::plan::post_provision::Acceptance::Flag,
        commit: true,
    };
    let r = integrate(&p, world, world, &lock, &it, &|_| {});
    assert!(
        rec.lines().is_empty(),
        "the cluster was sent {:?}",
        rec.lines()
    );
    r
}

#[test]
fn the_accepted_key_is_integrated_and_committed() {
    let fleet = Fleet::demo();
    let world = World::default();
    let k = key();
    let before = fleet.files();
    let Integrated::Done {
        files,
        secrets,
        commit,
    } = run(&fleet, &world, &k).unwrap()
    else {
        panic!("nothing done")
    };
    assert_eq!(commit.as_deref(), Some("abc123"));
    assert_eq!(secrets, ["secrets/common.yaml"]);
    // docs/machines.md is regenerated from definitions.nix, which already documents the VM.
    let written: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
    for want in [
        "hosts.nix",
        ".sops.yaml",
        "hosts/test-automation/configuration.nix",
    ] {
        assert!(
            written.iter().any(|w| w == want),
            "{want} not in {written:?}"
        );
    }
    let hosts = std::fs::read_to_string(fleet.root().join("hosts.nix")).unwrap();
    let b64 = k
        .to_openssh()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(hosts.contains(&b64), "{hosts}");
    let sops = std::fs::read_to_string(fleet.root().join(".sops.yaml")).unwrap();
    assert!(sops.contains(&k.age_recipient().unwrap()), "{sops}");
    // One commit of exactly the changed files, with the trailers.
    let commits = world.commits.borrow();
    assert_eq!(commits.len(), 1);
    let (paths, msg) = &commits[0];
    let after = fleet.files();
    let changed: Vec<&PathBuf> = after
        .iter()
        .filter(|(p, b)| !p.to_string_lossy().ends_with('/') && before.get(*p) != Some(*b))
        .map(|(p, _)| p)
        .collect();
    let mut committed: Vec<&PathBuf> = paths.iter().collect();
    committed.sort();
    let mut changed_sorted = changed.clone();
    changed_sorted.sort();
    assert_eq!(committed, changed_sorted);
    assert!(msg.starts_with("feat(vms): post-provision test-automation (VMID 110)"));
    assert!(msg.contains(&format!("Host-Key-Fingerprint: {}", k.fingerprint())));
    assert!(msg.contains("Node: prom"));
    assert!(
        msg.ends_with("Host-Key-Accepted-By: --accept-fingerprint\n"),
        "{msg}"
    );
    assert_eq!(
        journal::load(fleet.root(), "test-automation").unwrap(),
        None
    );

    // Again with the same key: nothing to do, nothing written.
    let now = fleet.files();
    let again = run(&fleet, &World::default(), &k).unwrap();
    assert!(
        matches!(&again, Integrated::NothingToDo(m) if m.contains("already integrated")),
        "{again:?}"
    );
    assert!(fleet.files() == now);
    // Another key for the integrated host: refused, nothing written.
    let other = PrivateKey::from_seed([10; 32], None).public;
    let e = run(&fleet, &World::default(), &other).unwrap_err();
    assert!(matches!(e, IntegrateError::Ceremony(_)), "{e}");
    assert!(fleet.files() == now);
}

#[test]
fn a_failure_after_writing_restores_every_file() {
    for (what, world) in [
        (
            "rekey",
            World {
                fail_rekey: true,
                ..Default::default()
            },
        ),
        (
            "git",
            World {
                fail_git: true,
                ..Default::default()
            },
        ),
    ] {
        let fleet = Fleet::demo();
        let before = fleet.files();
        let e = run(&fleet, &world, &key()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("injected fault") && msg.contains("rolled back"),
            "{what}: {msg}"
        );
        assert!(
            fleet.files() == before,
            "{what}: the fleet's files are not as before"
        );
        assert_eq!(
            journal::load(fleet.root(), "test-automation").unwrap(),
            None,
            "{what}"
        );
        assert!(world.commits.borrow().is_empty());
    }
}

#[test]
fn a_pending_journal_is_refused_before_anything_is_written() {
    let fleet = Fleet::demo();
    journal::save(fleet.root(), &Journal::new("test-automation", 110, None)).unwrap();
    let before = fleet.files();
    let e = run(&fleet, &World::default(), &key()).unwrap_err();
    assert!(matches!(e, IntegrateError::Pending { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("vmctl provision test-automation --rollback"),
        "{e}"
    );
    assert!(fleet.files() == before);
}

#[test]
fn fetching_from_a_closed_port_says_what_to_check() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    match fetch_host_key("127.0.0.1", closed, Duration::from_secs(2)) {
        Err(FetchError::Scan(e @ ScanError::NoKey { .. })) => {
            let m = e.to_string();
            assert!(
                m.contains(&format!("127.0.0.1:{closed} offered no ed25519 host key")),
                "{m}"
            );
            assert!(m.contains("--port"), "{m}");
        }
        Err(FetchError::Process(e)) if e.is_not_found() => {
            panic!("ssh-keyscan is not installed: run `eval \"$(./scripts/setup-test-tools.sh)\"` ({e})")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_crash_leaves_a_journal_that_provision_s_rollback_undoes() {
    let fleet = Fleet::demo();
    let before = fleet.files();
    let world = World {
        crash_git: true,
        ..Default::default()
    };
    let crashed =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&fleet, &world, &key())));
    assert!(crashed.is_err());
    assert!(fleet.files() != before, "the crash left nothing to undo");
    let j = journal::load(fleet.root(), "test-automation")
        .unwrap()
        .expect("the journal outlives the crash");
    assert!(!j.clone_sent, "post-provision never creates a VM");
    let journaled: Vec<String> = j
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    for want in ["hosts.nix", ".sops.yaml", "secrets/common.yaml"] {
        assert!(
            journaled.iter().any(|f| f == want),
            "{want} not in {journaled:?}"
        );
    }
    // A second run refuses while the journal is there.
    let e = run(&fleet, &World::default(), &key()).unwrap_err();
    assert!(matches!(e, IntegrateError::Pending { .. }), "{e}");
    // What `vmctl provision NAME --rollback` runs: every file back, nothing sent to the cluster.
    let rec = Recording::new();
    let p = QmProxmox::new(
        &rec,
        crate::plan::ops::fence(&fleet.defs, false),
        Default::default(),
    );
    let lock = FleetLock::acquire(fleet.root(), &Default::default()).unwrap();
    rollback(&p, fleet.root(), &j, &lock, &|_| {}).unwrap();
    assert!(rec.lines().is_empty(), "{:?}", rec.lines());
    assert!(fleet.files() == before, "the rollback left changes");
}
