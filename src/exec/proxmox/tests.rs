//! Unit tests of `QmProxmox`: fences before anything is sent, retries, redaction, get-ip.
use super::*;
use crate::exec::remote::{Recording, RemoteOutput};
use crate::model::{Definitions, Vm, VmKind};
use crate::proxmox::argv::CloneSpec;

fn fence() -> Fence {
    let vm = |name: &str, kind, vmid, readonly| Vm {
        readonly,
        ..Vm::new(name, kind, Some(vmid))
    };
    Fence::from_definitions(&Definitions {
        imported: vec![vm("doc1", VmKind::Imported, 104, true)],
        managed: vec![vm("test-automation", VmKind::Managed, 110, false)],
        ..Default::default()
    })
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        retries: 3,
        initial: Duration::from_millis(1),
        max: Duration::from_millis(2),
    }
}

#[test]
fn readonly_mutation_sends_nothing() {
    let p = QmProxmox::new(Recording::new(), fence(), fast());
    let e = p.apply(&Mutation::Stop { vmid: 104 }).unwrap_err();
    assert!(matches!(
        e,
        ProxmoxError::Fence(FenceError::Readonly { .. })
    ));
    assert!(p.remote().lines().is_empty());
}

#[test]
fn clone_checks_the_cluster_first() {
    let rec = Recording::new().answer(
        "pvesh get",
        RemoteOutput::ok(
            r#"[{"type":"qemu","vmid":111,"name":"x","node":"prom","status":"stopped"}]"#,
        ),
    );
    let p = QmProxmox::new(rec, fence().allow_unlisted(true), fast());
    let spec = |vmid| Mutation::Clone(CloneSpec::new(9001, vmid, "n"));
    assert!(matches!(
        p.apply(&spec(111)),
        Err(ProxmoxError::Fence(FenceError::VmidExists { .. }))
    ));
    p.apply(&spec(112)).unwrap();
    let lines = p.remote().lines();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2], "qm clone 9001 112 --name n");
}

#[test]
fn destroy_reads_the_live_vm_first_and_refuses_a_reused_vmid() {
    let rec = Recording::new().answer("qm config 110", RemoteOutput::ok("name: other\n"));
    let p = QmProxmox::new(rec, fence(), fast());
    let e = p
        .apply(&Mutation::Destroy {
            vmid: 110,
            confirm: Some("test-automation".into()),
        })
        .unwrap_err();
    assert!(
        matches!(e, ProxmoxError::Fence(FenceError::NameMismatch { .. })),
        "{e}"
    );
    assert_eq!(p.remote().lines(), ["qm config 110"]);
}

#[test]
fn a_restore_over_a_vm_reads_the_live_vm_first_and_refuses_a_reused_vmid() {
    let rec = Recording::new().answer("qm config 110", RemoteOutput::ok("name: other\n"));
    let p = QmProxmox::new(rec, fence(), fast());
    let e = p
        .apply(&Mutation::Restore {
            node: "prom".into(),
            archive: "local:backup/vzdump-qemu-110.vma.zst".into(),
            vmid: 110,
            storage: None,
            name: None,
            unique: false,
            force: true,
            confirm: Some("test-automation".into()),
        })
        .unwrap_err();
    assert!(
        matches!(e, ProxmoxError::Fence(FenceError::NameMismatch { .. })),
        "{e}"
    );
    assert_eq!(p.remote().lines(), ["qm config 110"]);
}

#[test]
fn errors_show_secrets_redacted_and_remote_text_stripped() {
    let rec = Recording::new().answer(
        "qm set",
        RemoteOutput::failed(
            2,
            "400 cipassword: value 'hunter2' rejected \u{1b}]0;pwned\u{7}\u{1b}[2J\n",
        ),
    );
    let p = QmProxmox::new(rec, fence(), fast());
    let e = p
        .apply(&Mutation::Configure {
            vmid: 110,
            options: vec![("cipassword".into(), "hunter2".into())],
        })
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "`qm set 110 --cipassword <redacted>` failed on the Proxmox host (exit 2): 400 \
         cipassword: value '<redacted>' rejected "
    );
    // The recording fake's printed log hides it too; the argv it received does not.
    assert_eq!(p.remote().lines(), ["qm set 110 --cipassword <redacted>"]);
    assert_eq!(p.remote().log.lock().unwrap()[0][4], "hunter2");
}

#[test]
fn lock_errors_retry_within_the_bound() {
    let rec = Recording::new().answer(
        "qm start",
        RemoteOutput::failed(
            255,
            "can't lock file '/var/lock/qemu-server/lock-110.conf' - got timeout\n",
        ),
    );
    let p = QmProxmox::new(rec, fence(), fast());
    let e = p.apply(&Mutation::Start { vmid: 110 }).unwrap_err();
    assert!(matches!(e, ProxmoxError::Locked { attempts: 4, .. }), "{e}");
    assert_eq!(p.remote().lines().len(), 4);
}

#[test]
fn get_ip_falls_back_to_the_neighbour_table() {
    let rec = Recording::new()
        .answer(
            "qm config",
            RemoteOutput::ok("net0: virtio=BC:24:11:00:01:10,bridge=vmbr0\n"),
        )
        .answer(
            "qm guest",
            RemoteOutput::failed(255, "QEMU guest agent is not running\n"),
        )
        .answer(
            "ip neigh",
            RemoteOutput::ok("10.0.0.7 dev vmbr0 lladdr bc:24:11:00:01:10 REACHABLE\n"),
        );
    let p = QmProxmox::new(rec, fence(), fast());
    let ip = p.get_ip(110).unwrap();
    assert_eq!(ip.source, IpSource::NeighbourTable);
    assert_eq!(ip.address.to_string(), "10.0.0.7");
}
