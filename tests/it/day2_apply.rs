//! `vmctl apply` over the sandbox made a 3-node cluster: it fixes each drift (cold changes of
//! a running VM pending until `--reboot`), refuses a disk shrink with the fleet and the
//! cluster unchanged, detects a change made between its read and its update by the config
//! digest and overwrites nothing, and never sends a call for a readonly VM (argv log).

use std::path::Path;

use serde_json::Value;

use crate::day2_status::{conf_path, edit_conf, provisioned_cluster, state, status_json, vmctl};
use crate::provision_sandbox::turn;
use crate::sandbox::Sandbox;
use crate::support::text;

fn argv_log(s: &Sandbox) -> Vec<Vec<String>> {
    std::fs::read_to_string(state(s).join("argv.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn touches(log: &[Vec<String>], vmid: u32) -> Vec<String> {
    let needle = format!("/qemu/{vmid}/");
    log.iter()
        .filter(|a| {
            a.get(1).is_some_and(|v| v != "get")
                && a.iter()
                    .any(|w| w.contains(&needle) || w == &vmid.to_string())
        })
        .map(|a| a.join(" "))
        .collect()
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name == ".git"
                || name == ".vmctl"
                || name == ".state-lock"
                || name == "argv.jsonl"
                || name == "locks"
            {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn apply_fixes_each_drift_pending_until_reboot_and_never_calls_readonly_vms() {
    let _turn = turn();
    let s = provisioned_cluster();
    let conf = conf_path(&s, "prom", 110);
    let original = std::fs::read_to_string(&conf).unwrap();
    let net0 = original
        .lines()
        .find_map(|l| l.strip_prefix("net0: "))
        .unwrap()
        .to_string();
    edit_conf(&conf, "cores", "6");
    edit_conf(&conf, "memory", "1024");
    edit_conf(&conf, "net0", &net0.replace("bridge=vmbr0", "bridge=vmbr9"));
    edit_conf(&conf, "tags", "vmctl;extra");
    edit_conf(&conf, "ipconfig0", "ip=dhcp");
    edit_conf(&conf, "ciuser", "admin");
    edit_conf(
        &conf,
        "sshkeys",
        "ssh-ed25519%20AAAAC3NzaC1lZDI1NTE5AAAAIOther%0A",
    );
    // The readonly VMs drift too (another node's igpu, doc1's cores): never touched.
    std::fs::create_dir_all(state(&s).join("nodes/pve3/qemu-server")).unwrap();
    std::fs::rename(conf_path(&s, "prom", 109), conf_path(&s, "pve3", 109)).unwrap();
    let (code, _) = status_json(&s, &[]);
    assert_eq!(code, Some(1));

    // A dry run reads and shows the guarded update; it changes nothing.
    let before = files(&state(&s));
    let out = vmctl(&s, &["apply", "--all", "--dry-run", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cmds = v["commands"].as_array().unwrap();
    assert_eq!(cmds.len(), 1, "{v:#}");
    let line = cmds[0].as_str().unwrap();
    assert!(
        line.starts_with("pvesh set /nodes/prom/qemu/110/config --digest "),
        "{line}"
    );
    assert!(
        line.contains("--cores 2") && line.contains("--memory 4096"),
        "{line}"
    );
    assert_eq!(before, files(&state(&s)), "a dry run changed the cluster");

    std::fs::remove_file(state(&s).join("argv.jsonl")).unwrap();
    let out = vmctl(&s, &["apply", "--all"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    // The VM runs: cores and memory wait for its next start.
    assert!(
        shown.contains("pending until the next start: cores, memory"),
        "{shown}"
    );
    let (code, report) = status_json(&s, &["test-automation"]);
    assert_eq!(code, Some(0), "{report:#}");
    let now = std::fs::read_to_string(&conf).unwrap();
    assert!(
        now.contains("cores: 6\n"),
        "cores changed before the restart: {now}"
    );
    assert!(
        now.contains("tags: test;vmctl\n") || now.contains("tags: vmctl;test\n"),
        "{now}"
    );
    assert!(now.contains("bridge=vmbr0"), "{now}");
    // net0 keeps its MAC (the definition declares none: Proxmox would pick another).
    assert!(
        now.contains("net0: virtio=BC:24:11:00:00:6E,bridge=vmbr0"),
        "{now}"
    );
    // Readonly VMs: no call that changes anything.
    let log = argv_log(&s);
    assert!(
        touches(&log, 104).is_empty() && touches(&log, 109).is_empty(),
        "{log:?}"
    );
    // A readonly VM named on the command line: refused before any connection.
    std::fs::remove_file(state(&s).join("argv.jsonl")).unwrap();
    let out = vmctl(&s, &["apply", "doc1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("readonly"),
        "{}",
        text(&out.stderr)
    );
    assert!(argv_log(&s).is_empty());

    // --reboot makes the pending change take effect.
    edit_conf(&conf, "cores", "5");
    std::fs::remove_file(state(&s).join("pending/110.json")).ok();
    let out = vmctl(&s, &["apply", "test-automation", "--reboot"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let now = std::fs::read_to_string(&conf).unwrap();
    assert!(now.contains("cores: 2\n"), "{now}");
    assert!(argv_log(&s)
        .iter()
        .any(|a| a.join(" ") == "pvesh create /nodes/prom/qemu/110/status/reboot"));
}

#[test]
fn apply_refuses_a_shrink_and_a_concurrent_change_overwriting_nothing() {
    let _turn = turn();
    let s = provisioned_cluster();
    let conf = conf_path(&s, "prom", 110);
    let original = std::fs::read_to_string(&conf).unwrap();
    let scsi0 = original
        .lines()
        .find_map(|l| l.strip_prefix("scsi0: "))
        .unwrap()
        .to_string();
    // A live disk larger than declared: refused, naming both sizes; nothing changes.
    edit_conf(&conf, "scsi0", &scsi0.replace("size=20G", "size=30G"));
    edit_conf(&conf, "cores", "6");
    let before = files(&state(&s));
    let fleet_before = files(&s.dir.join("fleet"));
    let out = vmctl(&s, &["apply", "--all"]);
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert!(
        e.contains("20G") && e.contains("30G") && e.contains("scsi0"),
        "{e}"
    );
    assert_eq!(before, files(&state(&s)), "the cluster changed");
    assert_eq!(
        fleet_before,
        files(&s.dir.join("fleet")),
        "the fleet changed"
    );

    // A disk to grow and a field changed in the web UI between vmctl's read and its update.
    std::fs::write(&conf, &original).unwrap();
    edit_conf(&conf, "scsi0", &scsi0.replace("size=20G", "size=10G"));
    edit_conf(&conf, "tags", "vmctl");
    let mut ui = String::new();
    let out = apply_behind_gate(&s, "set", || {
        edit_conf(&conf, "description", "");
        ui = std::fs::read_to_string(&conf)
            .unwrap()
            .replace("description: \n", "")
            .replace("memory: 4096", "memory: 8192");
        std::fs::write(&conf, &ui).unwrap();
    });
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let e = text(&out.stderr);
    assert!(
        e.contains("changed on the cluster after vmctl read it"),
        "{e}"
    );
    // The web UI's change stands, vmctl's tags were not written, the disk was not grown.
    let now = std::fs::read_to_string(&conf).unwrap();
    assert_eq!(now, ui);

    // A change between the read before a resize and the resize: Proxmox 8 checks the digest
    // inside the resize's task, and pvesh exits 0 for a task that failed. vmctl waits for the
    // task, so the refusal is seen: nothing is grown, and it says why.
    let out = apply_behind_gate(&s, "resize", || edit_conf(&conf, "cores", "3"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let e = text(&out.stderr);
    assert!(
        e.contains("changed on the cluster after vmctl read it"),
        "{e}"
    );
    let now = std::fs::read_to_string(&conf).unwrap();
    assert!(
        now.contains("size=10G") && now.contains("cores: 3"),
        "{now}"
    );
}

/// Runs `vmctl apply --all` with the simulator holding its `gate` call (a test barrier in
/// sim.json) until `between` has changed the cluster behind vmctl's back.
fn apply_behind_gate(s: &Sandbox, gate: &str, between: impl FnOnce()) -> std::process::Output {
    let sim = state(s).join("sim.json");
    let mut settings: Value =
        serde_json::from_str(&std::fs::read_to_string(&sim).unwrap()).unwrap();
    settings["gates"] = serde_json::json!([gate]);
    std::fs::write(&sim, settings.to_string()).unwrap();
    let child = crate::support::vmctl_cmd()
        .current_dir(s.dir.join("fleet"))
        .envs(s.env.iter().cloned())
        .args(["apply", "--all"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let reached = state(s).join(format!("gates/{gate}.reached"));
    for _ in 0..3000 {
        if reached.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        reached.exists(),
        "the {gate} call never reached the simulator"
    );
    between();
    std::fs::write(state(s).join(format!("gates/{gate}.open")), "").unwrap();
    let out = child.wait_with_output().unwrap();
    settings["gates"] = serde_json::json!([]);
    std::fs::write(&sim, settings.to_string()).unwrap();
    out
}

#[test]
fn a_vm_on_another_node_is_read_and_applied_through_that_node() {
    let _turn = turn();
    let s = provisioned_cluster();
    // test-automation now lives on pve2, and its definition says so.
    std::fs::create_dir_all(state(&s).join("nodes/pve2/qemu-server")).unwrap();
    std::fs::rename(conf_path(&s, "prom", 110), conf_path(&s, "pve2", 110)).unwrap();
    let defs = s.dir.join("fleet/vms/definitions.nix");
    let written = std::fs::read_to_string(&defs).unwrap();
    assert!(written.contains("      vmid = 110;\n"));
    std::fs::write(
        &defs,
        written.replace(
            "      vmid = 110;\n",
            "      vmid = 110;\n      node = \"pve2\";\n",
        ),
    )
    .unwrap();
    let conf = conf_path(&s, "pve2", 110);
    edit_conf(&conf, "tags", "vmctl");
    // `qm` on the connected node cannot see it, as on Proxmox.
    let qm = std::process::Command::new(crate::support::pve::pve_sim_bin())
        .args(["qm", "config", "110"])
        .env("PVE_SIM_STATE", state(&s))
        .output()
        .unwrap();
    assert!(!qm.status.success());
    assert!(
        text(&qm.stderr).contains("does not exist"),
        "{}",
        text(&qm.stderr)
    );
    // Run "on" pve2, it can.
    let qm = std::process::Command::new(crate::support::pve::pve_sim_bin())
        .args(["qm", "config", "110"])
        .env("PVE_SIM_STATE", state(&s))
        .env("PVE_SIM_NODE", "pve2")
        .output()
        .unwrap();
    assert!(
        text(&qm.stdout).contains("name: test-automation"),
        "{}",
        text(&qm.stderr)
    );
    let (code, report) = status_json(&s, &["test-automation"]);
    assert_eq!(code, Some(1));
    let ta = crate::day2_status::vm(&report, "test-automation");
    assert_eq!(ta["node"], "pve2");
    assert_eq!(ta["declared_node"], "pve2");
    let fields: Vec<&str> = ta["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    // The definition changed (node), so its hash in the description did too.
    assert_eq!(fields, ["tags", "description"], "{ta:#}");
    std::fs::remove_file(state(&s).join("argv.jsonl")).unwrap();
    let out = vmctl(&s, &["apply", "test-automation"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(argv_log(&s)
        .iter()
        .any(|a| a[..2] == ["pvesh", "set"] && a[2] == "/nodes/pve2/qemu/110/config"));
    let (code, report) = status_json(&s, &["test-automation"]);
    assert_eq!(code, Some(0), "{report:#}");
}
