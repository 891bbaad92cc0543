//! `vmctl apply`: from the drift `vmctl status` finds, the digest-guarded changes that bring a
//! managed VM's live configuration back to its definition. Pure.
//!
//! Disks only grow: a declared size below the live one refuses the whole apply before anything
//! is sent. Readonly VMs are never planned. The config update carries the digest read in the
//! same run, so a change made meanwhile (the web UI) is refused by Proxmox, not overwritten.

use serde::Serialize;

use crate::model::Definitions;
use crate::plan::status::{normalize, Drift, StatusReport};
use crate::proxmox::node_api::LiveConfig;
use crate::proxmox::VmId;

/// The changes for one VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmApply {
    pub name: String,
    pub vmid: VmId,
    pub node: String,
    pub digest: String,
    /// Options of the one digest-guarded config update, in the API's form.
    pub set: Vec<(String, String)>,
    /// (disk, new size): grown after the update, guarded by the digest read again then.
    pub grow: Vec<(String, String, u64)>,
    /// Drift apply cannot fix here (the node: `vmctl ops migrate`).
    pub notes: Vec<String>,
}

/// Why nothing is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyPlanError {
    #[error(
        "{name}: the declared disk {disk} size {declared} is smaller than the live {live}; \
         Proxmox disks only grow, so nothing was changed; declare {live} or more in \
         vms/definitions.nix"
    )]
    Shrink {
        name: String,
        disk: String,
        declared: String,
        live: String,
    },
    #[error("{0}")]
    Select(String),
    #[error(
        "{name} is readonly in vms/definitions.nix: vmctl never changes it; remove it from the \
         command line (`--all` skips it)"
    )]
    Readonly { name: String },
    #[error("{name}: cannot compare it with its definition: {reason}; fix the definition (`vmctl lint`)")]
    Problem { name: String, reason: String },
}

/// URL-encoding of the API's `sshkeys` (what `qm set --sshkeys FILE` does to the file).
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn value_for(d: &Drift, cfg: &LiveConfig, raw_keys: &str) -> String {
    match d.field.as_str() {
        "sshkeys" => url_encode(raw_keys),
        "net0" => {
            // A net0 without a MAC makes Proxmox pick a new one: keep the live MAC unless the
            // definition declares one.
            let declared = &d.declared;
            // The MAC exactly as the live config writes it.
            let live_mac = cfg.get("net0").and_then(|n| {
                n.split(',').find_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    let model = normalize::net(p).contains("model=");
                    ((model || k == "macaddr") && v.len() == 17).then(|| v.to_string())
                })
            });
            match (normalize::net(declared).contains("macaddr="), live_mac) {
                (false, Some(mac)) => {
                    let (model, rest) = declared.split_once(',').unwrap_or((declared, ""));
                    let model = model.split('=').next().unwrap_or(model);
                    if rest.is_empty() {
                        format!("{model}={mac}")
                    } else {
                        format!("{model}={mac},{rest}")
                    }
                }
                _ => declared.clone(),
            }
        }
        _ => d.declared.clone(),
    }
}

/// The plan for the VMs `names` selects (every managed VM with `all`).
pub fn plan(
    defs: &Definitions,
    report: &StatusReport,
    configs: &std::collections::BTreeMap<VmId, LiveConfig>,
    admin_keys: &[String],
    names: &[String],
) -> Result<Vec<VmApply>, ApplyPlanError> {
    let mut out = Vec::new();
    for row in &report.vms {
        let vm = defs.all_vms().find(|v| v.name == row.name);
        let readonly = row.readonly || vm.is_some_and(|v| v.readonly);
        if readonly || row.kind != "managed" {
            if names.contains(&row.name) {
                return Err(ApplyPlanError::Readonly {
                    name: row.name.clone(),
                });
            }
            continue;
        }
        if let Some(reason) = &row.problem {
            return Err(ApplyPlanError::Problem {
                name: row.name.clone(),
                reason: reason.clone(),
            });
        }
        let (Some(node), Some(cfg)) = (&row.node, configs.get(&row.vmid)) else {
            continue;
        };
        let mut a = VmApply {
            name: row.name.clone(),
            vmid: row.vmid,
            node: node.clone(),
            digest: cfg.digest.clone(),
            set: Vec::new(),
            grow: Vec::new(),
            notes: Vec::new(),
        };
        let mut raw_keys = admin_keys.join("\n");
        raw_keys.push('\n');
        for d in &row.drift {
            match (d.field.as_str(), &d.key) {
                ("disk", Some(disk)) => {
                    let want = normalize::size_bytes(&d.declared).unwrap_or(0);
                    let have = normalize::size_bytes(&d.live).unwrap_or(0);
                    if want < have {
                        return Err(ApplyPlanError::Shrink {
                            name: row.name.clone(),
                            disk: disk.clone(),
                            declared: d.declared.clone(),
                            live: d.live.clone(),
                        });
                    }
                    a.grow.push((disk.clone(), d.declared.clone(), have));
                }
                (_, Some(key)) => a.set.push((key.clone(), value_for(d, cfg, &raw_keys))),
                (field, None) => a.notes.push(format!(
                    "{}: {field} is {} on the cluster, {} in the definition; apply does not \
                     move VMs (`vmctl ops migrate {} {}`)",
                    row.name, d.live, d.declared, row.vmid, d.declared
                )),
            }
        }
        if !a.set.is_empty() || !a.grow.is_empty() || !a.notes.is_empty() {
            out.push(a);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Vm, VmKind};
    use crate::plan::status::VmReport;
    use std::collections::BTreeMap;

    fn row(name: &str, readonly: bool, drift: Vec<Drift>) -> VmReport {
        VmReport {
            name: name.into(),
            kind: "managed",
            vmid: 110,
            readonly,
            declared_node: Some("prom".into()),
            node: Some("pve2".into()),
            power: Some("running".into()),
            protected: false,
            drift,
            pending: vec![],
            problem: None,
        }
    }

    fn d(field: &str, declared: &str, live: &str, key: Option<&str>) -> Drift {
        Drift {
            field: field.into(),
            declared: declared.into(),
            live: live.into(),
            key: key.map(str::to_string),
        }
    }

    fn inputs(readonly: bool) -> (Definitions, BTreeMap<VmId, LiveConfig>) {
        let defs = Definitions {
            managed: vec![Vm {
                readonly,
                ..Vm::new("web", VmKind::Managed, Some(110))
            }],
            ..Default::default()
        };
        let mut cfg = LiveConfig {
            digest: "d0".into(),
            ..Default::default()
        };
        cfg.entries.insert(
            "net0".into(),
            "virtio=BC:24:11:00:00:6E,bridge=vmbr9".into(),
        );
        (defs, [(110, cfg)].into_iter().collect())
    }

    #[test]
    fn net0_keeps_the_live_mac_and_the_node_is_a_note_on_the_vms_node() {
        let (defs, configs) = inputs(false);
        let report = StatusReport {
            vms: vec![row(
                "web",
                false,
                vec![
                    d("net0", "virtio,bridge=vmbr0", "x", Some("net0")),
                    d("node", "prom", "pve2", None),
                    d("disk", "30G", "20G", Some("scsi0")),
                ],
            )],
            ..Default::default()
        };
        let p = plan(&defs, &report, &configs, &[], &[]).unwrap();
        assert_eq!(p[0].node, "pve2");
        assert_eq!(p[0].digest, "d0");
        assert_eq!(
            p[0].set,
            vec![(
                "net0".into(),
                "virtio=BC:24:11:00:00:6E,bridge=vmbr0".into()
            )]
        );
        assert_eq!(p[0].grow, vec![("scsi0".into(), "30G".into(), 20 << 30)]);
        assert!(p[0].notes[0].contains("ops migrate"), "{:?}", p[0].notes);
    }

    #[test]
    fn a_shrink_refuses_everything_and_readonly_vms_are_never_planned() {
        let (defs, configs) = inputs(false);
        let report = StatusReport {
            vms: vec![row(
                "web",
                false,
                vec![d("disk", "10G", "20G", Some("scsi0"))],
            )],
            ..Default::default()
        };
        let e = plan(&defs, &report, &configs, &[], &[]).unwrap_err();
        assert!(
            e.to_string().contains("10G") && e.to_string().contains("20G"),
            "{e}"
        );
        let (defs, configs) = inputs(true);
        let report = StatusReport {
            vms: vec![row("web", true, vec![d("cores", "2", "4", Some("cores"))])],
            ..Default::default()
        };
        assert_eq!(plan(&defs, &report, &configs, &[], &[]).unwrap(), vec![]);
        assert!(matches!(
            plan(&defs, &report, &configs, &[], &["web".into()]),
            Err(ApplyPlanError::Readonly { .. })
        ));
    }
}
