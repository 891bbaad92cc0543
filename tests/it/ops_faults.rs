//! Injected Proxmox faults: lock timeouts are retried within their bound, a VMID taken during a
//! clone is its own clear error, and concurrent clones contend for the storage lock.

use crate::support::pve;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pve::{demo_definitions, fast_retry, Pve};
use vmctl::exec::proxmox::{Proxmox, ProxmoxError, QmProxmox};
use vmctl::proxmox::argv::CloneSpec;
use vmctl::proxmox::{Fence, Mutation, RetryPolicy};

fn clone_spec(vmid: u32, name: &str) -> Mutation {
    Mutation::Clone(CloneSpec {
        source: 9001,
        vmid,
        name: name.into(),
        full: true,
        storage: Some("nvmeprom".into()),
        target: None,
        pool: None,
        description: None,
    })
}

fn count(pve: &Pve, prefix: &[&str]) -> usize {
    pve.argv_log()
        .iter()
        .filter(|a| a.len() >= prefix.len() && a.iter().zip(prefix).all(|(x, y)| x == y))
        .count()
}

#[test]
fn lock_timeouts_are_retried_until_the_lock_frees() {
    let pve = Pve::start();
    let messages = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = messages.clone();
    let p = pve
        .proxmox(&demo_definitions())
        .with_reporter(Box::new(move |m| sink.lock().unwrap().push(m.to_string())));
    p.apply(&clone_spec(110, "test-automation")).unwrap();
    pve.set_faults(r#"[{"match":"qm start 110","action":"lock-timeout","times":2}]"#);
    p.apply(&Mutation::Start { vmid: 110 }).unwrap();
    assert_eq!(count(&pve, &["qm", "start", "110"]), 3);
    assert_eq!(p.status(110).unwrap().status, "running");
    let m = messages.lock().unwrap();
    assert_eq!(m.len(), 2);
    assert!(
        m[0].contains("can't lock file '/var/lock/qemu-server/lock-110.conf' - got timeout")
            && m[0].contains("retry 1/3"),
        "{m:?}"
    );
    // The fault file counted down to nothing.
    assert_eq!(
        pve.read("faults.json").as_deref().map(str::trim),
        Some("[]")
    );
}

#[test]
fn a_lock_that_never_frees_fails_after_the_bound_with_a_clear_error() {
    let pve = Pve::start();
    let p = pve.proxmox(&demo_definitions());
    pve.set_faults(
        r#"[{"match":"qm clone","action":"lock-timeout","storage":"nvmeprom"},
            {"match":"qm set 9001","action":"locked","reason":"backup"}]"#,
    );
    let e = p.apply(&clone_spec(110, "test-automation")).unwrap_err();
    let policy = fast_retry();
    match &e {
        ProxmoxError::Locked {
            attempts, waited, ..
        } => {
            assert_eq!(*attempts, policy.retries + 1);
            assert_eq!(*waited, policy.bound());
        }
        other => panic!("expected a lock error, got {other}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("can't lock file '/var/lock/pve-manager/pve-storage-nvmeprom' - got timeout"),
        "{msg}"
    );
    assert!(
        msg.contains("after 4 attempts") && msg.contains("--lock-retries"),
        "{msg}"
    );
    assert_eq!(count(&pve, &["qm", "clone"]), 4);
    assert!(pve.conf(110).is_none());

    let e = p
        .apply(&Mutation::Configure {
            vmid: 9001,
            options: vec![("cores".into(), "4".into())],
        })
        .unwrap_err();
    assert!(e.to_string().contains("VM is locked (backup)"), "{e}");
    assert_eq!(count(&pve, &["qm", "set", "9001"]), 4);
}

#[test]
fn no_retries_means_one_attempt() {
    let pve = Pve::start();
    let p = QmProxmox::new(
        pve.connect(),
        Fence::from_definitions(&demo_definitions()),
        RetryPolicy {
            retries: 0,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(1),
        },
    );
    pve.set_faults(r#"[{"match":"qm status","action":"lock-timeout","times":1}]"#);
    assert!(matches!(
        p.status(104),
        Err(ProxmoxError::Locked { attempts: 1, .. })
    ));
    assert_eq!(p.status(104).unwrap().status, "running");
}

#[test]
fn a_vmid_taken_during_the_clone_is_its_own_error() {
    let pve = Pve::start();
    let p = pve.proxmox(&demo_definitions());
    pve.set_faults(r#"[{"match":"qm clone","action":"take-vmid","times":1}]"#);
    let e = p.apply(&clone_spec(110, "test-automation")).unwrap_err();
    assert!(matches!(e, ProxmoxError::VmidTaken { vmid: 110 }), "{e}");
    assert_eq!(
        e.to_string(),
        "VMID 110 was taken while vmctl was cloning (Proxmox: config file already exists); \
         nothing was created; pick a free VMID with `vmctl ops next-vmid` and run it again"
    );
    // Not retried, and the other client's VM is untouched.
    assert_eq!(count(&pve, &["qm", "clone"]), 1);
    assert!(pve
        .conf(110)
        .unwrap()
        .contains("name: taken-by-another-client"));
}

#[test]
fn failures_carry_the_command_and_stderr() {
    let pve = Pve::start();
    let p = pve.proxmox(&demo_definitions());
    pve.set_faults(
        r#"[{"match":"pvesm status","action":"fail","message":"storage 'nvmeprom' is not online","exit":2,"times":1}]"#,
    );
    let e = p.storage().unwrap_err();
    assert_eq!(
        e.to_string(),
        "`pvesm status` failed on the Proxmox host (exit 2): storage 'nvmeprom' is not online"
    );
}

#[test]
fn concurrent_clones_on_one_storage_wait_for_its_lock() {
    let pve = Pve::start();
    // The first clone stops mid-way at the simulator's gate, holding the storage lock; a
    // waiter gives up after 200 ms.
    pve.write(
        "sim.json",
        r#"{"node":"prom","nodes":["prom"],"storage_lock_timeout_ms":200,"gates":["clone"]}"#,
    );
    let policy = RetryPolicy {
        retries: 6,
        initial: Duration::from_millis(150),
        max: Duration::from_millis(300),
    };
    let handles: Vec<_> = [(150u32, "one"), (151, "two")]
        .into_iter()
        .map(|(vmid, name)| {
            let p = QmProxmox::new(
                pve.connect(),
                Fence::from_definitions(&demo_definitions()).allow_unlisted(true),
                policy,
            );
            std::thread::spawn(move || p.apply(&clone_spec(vmid, name)))
        })
        .collect();
    // One clone holds the lock at the gate; the other's attempt timed out on it and was
    // retried (three clone commands) before the holder may finish.
    pve.wait_gate("clone");
    pve.wait_until("a retried clone", || count(&pve, &["qm", "clone"]) >= 3);
    pve.open_gate("clone");
    for h in handles {
        h.join()
            .unwrap()
            .expect("both clones succeed after waiting");
    }
    for id in [150, 151] {
        let c = pve.conf(id).unwrap();
        assert!(!c.contains("lock: clone"), "{c}");
    }
    let clones = count(&pve, &["qm", "clone"]);
    assert!(
        (3..=2 + policy.retries as usize).contains(&clones),
        "the loser hit the storage lock and retried: {clones} clone commands"
    );
    // Every storage lock is free again (flock files stay, as under /var/lock on Proxmox).
    for e in std::fs::read_dir(pve.state.join("locks"))
        .unwrap()
        .flatten()
    {
        let f = std::fs::File::open(e.path()).unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: flock(2) on a descriptor this test owns.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(r, 0, "{} is still held", e.path().display());
    }
}

#[test]
fn a_vm_being_cloned_is_locked_and_commands_on_it_wait() {
    let pve = Pve::start();
    pve.write(
        "sim.json",
        r#"{"node":"prom","nodes":["prom"],"storage_lock_timeout_ms":2000,"gates":["clone"]}"#,
    );
    let cloner = pve.proxmox(&demo_definitions());
    let handle = std::thread::spawn(move || cloner.apply(&clone_spec(110, "test-automation")));
    let starter = QmProxmox::new(
        pve.connect(),
        Fence::from_definitions(&demo_definitions()),
        RetryPolicy {
            retries: 10,
            initial: Duration::from_millis(100),
            max: Duration::from_millis(200),
        },
    );
    // Mid-clone, the new VM is there, carrying `lock: clone`, as in Proxmox.
    pve.wait_gate("clone");
    let p = pve.proxmox(&demo_definitions());
    let r = p.list().unwrap().into_iter().find(|r| r.vmid == 110);
    assert_eq!(r.and_then(|r| r.lock).as_deref(), Some("clone"));
    // A start during the clone hits "VM is locked (clone)" and is retried until it ends.
    let start = std::thread::spawn(move || starter.apply(&Mutation::Start { vmid: 110 }));
    pve.wait_until("a refused start", || {
        count(&pve, &["qm", "start", "110"]) >= 1
    });
    pve.open_gate("clone");
    handle.join().unwrap().unwrap();
    start.join().unwrap().unwrap();
    assert!(count(&pve, &["qm", "start", "110"]) >= 2);
    assert_eq!(p.status(110).unwrap().status, "running");
}
