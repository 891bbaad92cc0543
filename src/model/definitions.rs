//! Reading `vms/definitions.nix` (evaluated) into [`Definitions`].

use std::path::PathBuf;

use super::read::{Ctx, Fields, Issue, Ty};
use super::{Definitions, FenceFacts, Given, Network, Proxmox, Settings, Vm, VmKind, VmidRange};
use crate::syntax::{AttrSet, Span, Value, ValueKind};

pub const TOP_FIELDS: &[&str] = &[
    "proxmox",
    "template",
    "imported",
    "managed",
    "vmidRanges",
    "settings",
];
pub const PROXMOX_FIELDS: &[&str] = &[
    "host",
    "node",
    "user",
    "port",
    "storage",
    "defaultStorage",
    "bridge",
    "hostKey",
    "sshAlias",
    "description",
];
pub const TEMPLATE_FIELDS: &[&str] = &[
    "vmid",
    "name",
    "node",
    "storage",
    "description",
    "notes",
    "os",
    "cores",
    "memory",
    "disk",
    "readonly",
    "purpose",
];
pub const MANAGED_FIELDS: &[&str] = &[
    "vmid",
    "cores",
    "memory",
    "disk",
    "storage",
    "node",
    "nixosConfig",
    "purpose",
    "services",
    "tags",
    "network",
    "description",
    "hostname",
    "sshAlias",
    "notes",
    "status",
    "monitoring",
    "hardware",
    "owner",
    "pool",
    "onboot",
    "protection",
    "sockets",
    "cpuType",
    "balloon",
    "full",
    "backup",
    "readonly",
    "sopsRules",
];
pub const NETWORK_FIELDS: &[&str] = &[
    "bridge",
    "vlan",
    "ip",
    "gateway",
    "mac",
    "nameservers",
    "model",
    "firewall",
];
pub const RANGE_FIELDS: &[&str] = &["start", "end", "description"];
pub const SETTINGS_FIELDS: &[&str] = &[
    "hostsFile",
    "sopsConfig",
    "secretsDir",
    "hostsDir",
    "docsFile",
    "templateDir",
];
/// Resource fields an imported VM may keep flat or under `specs`.
pub const RESOURCE_FIELDS: &[&str] = &["cores", "memory", "disk", "storage", "node"];

/// The result of reading definitions.nix.
#[derive(Debug, Clone, Default)]
pub struct ReadDefinitions {
    pub definitions: Definitions,
    pub issues: Vec<Issue>,
}

fn int_u32(v: Option<&Value>) -> Option<u32> {
    v.and_then(|v| v.as_int())
        .and_then(|i| u32::try_from(i).ok())
}

fn int_u64(v: Option<&Value>) -> Option<u64> {
    v.and_then(|v| v.as_int())
        .and_then(|i| u64::try_from(i).ok())
}

/// Reads the evaluated value of definitions.nix.
pub fn read_definitions(value: &Value) -> ReadDefinitions {
    let mut issues = Vec::new();
    let mut defs = Definitions::default();
    let top = match &value.kind {
        ValueKind::Attrs(a) => a,
        ValueKind::Dynamic(reason) => {
            issues.push(Issue::Dynamic {
                span: value.span,
                field: "definitions".into(),
                context: "definitions.nix".into(),
                reason: reason.clone(),
            });
            return ReadDefinitions {
                definitions: defs,
                issues,
            };
        }
        ValueKind::Error => {
            return ReadDefinitions {
                definitions: defs,
                issues,
            }
        }
        _ => {
            issues.push(Issue::Unsupported {
                span: value.span,
                message: format!(
                    "definitions.nix must evaluate to an attribute set `{{ proxmox = …; managed = …; }}`, not {}",
                    value.type_name()
                ),
            });
            return ReadDefinitions {
                definitions: defs,
                issues,
            };
        }
    };
    let f = Fields::new(top, value.span, "definitions.nix");
    f.unknown_fields(TOP_FIELDS, &mut issues);

    match f.required("proxmox", Ty::Attrs, &mut issues) {
        Some(p) => {
            defs.proxmox = read_proxmox(
                p,
                top.entry("proxmox").map(|e| e.key_span).unwrap_or(p.span),
                &mut issues,
            )
        }
        None => {
            defs.proxmox = Proxmox {
                user: "root".into(),
                port: 22,
                ..Proxmox::default()
            }
        }
    }
    if let Some(t) = f.get("template", Ty::Attrs, &mut issues) {
        defs.template = Some(read_template(
            t,
            top.entry("template").map(|e| e.key_span).unwrap_or(t.span),
            &mut issues,
        ));
    }
    if let Some(imp) = f.get("imported", Ty::Attrs, &mut issues) {
        let set = imp.as_attrs().expect("checked");
        for (name, entry) in set.iter() {
            if let Some(vm) = read_vm(
                name,
                entry.key_span,
                &entry.value,
                VmKind::Imported,
                &mut issues,
            ) {
                defs.imported.push(vm);
            }
        }
    }
    if let Some(m) = f.get("managed", Ty::Attrs, &mut issues) {
        let set = m.as_attrs().expect("checked");
        for (name, entry) in set.iter() {
            if let Some(vm) = read_vm(
                name,
                entry.key_span,
                &entry.value,
                VmKind::Managed,
                &mut issues,
            ) {
                defs.managed.push(vm);
            }
        }
    }
    if let Some(r) = f.get("vmidRanges", Ty::Attrs, &mut issues) {
        let set = r.as_attrs().expect("checked");
        for (name, entry) in set.iter() {
            let ctx = Ctx::named("VMID range `", name, "`");
            let Some(rs) = attrs_of(&entry.value, "vmidRanges", ctx, &mut issues) else {
                continue;
            };
            let rf = Fields::new(rs, entry.key_span, ctx);
            rf.unknown_fields(RANGE_FIELDS, &mut issues);
            let start = rf
                .required("start", Ty::Int, &mut issues)
                .and_then(Value::as_int);
            let end = rf
                .required("end", Ty::Int, &mut issues)
                .and_then(Value::as_int);
            let description = rf.str("description", &mut issues);
            if let (Some(start), Some(end)) = (start, end) {
                let (Ok(start), Ok(end)) = (u32::try_from(start), u32::try_from(end)) else {
                    continue;
                };
                defs.vmid_ranges.push(VmidRange {
                    name: name.clone(),
                    start,
                    end,
                    description,
                    range: entry.key_span.range,
                });
            }
        }
    }
    if let Some(s) = f.get("settings", Ty::Attrs, &mut issues) {
        defs.settings = read_settings(s, &mut issues);
    }
    defs.undetermined = undetermined_vms(top);
    ReadDefinitions {
        definitions: defs,
        issues,
    }
}

fn attrs_of<'a>(
    v: &'a Value,
    field: &str,
    ctx: Ctx<'_>,
    issues: &mut Vec<Issue>,
) -> Option<&'a AttrSet> {
    match &v.kind {
        ValueKind::Attrs(a) => Some(a),
        ValueKind::Dynamic(reason) => {
            issues.push(Issue::Dynamic {
                span: v.span,
                field: field.into(),
                context: ctx.render(),
                reason: reason.clone(),
            });
            None
        }
        ValueKind::Error => None,
        _ => {
            issues.push(Issue::WrongType {
                span: v.span,
                field: field.into(),
                context: ctx.render(),
                expected: Ty::Attrs.describe(),
                found: v.type_name(),
            });
            None
        }
    }
}

fn read_proxmox(v: &Value, key: Span, issues: &mut Vec<Issue>) -> Proxmox {
    let set = v.as_attrs().expect("checked");
    let f = Fields::new(set, key, "proxmox");
    f.unknown_fields(PROXMOX_FIELDS, issues);
    let port_v = f.get("port", Ty::Int, issues);
    // An out-of-range port is an error, never a silent 22: vmctl would reach another service.
    let port = port_v.and_then(|v| {
        let p = v
            .as_int()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0);
        if p.is_none() {
            issues.push(Issue::WrongType {
                span: v.span,
                field: "port".into(),
                context: "proxmox".into(),
                expected: "a port number from 1 to 65535",
                found: "an integer out of range",
            });
        }
        p
    });
    Proxmox {
        host: f
            .required("host", Ty::Str, issues)
            .and_then(Value::as_str)
            .map(str::to_string),
        node: f.str("node", issues),
        user: f.str("user", issues).unwrap_or_else(|| "root".into()),
        port: port.unwrap_or(22),
        storage: f
            .str("storage", issues)
            .or_else(|| f.str("defaultStorage", issues)),
        bridge: f.str("bridge", issues),
        host_key: f.str("hostKey", issues),
    }
}

fn read_template(v: &Value, key: Span, issues: &mut Vec<Issue>) -> Vm {
    let set = v.as_attrs().expect("checked");
    let f = Fields::new(set, key, "template");
    f.unknown_fields(TEMPLATE_FIELDS, issues);
    let vmid_v = f.required("vmid", Ty::Int, issues);
    let name = f
        .required("name", Ty::Str, issues)
        .and_then(Value::as_str)
        .unwrap_or("template")
        .to_string();
    Vm {
        name,
        kind: VmKind::Template,
        vmid: int_u32(vmid_v),
        readonly: f
            .get("readonly", Ty::Bool, issues)
            .and_then(Value::as_bool)
            .unwrap_or(false),
        cores: int_u32(f.get("cores", Ty::Int, issues)),
        memory: int_u64(f.get("memory", Ty::Int, issues)),
        disk: f.str("disk", issues),
        storage: f.str("storage", issues),
        node: f.str("node", issues),
        nixos_config: None,
        hostname: None,
        ssh_alias: None,
        purpose: f.str("purpose", issues),
        description: f.str("description", issues),
        status: None,
        services: Vec::new(),
        tags: Vec::new(),
        network: Network::default(),
        sops_rules: Vec::new(),
        name_range: set
            .entry("name")
            .map(|e| e.value.span.range)
            .unwrap_or(v.span.range),
        vmid_range: vmid_v.map(|v| v.span.range),
        fence: fence_facts(set),
    }
}

fn read_vm(name: &str, key: Span, v: &Value, kind: VmKind, issues: &mut Vec<Issue>) -> Option<Vm> {
    let prefix = match kind {
        VmKind::Managed => "managed VM `",
        VmKind::Imported => "imported VM `",
        VmKind::Template => "template VM `",
    };
    let ctx = Ctx::named(prefix, name, "`");
    let set = attrs_of(v, name, ctx, issues)?;
    let f = Fields::new(set, key, ctx);
    if kind == VmKind::Managed {
        f.unknown_fields(MANAGED_FIELDS, issues);
    }
    let vmid_v = f.required("vmid", Ty::Int, issues);
    let (cores, memory, disk, storage, node);
    if kind == VmKind::Managed {
        cores = int_u32(f.required("cores", Ty::Int, issues));
        memory = int_u64(f.required("memory", Ty::Int, issues));
        disk = f
            .required("disk", Ty::Str, issues)
            .and_then(Value::as_str)
            .map(str::to_string);
        storage = f.str("storage", issues);
        node = f.str("node", issues);
    } else {
        // Imported VMs document their resources flat or under `specs`.
        let specs = f.get("specs", Ty::Attrs, issues).and_then(Value::as_attrs);
        let sf = specs.map(|s| {
            Fields::new(
                s,
                set.get("specs").expect("present").span,
                Ctx::named(prefix, name, "` specs"),
            )
        });
        let pick_int = |field: &str, issues: &mut Vec<Issue>| {
            f.get(field, Ty::Int, issues)
                .or_else(|| sf.as_ref().and_then(|s| s.get(field, Ty::Int, issues)))
                .and_then(Value::as_int)
        };
        cores = pick_int("cores", issues).and_then(|i| u32::try_from(i).ok());
        memory = pick_int("memory", issues).and_then(|i| u64::try_from(i).ok());
        let pick_str = |field: &str, issues: &mut Vec<Issue>| {
            f.get(field, Ty::Str, issues)
                .or_else(|| sf.as_ref().and_then(|s| s.get(field, Ty::Str, issues)))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        disk = pick_str("disk", issues);
        storage = pick_str("storage", issues);
        node = pick_str("node", issues);
    }
    let network = match f.get("network", Ty::Attrs, issues) {
        Some(nv) => {
            let ns = nv.as_attrs().expect("checked");
            let nf = Fields::new(ns, nv.span, Ctx::named("network of `", name, "`"));
            if kind == VmKind::Managed {
                nf.unknown_fields(NETWORK_FIELDS, issues);
            }
            Network {
                bridge: nf.str("bridge", issues),
                vlan: int_u32(nf.get("vlan", Ty::Int, issues)),
                ip: nf.str("ip", issues),
                gateway: nf.str("gateway", issues),
                mac: nf.str("mac", issues),
            }
        }
        None => Network::default(),
    };
    let readonly = f
        .get("readonly", Ty::Bool, issues)
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Some(Vm {
        name: name.to_string(),
        kind,
        vmid: int_u32(vmid_v),
        readonly,
        cores,
        memory,
        disk,
        storage,
        node,
        nixos_config: f.str("nixosConfig", issues),
        hostname: f.str("hostname", issues),
        ssh_alias: f.str("sshAlias", issues),
        purpose: f.str("purpose", issues),
        description: f.str("description", issues),
        status: f.str("status", issues),
        services: f.str_list("services", issues),
        tags: f.str_list("tags", issues),
        network,
        sops_rules: f.str_list("sopsRules", issues),
        name_range: key.range,
        vmid_range: vmid_v.map(|v| v.span.range),
        fence: fence_facts(set),
    })
}

fn read_settings(v: &Value, issues: &mut Vec<Issue>) -> Settings {
    let set = v.as_attrs().expect("checked");
    let f = Fields::new(set, v.span, "settings");
    f.unknown_fields(SETTINGS_FIELDS, issues);
    let d = Settings::default();
    let path = |name: &str, default: PathBuf, issues: &mut Vec<Issue>| match set.get(name) {
        Some(Value {
            kind: ValueKind::Path(p),
            ..
        }) => p.clone(),
        Some(_) => f.str(name, issues).map(PathBuf::from).unwrap_or(default),
        None => default,
    };
    Settings {
        hosts_file: path("hostsFile", d.hosts_file, issues),
        sops_config: path("sopsConfig", d.sops_config, issues),
        secrets_dir: path("secretsDir", d.secrets_dir, issues),
        hosts_dir: path("hostsDir", d.hosts_dir, issues),
        docs_file: path("docsFile", d.docs_file, issues),
        template_dir: path("templateDir", d.template_dir, issues),
    }
}

/// How `vmid` and `readonly` of one VM's set were given.
fn fence_facts(set: &AttrSet) -> FenceFacts {
    let given = |field: &str| match set.get(field) {
        None => Given::Absent,
        Some(v) if v.is_unknown() => Given::Undetermined,
        Some(_) => Given::Known,
    };
    FenceFacts {
        vmid: given("vmid"),
        readonly: given("readonly"),
    }
}

/// The VM tables and entries whose VMIDs cannot be known because the value itself could not
/// be determined (the fences refuse every mutation while any exists).
fn undetermined_vms(top: &AttrSet) -> Vec<String> {
    let mut out = Vec::new();
    for field in ["template", "imported", "managed"] {
        match top.get(field) {
            Some(v) if v.is_unknown() => out.push(format!("`{field}`")),
            Some(Value {
                kind: ValueKind::Attrs(set),
                ..
            }) if field != "template" => {
                for (name, entry) in set.iter() {
                    if entry.value.is_unknown() {
                        out.push(format!("`{field}.{name}`"));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

impl Vm {
    /// The directory name of the VM's NixOS configuration under `hosts/` (`nixosConfig`, or
    /// the VM's name).
    pub fn config_name(&self) -> &str {
        self.nixos_config.as_deref().unwrap_or(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::{evaluate, NoImports, SourceDb};

    fn read(src: &str) -> (ReadDefinitions, String) {
        let mut db = SourceDb::new();
        let f = db.add("/fleet/vms/definitions.nix", src);
        let ev = evaluate(&mut db, f, &NoImports);
        (read_definitions(&ev.value), src.to_string())
    }

    #[test]
    fn reads_the_demo_fleet() {
        let (r, _) = read(include_str!("../../vms/definitions.nix"));
        assert_eq!(r.issues, vec![]);
        let d = r.definitions;
        assert_eq!(d.proxmox.host.as_deref(), Some("prom.lan"));
        assert_eq!(d.proxmox.storage.as_deref(), Some("nvmeprom"));
        assert_eq!(d.template.as_ref().unwrap().vmid, Some(9001));
        let doc1 = d.vm_by_name("doc1").unwrap();
        assert!(doc1.readonly);
        assert_eq!(doc1.cores, Some(8), "resources under `specs`");
        assert_eq!(d.vm_by_vmid(110).unwrap().name, "test-automation");
        assert_eq!(d.vmid_ranges.len(), 3);
        assert_eq!(d.settings, Settings::default());
    }

    #[test]
    fn records_missing_wrong_unknown_and_dynamic() {
        let (r, src) = read(
            r#"{ proxmox = { host = "h"; }; managed.web = { vmid = "110"; memroy = 1; cores = 2; disk = pkgs.x; }; }"#,
        );
        let descr: Vec<String> = r
            .issues
            .iter()
            .map(|i| match i {
                Issue::Missing { field, .. } => format!("missing {field}"),
                Issue::WrongType { field, span, .. } => {
                    format!("type {field} {}", &src[span.range])
                }
                Issue::Unknown {
                    field, suggestion, ..
                } => format!("unknown {field} {suggestion:?}"),
                Issue::Dynamic { field, .. } => format!("dynamic {field}"),
                Issue::Unsupported { message, .. } => message.clone(),
            })
            .collect();
        assert_eq!(
            descr,
            [
                "unknown memroy Some(\"memory\")",
                "type vmid \"110\"",
                "missing memory"
            ]
        );
    }
}
