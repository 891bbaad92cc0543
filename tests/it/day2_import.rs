//! `vmctl import NAME VMID` over the sandbox made a 3-node cluster: a VM on another node is
//! written into `imported` (readonly, its node, resources, tags and description from the live
//! config) by a lossless insertion, the docs follow, lint is then clean, status shows no
//! drift for it, and a second import changes nothing.

use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::day2_status::{conf_path, state, status_json, vm, vmctl};
use crate::sandbox::Sandbox;
use crate::support::text;

fn vmlint(s: &Sandbox) -> Output {
    crate::support::vmlint_cmd()
        .current_dir(s.dir.join("fleet"))
        .envs(s.env.iter().cloned())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn import_writes_a_readonly_vm_losslessly_then_lint_is_clean_and_a_second_import_is_a_no_op() {
    let s = Sandbox::up();
    let sim = state(&s).join("sim.json");
    let mut settings: Value =
        serde_json::from_str(&std::fs::read_to_string(&sim).unwrap()).unwrap();
    settings["nodes"] = serde_json::json!(["prom", "pve2", "pve3"]);
    std::fs::write(&sim, settings.to_string()).unwrap();
    std::fs::create_dir_all(state(&s).join("nodes/pve2/qemu-server")).unwrap();
    std::fs::write(
        conf_path(&s, "pve2", 105),
        "#Network storage\nagent: 1\nboot: order=scsi0\ncores: 4\nmemory: 8192\nname: nas\n\
         net0: virtio=BC:24:11:00:01:05,bridge=vmbr0\nprotection: 1\n\
         scsi0: nvmeprom:vm-105-disk-0,size=64G\ntags: Storage;backup\n",
    )
    .unwrap();
    let fleet = s.dir.join("fleet");
    let defs_path = fleet.join("vms/definitions.nix");
    let before = std::fs::read_to_string(&defs_path).unwrap();

    // A dry run shows the diff and writes nothing.
    let out = vmctl(&s, &["import", "nas", "105", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(before, std::fs::read_to_string(&defs_path).unwrap());

    let out = vmctl(&s, &["import", "nas", "105"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after = std::fs::read_to_string(&defs_path).unwrap();
    // Lossless: the old text is the new one less one inserted block.
    let common = before
        .bytes()
        .zip(after.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let inserted = after.len() - before.len();
    assert_eq!(
        format!("{}{}", &after[..common], &after[common + inserted..]),
        before,
        "the import changed other bytes"
    );
    let block = &after[common..common + inserted];
    for want in [
        "nas = {",
        "vmid = 105;",
        "readonly = true;",
        "node = \"pve2\";",
        "description = \"Network storage\";",
        "tags = [ \"backup\" \"storage\" ];",
        "cores = 4;",
        "memory = 8192;",
        "disk = \"64G\";",
    ] {
        assert!(block.contains(want), "no {want:?} in {block}");
    }
    // The docs list it.
    let docs = std::fs::read_to_string(fleet.join("docs/machines.md")).unwrap();
    assert!(docs.contains("nas"), "{docs}");

    // Lint: clean. The Nix evaluator agrees on what was written.
    let out = vmlint(&s);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let eval = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json"])
        .arg(&defs_path)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(v["imported"]["nas"]["readonly"], true);
    assert_eq!(v["imported"]["nas"]["node"], "pve2");

    // Status: there, on pve2, protected, no drift.
    let (_, report) = status_json(&s, &["nas"]);
    let nas = vm(&report, "nas");
    assert_eq!(nas["node"], "pve2");
    assert_eq!(nas["drift"], serde_json::json!([]), "{report:#}");
    assert_eq!(nas["protected"], true);

    // A second import changes nothing.
    let out = vmctl(&s, &["import", "nas", "105"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("already imported"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(after, std::fs::read_to_string(&defs_path).unwrap());
    // Another name for a VMID already declared: refused.
    let out = vmctl(&s, &["import", "other", "105"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("already `nas`"),
        "{}",
        text(&out.stderr)
    );
}
