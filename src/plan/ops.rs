//! The plan of a `vmctl ops` command: which reads and mutations it runs on Proxmox, decided
//! from the request and definitions.nix alone and fenced before anything connects.
//!
//! `cli::ops` turns the command line into a [`Request`]; [`plan`] fills in the defaults
//! definitions.nix gives, validates what clap leaves to it and runs the static fences; the
//! result is rendered for `--dry-run` ([`Plan::dry_run`]) or executed step by step.

use crate::model::Definitions;
use crate::proxmox::argv::{self, parse_size_gib};
use crate::proxmox::redact::display_line;
use crate::proxmox::validate;
use crate::proxmox::{Fence, FenceError, Mutation, VmId, VMID_MAX, VMID_MIN};

/// A read of the cluster; its result is printed as text or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    List,
    Status(VmId),
    Config(VmId),
    GetIp(VmId),
    Storage,
    /// The lowest free VMID in `start..=end`.
    NextVmid(VmId, VmId),
    Snapshots(VmId),
}

impl Read {
    /// The commands this read sends, in order (a get-ip reads the guest agent, then the host's
    /// neighbour table only when the agent has no address: both are listed).
    pub fn argv(&self) -> Vec<Vec<String>> {
        use crate::proxmox::argv;
        match *self {
            Read::List | Read::NextVmid(..) => vec![argv::list()],
            Read::Status(id) => vec![argv::status(id)],
            Read::Config(id) => vec![argv::config(id)],
            Read::GetIp(id) => vec![
                argv::config(id),
                argv::guest_interfaces(id),
                argv::neighbours(),
            ],
            Read::Storage => vec![argv::storage()],
            Read::Snapshots(id) => vec![argv::list_snapshots(id)],
        }
    }
}

/// What an ops command asks for, free of the command line's syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A read that needs no decision.
    Read(Read),
    /// `next-vmid [START [END]]`: a missing bound comes from the `managed` vmidRange, else
    /// from Proxmox's limits.
    NextVmid {
        start: Option<VmId>,
        end: Option<VmId>,
    },
    /// A mutation whose arguments need no decision.
    Change(Mutation),
    /// `configure VMID CORES MEMORY [--set KEY=VALUE]…`.
    Configure {
        vmid: VmId,
        cores: u32,
        memory: u64,
        /// Raw `--set` values, parsed by the planner rather than by clap: clap would echo a
        /// malformed value, which may be a secret.
        set: Vec<String>,
    },
    /// `create-disk VMID SIZE [STORAGE [DISK]]`.
    CreateDisk {
        vmid: VmId,
        size: String,
        storage: Option<String>,
        disk: Option<String>,
    },
    /// `protect VMID on|off`: both are needed.
    Protect {
        vmid: Option<VmId>,
        on: Option<bool>,
    },
    /// `protect --readonly-vms`.
    ProtectReadonly,
    /// `migrate VMID NODE [--online]`: from the node definitions.nix gives the VM.
    Migrate {
        vmid: VmId,
        target: String,
        online: bool,
    },
}

/// One thing a plan does on the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Read(Read),
    /// A mutation the static fences allowed; the `Proxmox` runs the live checks before sending
    /// it. Its failure ends the run.
    Apply(Mutation),
    /// `protect --readonly-vms` for one readonly VM: skipped when the cluster does not have it
    /// or it is already protected. Its failure is counted and the next VM still runs.
    EnsureProtected {
        vmid: VmId,
        name: String,
    },
}

impl Step {
    /// The mutation this step sends (`EnsureProtected`'s when it is needed).
    pub fn mutation(&self) -> Option<Mutation> {
        match self {
            Step::Read(_) => None,
            Step::Apply(m) => Some(m.clone()),
            Step::EnsureProtected { vmid, .. } => Some(Mutation::Protect {
                vmid: *vmid,
                on: true,
            }),
        }
    }
}

/// What an ops command will do: fenced steps, and the fence the runner's `Proxmox` enforces
/// again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub fence: Fence,
    /// Said on stderr instead of running when `steps` is empty.
    pub nothing_to_do: Option<&'static str>,
}

/// Why a request has no plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Fence(#[from] FenceError),
    #[error("START ({start}) is above END ({end})")]
    StartAboveEnd { start: VmId, end: VmId },
    /// The reason never repeats the value: it may be a secret.
    #[error("invalid value for --set: {0}")]
    InvalidSet(String),
    #[error("disk size `{0}` is not whole GiB; write it like `20G`")]
    DiskNotWholeGib(String),
    #[error("no storage given and definitions.nix has no `proxmox.storage`; pass STORAGE")]
    NoStorage,
    #[error("protect needs VMID and on|off, or --readonly-vms; see `vmctl ops protect --help`")]
    ProtectArguments,
    #[error("definitions.nix gives VM {vmid} no `node` and has no `proxmox.node`: vmctl cannot tell which node to migrate it from; use `vmctl migrate NAME NODE`, which reads it from the cluster")]
    NoNode { vmid: VmId },
}

/// What `--dry-run` shows: the command lines (stdout) and what the real run checks first
/// (stderr).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DryRun {
    /// Every mutation's remote command line, quoted as sent, secrets as `<redacted>`.
    pub commands: Vec<String>,
    pub notes: Vec<String>,
}

/// The fence of a run: definitions.nix's VMs, and whether `--unlisted` lets unlisted VMIDs
/// through.
pub fn fence(defs: &Definitions, unlisted: bool) -> Fence {
    Fence::from_definitions(defs).allow_unlisted(unlisted)
}

/// Turns a request into its plan. Argument errors come first, then the fences: a refused
/// request never reaches a connection.
pub fn plan(req: Request, defs: &Definitions, unlisted: bool) -> Result<Plan, PlanError> {
    let read = |r| Ok(single(Step::Read(r), fence(defs, false)));
    let change = |m: Mutation| {
        let fence = fence(defs, unlisted);
        fence.check(&m)?;
        Ok(single(Step::Apply(m), fence))
    };
    match req {
        Request::Read(r) => read(r),
        Request::NextVmid { start, end } => {
            let managed = defs.vmid_ranges.iter().find(|r| r.name == "managed");
            let start = start.or(managed.map(|r| r.start)).unwrap_or(VMID_MIN);
            let end = end.or(managed.map(|r| r.end)).unwrap_or(VMID_MAX);
            if start > end {
                return Err(PlanError::StartAboveEnd { start, end });
            }
            read(Read::NextVmid(start, end))
        }
        Request::Change(m) => change(m),
        // Planned without the cluster: the VM's node is the one definitions.nix gives it (its
        // `node`, else `proxmox.node`); Proxmox refuses when the VM is not there. `vmctl
        // migrate NAME NODE` reads the node from the cluster instead.
        Request::Migrate {
            vmid,
            target,
            online,
        } => {
            let node = defs
                .vm_by_vmid(vmid)
                .and_then(|v| v.node.clone())
                .or_else(|| defs.proxmox.node.clone());
            let m = Mutation::Migrate {
                node: node.clone().unwrap_or_default(),
                vmid,
                target,
                online,
                with_local_disks: false,
            };
            // The fences speak first: they do not depend on the node.
            fence(defs, unlisted).check(&m)?;
            node.ok_or(PlanError::NoNode { vmid })?;
            change(m)
        }
        Request::Configure {
            vmid,
            cores,
            memory,
            set,
        } => {
            let mut options = vec![
                ("cores".to_string(), cores.to_string()),
                ("memory".to_string(), memory.to_string()),
            ];
            for kv in &set {
                options.push(validate::key_value(kv).map_err(PlanError::InvalidSet)?);
            }
            change(Mutation::Configure { vmid, options })
        }
        Request::CreateDisk {
            vmid,
            size,
            storage,
            disk,
        } => {
            let size_gib = parse_size_gib(&size).ok_or(PlanError::DiskNotWholeGib(size))?;
            let storage = storage
                .or(defs.proxmox.storage.clone())
                .ok_or(PlanError::NoStorage)?;
            change(Mutation::CreateDisk {
                vmid,
                disk: disk.unwrap_or_else(|| "scsi0".into()),
                storage,
                size_gib,
            })
        }
        Request::Protect {
            vmid: Some(vmid),
            on: Some(on),
        } => change(Mutation::Protect { vmid, on }),
        Request::Protect { .. } => Err(PlanError::ProtectArguments),
        Request::ProtectReadonly => protect_readonly(defs),
    }
}

fn single(step: Step, fence: Fence) -> Plan {
    Plan {
        steps: vec![step],
        fence,
        nothing_to_do: None,
    }
}

/// Protection on for every readonly VM definitions.nix lists. `--unlisted` plays no part:
/// every target is listed.
fn protect_readonly(defs: &Definitions) -> Result<Plan, PlanError> {
    let fence = fence(defs, false);
    let steps: Vec<Step> = fence
        .readonly_vms()
        .map(|(vmid, k)| Step::EnsureProtected {
            vmid,
            name: k.name.clone(),
        })
        .collect();
    // An undetermined VMID anywhere refuses this too, before anything connects.
    for m in steps.iter().filter_map(Step::mutation) {
        fence.check(&m)?;
    }
    Ok(Plan {
        nothing_to_do: steps
            .is_empty()
            .then_some("definitions.nix marks no VM readonly; nothing to protect"),
        steps,
        fence,
    })
}

/// The fence check of `console VMID` and the argv it runs: the interactive console is fenced
/// like a mutation (typing into a readonly VM changes it as surely as `qm set` does).
pub fn console(
    defs: &Definitions,
    vmid: VmId,
    unlisted: bool,
) -> Result<(Fence, Vec<String>), PlanError> {
    let fence = fence(defs, unlisted);
    fence.check_console(vmid)?;
    Ok((fence, argv::console(vmid)))
}

impl Plan {
    /// The dry-run rendering: each mutation's command line, and what the real run checks on
    /// the cluster before sending it. Reads change nothing and are not shown.
    pub fn dry_run(&self) -> DryRun {
        let mut d = DryRun::default();
        let mut ensures = false;
        for step in &self.steps {
            if let Step::Read(r) = step {
                d.commands.extend(r.argv().iter().map(|a| display_line(a)));
                continue;
            }
            let Some(m) = step.mutation() else { continue };
            d.commands.push(display_line(&m.argv()));
            if let Step::EnsureProtected { .. } = step {
                ensures = true;
                continue;
            }
            if Fence::needs_cluster_check(&m) {
                d.notes.push(format!(
                    "dry run: when run for real, vmctl first checks that VMID {} is free in the \
                     cluster",
                    m.vmid()
                ));
            }
            if Fence::needs_live_check(&m) {
                d.notes.push(format!(
                    "dry run: when run for real, vmctl first reads VM {} and refuses unless its \
                     name is the one definitions.nix gives, it is not a template and protection \
                     is off",
                    m.vmid()
                ));
            }
        }
        if ensures {
            d.notes.push(
                "dry run: when run for real, vmctl skips readonly VMs the cluster does not have \
                 or that are already protected"
                    .into(),
            );
        }
        d
    }
}

#[cfg(test)]
pub(crate) mod tests;
