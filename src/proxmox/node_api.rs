//! A cluster's VMs through the API path of the node that holds each one.
//!
//! `qm` acts only on the VMs of the node it runs on; `pvesh` reaches a VM on any node through
//! `/nodes/NODE/qemu/ID/…`, which Proxmox proxies to that node. So one SSH connection to one
//! node serves the whole cluster. Config changes carry the `digest` read in the same run:
//! Proxmox refuses them ("detected modified configuration") when the config changed since.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::parse::ParseError;
use super::{VmId, VmResource};

fn s(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

fn vm_path(node: &str, vmid: VmId, rest: &str) -> String {
    format!("/nodes/{node}/qemu/{vmid}/{rest}")
}

/// Everything of the cluster in one read: nodes, storages (per node), VMs.
pub fn cluster_all() -> Vec<String> {
    s(&[
        "pvesh",
        "get",
        "/cluster/resources",
        "--output-format",
        "json",
    ])
}

/// A VM's configuration (pending values applied) with its digest, from its node.
pub fn config(node: &str, vmid: VmId) -> Vec<String> {
    s(&[
        "pvesh",
        "get",
        &vm_path(node, vmid, "config"),
        "--output-format",
        "json",
    ])
}

/// A VM's current values and the changes pending until its next start.
pub fn pending(node: &str, vmid: VmId) -> Vec<String> {
    s(&[
        "pvesh",
        "get",
        &vm_path(node, vmid, "pending"),
        "--output-format",
        "json",
    ])
}

/// A digest-guarded config update.
pub fn set(node: &str, vmid: VmId, digest: &str, options: &[(String, String)]) -> Vec<String> {
    let mut a = s(&[
        "pvesh",
        "set",
        &vm_path(node, vmid, "config"),
        "--digest",
        digest,
    ]);
    for (k, v) in options {
        a.push(format!("--{k}"));
        a.push(v.clone());
    }
    a
}

/// A digest-guarded disk resize (Proxmox only grows disks).
pub fn resize(node: &str, vmid: VmId, digest: &str, disk: &str, size: &str) -> Vec<String> {
    s(&[
        "pvesh",
        "set",
        &vm_path(node, vmid, "resize"),
        "--digest",
        digest,
        "--disk",
        disk,
        "--size",
        size,
    ])
}

/// Reboots a VM through its node, so its pending changes take effect.
pub fn reboot(node: &str, vmid: VmId) -> Vec<String> {
    s(&["pvesh", "create", &vm_path(node, vmid, "status/reboot")])
}

/// A node of `/cluster/resources`: memory in bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeCapacity {
    pub node: String,
    pub status: String,
    pub maxmem: u64,
    pub mem: u64,
}

/// A storage as one node sees it (a shared storage appears once per node).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StorageCapacity {
    pub node: String,
    pub storage: String,
    /// Bytes.
    pub maxdisk: u64,
    pub disk: u64,
    pub shared: bool,
}

/// The one cluster-wide read.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cluster {
    pub vms: Vec<VmResource>,
    pub nodes: Vec<NodeCapacity>,
    pub storages: Vec<StorageCapacity>,
}

/// A VM's configuration as its node's API returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LiveConfig {
    pub digest: String,
    pub entries: BTreeMap<String, String>,
}

impl LiveConfig {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }
}

fn err(command: &'static str, detail: impl Into<String>) -> ParseError {
    ParseError {
        command,
        detail: detail.into(),
    }
}

/// `pvesh get /cluster/resources --output-format json` (no type: every kind).
pub fn parse_cluster(json: &str) -> Result<Cluster, ParseError> {
    const CMD: &str = "pvesh get /cluster/resources";
    let vms = super::parse::cluster_resources(json)?;
    let value: Value = serde_json::from_str(json).map_err(|e| err(CMD, e.to_string()))?;
    let mut out = Cluster {
        vms,
        ..Cluster::default()
    };
    for item in value.as_array().into_iter().flatten() {
        let text = |k: &str| {
            item.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let num = |k: &str| item.get(k).and_then(Value::as_u64).unwrap_or(0);
        match item.get("type").and_then(Value::as_str) {
            Some("node") => out.nodes.push(NodeCapacity {
                node: text("node"),
                status: text("status"),
                maxmem: num("maxmem"),
                mem: num("mem"),
            }),
            Some("storage") => out.storages.push(StorageCapacity {
                node: text("node"),
                storage: text("storage"),
                maxdisk: num("maxdisk"),
                disk: num("disk"),
                shared: num("shared") == 1,
            }),
            _ => {}
        }
    }
    Ok(out)
}

/// `pvesh get /nodes/N/qemu/ID/config --output-format json`: values as text, the digest apart.
pub fn parse_config(json: &str) -> Result<LiveConfig, ParseError> {
    const CMD: &str = "pvesh get /nodes/NODE/qemu/ID/config";
    let value: Value = serde_json::from_str(json).map_err(|e| err(CMD, e.to_string()))?;
    let obj = value
        .as_object()
        .ok_or_else(|| err(CMD, "expected a JSON object"))?;
    let mut out = LiveConfig::default();
    for (k, v) in obj {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => (if *b { "1" } else { "0" }).to_string(),
            _ => continue,
        };
        if k == "digest" {
            out.digest = text;
        } else {
            out.entries.insert(k.clone(), text);
        }
    }
    if out.digest.is_empty() {
        return Err(err(CMD, "no `digest` in the answer"));
    }
    Ok(out)
}

/// `pvesh get /nodes/N/qemu/ID/pending`: the keys whose new value waits for a restart, with
/// (current, pending).
pub fn parse_pending(json: &str) -> Result<Vec<(String, Option<String>, String)>, ParseError> {
    const CMD: &str = "pvesh get /nodes/NODE/qemu/ID/pending";
    let value: Value = serde_json::from_str(json).map_err(|e| err(CMD, e.to_string()))?;
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    Ok(value
        .as_array()
        .ok_or_else(|| err(CMD, "expected a JSON array"))?
        .iter()
        .filter_map(|e| {
            let pending = text(e.get("pending"))?;
            Some((text(e.get("key"))?, text(e.get("value")), pending))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json_keeps_the_digest_apart_and_numbers_as_text() {
        let c = parse_config(r#"{"cores":2,"name":"a","digest":"ab12"}"#).unwrap();
        assert_eq!(c.digest, "ab12");
        assert_eq!(c.get("cores"), Some("2"));
        assert!(parse_config(r#"{"cores":2}"#).is_err());
    }

    #[test]
    fn set_carries_the_digest_first() {
        let a = set("pve2", 120, "d1", &[("cores".into(), "4".into())]);
        assert_eq!(
            crate::proxmox::command_line(&a),
            "pvesh set /nodes/pve2/qemu/120/config --digest d1 --cores 4"
        );
    }
}
