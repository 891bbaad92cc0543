//! Every Proxmox operation over the real sshd against the simulator: the parsed result or the
//! effect on the simulator's state is asserted.

use crate::support::pve;

use std::io::Write;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use pve::{demo_definitions, Pve, VmHost};
use vmctl::exec::proxmox::{Proxmox, ProxmoxError};
use vmctl::exec::remote::{wait_for_ssh, Remote};
use vmctl::proxmox::argv::CloneSpec;
use vmctl::proxmox::{argv, IpSource, Mutation};

fn clone_spec(vmid: u32, name: &str) -> CloneSpec {
    CloneSpec {
        source: 9001,
        vmid,
        name: name.into(),
        full: true,
        storage: Some("nvmeprom".into()),
        target: None,
        pool: None,
        description: None,
    }
}

#[test]
fn reads_parse_what_the_simulator_prints() {
    let pve = Pve::start();
    let p = pve.proxmox(&demo_definitions());
    let list = p.list().unwrap();
    let ids: Vec<u32> = list.iter().map(|r| r.vmid).collect();
    assert_eq!(ids, [104, 109, 9001]);
    assert!(list[2].template);
    assert_eq!(list[0].status, "running");
    assert_eq!(list[0].maxmem, Some(16384 * 1024 * 1024));
    assert_eq!(p.status(9001).unwrap().status, "stopped");
    let c = p.config(104).unwrap();
    assert_eq!(c.get("description"), Some("Docker host for home services"));
    assert!(c.protected());
    assert_eq!(c.net0_mac().as_deref(), Some("bc:24:11:00:01:04"));
    let s = p.storage().unwrap();
    assert_eq!(
        s.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["local", "nvmeprom", "cephpool"]
    );
    assert_eq!(s[1].available, 976762584 - 123456789);
    assert!(matches!(
        p.status(999),
        Err(ProxmoxError::NoSuchVm { vmid: 999 })
    ));
    // The per-node fixed-width table agrees with the cluster view.
    let out = p.remote().run(&argv::qm_list()).unwrap();
    let rows = vmctl::proxmox::parse::qm_list(&out.stdout).unwrap();
    let node_ids: Vec<u32> = rows.iter().map(|r| r.vmid).collect();
    assert_eq!(node_ids, ids);
    assert_eq!((rows[0].name.as_str(), rows[0].mem_mb), ("doc1", 16384));
    assert_eq!(rows[0].bootdisk_gb, 200.0);
    // 110 is reserved by definitions.nix even though the cluster does not have it yet.
    assert_eq!(p.next_vmid(110, 199).unwrap(), 111);
    assert_eq!(p.next_vmid(100, 199).unwrap(), 100);
    assert!(matches!(
        p.next_vmid(104, 104),
        Err(ProxmoxError::NoFreeVmid { .. })
    ));
}

#[test]
fn lifecycle_of_a_managed_vm() {
    let pve = Pve::start();
    let p = pve.proxmox(&demo_definitions());
    let mut spec = clone_spec(110, "test-automation");
    spec.pool = Some("lab".into());
    spec.description = Some("made by vmctl".into());
    p.apply(&Mutation::Clone(spec)).unwrap();
    let conf = pve.conf(110).expect("clone wrote 110.conf");
    assert!(conf.contains("name: test-automation\n"), "{conf}");
    assert!(
        conf.contains("scsi0: nvmeprom:vm-110-disk-0,size=8G"),
        "{conf}"
    );
    assert!(!conf.contains("lock:"), "clone lock released: {conf}");
    assert!(!conf.contains("template:"), "{conf}");
    assert_eq!(pve.read("pools/110").as_deref(), Some("lab"));
    let listed = p.list().unwrap();
    let r = listed.iter().find(|r| r.vmid == 110).unwrap();
    assert_eq!(r.pool.as_deref(), Some("lab"));

    p.apply(&Mutation::Configure {
        vmid: 110,
        options: vec![
            ("cores".into(), "4".into()),
            ("memory".into(), "8192".into()),
        ],
    })
    .unwrap();
    let c = p.config(110).unwrap();
    assert_eq!((c.get("cores"), c.get("memory")), (Some("4"), Some("8192")));

    p.apply(&Mutation::CreateDisk {
        vmid: 110,
        disk: "scsi1".into(),
        storage: "nvmeprom".into(),
        size_gib: 20,
    })
    .unwrap();
    assert_eq!(
        p.config(110).unwrap().get("scsi1"),
        Some("nvmeprom:vm-110-disk-1,size=20G")
    );
    p.apply(&Mutation::Resize {
        vmid: 110,
        disk: "scsi1".into(),
        size: "+10G".into(),
    })
    .unwrap();
    assert_eq!(
        p.config(110).unwrap().get("scsi1"),
        Some("nvmeprom:vm-110-disk-1,size=30G")
    );
    let shrink = p
        .apply(&Mutation::Resize {
            vmid: 110,
            disk: "scsi1".into(),
            size: "5G".into(),
        })
        .unwrap_err();
    assert!(
        shrink
            .to_string()
            .contains("shrinking disks is not supported"),
        "{shrink}"
    );

    p.apply(&Mutation::SerialSocket { vmid: 110 }).unwrap();
    assert_eq!(p.config(110).unwrap().get("serial0"), Some("socket"));

    p.apply(&Mutation::Start { vmid: 110 }).unwrap();
    assert_eq!(p.status(110).unwrap().status, "running");
    let again = p.apply(&Mutation::Start { vmid: 110 }).unwrap_err();
    assert!(
        again.to_string().contains("VM 110 already running"),
        "{again}"
    );
    p.apply(&Mutation::Shutdown { vmid: 110 }).unwrap();
    assert_eq!(p.status(110).unwrap().status, "stopped");
    p.apply(&Mutation::Start { vmid: 110 }).unwrap();
    p.apply(&Mutation::Stop { vmid: 110 }).unwrap();
    assert_eq!(p.status(110).unwrap().status, "stopped");

    p.apply(&Mutation::Protect {
        vmid: 110,
        on: true,
    })
    .unwrap();
    let n = pve.argv_log().len();
    let refused = p
        .apply(&Mutation::Destroy {
            vmid: 110,
            confirm: Some("test-automation".into()),
        })
        .unwrap_err();
    assert!(
        refused.to_string().contains("Proxmox protection is on"),
        "{refused}"
    );
    // The live read went out, the destroy did not.
    assert_eq!(pve.argv_log()[n..], [argv::config(110)]);
    assert!(pve.conf(110).is_some());
    // Proxmox itself refuses too when asked directly.
    let out = p
        .remote()
        .run(
            &Mutation::Destroy {
                vmid: 110,
                confirm: None,
            }
            .argv(),
        )
        .unwrap();
    assert!(
        out.stderr
            .contains("can't remove VM 110 - protection mode enabled"),
        "{out:?}"
    );
    p.apply(&Mutation::Protect {
        vmid: 110,
        on: false,
    })
    .unwrap();
    let out = p
        .apply(&Mutation::Destroy {
            vmid: 110,
            confirm: Some("test-automation".into()),
        })
        .unwrap();
    assert!(out.contains("purging VM 110"), "{out}");
    assert!(pve.conf(110).is_none());
}

#[test]
fn linked_clone_to_another_node_and_template() {
    let pve = Pve::start();
    let p = pve.proxmox(&demo_definitions());
    let mut spec = clone_spec(120, "linked");
    spec.full = false;
    spec.storage = None;
    p.apply(&Mutation::Clone(spec.clone())).unwrap();
    assert!(pve
        .conf(120)
        .unwrap()
        .contains("scsi0: nvmeprom:base-9001-disk-0/vm-120-disk-0,size=8G"));

    // --target needs shared storage: refused on local lvmthin, allowed on ceph.
    let mut remote = clone_spec(121, "elsewhere");
    remote.target = Some("prom2".into());
    let e = p.apply(&Mutation::Clone(remote.clone())).unwrap_err();
    assert!(
        e.to_string()
            .contains("can't clone to node 'prom2' (VM uses local storage)"),
        "{e}"
    );
    remote.storage = Some("cephpool".into());
    p.apply(&Mutation::Clone(remote)).unwrap();
    assert!(pve.read("nodes/prom2/qemu-server/121.conf").is_some());
    let r = p.list().unwrap();
    assert_eq!(r.iter().find(|r| r.vmid == 121).unwrap().node, "prom2");

    p.apply(&Mutation::Template { vmid: 120 }).unwrap();
    assert!(pve.conf(120).unwrap().contains("template: 1"));
    let e = p.apply(&Mutation::Start { vmid: 120 }).unwrap_err();
    assert!(
        e.to_string()
            .contains("you can't start a vm if it's a template"),
        "{e}"
    );
}

#[test]
fn a_missing_source_names_the_source() {
    let pve = Pve::start();
    let p = pve.proxmox(&demo_definitions());
    let mut spec = clone_spec(150, "x");
    spec.source = 9999;
    let e = p.apply(&Mutation::Clone(spec)).unwrap_err();
    assert!(matches!(e, ProxmoxError::NoSuchVm { vmid: 9999 }), "{e}");
}

#[test]
fn clone_onto_an_existing_vmid_is_refused_before_it_is_sent() {
    let pve = Pve::start();
    let p = pve.proxmox(&demo_definitions());
    p.apply(&Mutation::Clone(clone_spec(130, "first"))).unwrap();
    let before = pve.snapshot();
    let n = pve.argv_log().len();
    let e = p
        .apply(&Mutation::Clone(clone_spec(130, "second")))
        .unwrap_err();
    assert!(
        e.to_string().contains(
            "refusing to clone onto VMID 130: it already exists in the cluster as `first`"
        ),
        "{e}"
    );
    let log = pve.argv_log();
    // Only the cluster read went out, no `qm clone`.
    assert_eq!(log.len(), n + 1);
    assert_eq!(log[n], argv::list());
    let mut after = pve.snapshot();
    after.insert(
        "argv.jsonl".into(),
        before[std::path::Path::new("argv.jsonl")].clone(),
    );
    assert_eq!(before, after);
}

#[test]
fn restore_vma_creates_the_vm() {
    let pve = Pve::start();
    let p = pve.proxmox(&demo_definitions());
    let archive = pve.root.join("vzdump-qemu-104.vma");
    std::fs::write(
        &archive,
        "cores: 2\nmemory: 1024\nname: restored\nnet0: virtio=BC:24:11:00:09:99,bridge=vmbr0\n\
         scsi0: local:vm-104-disk-0,size=4G\n",
    )
    .unwrap();
    p.apply(&Mutation::RestoreVma {
        archive: archive.display().to_string(),
        vmid: 140,
        storage: Some("nvmeprom".into()),
    })
    .unwrap();
    let c = p.config(140).unwrap();
    assert_eq!(c.name(), Some("restored"));
    assert_eq!(c.get("scsi0"), Some("nvmeprom:vm-140-disk-0,size=4G"));
    let e = p
        .apply(&Mutation::RestoreVma {
            archive: "/nonexistent.vma".into(),
            vmid: 141,
            storage: None,
        })
        .unwrap_err();
    assert!(e.to_string().contains("can't find archive file"), "{e}");
    // Restoring onto an existing VMID is refused before qmrestore runs.
    let e = p
        .apply(&Mutation::RestoreVma {
            archive: archive.display().to_string(),
            vmid: 140,
            storage: None,
        })
        .unwrap_err();
    assert!(
        e.to_string().contains("already exists in the cluster"),
        "{e}"
    );
}

#[test]
fn snapshots_create_list_rollback_delete() {
    let pve = Pve::start();
    let p = pve.proxmox(&demo_definitions());
    p.apply(&Mutation::Clone(clone_spec(110, "test-automation")))
        .unwrap();
    let snap = |name: &str, d: Option<&str>| Mutation::SnapshotCreate {
        vmid: 110,
        name: name.into(),
        description: d.map(str::to_string),
        vmstate: false,
    };
    p.apply(&snap("first", Some("before the upgrade"))).unwrap();
    p.apply(&Mutation::Configure {
        vmid: 110,
        options: vec![("cores".into(), "6".into())],
    })
    .unwrap();
    p.apply(&snap("second", None)).unwrap();
    let list = p.snapshots(110).unwrap();
    let names: Vec<(&str, usize)> = list.iter().map(|s| (s.name.as_str(), s.depth)).collect();
    assert_eq!(names, [("first", 0), ("second", 1), ("current", 2)]);
    assert_eq!(list[0].description, "before the upgrade");
    assert_eq!(list[1].description, "no-description");
    assert!(list[0].time.is_some());
    assert!(list[2].current);
    let dup = p.apply(&snap("first", None)).unwrap_err();
    assert!(dup
        .to_string()
        .contains("snapshot name 'first' already used"));

    p.apply(&Mutation::SnapshotRollback {
        vmid: 110,
        name: "first".into(),
    })
    .unwrap();
    assert_eq!(p.config(110).unwrap().get("cores"), Some("2"));
    p.apply(&Mutation::SnapshotDelete {
        vmid: 110,
        name: "second".into(),
    })
    .unwrap();
    let names: Vec<String> = p
        .snapshots(110)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["first", "current"]);
    let e = p
        .apply(&Mutation::SnapshotDelete {
            vmid: 110,
            name: "nope".into(),
        })
        .unwrap_err();
    assert!(
        e.to_string().contains("snapshot 'nope' does not exist"),
        "{e}"
    );
}

#[test]
fn migrate_moves_the_vm_to_the_target_node() {
    let pve = Pve::start();
    let p = pve.proxmox(&demo_definitions());
    p.apply(&Mutation::Clone(clone_spec(110, "test-automation")))
        .unwrap();
    p.apply(&Mutation::Start { vmid: 110 }).unwrap();
    let migrate = |target: &str, online, with_local_disks| Mutation::Migrate {
        node: "prom".into(),
        vmid: 110,
        target: target.into(),
        online,
        with_local_disks,
    };
    let offline = migrate("prom2", false, false);
    let e = p.apply(&offline).unwrap_err();
    assert!(
        e.to_string()
            .contains("can't migrate running VM without --online"),
        "{e}"
    );
    let e = p.apply(&migrate("nowhere", true, false)).unwrap_err();
    assert!(
        e.to_string().contains("no such cluster node 'nowhere'"),
        "{e}"
    );
    // Its disks are on node-local storage: a live migration copies them only when asked.
    p.apply(&migrate("prom2", true, true)).unwrap();
    assert!(pve.conf(110).is_none());
    assert!(pve.read("nodes/prom2/qemu-server/110.conf").is_some());
    let r = p.list().unwrap();
    assert_eq!(r.iter().find(|r| r.vmid == 110).unwrap().node, "prom2");
}

#[test]
fn get_ip_prefers_the_agent_and_falls_back_to_the_neighbour_table() {
    let pve = Pve::start();
    let p = pve.proxmox(&demo_definitions());
    p.apply(&Mutation::Clone(clone_spec(110, "test-automation")))
        .unwrap();
    let mac = p.config(110).unwrap().net0_mac().unwrap();
    assert_eq!(mac, "bc:24:11:00:00:6e");
    pve.write(
        "agent/110.json",
        r#"["192.168.1.50/24", "2001:db8::50/64"]"#,
    );
    pve.write(
        "neigh",
        "192.168.1.1 dev vmbr0 lladdr 00:11:22:33:44:55 REACHABLE\n\
         192.168.1.77 dev vmbr0 lladdr bc:24:11:00:00:6e STALE\n",
    );

    // Stopped: the agent is not running, the neighbour table answers.
    let ip = p.get_ip(110).unwrap();
    assert_eq!(ip.source, IpSource::NeighbourTable);
    assert_eq!(ip.address.to_string(), "192.168.1.77");

    // Started: the agent answers with net0's global IPv4.
    p.apply(&Mutation::Start { vmid: 110 }).unwrap();
    let ip = p.get_ip(110).unwrap();
    assert_eq!(ip.source, IpSource::GuestAgent);
    assert_eq!(ip.address.to_string(), "192.168.1.50");

    // IPv6-only guests are supported (link-local is never chosen).
    pve.write("agent/110.json", r#"["2001:db8::50/64"]"#);
    assert_eq!(p.get_ip(110).unwrap().address.to_string(), "2001:db8::50");

    // No agent address and no neighbour entry: a clear error.
    pve.write("agent/110.json", "[]");
    pve.write("neigh", "");
    let e = p.get_ip(110).unwrap_err();
    assert!(
        matches!(e, ProxmoxError::NoIp { .. }) && e.to_string().contains("bc:24:11:00:00:6e"),
        "{e}"
    );
}

#[test]
fn console_attaches_through_the_master_connection() {
    let pve = Pve::start();
    let p = pve.proxmox(&demo_definitions());
    p.apply(&Mutation::Clone(clone_spec(110, "test-automation")))
        .unwrap();
    p.apply(&Mutation::Start { vmid: 110 }).unwrap();
    let mut child = p
        .remote()
        .interactive_command(&argv::console(110))
        .spawn_with(Stdio::piped(), Stdio::piped(), Stdio::piped())
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello-console\n\x0f")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("hello-console"), "{text}");
    assert!(text.contains("starting serial terminal"), "{text}");
    drop(p);
    assert_eq!(pve.sshd.accepted_connections(), 1);
}

#[test]
fn uploaded_ssh_keys_feed_cloud_init() {
    let pve = Pve::start();
    let p = pve.proxmox(&demo_definitions());
    p.apply(&Mutation::Clone(clone_spec(110, "test-automation")))
        .unwrap();
    let path = pve.root.join("keys of 'vm' $(110).pub");
    let keys =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl admin\n";
    p.upload(&path.display().to_string(), keys.as_bytes())
        .unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), keys);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    p.apply(&Mutation::Configure {
        vmid: 110,
        options: vec![
            ("ide2".into(), "nvmeprom:cloudinit".into()),
            ("ciuser".into(), "root".into()),
            ("sshkeys".into(), path.display().to_string()),
            ("ipconfig0".into(), "ip=dhcp".into()),
        ],
    })
    .unwrap();
    let c = p.config(110).unwrap();
    assert_eq!(c.get("ide2"), Some("nvmeprom:vm-110-cloudinit,media=cdrom"));
    assert!(c.get("sshkeys").unwrap().starts_with("ssh-ed25519%20AAAA"));
}

#[test]
fn wait_ssh_sees_a_vm_sshd_on_its_own_loopback_address() {
    let vm = VmHost::start(23, None);
    assert_eq!(vm.sshd.addr.ip().to_string(), "127.0.0.23");
    wait_for_ssh(
        vm.sshd.addr,
        Duration::from_secs(5),
        Duration::from_millis(50),
    )
    .expect("the VM's sshd greets");
    // Nothing listens here: the wait gives up with a clear error.
    let closed: SocketAddr = "127.0.0.24:9".parse().unwrap();
    let e = wait_for_ssh(
        closed,
        Duration::from_millis(300),
        Duration::from_millis(50),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("no SSH server answered on 127.0.0.24:9"),
        "{e}"
    );
}
