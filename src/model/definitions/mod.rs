//! Reading `vms/definitions.nix` (evaluated) into [`Definitions`].
//!
//! The top level, `proxmox`, `vmidRanges` and `settings` are read here, each VM in `vm`, and
//! the lenient documentation values of imported VMs and the template in `docs`.

mod docs;
#[cfg(test)]
mod source_tests;
mod vm;

use std::path::PathBuf;

use self::vm::{read_template, read_vm};
use super::read::{Ctx, Field, Fields, Issue, Ty};
use super::source::{self, RangeBound, Spanned, Undetermined};
use super::{Definitions, Proxmox, Settings, VmKind, VmidRange};
use crate::syntax::{AttrSet, Span, Value, ValueKind};

pub const TOP_FIELDS: &[&str] = &[
    "proxmox",
    "template",
    "imported",
    "managed",
    "vmidRanges",
    "settings",
    "snapshots",
    "backups",
];
/// Fields of the top-level `backups` policy.
pub const BACKUP_FIELDS: &[&str] = &["vms", "storage", "keep", "everyHours", "mode"];
/// Fields of the top-level `snapshots` policy.
pub const SNAPSHOT_FIELDS: &[&str] = &["keep"];
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

/// Reads the evaluated value of definitions.nix.
pub fn read_definitions(value: &Value) -> ReadDefinitions {
    let mut issues = Vec::new();
    let mut defs = Definitions::default();
    let top = match &value.kind {
        ValueKind::Attrs(a) => a,
        ValueKind::Dynamic(reason) => {
            issues.push(Issue::Dynamic {
                span: value.span,
                field: Field::new("definitions", "definitions.nix"),
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
            defs.source.port = p.as_attrs().and_then(|set| source::int(set, "port"));
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
    for (field, kind) in [("imported", VmKind::Imported), ("managed", VmKind::Managed)] {
        let Some(table) = f.get(field, Ty::Attrs, &mut issues) else {
            continue;
        };
        let set = table.as_attrs().expect("checked");
        // `_`-prefixed entries are annotations, not VMs (as in hosts.nix).
        for (name, entry) in set.iter().filter(|(n, _)| !n.starts_with('_')) {
            if let Some(vm) = read_vm(name, entry.key_span, &entry.value, kind, &mut issues) {
                match kind {
                    VmKind::Imported => defs.imported.push(vm),
                    _ => defs.managed.push(vm),
                }
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
            for field in ["start", "end"] {
                if let Some(value) = source::int(rs, field) {
                    defs.source.range_bounds.push(RangeBound {
                        name: name.clone(),
                        field,
                        value,
                    });
                }
            }
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
    // `backups`: the policy `vmctl backup --due` follows (VM006 checks the numbers' bounds).
    if let Some(b) = f.get("backups", Ty::Attrs, &mut issues) {
        let set = b.as_attrs().expect("checked");
        let bf = Fields::new(set, b.span, "backups");
        bf.unknown_fields(BACKUP_FIELDS, &mut issues);
        let int = |name: &str, issues: &mut Vec<Issue>| {
            bf.get(name, Ty::Int, issues)
                .and_then(|v| v.as_int().map(|n| (n, v.span.range)))
        };
        defs.backup_policy = Some(super::BackupPolicy {
            vms: bf.str_list("vms", &mut issues),
            storage: bf.str("storage", &mut issues),
            mode: bf.str("mode", &mut issues),
            keep: int("keep", &mut issues),
            every_hours: int("everyHours", &mut issues),
        });
    }
    // `snapshots.keep`: how many automatic snapshots a VM keeps (VM006 checks its bounds).
    if let Some(s) = f.get("snapshots", Ty::Attrs, &mut issues) {
        let set = s.as_attrs().expect("checked");
        let sf = Fields::new(set, s.span, "snapshots");
        sf.unknown_fields(SNAPSHOT_FIELDS, &mut issues);
        if let Some(k) = sf.get("keep", Ty::Int, &mut issues) {
            defs.snapshot_keep = k.as_int().map(|n| (n, k.span.range));
        }
    }
    defs.source.undetermined = undetermined_vms(top);
    defs.undetermined = defs
        .source
        .undetermined
        .iter()
        .map(|u| u.value.describe())
        .collect();
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
                field: Field::new(field, ctx.render()),
                reason: reason.clone(),
            });
            None
        }
        ValueKind::Error => None,
        _ => {
            issues.push(Issue::WrongType {
                span: v.span,
                field: Field::new(field, ctx.render()),
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

/// The VM tables and entries whose VMIDs cannot be known because the value itself could not
/// be determined (the fences refuse every mutation while any exists).
fn undetermined_vms(top: &AttrSet) -> Vec<Spanned<Undetermined>> {
    let mut out = Vec::new();
    let mut push = |v: &Value, value| {
        out.push(Spanned {
            value,
            range: v.span.range,
        })
    };
    for field in ["template", "imported", "managed"] {
        match top.get(field) {
            Some(v) if v.is_unknown() => push(v, Undetermined::Table(field)),
            Some(Value {
                kind: ValueKind::Attrs(set),
                ..
            }) if field != "template" => {
                for (name, entry) in set.iter() {
                    if entry.value.is_unknown() {
                        push(&entry.value, Undetermined::Entry(field, name.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    out
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

    /// An issue in a few words: its kind and field.
    fn describe(i: &Issue) -> String {
        match i {
            Issue::Missing { field, .. } => format!("missing {}", field.name),
            Issue::WrongType { field, .. } => format!("type {}", field.name),
            Issue::Unknown {
                field, suggestion, ..
            } => format!("unknown {} {suggestion:?}", field.name),
            Issue::Dynamic { field, .. } => format!("dynamic {}", field.name),
            Issue::Misspelled {
                field, suggestion, ..
            } => format!("misspelled {} {suggestion}", field.name),
            Issue::Documentation { field, .. } => format!("documentation {}", field.name),
            other => match other.said() {
                Some((_, message, _)) => message.to_string(),
                None => format!("{other:?}"),
            },
        }
    }

    #[test]
    fn reads_the_demo_fleet() {
        let (r, _) = read(include_str!("../../../vms/definitions.nix"));
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
        let descr: Vec<String> = r.issues.iter().map(describe).collect();
        let wrong = r.issues.iter().find_map(|i| match i {
            Issue::WrongType { span, .. } => Some(&src[span.range]),
            _ => None,
        });
        assert_eq!(wrong, Some("\"110\""));
        assert_eq!(
            descr,
            [
                "type vmid",
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
        let descr: Vec<String> = r.issues.iter().map(describe).collect();
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
