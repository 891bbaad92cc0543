//! The provision runner over the real SSH connection to the Proxmox simulator (real sshd on
//! loopback, pve-sim's argv log): the run sends exactly the command lines the plan lists, over
//! one connection; a simulator fault at a step rolls the cluster and the fleet files back.
//! The installer, the VM's SSH, git and the re-keyer are fakes here (the sandbox's end-to-end
//! test replaces them).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vmctl::exec::apply::FleetLock;
use vmctl::exec::provision::{
    self, Env, Git, GitError, Identity, InstallError, Installer, Options, Outcome, ProbeError,
    RekeyError, Rekeyer, SshProbe,
};
use vmctl::exec::proxmox::{Proxmox, QmProxmox};
use vmctl::plan::provision::{plan, Inputs, Observation, ProvisionPlan};

use crate::provision_cli::{fleet, snapshot};
use crate::support::pve::{fast_retry, Pve};

const ADMIN: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHxM2a6DvE298UXZdhKYSMrTPvzvceh5+ZJ77tKj9n0D admin@workstation";

/// The installer, the VM's SSH, git and the re-keyer, recording what they were asked.
#[derive(Default)]
struct Fakes {
    installed: RefCell<Vec<Vec<String>>>,
    committed: RefCell<Vec<PathBuf>>,
}

impl Installer for Fakes {
    fn install(&self, argv: &[String]) -> Result<(), InstallError> {
        self.installed.borrow_mut().push(argv.to_vec());
        Ok(())
    }
}

impl SshProbe for Fakes {
    fn wait_ssh(&self, _: &str) -> Result<(), ProbeError> {
        Ok(())
    }
    fn verify(&self, _: &str, _: &str, _: &Path) -> Result<Identity, ProbeError> {
        Ok(Identity {
            hostname: "test-automation".into(),
            nixos_version: "24.11 (Vicuna)".into(),
        })
    }
}

impl Git for Fakes {
    fn commit(&self, _: &Path, files: &[PathBuf], _: &str) -> Result<String, GitError> {
        self.committed.borrow_mut().extend(files.iter().cloned());
        Ok("0123abc".into())
    }
}

impl Rekeyer for Fakes {
    fn rekey(&self, _: &Path, _: &FleetLock) -> Result<(), RekeyError> {
        Ok(())
    }
}

fn observe<P: Proxmox>(p: &P) -> Observation {
    Observation {
        vms: p.list().unwrap(),
        storages: p.storage().unwrap(),
        template_config: Some(p.config(9001).unwrap()),
    }
}

/// The demo fleet with a declared MAC: Proxmox gives a `--net0` without one a fresh MAC,
/// pve-sim leaves it out, and the address is found by net0's MAC.
fn demo_fleet_with_mac() -> tempfile::TempDir {
    let fleet = fleet();
    let defs_path = fleet.path().join("vms/definitions.nix");
    let text = std::fs::read_to_string(&defs_path).unwrap();
    let text = text.replace(
        "ip = \"dhcp\";",
        "ip = \"dhcp\";\n        mac = \"BC:24:11:00:01:10\";",
    );
    std::fs::write(&defs_path, text).unwrap();
    fleet
}

/// Plans and runs the demo VM's provision against `pve`.
fn provision_demo(
    pve: &Pve,
    root: &Path,
    fakes: &Fakes,
) -> (ProvisionPlan, Result<Outcome, provision::ProvisionError>) {
    let defs = vmctl::exec::fleet::load(Some(root), &Default::default())
        .unwrap()
        .definitions;
    let probe = pve.proxmox(&defs);
    let keys = vec![ADMIN.to_string()];
    let obs = observe(&probe);
    drop(probe);
    let plan = plan(&Inputs {
        defs: &defs,
        name: "test-automation",
        lint_errors: 0,
        admin_keys: &keys,
        linked: false,
        host_known: false,
        observation: Some(&obs),
        identity: None,
    })
    .unwrap();
    // The run's one connection, fenced by the plan's (strict) fence.
    let p = QmProxmox::new(pve.connect(), plan.fence.clone(), fast_retry());
    let env = Env {
        proxmox: &p,
        installer: fakes,
        ssh: fakes,
        git: fakes,
        rekeyer: fakes,
    };
    let quiet = |_: &str| {};
    let opts = Options {
        keep_on_failure: false,
        commit: true,
        attempts: 2,
        interval: Duration::from_millis(10),
        report: &quiet,
        only: None,
    };
    let lock = FleetLock::acquire(root, &Default::default()).unwrap();
    let out = provision::run(&env, &opts, root, &defs, &plan, &lock, None);
    (plan, out)
}

/// The simulator's argv log as command lines, only the `qm` commands that change a VM.
fn mutations_sent(pve: &Pve) -> Vec<String> {
    pve.argv_log()
        .iter()
        .filter(|a| {
            a[0] == "qm"
                && ["clone", "set", "resize", "start", "stop", "destroy"].contains(&a[1].as_str())
        })
        .map(|a| vmctl::proxmox::display_line(a))
        .collect()
}

#[test]
fn the_run_sends_exactly_the_planned_commands_over_one_connection() {
    let pve = Pve::start();
    pve.write("agent/110.json", r#"["192.168.1.50/24"]"#);
    let fleet = demo_fleet_with_mac();
    let fakes = Fakes::default();
    let (plan, out) = provision_demo(&pve, fleet.path(), &fakes);
    assert_eq!(
        out.unwrap(),
        Outcome::Done {
            commit: Some("0123abc".into())
        }
    );
    let planned: Vec<String> = plan
        .mutations()
        .iter()
        .map(|m| vmctl::proxmox::display_line(&m.argv()))
        .collect();
    assert_eq!(mutations_sent(&pve), planned);
    let conf = pve.conf(110).unwrap();
    for want in [
        "cores: 2",
        "memory: 4096",
        "scsi0: nvmeprom:vm-110-disk-0,size=20G",
        "ipconfig0: ip=dhcp",
        "ciuser: root",
        "sshkeys: ssh-ed25519%20AAAAC3",
        "serial0: socket",
        "tags: test;vmctl",
        "agent: enabled=1",
    ] {
        assert!(conf.contains(want), "missing {want:?} in\n{conf}");
    }
    assert!(pve.read("running/110").is_some());
    // The keys file was removed from the Proxmox host after the `qm set` read it.
    assert!(!pve.root.join("home/.vmctl-sshkeys-110.pub").exists());
    // The discovered address reached the installer.
    assert_eq!(
        fakes.installed.borrow()[0].last().unwrap(),
        "root@192.168.1.50"
    );
    // One connection to the Proxmox host for the run (and one for the probe that planned).
    assert_eq!(pve.sshd.accepted_connections(), 2);
}

#[test]
fn a_simulator_fault_rolls_the_cluster_and_the_files_back() {
    let pve = Pve::start();
    pve.write("agent/110.json", r#"["192.168.1.50/24"]"#);
    pve.set_faults(r#"[{"match": "qm start", "action": "fail", "message": "start failed: injected", "times": 1}]"#);
    let fleet = demo_fleet_with_mac();
    let before = snapshot(fleet.path());
    let fakes = Fakes::default();
    let (_, out) = provision_demo(&pve, fleet.path(), &fakes);
    let e = out.unwrap_err().to_string();
    assert!(
        e.contains("start failed: injected") && e.contains("rolled back"),
        "{e}"
    );
    assert_eq!(pve.conf(110), None, "the VM this run created is gone");
    assert!(!pve.root.join("home/.vmctl-sshkeys-110.pub").exists());
    let mut after = snapshot(fleet.path());
    after.retain(|p, _| !p.starts_with(".vmctl"));
    assert_eq!(after, before);
    assert!(mutations_sent(&pve)
        .last()
        .unwrap()
        .starts_with("qm destroy 110"));
}

#[test]
fn a_vmid_taken_during_the_clone_is_a_conflict_and_the_other_vm_is_left_alone() {
    let pve = Pve::start();
    pve.set_faults(r#"[{"match": "qm clone", "action": "take-vmid", "times": 1}]"#);
    let fleet = demo_fleet_with_mac();
    let before = snapshot(fleet.path());
    let fakes = Fakes::default();
    let (_, out) = provision_demo(&pve, fleet.path(), &fakes);
    let e = out.unwrap_err().to_string();
    assert!(e.contains("VMID 110 was taken"), "{e}");
    // Never retried onto another VMID, never destroyed: the VM is the other client's.
    let sent = mutations_sent(&pve);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(pve.conf(110).unwrap().contains("taken-by-another-client"));
    let mut after = snapshot(fleet.path());
    after.retain(|p, _| !p.starts_with(".vmctl"));
    assert_eq!(after, before);
}

#[test]
fn the_dry_run_observes_over_one_connection_and_changes_nothing() {
    let pve = Pve::start();
    let fleet = fleet();
    let before = snapshot(fleet.path());
    let cluster_before = pve.snapshot();
    let out = crate::support::vmctl_cmd()
        .current_dir(fleet.path())
        .envs(pve.vmctl_env())
        .args(["provision", "test-automation", "--dry-run", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        crate::support::text(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["offline"], false);
    assert_eq!(v["node"], "prom");
    // The template's 8G disk is grown to the declared 20G.
    assert!(v["commands"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("qm resize 110 scsi0 20G")));
    // Reads only, over one connection; no simulator state and no fleet file changed.
    for a in pve.argv_log() {
        let read = matches!(
            (a[0].as_str(), a.get(1).map(String::as_str)),
            ("pvesh", Some("get")) | ("pvesm", Some("status")) | ("qm", Some("config"))
        );
        assert!(read, "the dry run sent {a:?}");
    }
    assert_eq!(pve.sshd.accepted_connections(), 1);
    let mut cluster_after = pve.snapshot();
    cluster_after.remove(Path::new("argv.jsonl"));
    let mut cluster_before = cluster_before;
    cluster_before.remove(Path::new("argv.jsonl"));
    assert_eq!(cluster_after, cluster_before);
    assert_eq!(snapshot(fleet.path()), before);
}
