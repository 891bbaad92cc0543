//! The definition's values as Proxmox options, validated as strictly as Proxmox reads them:
//! net0, ipconfig0, tags, admin keys, and the template's boot disk and its size.

use super::PlanError;
use crate::model::{Definitions, Vm};
use crate::proxmox::VmConfig;

use sha2::{Digest, Sha256};

use super::{DEFAULT_BOOT_DISK, VMCTL_TAG};

pub(super) fn admin_keys(keys: &[String]) -> Result<Vec<String>, PlanError> {
    if keys.is_empty() {
        return Err(PlanError::NoAdminKeys);
    }
    keys.iter()
        .map(|k| {
            crate::keys::PublicKey::parse(k)
                .map(|_| k.trim().to_string())
                .map_err(|e| PlanError::BadAdminKey {
                    key: k.chars().take(40).collect(),
                    reason: e.to_string(),
                })
        })
        .collect()
}

pub(crate) type Invalid<'a> = dyn Fn(&'static str, &str, String) -> PlanError + 'a;

/// `virtio[=MAC],bridge=B[,tag=VLAN]`, from the VM's network, else `proxmox.bridge`.
pub(crate) fn net0(vm: &Vm, defs: &Definitions, invalid: &Invalid) -> Result<String, PlanError> {
    let n = &vm.network;
    let bridge = n
        .bridge
        .clone()
        .or_else(|| defs.proxmox.bridge.clone())
        .unwrap_or_else(|| "vmbr0".into());
    if !bridge
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        || bridge.is_empty()
    {
        return Err(invalid("bridge", &bridge, "not a bridge name".into()));
    }
    let mut s = match &n.mac {
        Some(mac) => {
            let ok = mac.len() == 17
                && mac.split(':').count() == 6
                && mac
                    .split(':')
                    .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
            if !ok {
                return Err(invalid(
                    "network.mac",
                    mac,
                    "write six hex pairs like `BC:24:11:00:01:10`".into(),
                ));
            }
            format!("virtio={}", mac.to_ascii_uppercase())
        }
        None => "virtio".to_string(),
    };
    s.push_str(&format!(",bridge={bridge}"));
    if let Some(vlan) = n.vlan {
        if !(1..=4094).contains(&vlan) {
            return Err(invalid(
                "network.vlan",
                &vlan.to_string(),
                "a VLAN tag is 1–4094".into(),
            ));
        }
        s.push_str(&format!(",tag={vlan}"));
    }
    Ok(s)
}

/// `ip=dhcp` or `ip=CIDR[,gw=GW]`.
pub(crate) fn ipconfig(vm: &Vm, invalid: &Invalid) -> Result<String, PlanError> {
    let n = &vm.network;
    match n.ip.as_deref() {
        None | Some("dhcp") => Ok("ip=dhcp".into()),
        Some(cidr) => {
            let (addr, prefix) = cidr.split_once('/').ok_or_else(|| {
                invalid(
                    "network.ip",
                    cidr,
                    "a static address needs its prefix, like `192.168.1.50/24`".into(),
                )
            })?;
            let ip: std::net::Ipv4Addr = addr
                .parse()
                .map_err(|_| invalid("network.ip", cidr, "not an IPv4 address".into()))?;
            match prefix.parse::<u8>() {
                Ok(p) if (1..=32).contains(&p) => {}
                _ => return Err(invalid("network.ip", cidr, "prefix is 1–32".into())),
            }
            let mut s = format!("ip={ip}/{prefix}");
            if let Some(gw) = &n.gateway {
                let gw: std::net::Ipv4Addr = gw
                    .parse()
                    .map_err(|_| invalid("network.gateway", gw, "not an IPv4 address".into()))?;
                s.push_str(&format!(",gw={gw}"));
            }
            Ok(s)
        }
    }
}

/// `vmctl` first, then the definition's tags; Proxmox allows `[a-z0-9_+.-]`.
pub(crate) fn tags(vm: &Vm, invalid: &Invalid) -> Result<Vec<String>, PlanError> {
    let mut out = vec![VMCTL_TAG.to_string()];
    for t in &vm.tags {
        let ok = !t.is_empty()
            && t.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'_' | b'+' | b'.' | b'-')
            });
        if !ok {
            return Err(invalid(
                "tags",
                t,
                "Proxmox tags are lowercase letters, digits and `_+.-`".into(),
            ));
        }
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// The disk the template boots from: the first disk of `boot: order=…`, else the first of
/// scsi0/virtio0/sata0 it has.
pub(crate) fn boot_disk_of(cfg: &VmConfig) -> String {
    let is_disk = |d: &str| {
        cfg.get(d)
            .is_some_and(|v| !v.contains("media=cdrom") && !v.contains("cloudinit"))
    };
    if let Some(order) = cfg.get("boot").and_then(|b| b.strip_prefix("order=")) {
        if let Some(d) = order.split(';').find(|d| is_disk(d)) {
            return d.to_string();
        }
    }
    ["scsi0", "virtio0", "sata0", "ide0"]
        .into_iter()
        .find(|d| is_disk(d))
        .unwrap_or(DEFAULT_BOOT_DISK)
        .to_string()
}

/// `size=20G` of a disk's config value, in GiB (rounded down; `M` and `T` converted).
pub(super) fn disk_size_gib(value: &str) -> Option<u64> {
    let size = value.split(',').find_map(|p| p.strip_prefix("size="))?;
    let (num, unit) = size.split_at(size.len().checked_sub(1)?);
    let n: u64 = num.parse().ok()?;
    match unit {
        "G" => Some(n),
        "T" => Some(n * 1024),
        "M" => Some(n / 1024),
        _ => None,
    }
}

/// `sha256:…` over the definition's fields provisioning acts on, so a later run can tell the
/// VM was made from another definition.
pub fn definition_hash(vm: &Vm) -> String {
    let n = &vm.network;
    let canonical = serde_json::json!({
        "name": vm.name, "vmid": vm.vmid, "cores": vm.cores, "memory": vm.memory,
        "disk": vm.disk.as_deref(), "storage": vm.storage, "node": vm.node,
        "nixosConfig": vm.nixos_config, "hostname": vm.hostname, "tags": vm.tags,
        "network": { "bridge": n.bridge, "vlan": n.vlan, "ip": n.ip, "gateway": n.gateway, "mac": n.mac },
    });
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{}", &hex[..16])
}

/// The installer's argv: `nixos-anywhere --flake .#CONFIG --extra-files DIR [-i KEY]
/// --ssh-port PORT --target-host root@IP`.
pub fn install_argv(
    config: &str,
    dir: &str,
    ip: &str,
    port: &str,
    identity: Option<&str>,
) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "nixos-anywhere".into(),
        "--flake".into(),
        format!(".#{config}"),
        "--extra-files".into(),
        dir.into(),
    ];
    if let Some(i) = identity {
        a.push("-i".into());
        a.push(i.into());
    }
    // The port vmctl waited on: an ssh_config entry for the address is not the installer's.
    a.push("--ssh-port".into());
    a.push(port.into());
    a.push("--target-host".into());
    a.push(format!("root@{ip}"));
    a
}
