//! Reading `vms/definitions.nix` (evaluated) into [`Definitions`].

use std::path::PathBuf;

use super::read::{doc_names, doc_text, Ctx, Fields, Issue, Ty};
use super::units::{
    parse_count_words, parse_memory_words, MAX_CORES, MAX_MEMORY_MIB, MIN_MEMORY_MIB,
};
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
                    "this is not a vmctl definitions file: it evaluates to {}, not an attribute set `{{ proxmox = …; managed = …; }}`",
                    value.type_name()
                ),
            });
            return ReadDefinitions {
                definitions: defs,
                issues,
            };
        }
    };
    // A set with none of vmctl's fields is another tool's file (a list of `mkVm` calls, a
    // NixOS module): say that once instead of one unknown-field error per attribute.
    if !top.is_empty() && !TOP_FIELDS.iter().any(|f| top.get(f).is_some()) {
        issues.push(Issue::Unsupported {
            span: value.span,
            message: "this is not a vmctl definitions file: none of its attributes is one vmctl reads (`proxmox`, `template`, `imported`, `managed`, `vmidRanges`, `settings`)".into(),
        });
        return ReadDefinitions {
            definitions: defs,
            issues,
        };
    }
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
        for (name, entry) in set.iter().filter(|(n, _)| !n.starts_with('_')) {
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
        for (name, entry) in set.iter().filter(|(n, _)| !n.starts_with('_')) {
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
        for (name, entry) in set.iter().filter(|(n, _)| !n.starts_with('_')) {
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
    // An out-of-range port is DF007 (an error, so no command runs), never a silent 22.
    let port = f
        .get("port", Ty::Int, issues)
        .and_then(Value::as_int)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0);
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

/// Fields vmctl acts on for the template; any other field is an annotation, and one whose name
/// is close to these is reported as a likely misspelling.
const TEMPLATE_HARD: &[&str] = &["vmid", "name", "readonly", "node", "storage"];
/// The same for imported VMs: what the fences, scaffolding and the hosts integration read.
const IMPORTED_HARD: &[&str] = &["vmid", "readonly", "nixosConfig", "hostname", "sshAlias"];
/// Names that are never a misspelling: every field vmctl knows anywhere in a VM.
const KNOWN_VM_FIELDS: &[&[&str]] = &[MANAGED_FIELDS, TEMPLATE_FIELDS, &["specs", "name"]];

/// `specs` of an imported VM or the template, when it is a set; any other value is recorded as
/// documentation vmctl cannot read.
fn specs_of<'a>(set: &'a AttrSet, ctx: Ctx<'_>, issues: &mut Vec<Issue>) -> Option<&'a AttrSet> {
    let v = set.get("specs")?;
    match &v.kind {
        ValueKind::Attrs(a) => Some(a),
        ValueKind::Null | ValueKind::Dynamic(_) | ValueKind::Error => None,
        _ => {
            issues.push(doc_issue(
                v,
                "specs",
                ctx,
                format!("is {}, so the docs show no resources from it", v.type_name()),
                "write `specs = { cores = 4; memory = 8192; disk = \"64G\"; };`, or keep the text in `notes`".into(),
            ));
            None
        }
    }
}

/// A documented resource: the field itself, else the same field under `specs`.
fn doc_field<'a>(set: &'a AttrSet, specs: Option<&'a AttrSet>, field: &str) -> Option<&'a Value> {
    set.get(field).or_else(|| specs.and_then(|s| s.get(field)))
}

/// `what` completes "`field` of CONTEXT …", e.g. `is "lots", not a number of cores`.
fn doc_issue(v: &Value, field: &str, ctx: Ctx<'_>, what: String, help: String) -> Issue {
    Issue::Documentation {
        span: v.span,
        field: field.into(),
        context: ctx.render(),
        message: format!("`{field}` of {} {what}", ctx.render()),
        help,
    }
}

/// Documented cores: a count, or words starting with one (`"4 vCPUs"`).
fn doc_cores(v: &Value, ctx: Ctx<'_>, issues: &mut Vec<Issue>) -> Option<u32> {
    let help = || {
        "the docs show no core count; write e.g. `cores = 4;` (words can stay in `notes`)"
            .to_string()
    };
    let n = match &v.kind {
        ValueKind::Int(c) => *c,
        ValueKind::String(s) => match parse_count_words(s) {
            Some(c) => i64::from(c),
            None => {
                issues.push(doc_issue(
                    v,
                    "cores",
                    ctx,
                    format!("is \"{s}\", which vmctl cannot read as a number of cores"),
                    help(),
                ));
                return None;
            }
        },
        ValueKind::Null | ValueKind::Dynamic(_) | ValueKind::Error => return None,
        _ => {
            issues.push(doc_issue(
                v,
                "cores",
                ctx,
                format!("is {}, not a number of cores", v.type_name()),
                help(),
            ));
            return None;
        }
    };
    if !(1..=MAX_CORES).contains(&n) {
        issues.push(doc_issue(
            v,
            "cores",
            ctx,
            format!("is {n}; a VM has from 1 to {MAX_CORES}"),
            help(),
        ));
        return None;
    }
    u32::try_from(n).ok()
}

/// Documented memory in MiB: a number of MiB, or words like `"16 GB"`.
fn doc_memory(v: &Value, ctx: Ctx<'_>, issues: &mut Vec<Issue>) -> Option<u64> {
    let help = || {
        "the docs show no memory; write MiB (`memory = 16384;`) or a size like `\"16G\"` (words can stay in `notes`)".to_string()
    };
    let mib = match &v.kind {
        ValueKind::Int(m) => {
            if (1..=64).contains(m) {
                issues.push(doc_issue(
                    v,
                    "memory",
                    ctx,
                    format!("is {m} MiB, too little for any VM"),
                    format!("memory is in MiB: {m} GiB is `memory = {};`", m * 1024),
                ));
                return None;
            }
            u64::try_from(*m).ok()
        }
        ValueKind::String(s) => match parse_memory_words(s) {
            Some(m) => Some(m),
            None => {
                issues.push(doc_issue(
                    v,
                    "memory",
                    ctx,
                    format!("is \"{s}\", which vmctl cannot read as an amount of memory"),
                    help(),
                ));
                return None;
            }
        },
        ValueKind::Null | ValueKind::Dynamic(_) | ValueKind::Error => return None,
        _ => {
            issues.push(doc_issue(
                v,
                "memory",
                ctx,
                format!("is {}, not an amount of memory", v.type_name()),
                help(),
            ));
            return None;
        }
    };
    match mib {
        Some(m) if (MIN_MEMORY_MIB..=MAX_MEMORY_MIB).contains(&m) => Some(m),
        _ => {
            issues.push(doc_issue(
                v,
                "memory",
                ctx,
                format!("is outside {MIN_MEMORY_MIB} MiB to 16 TiB"),
                help(),
            ));
            None
        }
    }
}

/// A documented network: every field as text, nothing required.
fn doc_network(v: Option<&Value>) -> Network {
    let Some(set) = v.and_then(Value::as_attrs) else {
        return Network::default();
    };
    let text = |f: &str| set.get(f).and_then(doc_text);
    Network {
        bridge: text("bridge"),
        vlan: set.get("vlan").and_then(|v| match &v.kind {
            ValueKind::Int(i) => u32::try_from(*i).ok(),
            ValueKind::String(s) => parse_count_words(s),
            _ => None,
        }),
        ip: text("ip"),
        gateway: text("gateway"),
        mac: text("mac"),
    }
}

fn read_template(v: &Value, key: Span, issues: &mut Vec<Issue>) -> Vm {
    let set = v.as_attrs().expect("checked");
    let ctx = Ctx::from("template");
    let f = Fields::new(set, key, ctx);
    // The template is documentation first: only what cloning uses is checked; everything else
    // (`specs`, `notes`, `os`, …) may hold any value.
    f.misspelled_fields(KNOWN_VM_FIELDS, TEMPLATE_HARD, issues);
    let vmid_v = f.required("vmid", Ty::Int, issues);
    let name = f
        .required("name", Ty::Str, issues)
        .and_then(Value::as_str)
        .unwrap_or("template")
        .to_string();
    let specs = specs_of(set, ctx, issues);
    let spec_text = |field: &str| specs.and_then(|s| s.get(field)).and_then(doc_text);
    Vm {
        name,
        kind: VmKind::Template,
        vmid: int_u32(vmid_v),
        readonly: f
            .get("readonly", Ty::Bool, issues)
            .and_then(Value::as_bool)
            .unwrap_or(false),
        cores: doc_field(set, specs, "cores").and_then(|v| doc_cores(v, ctx, issues)),
        memory: doc_field(set, specs, "memory").and_then(|v| doc_memory(v, ctx, issues)),
        disk: doc_field(set, specs, "disk").and_then(doc_text),
        storage: f.str("storage", issues).or_else(|| spec_text("storage")),
        node: f.str("node", issues).or_else(|| spec_text("node")),
        nixos_config: None,
        hostname: None,
        ssh_alias: None,
        purpose: set.get("purpose").and_then(doc_text),
        description: set.get("description").and_then(doc_text),
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
    let vmid_v = f.required("vmid", Ty::Int, issues);
    let readonly = f
        .get("readonly", Ty::Bool, issues)
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let nixos_config = f.str("nixosConfig", issues);
    let hostname = f.str("hostname", issues);
    let ssh_alias = f.str("sshAlias", issues);
    if kind != VmKind::Managed {
        // Imported VMs are documentation: what the fences and scaffolding read (above) is
        // checked; resources and annotations are read leniently, for the docs.
        f.misspelled_fields(KNOWN_VM_FIELDS, IMPORTED_HARD, issues);
        let specs = specs_of(set, ctx, issues);
        let text = |field: &str| set.get(field).and_then(doc_text);
        // `sops add-recipient` reads it: typed like every field an operation uses.
        let sops_rules = f.str_list("sopsRules", issues);
        return Some(Vm {
            name: name.to_string(),
            kind,
            vmid: int_u32(vmid_v),
            readonly,
            cores: doc_field(set, specs, "cores").and_then(|v| doc_cores(v, ctx, issues)),
            memory: doc_field(set, specs, "memory").and_then(|v| doc_memory(v, ctx, issues)),
            disk: doc_field(set, specs, "disk").and_then(doc_text),
            storage: doc_field(set, specs, "storage").and_then(doc_text),
            node: doc_field(set, specs, "node").and_then(doc_text),
            nixos_config,
            hostname,
            ssh_alias,
            purpose: text("purpose"),
            description: text("description"),
            status: text("status"),
            services: set.get("services").map(doc_names).unwrap_or_default(),
            tags: set.get("tags").map(doc_names).unwrap_or_default(),
            network: doc_network(set.get("network")),
            name_range: key.range,
            vmid_range: vmid_v.map(|v| v.span.range),
            sops_rules,
            fence: fence_facts(set),
        });
    }
    f.unknown_fields(MANAGED_FIELDS, issues);
    let cores = int_u32(f.required("cores", Ty::Int, issues));
    let memory = int_u64(f.required("memory", Ty::Int, issues));
    let disk = f
        .required("disk", Ty::Str, issues)
        .and_then(Value::as_str)
        .map(str::to_string);
    let network = match f.get("network", Ty::Attrs, issues) {
        Some(nv) => {
            let ns = nv.as_attrs().expect("checked");
            let nf = Fields::new(ns, nv.span, Ctx::named("network of `", name, "`"));
            nf.unknown_fields(NETWORK_FIELDS, issues);
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
    Some(Vm {
        name: name.to_string(),
        kind,
        vmid: int_u32(vmid_v),
        readonly,
        cores,
        memory,
        disk,
        storage: f.str("storage", issues),
        node: f.str("node", issues),
        nixos_config,
        hostname,
        ssh_alias,
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
                Issue::Misspelled {
                    field, suggestion, ..
                } => format!("misspelled {field} {suggestion}"),
                Issue::Documentation { field, .. } => format!("documentation {field}"),
                Issue::Evaluator { message, .. }
                | Issue::MissingPath { message, .. }
                | Issue::Role { message, .. } => message.clone(),
            })
            .collect();
        assert_eq!(
            descr,
            [
                "type vmid \"110\"",
                "unknown memroy Some(\"memory\")",
                "missing memory"
            ]
        );
    }

    #[test]
    fn documentation_of_imported_vms_and_the_template_is_never_an_error() {
        let (r, _) = read(
            r#"{
              proxmox = { host = "h"; };
              template = {
                vmid = 9001; name = "tmpl"; os = { family = "nixos"; };
                specs = { cores = 2; memory = "2 GB"; disk = "8G"; storage = "local-lvm"; };
              };
              imported = {
                _comment = "documentation only";
                nas = {
                  vmid = 101; readonly = true;
                  specs.memory = "16 GB";
                  disk = "passthrough of /dev/sdb (4x 8TB ZFS)";
                  services = { samba = true; nfs.enable = false; };
                  status = [ "running" "backed up" ];
                  hardware = { gpu = "none"; nics = [ "eno1" ]; };
                  network = { ip = [ "10.0.0.5" "fd00::5" ]; vlan = "20"; };
                  cores = "4 vCPUs";
                };
              };
              managed = { };
            }"#,
        );
        assert_eq!(r.issues, vec![]);
        let d = r.definitions;
        let t = d.template.as_ref().unwrap();
        assert_eq!(
            (t.cores, t.memory, t.disk.as_deref(), t.storage.as_deref()),
            (Some(2), Some(2048), Some("8G"), Some("local-lvm"))
        );
        let nas = d.vm_by_name("nas").unwrap();
        assert_eq!(d.imported.len(), 1, "`_comment` is not a VM");
        assert_eq!((nas.cores, nas.memory), (Some(4), Some(16384)));
        assert_eq!(
            nas.disk.as_deref(),
            Some("passthrough of /dev/sdb (4x 8TB ZFS)")
        );
        assert_eq!(nas.services, ["samba"]);
        assert_eq!(nas.status.as_deref(), Some("running, backed up"));
        assert_eq!(nas.network.ip.as_deref(), Some("10.0.0.5, fd00::5"));
        assert_eq!(nas.network.vlan, Some(20));
    }

    #[test]
    fn hard_fields_stay_hard_and_doubtful_documentation_warns() {
        let (r, _) = read(
            r#"{
              proxmox = { host = "h"; };
              template = { vmid = "9001"; name = "t"; node = 3; specs = "2 cores"; };
              imported.nas = {
                vmid = 101; readOnly = true; nixosConfig = 7;
                cores = "lots"; memory = 16;
              };
            }"#,
        );
        let descr: Vec<String> = r
            .issues
            .iter()
            .map(|i| match i {
                Issue::WrongType { field, .. } => format!("type {field}"),
                Issue::Misspelled {
                    field, suggestion, ..
                } => format!("misspelled {field} {suggestion}"),
                Issue::Documentation { field, .. } => format!("documentation {field}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            descr,
            [
                "type vmid",
                "documentation specs",
                "type node",
                "type nixosConfig",
                "misspelled readOnly readonly",
                "documentation cores",
                "documentation memory",
            ]
        );
    }

    #[test]
    fn another_tools_inventory_is_one_warning() {
        for src in [
            "{ inputs }: { nvim = 1; }",
            r#"{ nvim = mkVm "nvim"; chat = { module = ./chat; }; }"#,
            "[ 1 2 ]",
        ] {
            let (r, _) = read(src);
            assert!(
                matches!(&r.issues[..], [Issue::Unsupported { message, .. }] if message.contains("not a vmctl definitions file")),
                "{src}: {:?}",
                r.issues
            );
        }
    }
}
