//! `vmctl status` over the sandbox made a 3-node cluster: no drift right after a real
//! provision; each field changed behind vmctl's back (a simulator edit) shows as drift with
//! both values; tags and SSH keys written in another order or case show none; a VM on another
//! node is read through that node's API path; unmanaged and unprotected VMs are listed.

use std::path::PathBuf;
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::provision_sandbox::turn;
use crate::sandbox::Sandbox;
use crate::support::text;

pub(crate) fn vmctl(s: &Sandbox, args: &[&str]) -> Output {
    crate::support::vmctl_cmd()
        .current_dir(s.dir.join("fleet"))
        .envs(s.env.iter().cloned())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub(crate) fn state(s: &Sandbox) -> PathBuf {
    PathBuf::from(s.var("PVE_SIM_STATE"))
}

/// The sandbox as a cluster of prom, pve2 and pve3, with test-automation provisioned on prom.
pub(crate) fn provisioned_cluster() -> Sandbox {
    let s = Sandbox::up();
    let sim = state(&s).join("sim.json");
    let mut settings: Value =
        serde_json::from_str(&std::fs::read_to_string(&sim).unwrap()).unwrap();
    settings["nodes"] = serde_json::json!(["prom", "pve2", "pve3"]);
    std::fs::write(&sim, settings.to_string()).unwrap();
    let key = s.var("SANDBOX_ADMIN_KEY");
    let out = vmctl(&s, &["provision", "test-automation", "--identity", &key]);
    assert!(out.status.success(), "provision: {}", text(&out.stderr));
    s
}

pub(crate) fn conf_path(s: &Sandbox, node: &str, vmid: u32) -> PathBuf {
    state(s).join(format!("nodes/{node}/qemu-server/{vmid}.conf"))
}

pub(crate) fn status_json(s: &Sandbox, args: &[&str]) -> (Option<i32>, Value) {
    let mut a = vec!["status", "--json"];
    a.extend_from_slice(args);
    let out = vmctl(s, &a);
    let v: Value = serde_json::from_str(&text(&out.stdout)).unwrap_or_else(|e| {
        panic!(
            "status --json: {e}\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    (out.status.code(), v)
}

pub(crate) fn vm<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report:#}"))
}

fn drift(report: &Value, name: &str) -> Vec<(String, String, String)> {
    vm(report, name)["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["field"].as_str().unwrap().to_string(),
                d["declared"].as_str().unwrap().to_string(),
                d["live"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Rewrites `key: …` of a config file (as another client of Proxmox would).
pub(crate) fn edit_conf(path: &PathBuf, key: &str, value: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut found = false;
    let mut out: Vec<String> = text
        .lines()
        .map(|l| match l.split_once(": ") {
            Some((k, _)) if k == key => {
                found = true;
                format!("{key}: {value}")
            }
            _ => l.to_string(),
        })
        .collect();
    if !found {
        out.push(format!("{key}: {value}"));
    }
    std::fs::write(path, out.join("\n") + "\n").unwrap();
}

#[test]
fn status_no_drift_after_provision_then_each_field_changed_behind_vmctls_back() {
    let _turn = turn();
    let s = provisioned_cluster();
    let (code, report) = status_json(&s, &[]);
    assert_eq!(code, Some(0), "{report:#}");
    let ta = vm(&report, "test-automation");
    assert_eq!(ta["drift"], serde_json::json!([]), "{ta:#}");
    assert_eq!(ta["node"], "prom");
    assert_eq!(ta["power"], "running");
    // The sandbox seeds the readonly VMs without protection: status says so.
    let unprotected = report["unprotected_readonly"].as_array().unwrap();
    assert!(unprotected.contains(&"doc1".into()), "{report:#}");
    // Capacity: one entry per node and per storage of each node.
    let caps = report["capacity"].as_array().unwrap();
    for n in ["prom", "pve2", "pve3"] {
        assert!(
            caps.iter()
                .any(|c| c["node"] == n && c["storage"].is_null()),
            "{caps:?}"
        );
    }

    // Tags and SSH keys as another tool writes them: other order, case, separators,
    // comments. Not drift.
    let conf = conf_path(&s, "prom", 110);
    let original = std::fs::read_to_string(&conf).unwrap();
    let tags = original
        .lines()
        .find_map(|l| l.strip_prefix("tags: "))
        .unwrap()
        .to_string();
    let mut reordered: Vec<String> = tags.split(';').map(|t| t.to_ascii_uppercase()).collect();
    reordered.reverse();
    edit_conf(&conf, "tags", &reordered.join(","));
    let keys = std::fs::read_to_string(format!("{}.pub", s.var("SANDBOX_ADMIN_KEY"))).unwrap();
    let key = keys
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join("%20");
    edit_conf(&conf, "sshkeys", &format!("%0A{key}%20another-comment%0A"));
    let (code, report) = status_json(&s, &["test-automation"]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(drift(&report, "test-automation"), vec![]);

    // Each field changed behind vmctl's back: drift, with both values.
    std::fs::write(&conf, &original).unwrap();
    let net0 = original
        .lines()
        .find_map(|l| l.strip_prefix("net0: "))
        .unwrap()
        .to_string();
    let scsi0 = original
        .lines()
        .find_map(|l| l.strip_prefix("scsi0: "))
        .unwrap()
        .to_string();
    edit_conf(&conf, "cores", "6");
    edit_conf(&conf, "memory", "1024");
    edit_conf(&conf, "scsi0", &scsi0.replace("size=20G", "size=30G"));
    edit_conf(&conf, "net0", &net0.replace("bridge=vmbr0", "bridge=vmbr9"));
    edit_conf(&conf, "tags", "vmctl;extra");
    edit_conf(&conf, "ipconfig0", "ip=dhcp");
    edit_conf(&conf, "ciuser", "admin");
    edit_conf(
        &conf,
        "sshkeys",
        "ssh-ed25519%20AAAAC3NzaC1lZDI1NTE5AAAAIOther%0A",
    );
    let description = original
        .lines()
        .find_map(|l| l.strip_prefix('#'))
        .unwrap()
        .to_string();
    let text_now = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(
        &conf,
        text_now.replace(&format!("#{description}\n"), "#edited in the web UI\n"),
    )
    .unwrap();
    let (code, report) = status_json(&s, &["test-automation"]);
    assert_eq!(code, Some(1), "{report:#}");
    let d = drift(&report, "test-automation");
    let get = |f: &str| {
        d.iter()
            .find(|(field, _, _)| field == f)
            .unwrap_or_else(|| panic!("no drift of {f}: {d:?}"))
            .clone()
    };
    assert_eq!(get("cores"), ("cores".into(), "2".into(), "6".into()));
    assert_eq!(
        get("memory"),
        ("memory".into(), "4096".into(), "1024".into())
    );
    assert_eq!(get("disk"), ("disk".into(), "20G".into(), "30G".into()));
    assert_eq!(get("net0").1, "virtio,bridge=vmbr0");
    assert!(get("net0").2.contains("bridge=vmbr9"), "{d:?}");
    assert_eq!(get("tags").2, "vmctl;extra");
    assert_eq!(
        get("ipconfig0"),
        (
            "ipconfig0".into(),
            "ip=127.0.0.110/8".into(),
            "ip=dhcp".into()
        )
    );
    assert_eq!(
        get("ciuser"),
        ("ciuser".into(), "root".into(), "admin".into())
    );
    assert!(get("sshkeys").2.contains("AAAAIOther"), "{d:?}");
    assert_eq!(get("description").2, "edited in the web UI");
    assert!(get("description")
        .1
        .starts_with("managed by vmctl; definition sha256:"));
    assert_eq!(d.len(), 9, "{d:?}");
}

#[test]
fn status_reads_each_vm_from_its_node_and_lists_unmanaged_vms() {
    let _turn = turn();
    let s = provisioned_cluster();
    // igpu now runs on pve3; a VM nobody declared on pve2.
    std::fs::create_dir_all(state(&s).join("nodes/pve3/qemu-server")).unwrap();
    std::fs::create_dir_all(state(&s).join("nodes/pve2/qemu-server")).unwrap();
    std::fs::rename(conf_path(&s, "prom", 109), conf_path(&s, "pve3", 109)).unwrap();
    std::fs::write(
        conf_path(&s, "pve2", 150),
        "cores: 1\nmemory: 512\nname: stray\n",
    )
    .unwrap();
    std::fs::remove_file(state(&s).join("argv.jsonl")).unwrap();
    let (code, report) = status_json(&s, &[]);
    assert_eq!(code, Some(1), "{report:#}");
    let igpu = vm(&report, "igpu");
    assert_eq!(igpu["node"], "pve3");
    assert_eq!(
        drift(&report, "igpu"),
        vec![("node".into(), "prom".into(), "pve3".into())]
    );
    let unmanaged = report["unmanaged"].as_array().unwrap();
    assert!(
        unmanaged
            .iter()
            .any(|u| u["vmid"] == 150 && u["node"] == "pve2" && u["name"] == "stray"),
        "{report:#}"
    );
    // Read through the API path of the node that holds it; `qm` (local only) was not used.
    let log = std::fs::read_to_string(state(&s).join("argv.jsonl")).unwrap();
    assert!(log.contains(r#""/nodes/pve3/qemu/109/config""#), "{log}");
    assert!(log.contains(r#""/nodes/prom/qemu/110/config""#), "{log}");
    assert!(!log.contains(r#"["qm""#), "{log}");
    // The human table shows nodes.
    let out = vmctl(&s, &["status"]);
    let table = text(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("igpu") && l.contains("pve3")),
        "{table}"
    );
    assert!(table.contains("stray"), "{table}");
}
