//! `vmctl status`: definitions against the live cluster, pure. From the one cluster-wide read
//! and each declared VM's config (read from its node), per VM: node, power state and drift per
//! field with both values, normalized as Proxmox stores them; VMs the definitions do not
//! mention, declared VMs the cluster lacks, readonly VMs without protection, and capacity per
//! node and storage.

pub mod normalize;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Definitions, Vm, VmKind};
use crate::plan::provision::values::{boot_disk_of, ipconfig, net0, tags};
use crate::plan::provision::{definition_hash, PlanError};
use crate::proxmox::node_api::{Cluster, LiveConfig};
use crate::proxmox::{VmConfig, VmId};

/// One field whose live value differs from the definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// `cores`, `memory`, `disk`, `net0`, `tags`, `description`, `ipconfig0`, `ciuser`,
    /// `sshkeys`, `node`.
    pub field: String,
    pub declared: String,
    pub live: String,
    /// The Proxmox option `apply` sets (`scsi0` for the disk); `None`: apply cannot fix it.
    pub key: Option<String>,
}

/// One declared VM as the cluster has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmReport {
    pub name: String,
    pub kind: &'static str,
    pub vmid: VmId,
    pub readonly: bool,
    /// The node the definition names (or `proxmox.node`).
    pub declared_node: Option<String>,
    /// Where the VM is; `None` when the cluster lacks it.
    pub node: Option<String>,
    pub power: Option<String>,
    pub protected: bool,
    pub drift: Vec<Drift>,
    /// Keys whose new value waits for the next start.
    pub pending: Vec<String>,
    /// Why the definition could not be compared (an invalid value).
    pub problem: Option<String>,
}

/// A VM of the cluster that definitions.nix does not list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unmanaged {
    pub vmid: VmId,
    pub name: Option<String>,
    pub node: String,
    pub template: bool,
}

/// Declared against free, per node (memory, MiB) or per storage of a node (disk, bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capacity {
    pub node: String,
    /// `None` for the node's memory.
    pub storage: Option<String>,
    /// What the definitions declare there that the cluster does not yet hold.
    pub declared_new: u64,
    pub free: u64,
    pub total: u64,
    pub fits: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct StatusReport {
    pub vms: Vec<VmReport>,
    pub unmanaged: Vec<Unmanaged>,
    /// Declared VMs the cluster does not have.
    pub missing: Vec<String>,
    /// Readonly VMs on the cluster without `protection: 1`.
    pub unprotected_readonly: Vec<String>,
    pub capacity: Vec<Capacity>,
}

impl StatusReport {
    pub fn drifted(&self) -> bool {
        self.vms.iter().any(|v| !v.drift.is_empty())
    }
}

/// What the status needs besides the definitions.
pub struct Inputs<'a> {
    pub cluster: &'a Cluster,
    /// The live config of each declared VM present on the cluster.
    pub configs: &'a BTreeMap<VmId, LiveConfig>,
    /// Pending keys per VM.
    pub pending: &'a BTreeMap<VmId, Vec<String>>,
    /// hosts.nix's admin keys: what cloud-init was given.
    pub admin_keys: &'a [String],
    /// Only these VMs (all when empty).
    pub names: &'a [String],
}

/// The node a VM belongs on: its own `node`, else `proxmox.node`.
pub fn declared_node(vm: &Vm, defs: &Definitions) -> Option<String> {
    vm.node.clone().or_else(|| defs.proxmox.node.clone())
}

/// The VMs `names` selects (every managed and imported VM when empty); an unknown name is an
/// error naming the known ones.
pub fn select<'a>(defs: &'a Definitions, names: &[String]) -> Result<Vec<&'a Vm>, String> {
    let all: Vec<&Vm> = defs.imported.iter().chain(defs.managed.iter()).collect();
    if names.is_empty() {
        return Ok(all);
    }
    names
        .iter()
        .map(|n| {
            all.iter().copied().find(|v| &v.name == n).ok_or_else(|| {
                format!(
                    "no VM `{n}` in vms/definitions.nix; it lists {}",
                    all.iter()
                        .map(|v| v.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
        })
        .collect()
}

/// The values provisioning gives a managed VM, as (field, Proxmox key, value).
pub fn desired(
    vm: &Vm,
    defs: &Definitions,
    admin_keys: &[String],
) -> Result<Vec<(&'static str, String, String)>, PlanError> {
    let invalid = |field, value: &str, reason: String| PlanError::Invalid {
        name: vm.name.clone(),
        field,
        value: value.into(),
        reason,
    };
    let mut out = Vec::new();
    if let Some(c) = vm.cores {
        out.push(("cores", "cores".to_string(), c.to_string()));
    }
    if let Some(m) = vm.memory {
        out.push(("memory", "memory".to_string(), m.to_string()));
    }
    out.push(("net0", "net0".into(), net0(vm, defs, &invalid)?));
    out.push(("tags", "tags".into(), tags(vm, &invalid)?.join(";")));
    out.push((
        "description",
        "description".into(),
        format!("managed by vmctl; definition {}", definition_hash(vm)),
    ));
    out.push(("ipconfig0", "ipconfig0".into(), ipconfig(vm, &invalid)?));
    out.push(("ciuser", "ciuser".into(), "root".into()));
    if !admin_keys.is_empty() {
        let mut keys = admin_keys.join("\n");
        keys.push('\n');
        out.push(("sshkeys", "sshkeys".into(), keys));
    }
    Ok(out)
}

/// Compares one field; `None` when equal as Proxmox stores it.
fn compare(field: &str, declared: &str, live: Option<&str>) -> Option<(String, String)> {
    use normalize as n;
    let live_text = live.unwrap_or("");
    let same = match field {
        "tags" => n::tags(declared) == n::tags(live_text),
        "memory" => n::memory(declared) == n::memory(live_text),
        "net0" => n::net_matches(declared, live_text),
        "ipconfig0" => n::ipconfig(declared) == n::ipconfig(live_text),
        "sshkeys" => n::ssh_keys(declared) == n::ssh_keys(&n::url_decode(live_text)),
        _ => declared.trim_end() == live_text.trim_end(),
    };
    if same {
        return None;
    }
    let shown_live = match (field, live) {
        (_, None) => "(not set)".to_string(),
        ("sshkeys", Some(l)) => n::ssh_keys(&n::url_decode(l)),
        (_, Some(l)) => l.to_string(),
    };
    let shown_declared = if field == "sshkeys" {
        n::ssh_keys(declared)
    } else {
        declared.to_string()
    };
    Some((shown_declared, shown_live))
}

/// The boot disk of a live config and its size in bytes.
pub fn boot_disk(cfg: &LiveConfig) -> Option<(String, u64)> {
    let as_vm = VmConfig {
        entries: cfg
            .entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let disk = boot_disk_of(&as_vm);
    let size = cfg.get(&disk).and_then(normalize::disk_size)?;
    Some((disk, size))
}

/// The drift of one managed VM.
pub fn drift_of(
    vm: &Vm,
    defs: &Definitions,
    cfg: &LiveConfig,
    admin_keys: &[String],
) -> Result<Vec<Drift>, PlanError> {
    let mut out = Vec::new();
    for (field, key, declared) in desired(vm, defs, admin_keys)? {
        if let Some((d, l)) = compare(field, &declared, cfg.get(&key)) {
            out.push(Drift {
                field: field.into(),
                declared: d,
                live: l,
                key: Some(key),
            });
        }
    }
    if let Some(want) = vm.disk.as_ref().and_then(|d| d.bytes().ok()) {
        if let Some((disk, have)) = boot_disk(cfg) {
            if have != want {
                out.push(Drift {
                    field: "disk".into(),
                    declared: normalize::show_size(want),
                    live: normalize::show_size(have),
                    key: Some(disk),
                });
            }
        }
    }
    Ok(out)
}

/// The whole report.
pub fn status(defs: &Definitions, inputs: &Inputs) -> Result<StatusReport, String> {
    let selected = select(defs, inputs.names)?;
    let mut report = StatusReport::default();
    for vm in &selected {
        let Some(vmid) = vm.vmid else { continue };
        let live = inputs.cluster.vms.iter().find(|r| r.vmid == vmid);
        let declared_node = declared_node(vm, defs);
        let mut row = VmReport {
            name: vm.name.clone(),
            kind: match vm.kind {
                VmKind::Managed => "managed",
                VmKind::Imported => "imported",
                VmKind::Template => "template",
            },
            vmid,
            readonly: vm.readonly,
            declared_node: declared_node.clone(),
            node: live.map(|r| r.node.clone()),
            power: live.map(|r| r.status.clone()),
            protected: false,
            drift: Vec::new(),
            pending: inputs.pending.get(&vmid).cloned().unwrap_or_default(),
            problem: None,
        };
        let Some(live) = live else {
            report.missing.push(vm.name.clone());
            report.vms.push(row);
            continue;
        };
        if let Some(cfg) = inputs.configs.get(&vmid) {
            row.protected = cfg.get("protection") == Some("1");
            if vm.kind == VmKind::Managed {
                match drift_of(vm, defs, cfg, inputs.admin_keys) {
                    Ok(d) => row.drift = d,
                    Err(e) => row.problem = Some(e.to_string()),
                }
            }
        }
        if let Some(want) = &declared_node {
            if want != &live.node {
                row.drift.push(Drift {
                    field: "node".into(),
                    declared: want.clone(),
                    live: live.node.clone(),
                    key: None,
                });
            }
        }
        if vm.readonly && !row.protected {
            report.unprotected_readonly.push(vm.name.clone());
        }
        report.vms.push(row);
    }
    let known: Vec<VmId> = defs.all_vms().filter_map(|v| v.vmid).collect();
    report.unmanaged = inputs
        .cluster
        .vms
        .iter()
        .filter(|r| !known.contains(&r.vmid))
        .map(|r| Unmanaged {
            vmid: r.vmid,
            name: r.name.clone(),
            node: r.node.clone(),
            template: r.template,
        })
        .collect();
    report.capacity = capacity(defs, inputs.cluster);
    Ok(report)
}

/// Memory per node and disk per storage that declared-but-missing VMs need, against free.
fn capacity(defs: &Definitions, cluster: &Cluster) -> Vec<Capacity> {
    let mut mem: BTreeMap<String, u64> = BTreeMap::new();
    let mut disk: BTreeMap<(String, String), u64> = BTreeMap::new();
    for vm in &defs.managed {
        let present = vm
            .vmid
            .is_some_and(|id| cluster.vms.iter().any(|r| r.vmid == id));
        if present {
            continue;
        }
        let Some(node) = declared_node(vm, defs) else {
            continue;
        };
        *mem.entry(node.clone()).or_default() += vm.memory.unwrap_or(0);
        if let (Some(st), Some(b)) = (
            vm.storage.clone().or_else(|| defs.proxmox.storage.clone()),
            vm.disk.as_ref().and_then(|d| d.bytes().ok()),
        ) {
            *disk.entry((node, st)).or_default() += b;
        }
    }
    let mut out = Vec::new();
    for n in &cluster.nodes {
        let free = n.maxmem.saturating_sub(n.mem) >> 20;
        let need = mem.get(&n.node).copied().unwrap_or(0);
        out.push(Capacity {
            node: n.node.clone(),
            storage: None,
            declared_new: need,
            free,
            total: n.maxmem >> 20,
            fits: need <= free,
        });
    }
    for s in &cluster.storages {
        let need = disk
            .get(&(s.node.clone(), s.storage.clone()))
            .copied()
            .unwrap_or(0);
        let free = s.maxdisk.saturating_sub(s.disk);
        out.push(Capacity {
            node: s.node.clone(),
            storage: Some(s.storage.clone()),
            declared_new: need,
            free,
            total: s.maxdisk,
            fits: need <= free,
        });
    }
    out
}
