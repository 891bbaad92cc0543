//! The per-node forms of every mutation, UPIDs, task status and the API's answers.

use super::*;
use crate::proxmox::argv::CloneSpec;
use crate::proxmox::command_line;

fn line(m: &Mutation) -> String {
    let keys = |p: &str| (p == "/tmp/k.pub").then(|| "ssh-ed25519%20AAAA%20a".to_string());
    match api(m, "pve2", &keys).unwrap() {
        Routed::Api(a) => command_line(&a),
        Routed::Connected => "connected".into(),
    }
}

/// Every variant, so a new one fails to compile in `api` and shows up here.
#[test]
fn every_mutation_has_a_per_node_form() {
    let clone = CloneSpec {
        full: true,
        storage: Some("ceph".into()),
        target: Some("pve3".into()),
        ..CloneSpec::new(9001, 120, "web")
    };
    let cases = [
        (
            Mutation::Clone(clone),
            "pvesh create /nodes/pve2/qemu/9001/clone --newid 120 --name web --full 1 \
             --storage ceph --target pve3",
        ),
        (
            Mutation::Configure {
                vmid: 120,
                options: vec![
                    ("cores".into(), "2".into()),
                    ("sshkeys".into(), "/tmp/k.pub".into()),
                ],
            },
            "pvesh set /nodes/pve2/qemu/120/config --cores 2 --sshkeys ssh-ed25519%20AAAA%20a",
        ),
        (
            Mutation::CreateDisk {
                vmid: 120,
                disk: "scsi1".into(),
                storage: "ceph".into(),
                size_gib: 8,
            },
            "pvesh set /nodes/pve2/qemu/120/config --scsi1 ceph:8",
        ),
        (
            Mutation::Resize {
                vmid: 120,
                disk: "scsi0".into(),
                size: "20G".into(),
            },
            "pvesh set /nodes/pve2/qemu/120/resize --disk scsi0 --size 20G",
        ),
        (
            Mutation::RestoreVma {
                archive: "/a.vma".into(),
                vmid: 120,
                storage: None,
            },
            "connected",
        ),
        (
            Mutation::SerialSocket { vmid: 120 },
            "pvesh set /nodes/pve2/qemu/120/config --serial0 socket",
        ),
        (
            Mutation::Start { vmid: 120 },
            "pvesh create /nodes/pve2/qemu/120/status/start",
        ),
        (
            Mutation::Stop { vmid: 120 },
            "pvesh create /nodes/pve2/qemu/120/status/stop",
        ),
        (
            Mutation::Shutdown { vmid: 120 },
            "pvesh create /nodes/pve2/qemu/120/status/shutdown",
        ),
        (
            Mutation::Template { vmid: 120 },
            "pvesh create /nodes/pve2/qemu/120/template",
        ),
        (
            Mutation::Destroy {
                vmid: 120,
                confirm: None,
            },
            "pvesh delete /nodes/pve2/qemu/120 --purge 1",
        ),
        (
            Mutation::SnapshotCreate {
                vmid: 120,
                name: "pre".into(),
                description: Some("before $(x)".into()),
                vmstate: true,
            },
            "pvesh create /nodes/pve2/qemu/120/snapshot --snapname pre --description \
             'before $(x)' --vmstate 1",
        ),
        (
            Mutation::SnapshotRollback {
                vmid: 120,
                name: "pre".into(),
            },
            "pvesh create /nodes/pve2/qemu/120/snapshot/pre/rollback",
        ),
        (
            Mutation::SnapshotDelete {
                vmid: 120,
                name: "pre".into(),
            },
            "pvesh delete /nodes/pve2/qemu/120/snapshot/pre",
        ),
        (
            Mutation::Migrate {
                node: "prom".into(),
                vmid: 120,
                target: "pve3".into(),
                online: true,
                with_local_disks: true,
            },
            "pvesh create /nodes/pve2/qemu/120/migrate --target pve3 --online 1 \
             --with-local-disks 1",
        ),
        (
            Mutation::Backup {
                node: "pve2".into(),
                vmid: 120,
                storage: "pbs".into(),
                mode: "snapshot".into(),
                notes: "vmctl".into(),
                keep_last: None,
            },
            "connected",
        ),
        (
            Mutation::Restore {
                node: "pve2".into(),
                archive: "pbs:backup/vm/120/2026-11-30T00:00:00Z".into(),
                vmid: 121,
                storage: None,
                name: None,
                unique: true,
                force: false,
                confirm: None,
            },
            "connected",
        ),
        (
            Mutation::Protect {
                vmid: 120,
                on: true,
            },
            "pvesh set /nodes/pve2/qemu/120/config --protection 1",
        ),
    ];
    for (m, want) in cases {
        assert_eq!(line(&m), want, "{}", m.name());
    }
}

#[test]
fn unknown_sshkeys_file_is_refused() {
    let m = Mutation::Configure {
        vmid: 120,
        options: vec![("sshkeys".into(), "/root/other.pub".into())],
    };
    let e = api(&m, "pve2", &|_| None).unwrap_err();
    assert!(matches!(e, RouteError::SshKeysFile { .. }), "{e}");
}

#[test]
fn local_node_upid_and_task_status() {
    let cs = r#"[{"type":"cluster","name":"c","id":"cluster"},
        {"type":"node","name":"pve2","local":0},{"type":"node","name":"prom","local":1}]"#;
    assert_eq!(parse_local_node(cs).unwrap(), "prom");
    assert!(parse_local_node(r#"[{"type":"node","name":"a","local":0}]"#).is_err());
    let out =
        "starting\nclone done\n\"UPID:pve2:0000ABCD:00000001:6560F00D:qmclone:9001:root@pam:\"\n";
    let upid = upid_in(out).unwrap();
    assert_eq!(upid_node(&upid), Some("pve2"));
    assert_eq!(upid_in("{\"a\":1}\n"), None);
    assert_eq!(
        parse_task_status(r#"{"status":"stopped","exitstatus":"WARNINGS: 1"}"#).unwrap(),
        TaskState::Ok
    );
    assert_eq!(
        parse_task_status(r#"{"status":"stopped","exitstatus":"VM is locked (backup)"}"#).unwrap(),
        TaskState::Failed {
            exitstatus: "VM is locked (backup)".into()
        }
    );
    assert_eq!(
        parse_task_status(r#"{"status":"running"}"#).unwrap(),
        TaskState::Running
    );
    assert_eq!(
        parse_task_log_tail(
            r#"[{"n":1,"t":"a"},{"n":2,"t":"b"},{"n":3,"t":"c"},{"n":4,"t":"TASK ERROR: c"}]"#,
            2,
            "c"
        ),
        "a; b"
    );
}

#[test]
fn snapshots_as_a_tree() {
    let json = r#"[{"name":"b","parent":"a","snaptime":86400,"description":"two\nlines"},
        {"name":"a","snaptime":0,"description":""},
        {"name":"current","parent":"b","description":"You are here!","running":0}]"#;
    let s = parse_snapshots(json).unwrap();
    let got: Vec<(&str, usize, bool)> = s
        .iter()
        .map(|s| (s.name.as_str(), s.depth, s.current))
        .collect();
    assert_eq!(
        got,
        [("a", 0, false), ("b", 1, false), ("current", 2, true)]
    );
    assert_eq!(s[1].time.as_deref(), Some("1970-01-02 00:00:00"));
    assert_eq!(s[1].description, "two");
    assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20");
}
