//! The plan of `vmctl destroy NAME`: from one managed VM's definition, the cluster as observed
//! and the fleet files' text, the ordered steps (stop, `qm destroy --purge`, the fleet-file
//! edits, re-key, rotate, commit) with every file's exact new bytes, or why not.
//!
//! Pure: nothing here connects, spawns or writes. The plan is also what the run journals, so
//! a run killed at any point resumes with exactly the edits it planned (see `exec::destroy`).

mod files;
pub mod render;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use files::{FleetTexts, PlannedFile};

use crate::edit::definitions::DefinitionsEditError;
use crate::edit::docs::DocsError;
use crate::edit::hosts::HostsEditError;
use crate::edit::sops::SopsEditError;
use crate::model::{Definitions, Vm, VmKind};
use crate::proxmox::{FenceError, Mutation, VmId, VmResource};

/// Everything the planner reads, all of it already loaded.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub defs: &'a Definitions,
    pub name: &'a str,
    /// What the user typed after `--confirm`.
    pub confirm: &'a str,
    /// `--keep-definition`: vms/definitions.nix and `hosts/CONFIG/` stay.
    pub keep_definition: bool,
    /// `--rotate`: new data keys for the secrets the removed host could read.
    pub rotate: bool,
    /// `--no-commit` when false.
    pub commit: bool,
    /// The cluster's VMs; `None` plans offline (dry run only).
    pub observation: Option<&'a [VmResource]>,
    pub files: FleetTexts<'a>,
}

/// The steps of a destroy, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepId {
    Stop,
    Destroy,
    FleetFiles,
    Rekey,
    Rotate,
    Commit,
}

impl StepId {
    pub fn as_str(self) -> &'static str {
        match self {
            StepId::Stop => "stop",
            StepId::Destroy => "destroy",
            StepId::FleetFiles => "fleet-files",
            StepId::Rekey => "rekey",
            StepId::Rotate => "rotate",
            StepId::Commit => "commit",
        }
    }
}

/// One named step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub id: StepId,
    pub title: String,
}

/// The VM as the cluster showed it when the plan was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Live {
    Running,
    Stopped,
    /// Not on the cluster: only the fleet files change.
    Absent,
    /// Planned offline: the run observes first.
    Unknown,
}

/// The identity the fleet loses: the host key hosts.nix pinned and its age recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedKey {
    pub public_key: String,
    pub fingerprint: String,
    pub age_recipient: String,
}

/// What `vmctl destroy NAME` will do. Serialisable: the run's journal holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestroyPlan {
    pub name: String,
    pub vmid: VmId,
    pub node: Option<String>,
    pub live: Live,
    pub steps: Vec<Step>,
    /// The fleet-files step: every file's bytes before and after (`None`: deleted).
    pub files: Vec<PlannedFile>,
    /// The key hosts.nix pinned for the VM, when it had one.
    pub removed_key: Option<RemovedKey>,
    /// The age recipient removed from .sops.yaml (the anchor's, else the host key's).
    pub removed_recipient: Option<String>,
    pub keep_definition: bool,
    pub rotate: bool,
    /// The fleet's secrets directory (fleet-relative): what the re-keying and rotation cover.
    pub secrets_dir: std::path::PathBuf,
    /// Said alongside the plan: what is kept, skipped, and what rotation does not cover.
    pub notes: Vec<String>,
}

impl DestroyPlan {
    pub fn has(&self, id: StepId) -> bool {
        self.steps.iter().any(|s| s.id == id)
    }

    /// The Proxmox mutation of a step (stop, destroy), sent through the fenced `Proxmox`.
    pub fn mutation(&self, id: StepId) -> Option<Mutation> {
        match id {
            StepId::Stop => Some(Mutation::Stop { vmid: self.vmid }),
            StepId::Destroy => Some(Mutation::Destroy {
                vmid: self.vmid,
                confirm: Some(self.name.clone()),
            }),
            _ => None,
        }
    }

    /// Every Proxmox mutation of the plan, in order.
    pub fn mutations(&self) -> Vec<Mutation> {
        self.steps
            .iter()
            .filter_map(|s| self.mutation(s.id))
            .collect()
    }
}

/// Why there is no plan. Nothing was changed when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("`{name}` is not a managed VM in vms/definitions.nix; {why}")]
    NotManaged { name: String, why: String },
    #[error("`{name}` is marked `readonly = true` in vms/definitions.nix; vmctl never destroys a readonly VM (remove the flag first if vmctl should manage it)")]
    Readonly { name: String },
    #[error("--confirm `{given}` is not `{name}`; type the VM's name exactly to confirm: `vmctl destroy {name} --confirm {name}`")]
    ConfirmMismatch { name: String, given: String },
    #[error("managed VM `{0}` has no `vmid` in vms/definitions.nix, so vmctl cannot tell which VM to destroy")]
    NoVmid(String),
    #[error("VMID {vmid} is `{live}` on the cluster (node {node}), not `{name}`: it is not this VM, so vmctl leaves it alone; fix `vmid` of `{name}` in definitions.nix")]
    NotOurVm {
        name: String,
        vmid: VmId,
        live: String,
        node: String,
    },
    #[error("VM {vmid} on the cluster is a template, not `{name}`; vmctl never destroys it")]
    LiveTemplate { name: String, vmid: VmId },
    #[error("`{name}` is on the cluster as VMID {live} (node {node}), but definitions.nix gives it {vmid}; fix the definition first so vmctl destroys the right VM")]
    VmidMoved {
        name: String,
        vmid: VmId,
        live: VmId,
        node: String,
    },
    #[error("vms/definitions.nix: {0}")]
    Definitions(#[from] DefinitionsEditError),
    #[error("hosts.nix: {0}")]
    Hosts(#[from] HostsEditError),
    #[error(".sops.yaml: {0}")]
    Sops(#[from] SopsEditError),
    #[error("docs: {0}")]
    Docs(#[from] DocsError),
    #[error("hosts.nix has an invalid publicKey for `{name}` ({reason}); fix it (`vmlint`) so vmctl knows which recipient to remove")]
    BadKey { name: String, reason: String },
    #[error(transparent)]
    Fence(#[from] FenceError),
}

impl PlanError {
    /// Refusals that say vmctl cannot act on this VM at all (not a managed one): exit 2.
    pub fn is_cannot_act(&self) -> bool {
        matches!(
            self,
            PlanError::NotManaged { .. } | PlanError::Readonly { .. }
        )
    }
}

/// Plans the destroy of `inputs.name`. Refusals come before anything is planned, in the order
/// a user needs them: not a managed VM, the confirmation, the cluster, then the files.
pub fn plan(inputs: &Inputs) -> Result<DestroyPlan, PlanError> {
    let defs = inputs.defs;
    let name = inputs.name;
    let vm = managed_vm(defs, name)?;
    if vm.readonly {
        return Err(PlanError::Readonly { name: name.into() });
    }
    if inputs.confirm != name {
        return Err(PlanError::ConfirmMismatch {
            name: name.into(),
            given: inputs.confirm.into(),
        });
    }
    let vmid = vm.vmid.ok_or_else(|| PlanError::NoVmid(name.into()))?;
    let mut notes = Vec::new();
    let (live, node) = observe(inputs, vm, vmid, &mut notes)?;
    let fleet = files::plan_files(inputs, vm, &mut notes)?;
    let mut steps = Vec::new();
    let mut step = |id, title: String| steps.push(Step { id, title });
    if matches!(live, Live::Running | Live::Unknown) {
        step(
            StepId::Stop,
            match live {
                Live::Unknown => format!("stop VM {vmid} (when it runs)"),
                _ => format!("stop VM {vmid}"),
            },
        );
    }
    if live != Live::Absent {
        step(
            StepId::Destroy,
            format!("destroy VM {vmid} `{name}` and its disks (--purge)"),
        );
    }
    if !fleet.files.is_empty() {
        step(StepId::FleetFiles, files::title(&fleet.files));
    }
    let recipient_removed = fleet.removed_recipient.is_some();
    if recipient_removed {
        step(
            StepId::Rekey,
            "re-key the secrets without the removed recipient".into(),
        );
        if inputs.rotate {
            step(
                StepId::Rotate,
                "rotate the data keys of the secrets the removed host could read".into(),
            );
        } else {
            notes.push(format!(
                "the secrets are re-keyed without `{name}`, but its identity still holds their \
                 current data keys and so still decrypts any old copy (git history, backups) \
                 and every value re-keying leaves as it is; pass --rotate to give them new data \
                 keys"
            ));
        }
    } else if inputs.rotate {
        notes.push(format!(
            "--rotate: .sops.yaml lists no recipient of `{name}`, so no secret was readable by \
             it through this fleet's rules; nothing to rotate"
        ));
    }
    if inputs.commit && (!fleet.files.is_empty() || recipient_removed) {
        step(
            StepId::Commit,
            format!("commit `{}`", commit_subject(name, vmid)),
        );
    }
    let plan = DestroyPlan {
        name: name.into(),
        vmid,
        node,
        live,
        steps,
        files: fleet.files,
        removed_key: fleet.removed_key,
        removed_recipient: fleet.removed_recipient,
        keep_definition: inputs.keep_definition,
        rotate: inputs.rotate,
        secrets_dir: defs.settings.secrets_dir.clone(),
        notes,
    };
    let fence = crate::plan::ops::fence(defs, false);
    for m in plan.mutations() {
        fence.check(&m)?;
    }
    Ok(plan)
}

/// The VM on the cluster: it must be this one (VMID and name) and not a template.
fn observe(
    inputs: &Inputs,
    vm: &Vm,
    vmid: VmId,
    notes: &mut Vec<String>,
) -> Result<(Live, Option<String>), PlanError> {
    let name = inputs.name;
    let Some(vms) = inputs.observation else {
        notes.push(
            "offline: planned from the fleet files alone; the real run first checks on the \
             cluster that VM {vmid} is `{name}`"
                .replace("{vmid}", &vmid.to_string())
                .replace("{name}", name),
        );
        return Ok((
            Live::Unknown,
            vm.node.clone().or_else(|| inputs.defs.proxmox.node.clone()),
        ));
    };
    match vms.iter().find(|r| r.vmid == vmid) {
        Some(r) if r.template => Err(PlanError::LiveTemplate {
            name: name.into(),
            vmid,
        }),
        Some(r) if r.name.as_deref() != Some(name) => Err(PlanError::NotOurVm {
            name: name.into(),
            vmid,
            live: r.name.clone().unwrap_or_else(|| "(no name)".into()),
            node: r.node.clone(),
        }),
        Some(r) => Ok((
            if r.status == "stopped" {
                Live::Stopped
            } else {
                Live::Running
            },
            Some(r.node.clone()),
        )),
        None => {
            if let Some(r) = vms.iter().find(|r| r.name.as_deref() == Some(name)) {
                return Err(PlanError::VmidMoved {
                    name: name.into(),
                    vmid,
                    live: r.vmid,
                    node: r.node.clone(),
                });
            }
            notes.push(format!(
                "VM {vmid} is not on the cluster (destroyed already?): only the fleet files change"
            ));
            Ok((
                Live::Absent,
                vm.node.clone().or_else(|| inputs.defs.proxmox.node.clone()),
            ))
        }
    }
}

fn managed_vm<'d>(defs: &'d Definitions, name: &str) -> Result<&'d Vm, PlanError> {
    if let Some(vm) = defs.managed.iter().find(|v| v.name == name) {
        return Ok(vm);
    }
    let why = match defs.vm_by_name(name) {
        Some(v) if v.kind == VmKind::Imported => {
            "it is an imported VM, which vmctl documents but never destroys".to_string()
        }
        Some(_) => "it is the template, which vmctl never destroys".to_string(),
        None => "vmctl destroys only VMs listed under `managed`".to_string(),
    };
    Err(PlanError::NotManaged {
        name: name.into(),
        why,
    })
}

pub fn commit_subject(name: &str, vmid: VmId) -> String {
    format!("feat(vms): destroy {name} (VMID {vmid})")
}

/// The commit message: the subject, what was done, the files, and trailers a reviewer (or a
/// script) can check.
pub fn commit_message(plan: &DestroyPlan, files: &[String]) -> String {
    let mut m = commit_subject(&plan.name, plan.vmid);
    m.push_str(&format!(
        "\n\nDestroyed by `vmctl destroy`: {}, and the fleet's files no longer name it (host \
         key, age recipient, secrets re-keyed without it{}).\n",
        match plan.live {
            Live::Absent => "the VM (already gone from the cluster)",
            _ => "the VM and its disks",
        },
        if plan.rotate && plan.removed_recipient.is_some() {
            ", their data keys rotated"
        } else {
            ""
        }
    ));
    m.push_str("\nFiles:\n");
    for f in files {
        m.push_str(&format!("  {f}\n"));
    }
    m.push_str(&format!("\nVMID: {}\n", plan.vmid));
    if let Some(n) = &plan.node {
        m.push_str(&format!("Node: {n}\n"));
    }
    if let Some(k) = &plan.removed_key {
        m.push_str(&format!("Host-Key-Fingerprint: {}\n", k.fingerprint));
    }
    if let Some(r) = &plan.removed_recipient {
        m.push_str(&format!("Age-Recipient: {r}\n"));
    }
    m.push_str(&format!(
        "Definition: {}\nRotated: {}\n",
        if plan.keep_definition {
            "kept"
        } else {
            "removed"
        },
        if plan.rotate && plan.removed_recipient.is_some() {
            "yes"
        } else {
            "no"
        }
    ));
    m
}
