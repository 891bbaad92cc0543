//! The fakes of the runner's tests: a cluster in memory with injectable faults, and one
//! "world" standing in for the installer, SSH, git and the re-keyer.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::super::journal;
use super::super::test_fleet::{rekey_common, Commits};
use super::super::*;
use crate::exec::proxmox::Proxmox;
use crate::plan::provision::Observation;
use crate::proxmox::{
    IpLookup, IpSource, Mutation, Snapshot, StorageStatus, VmConfig, VmId, VmResource, VmStatus,
};

/// A fault: the first call whose description contains this fails (once: the rollback's own
/// calls then work, as after a transient failure).
/// Steps the runner retries fail on every attempt.
#[derive(Default)]
pub(super) struct Faults(pub(super) RefCell<Option<(&'static str, u32)>>);

impl Faults {
    pub(super) fn set(&self, fault: &'static str) {
        let times = if ["get-ip", "wait-ssh", "verify"].contains(&fault) {
            2
        } else {
            1
        };
        *self.0.borrow_mut() = Some((fault, times));
    }

    pub(super) fn hit(&self, what: &str) -> bool {
        let mut f = self.0.borrow_mut();
        match &mut *f {
            Some((pattern, n)) if what.contains(*pattern) => {
                *n -= 1;
                if *n == 0 {
                    *f = None;
                }
                true
            }
            _ => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct FakeVm {
    pub(super) name: String,
    pub(super) template: bool,
    pub(super) running: bool,
    pub(super) config: Vec<(String, String)>,
}

/// A cluster in memory: VMs, files on the host, every command line sent.
#[derive(Default)]
pub(super) struct Cluster {
    pub(super) vms: RefCell<BTreeMap<VmId, FakeVm>>,
    pub(super) host_files: RefCell<BTreeMap<String, Vec<u8>>>,
    pub(super) log: RefCell<Vec<String>>,
    pub(super) faults: Faults,
    pub(super) fence: RefCell<Option<crate::proxmox::Fence>>,
}

impl Cluster {
    pub(super) fn demo() -> Self {
        let c = Cluster::default();
        let vm = |name: &str, template| FakeVm {
            name: name.into(),
            template,
            running: !template,
            config: vec![("scsi0".into(), "nvmeprom:disk,size=8G".into())],
        };
        c.vms.borrow_mut().insert(104, vm("doc1", false));
        c.vms.borrow_mut().insert(109, vm("igpu", false));
        c.vms
            .borrow_mut()
            .insert(9001, vm("NixosServerBlank", true));
        c
    }

    pub(super) fn observe(&self) -> Observation {
        Observation {
            vms: self.list().unwrap(),
            storages: vec![StorageStatus {
                name: "nvmeprom".into(),
                kind: "lvmthin".into(),
                status: "active".into(),
                total: 100,
                used: 1,
                available: 99,
                percent: 1.0,
            }],
            template_config: Some(self.config(9001).unwrap()),
        }
    }

    fn fail(&self, what: &str) -> Result<(), ProxmoxError> {
        self.log.borrow_mut().push(what.to_string());
        if self.faults.hit(what) {
            return Err(ProxmoxError::Command {
                command: what.into(),
                code: Some(1),
                stderr: "injected fault".into(),
            });
        }
        Ok(())
    }
}

impl Proxmox for Cluster {
    fn list(&self) -> Result<Vec<VmResource>, ProxmoxError> {
        let base = crate::proxmox::parse::cluster_resources(
            r#"[{"type":"qemu","vmid":1,"name":"x","node":"prom","status":"stopped"}]"#,
        )
        .unwrap()
        .remove(0);
        Ok(self
            .vms
            .borrow()
            .iter()
            .map(|(id, v)| VmResource {
                vmid: *id,
                name: Some(v.name.clone()),
                template: v.template,
                status: if v.running { "running" } else { "stopped" }.into(),
                ..base.clone()
            })
            .collect())
    }
    fn status(&self, vmid: VmId) -> Result<VmStatus, ProxmoxError> {
        let vms = self.vms.borrow();
        let v = vms.get(&vmid).ok_or(ProxmoxError::NoSuchVm { vmid })?;
        Ok(VmStatus {
            vmid,
            status: if v.running { "running" } else { "stopped" }.into(),
        })
    }
    fn active_tasks(&self, _: &str, _: VmId) -> Result<Vec<crate::proxmox::Task>, ProxmoxError> {
        Ok(Vec::new())
    }
    fn config(&self, vmid: VmId) -> Result<VmConfig, ProxmoxError> {
        let vms = self.vms.borrow();
        let v = vms.get(&vmid).ok_or(ProxmoxError::NoSuchVm { vmid })?;
        let mut entries = vec![("name".to_string(), v.name.clone())];
        entries.extend(v.config.clone());
        Ok(VmConfig { entries })
    }
    fn storage(&self) -> Result<Vec<StorageStatus>, ProxmoxError> {
        Ok(self.observe().storages)
    }
    fn snapshots(&self, _: VmId) -> Result<Vec<Snapshot>, ProxmoxError> {
        Ok(Vec::new())
    }
    fn next_vmid(&self, _: VmId, _: VmId) -> Result<VmId, ProxmoxError> {
        unimplemented!("the runner does not ask")
    }
    fn get_ip(&self, vmid: VmId) -> Result<IpLookup, ProxmoxError> {
        self.fail(&format!("get-ip {vmid}"))?;
        Ok(IpLookup {
            vmid,
            mac: "BC:24:11:00:01:10".into(),
            address: "127.0.0.10".parse().unwrap(),
            source: IpSource::GuestAgent,
        })
    }
    fn apply(&self, m: &Mutation) -> Result<String, ProxmoxError> {
        if let Some(f) = &*self.fence.borrow() {
            f.check(m)?;
        }
        let line = crate::proxmox::display_line(&m.argv());
        self.fail(&line)?;
        let mut vms = self.vms.borrow_mut();
        match m {
            Mutation::Clone(c) => {
                if vms.contains_key(&c.vmid) {
                    return Err(ProxmoxError::VmidTaken { vmid: c.vmid });
                }
                let mut v = vms[&c.source].clone();
                v.name = c.name.clone();
                v.template = false;
                vms.insert(c.vmid, v);
            }
            Mutation::Configure { vmid, options } => {
                if let Some(keys) = options.iter().find(|(k, _)| k == "sshkeys") {
                    assert!(
                        self.host_files.borrow().contains_key(&keys.1),
                        "--sshkeys reads the uploaded file"
                    );
                }
                let v = vms
                    .get_mut(vmid)
                    .ok_or(ProxmoxError::NoSuchVm { vmid: *vmid })?;
                v.config.extend(options.iter().cloned());
            }
            Mutation::SerialSocket { vmid } => {
                vms.get_mut(vmid)
                    .unwrap()
                    .config
                    .push(("serial0".into(), "socket".into()));
            }
            Mutation::Resize { vmid, disk, size } => {
                let v = vms.get_mut(vmid).unwrap();
                v.config.retain(|(k, _)| k != disk);
                v.config
                    .push((disk.clone(), format!("nvmeprom:disk,size={size}")));
            }
            Mutation::Start { vmid } => vms.get_mut(vmid).unwrap().running = true,
            Mutation::Stop { vmid } => vms.get_mut(vmid).unwrap().running = false,
            Mutation::Destroy { vmid, confirm } => {
                let v = vms
                    .get(vmid)
                    .ok_or(ProxmoxError::NoSuchVm { vmid: *vmid })?;
                assert_eq!(
                    Some(&v.name),
                    confirm.as_ref(),
                    "destroy checks the live name"
                );
                assert!(!v.running, "stopped before destroy");
                vms.remove(vmid);
            }
            other => panic!("unexpected {other:?}"),
        }
        Ok(String::new())
    }
    fn upload(&self, path: &str, contents: &[u8]) -> Result<(), ProxmoxError> {
        self.fail(&format!("upload {path}"))?;
        self.host_files
            .borrow_mut()
            .insert(path.into(), contents.to_vec());
        Ok(())
    }
}

impl HostFiles for Cluster {
    fn remove_file(&self, path: &str) -> Result<(), ProxmoxError> {
        self.fail(&format!("rm -f -- {path}"))?;
        self.host_files.borrow_mut().remove(path);
        Ok(())
    }
}

/// The installer, SSH, git and the re-keyer in one fake: records what it was asked.
#[derive(Default)]
pub(super) struct World {
    pub(super) faults: Faults,
    pub(super) installed: RefCell<Vec<Vec<String>>>,
    pub(super) known_hosts: RefCell<Option<String>>,
    pub(super) commits: Commits,
    pub(super) key_dirs: RefCell<Vec<PathBuf>>,
    /// The host key the VM presents after the install (`None`: the one installed).
    pub(super) wrong_key: bool,
    /// The VM answers with the right key but `nixos-version` prints nothing.
    pub(super) not_nixos: bool,
}

impl Installer for World {
    fn install(&self, argv: &[String]) -> Result<(), InstallError> {
        self.installed.borrow_mut().push(argv.to_vec());
        let dir = &argv[argv.iter().position(|a| a == "--extra-files").unwrap() + 1];
        self.key_dirs.borrow_mut().push(dir.into());
        assert!(Path::new(dir)
            .join("etc/ssh/ssh_host_ed25519_key")
            .is_file());
        if self.faults.hit("install") {
            return Err(InstallError::Failed {
                command: "nixos-anywhere".into(),
                status: "injected fault".into(),
            });
        }
        Ok(())
    }
}

impl SshProbe for World {
    fn wait_ssh(&self, _: &str) -> Result<(), ProbeError> {
        if self.faults.hit("wait-ssh") {
            return Err(ProbeError::Unreachable("connection refused".into()));
        }
        Ok(())
    }
    fn verify(&self, ip: &str, host_key: &str, dir: &Path) -> Result<Identity, ProbeError> {
        assert!(dir.join("etc/ssh/ssh_host_ed25519_key").is_file());
        *self.known_hosts.borrow_mut() = Some(format!("{ip} {host_key}"));
        if self.wrong_key {
            return Err(ProbeError::HostKey("Host key verification failed.".into()));
        }
        if self.faults.hit("verify") {
            return Err(ProbeError::Unreachable("connection refused".into()));
        }
        if self.not_nixos {
            return Ok(Identity {
                hostname: "test-automation".into(),
                nixos_version: String::new(),
            });
        }
        Ok(Identity {
            hostname: "test-automation".into(),
            nixos_version: "24.11.20250101.abcdef0 (Vicuna)".into(),
        })
    }
}

impl Git for World {
    fn commit(&self, _: &Path, files: &[PathBuf], message: &str) -> Result<String, GitError> {
        self.commits.commit(files, message, self.faults.hit("git"))
    }
}

impl Rekeyer for World {
    fn rekey(&self, root: &Path, lock: &FleetLock) -> Result<(), RekeyError> {
        self.rekey_announcing(root, lock, &mut |_, _| Ok(()))
    }

    fn rekey_announcing(
        &self,
        root: &Path,
        _: &FleetLock,
        announce: &mut Announce<'_>,
    ) -> Result<(), RekeyError> {
        let j = journal::load(root, "test-automation").unwrap().unwrap();
        self.key_dirs.borrow_mut().push(j.key.unwrap().dir);
        rekey_common(root, announce)?;
        if self.faults.hit("kill-mid-secrets") {
            // A kill: the run ends here, the journal as it was saved.
            panic!("killed while re-keying");
        }
        if self.faults.hit("rekey") {
            return Err(RekeyError::File {
                path: "secrets/common.yaml".into(),
                reason: "injected fault after writing".into(),
            });
        }
        Ok(())
    }
}
