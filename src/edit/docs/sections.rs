//! The generated sections of machines.md: inventory, template, VMID ranges and one section
//! per VM, rendered from definitions.nix with values that cannot break a marker or heading.

use std::fmt::Write as _;

use super::Section;
use crate::model::{Definitions, Vm, VmKind};

/// Every section for `defs`, in canonical order.
pub fn sections(defs: &Definitions) -> Vec<Section> {
    let mut out = vec![
        Section {
            name: "inventory".into(),
            body: inventory(defs),
        },
        Section {
            name: "template".into(),
            body: template(defs),
        },
        Section {
            name: "vmid-ranges".into(),
            body: vmid_ranges(defs),
        },
    ];
    for vm in vms_by_vmid(defs) {
        if vm.kind != VmKind::Template {
            out.push(Section {
                name: format!("vm-{}", vm.name),
                body: vm_section(defs, vm),
            });
        }
    }
    out
}

pub(super) fn vms_by_vmid(defs: &Definitions) -> Vec<&Vm> {
    let mut vms: Vec<&Vm> = defs.all_vms().collect();
    vms.sort_by(|a, b| {
        (a.vmid.is_none(), a.vmid, &a.name).cmp(&(b.vmid.is_none(), b.vmid, &b.name))
    });
    vms
}

/// A value on one generated line: line breaks become spaces (a newline in a purpose must not
/// start a heading or a marker line) and `<!--` is written as `&lt;!--` (rendered the same),
/// so no value can open an HTML comment or forge a `vmctl:` marker.
pub(super) fn inline(s: &str) -> String {
    s.replace("\r\n", " ")
        .replace(['\n', '\r'], " ")
        .replace("<!--", "&lt;!--")
}

/// A paragraph of its own (the template's description): lines are kept, but none may be a
/// marker or a heading of the generated section.
pub(super) fn paragraph(s: &str) -> String {
    s.replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace("<!--", "&lt;!--")
        .lines()
        .map(|l| {
            if l.trim_start().starts_with('#') {
                format!("\\{}", l.trim_start())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a VM name can be part of a marker and a heading as it is.
pub(super) fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Escapes text for a Markdown table cell.
pub(super) fn cell(s: &str) -> String {
    inline(&s.replace('|', "\\|"))
}

pub(super) fn memory(mib: u64) -> String {
    if mib >= 1024 && mib.is_multiple_of(1024) {
        format!("{} GiB", mib / 1024)
    } else {
        format!("{mib} MiB")
    }
}

pub(super) fn kind(vm: &Vm) -> String {
    if vm.readonly {
        format!("{} (readonly)", vm.kind.as_str())
    } else {
        vm.kind.as_str().to_string()
    }
}

pub(super) fn role(vm: &Vm) -> Option<&str> {
    vm.purpose.as_deref().or(vm.description.as_deref())
}

const DASH: &str = "—";

pub(super) fn inventory(defs: &Definitions) -> String {
    let mut s = String::from("## Inventory\n\n");
    s.push_str("| VMID | Name | Role | Cores | Memory | Disk | Node | Kind |\n");
    s.push_str("|---:|---|---|---:|---:|---|---|---|\n");
    for vm in vms_by_vmid(defs) {
        let node = vm.node.as_deref().or(defs.proxmox.node.as_deref());
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            vm.vmid.map_or(DASH.to_string(), |v| v.to_string()),
            cell(&vm.name),
            role(vm).map_or(DASH.to_string(), cell),
            vm.cores.map_or(DASH.to_string(), |c| c.to_string()),
            vm.memory.map_or(DASH.to_string(), memory),
            vm.disk.as_deref().map_or(DASH.to_string(), cell),
            node.map_or(DASH.to_string(), cell),
            kind(vm),
        );
    }
    s
}

pub(super) fn template(defs: &Definitions) -> String {
    let mut s = String::from("## Template\n\n");
    match &defs.template {
        None => s.push_str("No template is defined in `vms/definitions.nix`.\n"),
        Some(t) => {
            let _ = write!(
                s,
                "Managed VMs are cloned from `{}`",
                inline(&t.name.replace('`', "'"))
            );
            if let Some(id) = t.vmid {
                let _ = write!(s, " (VMID {id})");
            }
            s.push_str(".\n");
            if let Some(d) = role(t) {
                let _ = write!(s, "\n{}\n", paragraph(d));
            }
        }
    }
    s
}

/// The smallest VMID of `start..=end` no VM of `defs` uses.
pub fn next_free_vmid(defs: &Definitions, start: u32, end: u32) -> Option<u32> {
    let used: std::collections::BTreeSet<u32> = defs.all_vms().filter_map(|v| v.vmid).collect();
    (start..=end).find(|id| !used.contains(id))
}

pub(super) fn vmid_ranges(defs: &Definitions) -> String {
    let mut s = String::from("## VMID ranges\n\n");
    if defs.vmid_ranges.is_empty() {
        s.push_str("No `vmidRanges` are defined in `vms/definitions.nix`.\n");
        return s;
    }
    s.push_str("| Range | VMIDs | In use | Next free | Description |\n");
    s.push_str("|---|---|---:|---:|---|\n");
    let mut ranges: Vec<_> = defs.vmid_ranges.iter().collect();
    ranges.sort_by(|a, b| (a.start, &a.name).cmp(&(b.start, &b.name)));
    for r in ranges {
        let used = defs
            .all_vms()
            .filter_map(|v| v.vmid)
            .filter(|id| (r.start..=r.end).contains(id))
            .count();
        let _ = writeln!(
            s,
            "| {} | {}–{} | {} | {} | {} |",
            cell(&r.name),
            r.start,
            r.end,
            used,
            next_free_vmid(defs, r.start, r.end).map_or("full".to_string(), |v| v.to_string()),
            r.description.as_deref().map_or(DASH.to_string(), cell),
        );
    }
    s
}

pub(super) fn vm_section(defs: &Definitions, vm: &Vm) -> String {
    let mut s = format!("### {}", inline(&vm.name));
    if let Some(id) = vm.vmid {
        let _ = write!(s, " (VMID {id})");
    }
    s.push_str("\n\n");
    let mut line = |label: &str, value: String| {
        let _ = writeln!(s, "- **{label}**: {}", inline(&value));
    };
    line("Kind", kind(vm));
    if let Some(p) = &vm.purpose {
        line("Purpose", p.clone());
    }
    if let Some(st) = &vm.status {
        line("Status", st.clone());
    }
    if !vm.services.is_empty() {
        line("Services", vm.services.join(", "));
    }
    let mut res = Vec::new();
    if let Some(c) = vm.cores {
        res.push(format!("{c} cores"));
    }
    if let Some(m) = vm.memory {
        res.push(format!("{} memory", memory(m)));
    }
    if let Some(d) = &vm.disk {
        res.push(format!("{d} disk"));
    }
    if let Some(st) = &vm.storage {
        res.push(format!("storage `{st}`"));
    }
    if let Some(n) = vm.node.as_deref().or(defs.proxmox.node.as_deref()) {
        res.push(format!("node `{n}`"));
    }
    if !res.is_empty() {
        line("Resources", res.join(", "));
    }
    let n = &vm.network;
    let mut net = Vec::new();
    // Managed VMs get the fleet's default bridge; for imported VMs only what is written.
    let default_bridge = (vm.kind == VmKind::Managed)
        .then_some(defs.proxmox.bridge.as_deref())
        .flatten();
    if let Some(b) = n.bridge.as_deref().or(default_bridge) {
        net.push(format!("bridge `{b}`"));
    }
    if let Some(v) = n.vlan {
        net.push(format!("VLAN {v}"));
    }
    if let Some(ip) = &n.ip {
        net.push(format!("IP {ip}"));
    }
    if let Some(gw) = &n.gateway {
        net.push(format!("gateway {gw}"));
    }
    if let Some(mac) = &n.mac {
        net.push(format!("MAC {mac}"));
    }
    if vm.kind == VmKind::Managed || !net.is_empty() {
        if vm.kind == VmKind::Managed && n.ip.is_none() {
            net.push("IP dhcp".into());
        }
        line("Network", net.join(", "));
    }
    let hostname = vm.hostname.as_deref().unwrap_or(&vm.name);
    let mut reach = format!("hostname `{hostname}`");
    if let Some(a) = &vm.ssh_alias {
        let _ = write!(reach, ", SSH alias `{a}` (`ssh {a}`)");
    }
    line("Reach", reach);
    line(
        "NixOS configuration",
        format!(
            "`{}/{}/`",
            defs.settings.hosts_dir.display(),
            vm.config_name()
        ),
    );
    if !vm.tags.is_empty() {
        line("Tags", vm.tags.join(", "));
    }
    if let (Some(d), Some(_)) = (&vm.description, &vm.purpose) {
        line("Notes", d.replace('\n', " "));
    }
    s
}
