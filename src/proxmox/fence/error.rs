//! The refusals of the fence: each names the VM, the rule it breaks and the flag or edit that
//! would allow the operation.

use crate::proxmox::VmId;

/// A mutation the fence refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FenceError {
    #[error(
        "refusing to {op} VM {vmid} ({name}): definitions.nix marks it `readonly = true`; \
         vmctl never changes readonly VMs (remove the flag in vms/definitions.nix only if vmctl \
         should manage this VM)"
    )]
    Readonly {
        op: &'static str,
        vmid: VmId,
        name: String,
    },
    #[error(
        "refusing to {op} VM {vmid} ({name}): its `readonly` in definitions.nix cannot be \
         determined (vmctl's evaluator cannot, and Nix is missing or failed on the file), so \
         vmctl treats it as readonly; write it as a literal (`readonly = true;` or \
         `readonly = false;`), or make nix-instantiate available and able to evaluate the file"
    )]
    ReadonlyUndetermined {
        op: &'static str,
        vmid: VmId,
        name: String,
    },
    #[error(
        "refusing to {op} VM {vmid}: the VMID of {} in definitions.nix cannot be determined \
         (vmctl's evaluator cannot, and Nix is missing or failed on the file), so vmctl cannot \
         tell which VMID it protects; write every `vmid` as a literal (`vmid = 110;`), or make \
         nix-instantiate available and able to evaluate the file (`vmlint` shows VM020)",
        .what.join(", ")
    )]
    VmidUndetermined {
        op: &'static str,
        vmid: VmId,
        what: Vec<String>,
    },
    #[error(
        "refusing to {op} VM {vmid}: definitions.nix does not list it; add it to \
         vms/definitions.nix (under `managed`, or `imported` with `readonly = true`), or pass \
         `--unlisted` if you mean a VM vmctl does not know"
    )]
    Unlisted { op: &'static str, vmid: VmId },
    #[error(
        "refusing to {op} VM {vmid} ({name}): it is an imported VM without `readonly` written \
         out; {op} is destructive, so write `readonly = false;` in vms/definitions.nix if vmctl \
         may do it (or `readonly = true;` to protect the VM)"
    )]
    ImportedNotExplicit {
        op: &'static str,
        vmid: VmId,
        name: String,
    },
    #[error(
        "refusing to clone VM {source_vmid} ({name}): it is readonly and only the template \
         (`template` in vms/definitions.nix) may be a clone source among readonly VMs"
    )]
    ReadonlySource { source_vmid: VmId, name: String },
    #[error(
        "refusing to destroy VM {vmid}: definitions.nix does not manage it{}; vmctl destroys \
         only VMs listed under `managed`",
        known_as(.name, .kind)
    )]
    NotManaged {
        vmid: VmId,
        name: Option<String>,
        kind: Option<&'static str>,
    },
    #[error(
        "refusing to destroy VM {vmid} ({name}) without confirmation: pass `--confirm {name}`"
    )]
    ConfirmMissing { vmid: VmId, name: String },
    #[error(
        "refusing to destroy VM {vmid} ({name}): `--confirm {given}` does not match its name; \
         pass `--confirm {name}`"
    )]
    ConfirmMismatch {
        vmid: VmId,
        name: String,
        given: String,
    },
    #[error(
        "refusing to {op} onto VMID {vmid}: it already exists in the cluster{}; pick a free one \
         with `vmctl ops next-vmid`",
        existing.as_ref().map(|n| format!(" as `{n}`")).unwrap_or_default()
    )]
    VmidExists {
        op: &'static str,
        vmid: VmId,
        existing: Option<String>,
    },
    #[error(
        "refusing to {op} VM {vmid}: definitions.nix names it `{expected}` but the VM with this \
         VMID on the cluster is `{}`; the VMID was reused, so nothing was changed (check \
         `vmctl ops config {vmid}` and fix vms/definitions.nix)",
        .live.as_deref().unwrap_or("<no name>")
    )]
    NameMismatch {
        op: &'static str,
        vmid: VmId,
        expected: String,
        live: Option<String>,
    },
    #[error(
        "refusing to {op} VM {vmid} ({}): it is a template on the cluster, and only the \
         template definitions.nix lists may be treated as one",
        .live.as_deref().unwrap_or("<no name>")
    )]
    LiveTemplate {
        op: &'static str,
        vmid: VmId,
        live: Option<String>,
    },
    #[error(
        "refusing to {op} VM {vmid} ({}): Proxmox protection is on; turn it off first with \
         `vmctl ops protect {vmid} off` if you really mean it",
        .live.as_deref().unwrap_or("<no name>")
    )]
    Protected {
        op: &'static str,
        vmid: VmId,
        live: Option<String>,
    },
    #[error(
        "refusing to restore onto VMID {vmid}: definitions.nix reserves it for `{name}`; restore \
         as a VMID it does not list (`vmctl restore NAME --from VOLUME --as NEWNAME` picks one)"
    )]
    VmidReserved { vmid: VmId, name: String },
    #[error(
        "refusing to restore into VM {vmid}: definitions.nix does not manage it{}; vmctl \
         restores only into VMs listed under `managed` (restore beside it with `--as NEWNAME`)",
        known_as(.name, .kind)
    )]
    RestoreNotManaged {
        vmid: VmId,
        name: Option<String>,
        kind: Option<&'static str>,
    },
    #[error(
        "refusing to restore into VM {vmid} ({name}): {}",
        match .given {
            None => format!(
                "it replaces the VM's disks and snapshots, so it needs `--confirm {name}` (or \
                 restore beside it with `--as NEWNAME`)"
            ),
            Some(g) => format!("`--confirm {g}` does not match its name; it needs `--confirm {name}`"),
        }
    )]
    RestoreConfirm {
        vmid: VmId,
        name: String,
        given: Option<String>,
    },
    #[error(
        "refusing to {op} VM {vmid} ({}): it is {status}, and Proxmox replaces only a stopped \
         VM's disks; stop it first (`vmctl ops shutdown {vmid}`), then run it again",
        .live.as_deref().unwrap_or("<no name>")
    )]
    NotStopped {
        op: &'static str,
        vmid: VmId,
        live: Option<String>,
        status: String,
    },
}

fn known_as(name: &Option<String>, kind: &Option<&'static str>) -> String {
    match (name, kind) {
        (Some(n), Some(k)) => format!(" (it is `{n}`, listed as {k})"),
        _ => " (it is not in vms/definitions.nix)".into(),
    }
}
