//! Reading one VM: the template, an imported VM (documentation first) or a managed VM.

use super::docs::{doc_cores, doc_field, doc_memory, doc_network, specs_of};
use super::{attrs_of, MANAGED_FIELDS, NETWORK_FIELDS, TEMPLATE_FIELDS};
use crate::model::read::{doc_names, doc_text, Ctx, Fields, Issue, Ty};
use crate::model::source::{vm_source, Spanned, VmSource, Written};
use crate::model::units::DiskSize;
use crate::model::{FenceFacts, Given, Network, Vm, VmKind};
use crate::syntax::{Span, Value};

fn int_u32(v: Option<&Value>) -> Option<u32> {
    v.and_then(|v| v.as_int())
        .and_then(|i| u32::try_from(i).ok())
}

fn int_u64(v: Option<&Value>) -> Option<u64> {
    v.and_then(|v| v.as_int())
        .and_then(|i| u64::try_from(i).ok())
}

/// Fields vmctl acts on for the template; any other field is an annotation, and one whose name
/// is close to these is reported as a likely misspelling.
const TEMPLATE_HARD: &[&str] = &["vmid", "name", "readonly", "node", "storage"];
/// The same for imported VMs: what the fences, scaffolding and the hosts integration read.
const IMPORTED_HARD: &[&str] = &["vmid", "readonly", "nixosConfig", "hostname", "sshAlias"];
/// Names that are never a misspelling: every field vmctl knows anywhere in a VM.
const KNOWN_VM_FIELDS: &[&[&str]] = &[MANAGED_FIELDS, TEMPLATE_FIELDS, &["specs", "name"]];

pub(super) fn read_template(v: &Value, key: Span, issues: &mut Vec<Issue>) -> Vm {
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
    // An unnamed template is named by its key (DF001 reports the missing `name`).
    let name_at = set.entry("name").map_or(key.range, |e| e.value.span.range);
    let source = Box::new(vm_source(set, name_at));
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
        disk: doc_disk(doc_field(set, specs, "disk")),
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
        fence: fence_facts(&source),
        source,
    }
}

pub(super) fn read_vm(
    name: &str,
    key: Span,
    v: &Value,
    kind: VmKind,
    issues: &mut Vec<Issue>,
) -> Option<Vm> {
    let prefix = match kind {
        VmKind::Managed => "managed VM `",
        VmKind::Imported => "imported VM `",
        VmKind::Template => "template VM `",
    };
    let ctx = Ctx::named(prefix, name, "`");
    let set = attrs_of(v, name, ctx, issues)?;
    let f = Fields::new(set, key, ctx);
    let source = Box::new(vm_source(set, key.range));
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
            disk: doc_disk(doc_field(set, specs, "disk")),
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
            sops_rules,
            fence: fence_facts(&source),
            source,
        });
    }
    f.unknown_fields(MANAGED_FIELDS, issues);
    let cores = int_u32(f.required("cores", Ty::Int, issues));
    let memory = int_u64(f.required("memory", Ty::Int, issues));
    // Parsed once, here; VM006 and VM012 read the result.
    let disk = f
        .required("disk", Ty::Str, issues)
        .and_then(Value::as_str)
        .map(DiskSize::parse);
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
        fence: fence_facts(&source),
        source,
    })
}

/// A documented disk: its text, as a size when it is one.
fn doc_disk(v: Option<&Value>) -> Option<DiskSize> {
    v.and_then(doc_text).map(DiskSize::from)
}

/// How `vmid` and `readonly` of one VM's set were given.
fn fence_facts(source: &VmSource) -> FenceFacts {
    fn given<T>(w: &Option<Spanned<Written<T>>>) -> Given {
        match w.as_ref().map(|s| &s.value) {
            None => Given::Absent,
            Some(Written::Undetermined) => Given::Undetermined,
            Some(_) => Given::Known,
        }
    }
    FenceFacts {
        vmid: given(&source.vmid),
        readonly: given(&source.readonly),
    }
}

impl Vm {
    /// The directory name of the VM's NixOS configuration under `hosts/` (`nixosConfig`, or
    /// the VM's name).
    pub fn config_name(&self) -> &str {
        self.nixos_config.as_deref().unwrap_or(&self.name)
    }
}
