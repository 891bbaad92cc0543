//! Issue 14, "every operation on a VM of each node; VMIDs unique across nodes": the sandbox made
//! a 3-node cluster (prom, pve2, pve3; vmctl connects to prom, where `qm` sees only prom's VMs)
//! whose VM storage is shared, as Ceph or NFS would be, so a clone may land on any node. A VM
//! whose `node` is each node is provisioned onto it, then every `vmctl ops` read and mutation,
//! `vmctl snapshot`, rebuild's automatic snapshot and destroy reach it: with `qm` on prom, and
//! through the API path of its node elsewhere (the simulator's argv log shows which). Also the
//! VMID checks across nodes, a task that fails behind a zero exit, the console refusal, and a
//! post-provision of a VM installed outside vmctl on another node.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::provision_sandbox::turn;
use crate::sandbox::Sandbox;
use crate::support::pve::Pve;
use crate::support::{demo_fleet, repo, squash, text, vmctl_cmd};
use vmctl::exec::remote::Remote as _;

/// (name, VMID, node): the demo's test-automation (no `node`: `proxmox.node`) and one more VM
/// per other node.
const VMS: [(&str, u32, &str); 3] = [
    ("test-automation", 110, "prom"),
    ("web-pve2", 111, "pve2"),
    ("web-pve3", 112, "pve3"),
];

fn fleet(s: &Sandbox) -> PathBuf {
    s.dir.join("fleet")
}

fn state(s: &Sandbox) -> PathBuf {
    s.dir.join("pve/state")
}

fn run(s: &Sandbox, args: &[&str]) -> Output {
    vmctl_cmd()
        .current_dir(fleet(s))
        .envs(s.env.iter().cloned())
        .env(
            "VMCTL_NIXOS_REBUILD",
            repo().join("tests/sandbox/nixos-rebuild"),
        )
        .env("NIXOS_REBUILD_LOG", s.dir.join("nixos-rebuild.log"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(s: &Sandbox, args: &[&str]) -> String {
    let out = run(s, args);
    assert!(
        out.status.success(),
        "vmctl {args:?}: {}\n{}",
        text(&out.stderr),
        text(&out.stdout)
    );
    text(&out.stdout)
}

fn git(root: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
}

fn edit_json(path: &Path, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
}

/// The simulator's argv log from line `from` on, one command line per entry.
fn log_since(s: &Sandbox, from: usize) -> Vec<String> {
    std::fs::read_to_string(state(s).join("argv.jsonl"))
        .unwrap_or_default()
        .lines()
        .skip(from)
        .map(|l| {
            let a: Vec<String> = serde_json::from_str(l).unwrap();
            a.join(" ")
        })
        .collect()
}

fn log_len(s: &Sandbox) -> usize {
    log_since(s, 0).len()
}

/// The sandbox as a 3-node cluster with a shared VM storage and the two more managed VMs
/// (static 127.0.0.111/8 and .112/8, their `hosts/NAME` committed, as a flake needs).
fn cluster() -> Sandbox {
    let s = Sandbox::up();
    edit_json(&state(&s).join("sim.json"), |v| {
        v["nodes"] = serde_json::json!(["prom", "pve2", "pve3"]);
    });
    edit_json(&state(&s).join("storage.json"), |v| {
        for st in v.as_array_mut().unwrap() {
            st["shared"] = true.into();
        }
    });
    let root = fleet(&s);
    for (name, vmid, node) in &VMS[1..] {
        crate::support::add_managed_vms(
            &root,
            &[(name, *vmid, Some(node))],
            &format!("A VM of {node}"),
        );
    }
    let _ = crate::support::vmctl(&root, &["docs"]);
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "test: a VM on each node"]);
    s
}

/// Asserts what `args` sent for VM `vmid` on `node`: `qm` on prom; elsewhere the API path of
/// its node, and no `qm` that acted (each `qm` tried first was refused for the VM).
fn reaches(s: &Sandbox, vmid: u32, node: &str, args: &[&str]) -> String {
    let from = log_len(s);
    let out = ok(s, args);
    let sent = log_since(s, from);
    let api = format!("/nodes/{node}/qemu/{vmid}");
    if node == "prom" {
        assert!(
            sent.iter().all(|l| !l.contains(&api)),
            "{args:?} went through the API for a local VM: {sent:#?}"
        );
    } else {
        assert!(
            sent.iter()
                .any(|l| l.starts_with("pvesh") && l.contains(&api)),
            "{args:?} never reached {api}: {sent:#?}"
        );
    }
    out
}

fn conf(s: &Sandbox, node: &str, vmid: u32) -> Option<String> {
    std::fs::read_to_string(state(s).join(format!("nodes/{node}/qemu-server/{vmid}.conf"))).ok()
}

#[test]
fn every_operation_reaches_a_vm_of_each_node() {
    let _turn = turn();
    let s = cluster();
    let key = s.var("SANDBOX_ADMIN_KEY");

    // Provision: each clone of the template (on prom) lands on the VM's node.
    for (name, vmid, node) in VMS {
        let from = log_len(&s);
        ok(&s, &["provision", name, "--identity", &key, "--wait", "60"]);
        assert!(conf(&s, node, vmid).is_some(), "{name} is not on {node}");
        for other in ["prom", "pve2", "pve3"].iter().filter(|n| **n != node) {
            assert!(conf(&s, other, vmid).is_none(), "{name} also on {other}");
        }
        let sent = log_since(&s, from);
        let clone = sent
            .iter()
            .find(|l| l.starts_with("qm clone 9001"))
            .unwrap_or_else(|| panic!("no clone for {name}: {sent:#?}"));
        if node == "prom" {
            assert!(!clone.contains("--target"), "{clone}");
        } else {
            assert!(clone.ends_with(&format!("--target {node}")), "{clone}");
            // Its cloud-init keys went as the API's URL-encoded value, not a file path.
            assert!(
                sent.iter().any(|l| l
                    .starts_with(&format!("pvesh set /nodes/{node}/qemu/{vmid}/config"))
                    && l.contains("--sshkeys ssh-ed25519%20")),
                "{sent:#?}"
            );
        }
    }

    // `ops list` shows each VM's node.
    let list: Value = serde_json::from_str(&ok(&s, &["ops", "list", "--json"])).unwrap();
    for (name, vmid, node) in VMS {
        let row = list
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["vmid"] == vmid)
            .unwrap_or_else(|| panic!("{name} not listed: {list:#}"));
        assert_eq!(row["node"], node, "{row}");
    }
    let table = ok(&s, &["ops", "list"]);
    assert!(
        table
            .lines()
            .any(|l| l.contains("web-pve3") && l.contains("pve3")),
        "{table}"
    );

    for (name, vmid, node) in VMS {
        let id = vmid.to_string();
        let id = id.as_str();
        // Reads.
        let st = reaches(&s, vmid, node, &["ops", "status", id, "--json"]);
        assert!(st.contains("running"), "{st}");
        let cfg = reaches(&s, vmid, node, &["ops", "config", id]);
        assert!(cfg.contains(name), "{cfg}");
        // Mutations, each checked in the VM's config on its node.
        reaches(&s, vmid, node, &["ops", "configure", id, "2", "2048"]);
        reaches(
            &s,
            vmid,
            node,
            &["ops", "create-disk", id, "1G", "nvmeprom", "scsi1"],
        );
        reaches(&s, vmid, node, &["ops", "resize", id, "scsi0", "+1G"]);
        reaches(&s, vmid, node, &["ops", "serial-socket", id]);
        reaches(&s, vmid, node, &["ops", "protect", id, "on"]);
        let c = conf(&s, node, vmid).unwrap();
        for want in [
            "scsi1: nvmeprom:",
            "size=21G",
            "serial0: socket",
            "protection: 1",
        ] {
            assert!(c.contains(want), "{name}: no {want:?} in\n{c}");
        }
        reaches(&s, vmid, node, &["ops", "protect", id, "off"]);
        // Snapshots through `ops snapshot` and `vmctl snapshot`.
        reaches(&s, vmid, node, &["ops", "snapshot", "create", id, "s1"]);
        let snaps = reaches(&s, vmid, node, &["ops", "snapshot", "list", id, "--json"]);
        assert!(snaps.contains("\"s1\""), "{snaps}");
        reaches(&s, vmid, node, &["snapshot", name, "create", "s2"]);
        let snaps = reaches(&s, vmid, node, &["snapshot", name, "list"]);
        assert!(snaps.contains("s1") && snaps.contains("s2"), "{snaps}");
        reaches(&s, vmid, node, &["ops", "snapshot", "delete", id, "s1"]);
        reaches(
            &s,
            vmid,
            node,
            &["snapshot", name, "rollback", "s2", "--confirm", name],
        );
        reaches(&s, vmid, node, &["snapshot", name, "delete", "s2"]);
        let c = conf(&s, node, vmid).unwrap();
        assert!(!c.contains("[s1]") && !c.contains("[s2]"), "{c}");
        // Power: the rollback stopped it.
        reaches(&s, vmid, node, &["ops", "start", id]);
        reaches(&s, vmid, node, &["ops", "shutdown", id]);
        reaches(&s, vmid, node, &["ops", "start", id]);
        reaches(&s, vmid, node, &["ops", "stop", id]);
        reaches(&s, vmid, node, &["ops", "start", id]);
        // The console cannot be carried to another node: refused, with what to do.
        if node != "prom" {
            let out = run(&s, &["ops", "console", id]);
            assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
            assert!(
                squash(&text(&out.stderr))
                    .contains(&squash(&format!("ssh -t root@{node} qm terminal"))),
                "{}",
                text(&out.stderr)
            );
        }
    }

    // `ops migrate` there and back. The way back is planned from definitions.nix, whose node
    // is where the VM no longer is: it goes through the node that holds the VM now.
    for (name, vmid, node) in VMS {
        let id = vmid.to_string();
        let other = if node == "pve3" { "prom" } else { "pve3" };
        ok(&s, &["ops", "migrate", &id, other, "--online"]);
        assert!(conf(&s, other, vmid).is_some(), "{name} not on {other}");
        let from = log_len(&s);
        ok(&s, &["ops", "migrate", &id, node, "--online"]);
        assert!(conf(&s, node, vmid).is_some(), "{name} not back on {node}");
        let sent = log_since(&s, from);
        assert!(
            sent.iter().any(|l| l.starts_with(&format!(
                "pvesh create /nodes/{other}/qemu/{vmid}/migrate --target {node}"
            ))),
            "{sent:#?}"
        );
    }

    // Rebuild's automatic snapshot, on each VM's node.
    for (name, vmid, node) in VMS {
        reaches(&s, vmid, node, &["rebuild", name, "--identity", &key]);
        let c = conf(&s, node, vmid).unwrap();
        assert!(c.contains("[vmctl-auto-rebuild-"), "{name}: {c}");
    }

    // Destroy: gone from its node.
    for (name, vmid, node) in VMS {
        reaches(&s, vmid, node, &["destroy", name, "--confirm", name]);
        assert!(conf(&s, node, vmid).is_none(), "{name} still on {node}");
    }
}

/// The plain harness as a 3-node cluster: VM 110 (test-automation) on pve2, 111 on pve3 (the
/// template on prom).
fn three_nodes() -> Pve {
    let pve = Pve::start();
    pve.write(
        "sim.json",
        r#"{"node":"prom","nodes":["prom","pve2","pve3"],"storage_lock_timeout_ms":1500}"#,
    );
    for (vmid, node, name) in [(110, "pve2", "test-automation"), (111, "pve3", "vm111")] {
        pve.write(
            &format!("nodes/{node}/qemu-server/{vmid}.conf"),
            &format!(
                "agent: 1\ncores: 1\nmemory: 1024\nname: {name}\n\
                 net0: virtio=BC:24:11:00:01:{:02X},bridge=vmbr0\n\
                 scsi0: nvmeprom:vm-{vmid}-disk-0,size=8G\n",
                vmid % 256
            ),
        );
    }
    pve
}

fn ops(pve: &Pve, fleet: &Path, args: &[&str]) -> Output {
    vmctl_cmd()
        .arg("--fleet")
        .arg(fleet)
        .envs(pve.vmctl_env())
        .arg("ops")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn vmids_are_unique_across_nodes() {
    crate::support::pve::require_tools();
    let pve = three_nodes();
    let dir = demo_fleet();
    // VM 110 (test-automation's VMID) is on pve2 and 111 on pve3: the next free one is 112.
    let out = ops(&pve, dir.path(), &["next-vmid", "110", "120"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "112");
    // A clone onto a VMID another node uses is refused before anything is sent.
    let before = pve.argv_log().len();
    let out = ops(
        &pve,
        dir.path(),
        &["clone", "9001", "111", "x", "--unlisted"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("111"), "{}", text(&out.stderr));
    assert!(
        pve.argv_log()[before..]
            .iter()
            .all(|a| a[..2] != ["qm", "clone"]),
        "{:?}",
        pve.argv_log()
    );
    // And Proxmox itself refuses it, from any node.
    let argv: Vec<String> = ["qm", "clone", "9001", "110", "--name", "x"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    let out = pve.connect().run(&argv).expect("run");
    assert!(!out.success(), "{}", out.stdout);
    assert!(
        out.stderr.contains("config file already exists"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_task_that_failed_behind_a_zero_exit_is_an_error() {
    crate::support::pve::require_tools();
    let pve = three_nodes();
    let dir = demo_fleet();
    pve.set_faults(
        r#"[{"match":"pvesh create /nodes/pve2/qemu/110/status/start","action":"task-fail",
            "message":"start failed: QEMU exited with code 1","times":1}]"#,
    );
    let out = ops(&pve, dir.path(), &["start", "110"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = squash(&text(&out.stderr));
    assert!(
        err.contains(&squash(
            "which failed: start failed: QEMU exited with code 1;"
        )) && err.contains(&squash("(node pve2)")),
        "{err}"
    );
    assert!(
        pve.read("running/110").is_none(),
        "the failed task started the VM"
    );
    // The same call again (the fault spent) starts it, on pve2; its guest agent answers
    // through pve2's API.
    let out = ops(&pve, dir.path(), &["start", "110"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(pve.read("running/110").is_some());
    pve.write("agent/110.json", r#"["192.168.1.110/24"]"#);
    let out = ops(&pve, dir.path(), &["get-ip", "110", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("192.168.1.110"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        pve.argv_log().iter().any(|a| a.join(" ")
            == "pvesh get /nodes/pve2/qemu/110/agent/network-get-interfaces --output-format json"),
        "{:?}",
        pve.argv_log()
    );
    // A VM on no node is still "no such VM".
    let out = ops(&pve, dir.path(), &["status", "150"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("VM 150 does not exist on the cluster"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_template_on_another_node_is_cloned_and_made_there() {
    crate::support::pve::require_tools();
    let pve = three_nodes();
    let dir = demo_fleet();
    // The template lives on pve3: the clone is a task of pve3's API and the VM lands there.
    let from = pve.state.join("nodes/prom/qemu-server/9001.conf");
    let to = pve.state.join("nodes/pve3/qemu-server/9001.conf");
    std::fs::rename(&from, &to).unwrap();
    let out = ops(
        &pve,
        dir.path(),
        &["clone", "9001", "113", "web", "--unlisted"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(pve.read("nodes/pve3/qemu-server/113.conf").is_some());
    let log: Vec<String> = pve.argv_log().iter().map(|a| a.join(" ")).collect();
    assert!(
        log.iter().any(
            |l| l == "pvesh create /nodes/pve3/qemu/9001/clone --newid 113 --name web --full 1"
        ),
        "{log:#?}"
    );
    // VM 111 (pve3) becomes a template there, through the API too.
    let out = ops(&pve, dir.path(), &["template", "111", "--unlisted"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(pve
        .read("nodes/pve3/qemu-server/111.conf")
        .unwrap()
        .contains("template: 1"));
    // `ops list` shows where each VM is.
    let out = ops(&pve, dir.path(), &["list", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let node_of = |id: u64| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["vmid"] == id)
            .map(|r| r["node"].clone())
    };
    assert_eq!(node_of(113), Some("pve3".into()));
    assert_eq!(node_of(110), Some("pve2".into()));
    // `ops destroy` checks the live name through pve2's API, then deletes it there.
    let out = ops(
        &pve,
        dir.path(),
        &["destroy", "110", "--confirm", "test-automation"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(pve.read("nodes/pve2/qemu-server/110.conf").is_none());
    let log: Vec<String> = pve.argv_log().iter().map(|a| a.join(" ")).collect();
    let sent = |want: &str| log.iter().any(|l| l == want);
    assert!(
        sent("pvesh get /nodes/pve2/qemu/110/config --output-format json")
            && sent("pvesh delete /nodes/pve2/qemu/110 --purge 1"),
        "{log:#?}"
    );
    // Its task was waited for and read back: the last command asked for its status.
    let last = log.last().unwrap();
    assert!(
        last.starts_with("pvesh get /nodes/pve2/tasks/UPID:pve2:")
            && last.contains(":qmdestroy:110:")
            && last.ends_with("/status --output-format json"),
        "{last}"
    );
}

/// `vmctl post-provision` of a VM installed outside vmctl on another node: the cluster-wide
/// listing finds it on pve2 under its name (checked before any key is fetched), its key is
/// integrated, and the commit names the node that holds it.
#[test]
fn post_provision_reaches_a_vm_of_another_node() {
    let _turn = turn();
    let s = cluster();
    let (name, vmid, node) = VMS[1];
    s.pve(&format!(
        "qm clone 9001 {vmid} --name {name} --full 1 --storage nvmeprom --target {node} && \
         PVE_SIM_NODE={node} qm start {vmid}"
    ));
    assert!(conf(&s, node, vmid).is_some(), "{name} is not on {node}");
    let public = s.guest_file(vmid, "root/etc/ssh/ssh_host_ed25519_key.pub");
    let keygen = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&public)
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{}", text(&keygen.stderr));
    let fp = text(&keygen.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let from = log_len(&s);
    let id = vmid.to_string();
    let address = format!("127.0.0.{vmid}");
    let port = s.var("SANDBOX_VM_PORT");
    ok(
        &s,
        &[
            "post-provision",
            name,
            &address,
            &id,
            "--port",
            &port,
            "--accept-fingerprint",
            &fp,
        ],
    );
    // The cluster-wide listing places and names the VM; post-provision changes nothing on the
    // cluster, so that read is all it sends.
    let sent = log_since(&s, from);
    assert_eq!(
        sent,
        ["pvesh get /cluster/resources --type vm --output-format json"]
    );
    let b64 = std::fs::read_to_string(&public).unwrap();
    let b64 = b64.split_whitespace().nth(1).unwrap().to_string();
    let hosts = std::fs::read_to_string(fleet(&s).join("hosts.nix")).unwrap();
    assert!(hosts.contains(&b64), "{hosts}");
    let msg = Command::new("git")
        .arg("-C")
        .arg(fleet(&s))
        .args(["log", "-1", "--format=%B"])
        .output()
        .unwrap();
    let msg = text(&msg.stdout);
    assert!(msg.contains(&format!("Node: {node}")), "{msg}");
}
