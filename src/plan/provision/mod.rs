//! The plan of `vmctl provision NAME`: from one managed VM's definition and an observation of
//! the cluster, the ordered steps with the exact Proxmox mutations and commands they run.
//!
//! Pure: nothing here connects, spawns or writes. The key ceremony's file changes depend on the
//! host key generated at run time, so they are computed by [`ceremony::changes`] for a given
//! public key (the dry run shows them for a fixed preview key); the commit message likewise
//! ([`ceremony::commit_message`]).

pub mod batch;
pub mod ceremony;
pub mod phases;
pub mod render;
#[cfg(test)]
mod tests;
pub(crate) mod values;

use serde::{Deserialize, Serialize};

use values::{admin_keys, boot_disk_of, disk_size_gib, ipconfig, net0, tags};
pub use values::{definition_hash, install_argv};

use crate::model::{Definitions, Vm, VmKind};
use crate::proxmox::argv::{parse_size_gib, CloneSpec};
use crate::proxmox::{
    Fence, FenceError, Mutation, StorageStatus, VmConfig, VmId, VmResource, VMID_MAX, VMID_MIN,
};

/// The tag every VM vmctl provisions carries, so `vmctl ops list` and the Proxmox UI show
/// which VMs vmctl made.
pub const VMCTL_TAG: &str = "vmctl";

/// The disk the template boots from when its config does not say (Proxmox's default for
/// cloud-init images).
pub const DEFAULT_BOOT_DISK: &str = "scsi0";

/// What vmctl saw on the cluster before planning (`None` in `--offline`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// Every VM of the cluster, all nodes.
    pub vms: Vec<VmResource>,
    pub storages: Vec<StorageStatus>,
    /// The template's `qm config`, when the cluster has the template.
    pub template_config: Option<VmConfig>,
}

/// Everything the planner reads, all of it already loaded.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub defs: &'a Definitions,
    pub name: &'a str,
    /// Errors the fleet files have (lint); any one stops provisioning.
    pub lint_errors: usize,
    /// The admin public keys cloud-init installs for root (hosts.nix `_proxmox.adminKeys`).
    pub admin_keys: &'a [String],
    /// `full = false` in the VM's definition: a linked clone.
    pub linked: bool,
    /// Whether hosts.nix already has the host (a second run of a finished provision).
    pub host_known: bool,
    /// The cluster as observed; `None` plans from definitions alone.
    pub observation: Option<&'a Observation>,
    /// A private key file for the installer's SSH connection (`-i`), when given.
    pub identity: Option<&'a str>,
}

/// The steps of a provision, in the order they run; a run resumes after the last completed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepId {
    Clone,
    Configure,
    Resize,
    CloudInit,
    Start,
    DiscoverIp,
    WaitSsh,
    KeyCeremony,
    Install,
    Verify,
    Commit,
}

impl StepId {
    pub fn as_str(self) -> &'static str {
        match self {
            StepId::Clone => "clone",
            StepId::Configure => "configure",
            StepId::Resize => "resize",
            StepId::CloudInit => "cloud-init",
            StepId::Start => "start",
            StepId::DiscoverIp => "discover-ip",
            StepId::WaitSsh => "wait-ssh",
            StepId::KeyCeremony => "key-ceremony",
            StepId::Install => "install",
            StepId::Verify => "verify",
            StepId::Commit => "commit",
        }
    }
}

/// What one step does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// Proxmox mutations, sent in order through the fenced `Proxmox`.
    Mutations { mutations: Vec<Mutation> },
    /// Uploads `keys` to `upload` on the Proxmox host, runs `mutations` (which read it), then
    /// runs `remove` so the file never outlives the step.
    CloudInit {
        upload: String,
        keys: Vec<String>,
        mutations: Vec<Mutation>,
        remove: Vec<String>,
    },
    /// Finds the VM's address: `static_ip` when the definition gives one, else the guest agent
    /// on net0's MAC, then the Proxmox host's neighbour table.
    DiscoverIp {
        vmid: VmId,
        static_ip: Option<String>,
    },
    /// Waits until `user@IP` accepts the admin key over SSH.
    WaitSsh { user: String },
    /// Generates the host key pair and changes `files` (see [`ceremony::changes`]), then
    /// re-keys the secrets for the new recipient.
    KeyCeremony { files: Vec<String> },
    /// Runs the installer; `<IP>`, `<PORT>` and `<DIR>` are filled in at run time
    /// ([`install_argv`]).
    Install { argv: Vec<String> },
    /// Connects with only the generated host key trusted and checks the hostname.
    Verify { hostname: String },
    /// Commits exactly the files this run changed.
    Commit { subject: String },
}

/// One named step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub id: StepId,
    pub title: String,
    pub action: Action,
}

/// What `vmctl provision NAME` will do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProvisionPlan {
    pub name: String,
    pub vmid: VmId,
    /// The node the VM lands on (the definition's, else `proxmox.node`, else the template's).
    pub node: Option<String>,
    /// The NixOS configuration (`hosts/CONFIG`, flake attribute `.#CONFIG`).
    pub config: String,
    pub hostname: String,
    /// `sha256:…` of the definition's fields provisioning uses; in the VM's description.
    pub definition_hash: String,
    /// Planned without looking at the cluster.
    pub offline: bool,
    pub steps: Vec<Step>,
    /// Said alongside the plan (skipped steps, what the real run checks first).
    pub notes: Vec<String>,
    /// Set when there is nothing to do (the VM is already provisioned): `steps` is empty.
    pub nothing_to_do: Option<String>,
    #[serde(skip)]
    pub fence: Fence,
}

impl ProvisionPlan {
    pub fn step(&self, id: StepId) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// Every Proxmox mutation of the plan, in order.
    pub fn mutations(&self) -> Vec<&Mutation> {
        self.steps
            .iter()
            .flat_map(|s| match &s.action {
                Action::Mutations { mutations } | Action::CloudInit { mutations, .. } => {
                    mutations.iter().collect()
                }
                _ => Vec::new(),
            })
            .collect()
    }
}

/// Why there is no plan. Nothing was changed when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the fleet files have {0} error(s); fix them first (`vmlint` shows them)")]
    Lint(usize),
    #[error("`{name}` is not a managed VM in vms/definitions.nix{}", hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default())]
    NotManaged { name: String, hint: Option<String> },
    #[error("managed VM `{0}` has no `{1}` in vms/definitions.nix; add it first")]
    Missing(String, &'static str),
    #[error("`{name}` has vmid {vmid}, which definitions.nix also gives `{other}`; give each VM its own vmid")]
    DuplicateVmid {
        name: String,
        vmid: VmId,
        other: String,
    },
    #[error("VMID {vmid} is outside Proxmox's range {VMID_MIN}–{VMID_MAX}; pick another in definitions.nix")]
    VmidOutOfRange { vmid: VmId },
    #[error("VMID {vmid} is already used on the cluster by `{other}` (node {node}); pick a free VMID (`vmctl ops next-vmid`) for `{name}` in definitions.nix")]
    VmidTaken {
        name: String,
        vmid: VmId,
        other: String,
        node: String,
    },
    #[error("VM {vmid} `{name}` already exists on the cluster but `{name}` is not in hosts.nix, so an earlier provision did not finish; run `vmctl provision {name} --resume` (or `--rollback`) if it left a journal, else destroy the VM (`vmctl ops destroy {vmid}`) and run again")]
    HalfProvisioned { name: String, vmid: VmId },
    #[error(
        "vms/definitions.nix has no `template` with a vmid; add the template VM to clone from"
    )]
    NoTemplate,
    #[error("the template VM {vmid} is not on the cluster; create it (see hosts-template/README.md) or fix `template.vmid`")]
    TemplateMissing { vmid: VmId },
    #[error("VM {vmid} on the cluster is not a template; convert it (`qm template {vmid}`) or fix `template.vmid`")]
    NotATemplate { vmid: VmId },
    #[error("storage `{storage}` is not on the cluster (it has: {have}); fix `storage` of `{name}` in definitions.nix")]
    NoSuchStorage {
        name: String,
        storage: String,
        have: String,
    },
    #[error("no admin SSH keys for cloud-init: add `_proxmox.adminKeys = [ \"ssh-ed25519 …\" ];` to hosts.nix")]
    NoAdminKeys,
    #[error("invalid admin key `{key}`: {reason}; adminKeys in hosts.nix must be OpenSSH public key lines")]
    BadAdminKey { key: String, reason: String },
    #[error("invalid {field} `{value}` for `{name}`: {reason}")]
    Invalid {
        name: String,
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error(transparent)]
    Fence(#[from] FenceError),
}

/// Plans the provision of `inputs.name`. Refusals come before anything is planned.
pub fn plan(inputs: &Inputs) -> Result<ProvisionPlan, PlanError> {
    let defs = inputs.defs;
    let name = inputs.name;
    if inputs.lint_errors > 0 {
        return Err(PlanError::Lint(inputs.lint_errors));
    }
    let vm = managed_vm(defs, name)?;
    let missing = |field| PlanError::Missing(name.to_string(), field);
    let vmid = vm.vmid.ok_or_else(|| missing("vmid"))?;
    if !(VMID_MIN..=VMID_MAX).contains(&vmid) {
        return Err(PlanError::VmidOutOfRange { vmid });
    }
    if let Some(other) = defs
        .all_vms()
        .find(|v| v.vmid == Some(vmid) && !std::ptr::eq(*v, vm))
    {
        return Err(PlanError::DuplicateVmid {
            name: name.into(),
            vmid,
            other: other.name.clone(),
        });
    }
    let cores = vm.cores.ok_or_else(|| missing("cores"))?;
    let memory = vm.memory.ok_or_else(|| missing("memory"))?;
    let disk = vm.disk.as_deref().ok_or_else(|| missing("disk"))?;
    let size_gib = parse_size_gib(disk).ok_or_else(|| PlanError::Invalid {
        name: name.into(),
        field: "disk",
        value: disk.into(),
        reason: "write whole GiB like `20G`".into(),
    })?;
    let template = defs.template.as_ref().ok_or(PlanError::NoTemplate)?;
    let template_vmid = template.vmid.ok_or(PlanError::NoTemplate)?;
    let storage = vm.storage.clone().or_else(|| defs.proxmox.storage.clone());
    let invalid = |field, value: &str, reason: String| PlanError::Invalid {
        name: name.into(),
        field,
        value: value.into(),
        reason,
    };
    if let Some(s) = &storage {
        crate::proxmox::validate::storage(s).map_err(|r| invalid("storage", s, r))?;
    }
    crate::proxmox::validate::vm_name(name).map_err(|r| invalid("name", name, r))?;
    let keys = admin_keys(inputs.admin_keys)?;
    let net0 = net0(vm, defs, &invalid)?;
    let ipconfig = ipconfig(vm, &invalid)?;
    let tags = tags(vm, &invalid)?;

    let mut notes = Vec::new();
    let mut node = vm.node.clone().or_else(|| defs.proxmox.node.clone());
    let mut boot_disk = DEFAULT_BOOT_DISK.to_string();
    let mut resize = true;
    if let Some(obs) = inputs.observation {
        if let Some(found) = obs.vms.iter().find(|r| r.vmid == vmid) {
            if found.name.as_deref() == Some(name) && !found.template {
                if inputs.host_known {
                    return Ok(done(inputs, vm, vmid, found.node.clone(), notes));
                }
                return Err(PlanError::HalfProvisioned {
                    name: name.into(),
                    vmid,
                });
            }
            return Err(PlanError::VmidTaken {
                name: name.into(),
                vmid,
                other: found.name.clone().unwrap_or_else(|| "(no name)".into()),
                node: found.node.clone(),
            });
        }
        let tpl =
            obs.vms
                .iter()
                .find(|r| r.vmid == template_vmid)
                .ok_or(PlanError::TemplateMissing {
                    vmid: template_vmid,
                })?;
        if !tpl.template {
            return Err(PlanError::NotATemplate {
                vmid: template_vmid,
            });
        }
        node = node.or_else(|| Some(tpl.node.clone()));
        if let Some(s) = &storage {
            if !obs.storages.is_empty() && !obs.storages.iter().any(|st| &st.name == s) {
                return Err(PlanError::NoSuchStorage {
                    name: name.into(),
                    storage: s.clone(),
                    have: obs
                        .storages
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        if let Some(cfg) = &obs.template_config {
            boot_disk = boot_disk_of(cfg);
            if let Some(have) = cfg.get(&boot_disk).and_then(disk_size_gib) {
                if have >= size_gib {
                    resize = false;
                    notes.push(format!(
                        "the template's {boot_disk} is already {have}G (declared {size_gib}G): \
                         no resize{}",
                        if have > size_gib {
                            "; vmctl never shrinks a disk"
                        } else {
                            ""
                        }
                    ));
                }
            }
        }
    } else {
        notes.push(
            "offline: planned from definitions.nix alone; the real run first checks that the \
             VMID is free on the cluster, the template exists and the storage is there"
                .into(),
        );
        notes.push(format!(
            "offline: the template's boot disk is assumed to be {DEFAULT_BOOT_DISK}; \
             `qm resize` to {size_gib}G only ever grows it"
        ));
    }
    let node = node.or_else(|| defs.proxmox.node.clone());
    let definition_hash = definition_hash(vm);
    let full = !inputs.linked;
    // The VM's node, else `proxmox.node`: the clone lands there whatever node holds the
    // template.
    let want = vm.node.as_ref().or(defs.proxmox.node.as_ref());
    let target = match (want, inputs.observation) {
        (Some(want), Some(obs)) => obs
            .vms
            .iter()
            .find(|r| r.vmid == template_vmid)
            .filter(|t| &t.node != want)
            .map(|_| want.clone()),
        _ => None,
    };
    let clone = Mutation::Clone(CloneSpec {
        source: template_vmid,
        vmid,
        name: name.into(),
        full,
        storage: if full { storage.clone() } else { None },
        target,
        pool: None,
        description: None,
    });
    let configure = vec![
        ("cores".to_string(), cores.to_string()),
        ("memory".to_string(), memory.to_string()),
        ("net0".to_string(), net0),
        ("agent".to_string(), "enabled=1".to_string()),
        ("tags".to_string(), tags.join(";")),
        (
            "description".to_string(),
            format!("managed by vmctl; definition {definition_hash}"),
        ),
    ];
    let ci_storage = storage.clone().ok_or_else(|| missing("storage"))?;
    let upload = format!(".vmctl-sshkeys-{vmid}.pub");
    let cloud_init = vec![Mutation::Configure {
        vmid,
        options: vec![
            ("ide2".into(), format!("{ci_storage}:cloudinit")),
            ("ciuser".into(), "root".into()),
            ("sshkeys".into(), upload.clone()),
            ("ipconfig0".into(), ipconfig),
            ("ciupgrade".into(), "0".into()),
        ],
    }];
    let config = vm.config_name().to_string();
    let hostname = vm.hostname.clone().unwrap_or_else(|| name.to_string());
    let mut steps = vec![
        step(
            StepId::Clone,
            format!(
                "clone template {template_vmid} to VM {vmid} `{name}` ({})",
                if full { "full" } else { "linked" }
            ),
            Action::Mutations {
                mutations: vec![clone],
            },
        ),
        step(
            StepId::Configure,
            format!("configure {cores} cores, {memory} MiB, net0, serial console, agent, tags"),
            Action::Mutations {
                mutations: vec![
                    Mutation::Configure {
                        vmid,
                        options: configure,
                    },
                    Mutation::SerialSocket { vmid },
                ],
            },
        ),
    ];
    if resize {
        steps.push(step(
            StepId::Resize,
            format!("grow {boot_disk} to {size_gib}G"),
            Action::Mutations {
                mutations: vec![Mutation::Resize {
                    vmid,
                    disk: boot_disk,
                    size: format!("{size_gib}G"),
                }],
            },
        ));
    }
    let static_ip = vm
        .network
        .ip
        .as_deref()
        .filter(|ip| *ip != "dhcp")
        .map(|ip| ip.split('/').next().unwrap_or(ip).to_string());
    steps.extend([
        step(
            StepId::CloudInit,
            format!("cloud-init: root with {} admin key(s)", keys.len()),
            Action::CloudInit {
                upload: upload.clone(),
                keys,
                mutations: cloud_init,
                remove: vec!["rm".into(), "-f".into(), "--".into(), upload],
            },
        ),
        step(
            StepId::Start,
            format!("start VM {vmid}"),
            Action::Mutations {
                mutations: vec![Mutation::Start { vmid }],
            },
        ),
        step(
            StepId::DiscoverIp,
            match &static_ip {
                Some(ip) => format!("use the static address {ip}"),
                None => "find the address (guest agent on net0's MAC, then neighbours)".into(),
            },
            Action::DiscoverIp { vmid, static_ip },
        ),
        step(
            StepId::WaitSsh,
            "wait for SSH as root".into(),
            Action::WaitSsh {
                user: "root".into(),
            },
        ),
        step(
            StepId::KeyCeremony,
            "generate the host key; add it to hosts.nix and .sops.yaml; re-key; scaffold; docs"
                .into(),
            Action::KeyCeremony {
                files: ceremony::touched_files(defs, vm),
            },
        ),
        step(
            StepId::Install,
            format!("install NixOS `.#{config}` with nixos-anywhere"),
            Action::Install {
                argv: install_argv(&config, "<DIR>", "<IP>", "<PORT>", inputs.identity),
            },
        ),
        step(
            StepId::Verify,
            format!("verify the pinned host key and hostname `{hostname}`"),
            Action::Verify {
                hostname: hostname.clone(),
            },
        ),
        step(
            StepId::Commit,
            "commit this run's files".into(),
            Action::Commit {
                subject: ceremony::commit_subject(name, vmid),
            },
        ),
    ]);
    let fence = crate::plan::ops::fence(defs, false);
    for m in steps.iter().flat_map(|s| match &s.action {
        Action::Mutations { mutations } | Action::CloudInit { mutations, .. } => {
            mutations.as_slice()
        }
        _ => &[],
    }) {
        fence.check(m)?;
    }
    Ok(ProvisionPlan {
        name: name.into(),
        vmid,
        node,
        config,
        hostname,
        definition_hash,
        offline: inputs.observation.is_none(),
        steps,
        notes,
        nothing_to_do: None,
        fence,
    })
}

fn step(id: StepId, title: String, action: Action) -> Step {
    Step { id, title, action }
}

/// The plan of a VM that is already provisioned: no steps, and why.
fn done(inputs: &Inputs, vm: &Vm, vmid: VmId, node: String, notes: Vec<String>) -> ProvisionPlan {
    ProvisionPlan {
        name: vm.name.clone(),
        vmid,
        node: Some(node),
        config: vm.config_name().to_string(),
        hostname: vm.hostname.clone().unwrap_or_else(|| vm.name.clone()),
        definition_hash: definition_hash(vm),
        offline: false,
        steps: Vec::new(),
        notes,
        nothing_to_do: Some(format!(
            "`{}` is already provisioned (VM {vmid} exists and hosts.nix has its key): nothing \
             to do",
            inputs.name
        )),
        fence: crate::plan::ops::fence(inputs.defs, false),
    }
}

fn managed_vm<'d>(defs: &'d Definitions, name: &str) -> Result<&'d Vm, PlanError> {
    if let Some(vm) = defs.managed.iter().find(|v| v.name == name) {
        return Ok(vm);
    }
    let hint = match defs.vm_by_name(name) {
        Some(v) if v.kind == VmKind::Imported => {
            Some("it is an imported VM, which vmctl documents but never provisions".into())
        }
        Some(_) => Some("it is the template".into()),
        None => defs
            .managed
            .iter()
            .map(|v| (strsim::levenshtein(name, &v.name), &v.name))
            .filter(|(d, n)| *d <= 2.max(n.len() / 3))
            .min()
            .map(|(_, n)| format!("did you mean `{n}`?"))
            .or_else(|| Some("add it under `managed` first".into())),
    };
    Err(PlanError::NotManaged {
        name: name.into(),
        hint,
    })
}
