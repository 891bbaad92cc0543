//! `vmctl template create` against the Proxmox simulator behind a real sshd: the image is
//! uploaded, restored to the template's VMID on the declared storage, given the cloud-init
//! drive and made a template; `--dry-run` changes nothing; a VMID another VM holds is refused;
//! without `--image` the image is built with Nix, which must be 2.18 or later.

use std::path::Path;
use std::process::Output;

use super::support::pve::Pve;
use super::support::{demo_fleet, text, vmctl_cmd, write_script};

/// What the simulator's qmrestore reads from a "VMA": the VM's configuration.
const IMAGE: &str = "agent: 1\nboot: order=scsi0\ncores: 1\nmemory: 1024\nname: nixos\n\
                     net0: virtio=BC:24:11:00:90:01,bridge=vmbr0\n\
                     scsi0: local:vm-0-disk-0,size=4G\nscsihw: virtio-scsi-single\nserial0: socket\n";

fn template_create(pve: &Pve, fleet: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    vmctl_cmd()
        .arg("--fleet")
        .arg(fleet)
        .args(["template", "create"])
        .args(args)
        .envs(pve.vmctl_env())
        .envs(env.iter().copied())
        .env("VMCTL_NO_NIX", "1")
        .output()
        .unwrap()
}

/// A simulator whose cluster does not have the demo's template 9001 yet.
fn pve_without_template() -> Pve {
    let pve = Pve::start();
    std::fs::remove_file(pve.state.join("nodes/prom/qemu-server/9001.conf")).unwrap();
    pve
}

fn assert_template_made(pve: &Pve, fleet: &Path) {
    let conf = pve.conf(9001).expect("VM 9001 exists");
    for line in [
        "template: 1",
        "name: NixosServerBlank",
        "ide2: nvmeprom:vm-9001-cloudinit,media=cdrom",
        "scsi0: nvmeprom:",
    ] {
        assert!(conf.contains(line), "no `{line}` in:\n{conf}");
    }
    assert!(
        !pve.root.join("home/.vmctl-template-9001.vma.zst").exists(),
        "the upload is removed"
    );
    assert!(
        !fleet.join(".vmctl/journal/template@9001.json").exists(),
        "the journal is removed"
    );
}

#[test]
fn template_create_restores_the_image_as_a_template_and_dry_run_changes_nothing() {
    let pve = pve_without_template();
    let fleet = demo_fleet();
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("vzdump-qemu-nixos.vma.zst");
    std::fs::write(&image, IMAGE).unwrap();
    let image = image.display().to_string();

    let before = pve.snapshot();
    let out = template_create(&pve, fleet.path(), &["--image", &image, "--dry-run"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    for line in [
        "qmrestore .vmctl-template-9001.vma.zst 9001 --storage nvmeprom",
        "qm set 9001 --name NixosServerBlank --ide2 nvmeprom:cloudinit",
        "qm template 9001",
    ] {
        assert!(shown.contains(line), "{shown}");
    }
    assert_eq!(pve.snapshot(), before, "a dry run changes nothing");
    assert!(pve.conf(9001).is_none());
    assert!(!fleet.path().join(".vmctl/journal").exists());

    let out = template_create(&pve, fleet.path(), &["--image", &image], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "template `NixosServerBlank` (VMID 9001) created on storage `nvmeprom`"
    );
    assert_template_made(&pve, fleet.path());

    // Again: the template is there, nothing is sent but the read.
    let sent = pve.argv_log().len();
    let out = template_create(&pve, fleet.path(), &["--image", &image, "--json"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dry_run"], false);
    assert_eq!(v["commands"], serde_json::json!([]));
    let new: Vec<Vec<String>> = pve.argv_log()[sent..].to_vec();
    assert!(
        new.iter().all(|a| a[0] == "pvesh"),
        "only reads on a second run: {new:?}"
    );
}

#[test]
fn template_create_refuses_a_vmid_another_vm_holds_and_an_image_that_is_no_vma() {
    let pve = Pve::start();
    pve.write_conf(9001, "name: something-else\nmemory: 512\n");
    let fleet = demo_fleet();
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("vzdump-qemu-nixos.vma.zst");
    std::fs::write(&image, IMAGE).unwrap();
    let out = template_create(
        &pve,
        fleet.path(),
        &["--image", &image.display().to_string()],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = super::support::unwrapped(&out.stderr);
    assert!(
        err.contains("VMID 9001 is already used by `something-else`"),
        "{err}"
    );
    assert_eq!(
        pve.conf(9001).unwrap(),
        "name: something-else\nmemory: 512\n"
    );
    assert!(!pve.root.join("home/.vmctl-template-9001.vma.zst").exists());

    let qcow = dir.path().join("nixos.qcow2");
    std::fs::write(&qcow, "x").unwrap();
    let out = template_create(
        &pve,
        fleet.path(),
        &["--image", &qcow.display().to_string()],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        super::support::unwrapped(&out.stderr).contains("is not a VMA archive"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn template_create_builds_the_image_with_a_new_enough_nix() {
    let pve = pve_without_template();
    let fleet = demo_fleet();
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old-nix");
    write_script(&old, "#!/bin/sh\necho 'nix (Nix) 2.8.0'\n");
    let out = template_create(
        &pve,
        fleet.path(),
        &[],
        &[("VMCTL_NIX", &old.display().to_string())],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = super::support::unwrapped(&out.stderr);
    assert!(
        err.contains("needs Nix 2.18.0 or later") && err.contains("is Nix 2.8.0"),
        "{err}"
    );
    assert!(
        pve.argv_log().is_empty(),
        "nothing sent: {:?}",
        pve.argv_log()
    );

    // A Nix that is new enough builds `.#proxmox-template` in the fleet; its output holds the VMA.
    let out_dir = dir.path().join("result");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(out_dir.join("vzdump-qemu-nixos-template.vma.zst"), IMAGE).unwrap();
    let calls = dir.path().join("calls");
    let nix = dir.path().join("nix");
    write_script(
        &nix,
        &format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'nix (Nix) 2.18.1'; exit 0; fi\n\
             echo \"$PWD $*\" >> '{}'\n\
             echo '[{{\"drvPath\":\"/nix/store/x.drv\",\"outputs\":{{\"out\":\"{}\"}}}}]'\n",
            calls.display(),
            out_dir.display()
        ),
    );
    let out = template_create(
        &pve,
        fleet.path(),
        &[],
        &[("VMCTL_NIX", &nix.display().to_string())],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap().trim(),
        format!(
            "{} build --json --no-link .#proxmox-template",
            fleet.path().canonicalize().unwrap().display()
        )
    );
    assert_template_made(&pve, fleet.path());
}

#[test]
fn an_interrupted_template_create_continues_from_its_journal() {
    let pve = pve_without_template();
    pve.set_faults(
        r#"[{"match":"qm template","action":"fail","message":"VM 9001 is busy","times":1}]"#,
    );
    let fleet = demo_fleet();
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("vzdump-qemu-nixos.vma.zst");
    std::fs::write(&image, IMAGE).unwrap();
    let image = image.display().to_string();

    let out = template_create(&pve, fleet.path(), &["--image", &image], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = super::support::unwrapped(&out.stderr);
    assert!(
        err.contains("VM 9001 is busy") && err.contains("run `vmctl template create` again"),
        "{err}"
    );
    let journal = fleet.path().join(".vmctl/journal/template@9001.json");
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&journal).unwrap()).unwrap();
    assert_eq!(
        j["completed"],
        serde_json::json!(["upload", "restore", "configure"])
    );
    assert!(!pve.conf(9001).unwrap().contains("template: 1"));

    let out = template_create(&pve, fleet.path(), &["--image", &image], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("continuing the interrupted run"),
        "{}",
        text(&out.stderr)
    );
    assert_template_made(&pve, fleet.path());
    let restores = pve
        .argv_log()
        .iter()
        .filter(|a| a[0] == "qmrestore")
        .count();
    assert_eq!(restores, 1, "the image is restored once");
}
