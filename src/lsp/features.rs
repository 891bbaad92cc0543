//! The answers to requests: code actions from the rules' fixes, hover on a VM, go to
//! definition between a VM, its hosts.nix entry, `hosts/<name>/` and its `.sops.yaml`
//! recipient, completion from the schema, and the VMs as document symbols.

use std::path::Path;

use lsp_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CompletionItem, CompletionItemKind,
    DocumentSymbol, Hover, HoverContents, Location, MarkupContent, MarkupKind, Range, SymbolKind,
    TextEdit, Url, WorkspaceEdit,
};

use super::convert::{uri_of, Lines};
use crate::check::Applicability;
use crate::exec::lint::LintRun;
use crate::model::definitions::{
    MANAGED_FIELDS, NETWORK_FIELDS, PROXMOX_FIELDS, RANGE_FIELDS, SETTINGS_FIELDS, TEMPLATE_FIELDS,
    TOP_FIELDS,
};
use crate::model::{Definitions, Host, Vm, VmKind};
use crate::syntax::{FileId, Value};

/// The code actions of the fixes of diagnostics in `file` that touch `range` (byte offsets).
pub fn code_actions(
    run: &LintRun,
    uri: &Url,
    file: FileId,
    (start, end): (usize, usize),
) -> Vec<CodeActionOrCommand> {
    let text = run.fleet.db.text(file);
    let lines = Lines::new(text);
    run.diagnostics
        .iter()
        .filter(|d| d.span.file == file)
        .filter(|d| {
            let (s, e) = (
                usize::from(d.span.range.start()),
                usize::from(d.span.range.end()),
            );
            s <= end && start <= e
        })
        .filter_map(|d| {
            let fix = d.fix.as_ref()?;
            let edits = fix
                .edits
                .iter()
                .map(|e| TextEdit::new(lines.range(e.start, e.end), e.insert.clone()))
                .collect();
            let safe = fix.applicability == Applicability::Safe;
            let title = match fix.applicability {
                Applicability::Safe => format!("{} ({})", fix.message, d.code()),
                a => format!("{} ({}, {})", fix.message, d.code(), a.as_str()),
            };
            Some(CodeActionOrCommand::CodeAction(CodeAction {
                title,
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: None,
                edit: (fix.applicability != Applicability::DisplayOnly).then(|| WorkspaceEdit {
                    changes: Some([(uri.clone(), edits)].into_iter().collect()),
                    ..Default::default()
                }),
                command: None,
                is_preferred: Some(safe),
                disabled: None,
                data: None,
            }))
        })
        .collect()
}

/// The VMs of definitions.nix with the span of their value (the set), in file order.
fn vm_values(run: &LintRun) -> Vec<(&Vm, Option<&Value>)> {
    let Some((file, defs)) = run.fleet.definitions_file() else {
        return Vec::new();
    };
    let top = file.eval.value.as_attrs();
    defs.all_vms()
        .map(|vm| {
            let value = match vm.kind {
                VmKind::Template => top.and_then(|t| t.get("template")),
                k => top
                    .and_then(|t| t.get(k.as_str()))
                    .and_then(Value::as_attrs)
                    .and_then(|t| t.get(&vm.name)),
            };
            (vm, value.filter(|v| v.span.file == file.file))
        })
        .collect()
}

/// The VM written at `offset` of definitions.nix: on its name or inside its set (the
/// innermost, so a VM's own field wins over the table around it).
pub fn vm_at(run: &LintRun, offset: usize) -> Option<&Vm> {
    let inside = |r: crate::model::TextRange| {
        usize::from(r.start()) <= offset && offset <= usize::from(r.end())
    };
    let vms = vm_values(run);
    vms.iter()
        .find(|(vm, _)| inside(vm.source.name))
        .or_else(|| {
            vms.iter()
                .filter(|(_, v)| v.is_some_and(|v| inside(v.span.range)))
                .min_by_key(|(_, v)| v.map(|v| v.span.range.len()))
        })
        .map(|(vm, _)| *vm)
}

/// The hosts.nix entry of a VM: named like the VM, its `nixosConfig` or its `hostname`.
pub fn host_of<'a>(run: &'a LintRun, vm: &Vm) -> Option<&'a Host> {
    let (_, hosts) = run.fleet.hosts_file()?;
    [
        Some(vm.name.as_str()),
        vm.nixos_config.as_deref(),
        vm.hostname.as_deref(),
    ]
    .into_iter()
    .flatten()
    .find_map(|n| hosts.get(n))
}

/// The fleet's `.sops.yaml` in the run (the one file not read as Nix): its id and text.
pub(super) fn sops_file<'a>(run: &'a LintRun, _: &Definitions) -> Option<(FileId, &'a str)> {
    (0..run.fleet.db.len() as u32)
        .map(FileId)
        .filter(|id| run.fleet.files.iter().all(|f| f.file != *id))
        .find(|id| {
            run.fleet
                .db
                .path(*id)
                .extension()
                .is_some_and(|e| e == "yaml" || e == "yml")
        })
        .map(|id| (id, run.fleet.db.text(id)))
}

/// A host's age recipient, when its key is one vmctl can read.
pub(super) fn recipient(host: &Host) -> Option<(String, String)> {
    let key = crate::keys::PublicKey::parse(host.public_key.as_deref()?).ok()?;
    Some((key.fingerprint(), key.age_recipient().ok()?))
}

/// Hover on a VM: its resources, VMID and range, and from hosts.nix and .sops.yaml its host
/// key's fingerprint, age recipient and the creation rules that include it.
pub fn hover(run: &LintRun, vm: &Vm) -> Hover {
    let (_, defs) = run
        .fleet
        .definitions_file()
        .expect("a VM comes from definitions.nix");
    let mut s = format!("**{}** ({} VM)\n\n", vm.name, vm.kind.as_str());
    let or_dash = |o: Option<String>| o.unwrap_or_else(|| "—".into());
    let range = vm.vmid.and_then(|id| {
        defs.vmid_ranges
            .iter()
            .find(|r| (r.start..=r.end).contains(&id))
            .map(|r| format!("`{}` ({}–{})", r.name, r.start, r.end))
    });
    s.push_str(&format!(
        "| | |\n|---|---|\n| VMID | {} |\n| range | {} |\n| cores | {} |\n| memory | {} |\n| disk | {} |\n",
        or_dash(vm.vmid.map(|v| v.to_string())),
        or_dash(range),
        or_dash(vm.cores.map(|c| c.to_string())),
        or_dash(vm.memory.map(|m| format!("{m} MiB"))),
        or_dash(vm.disk.as_ref().map(|d| d.to_string())),
    ));
    match host_of(run, vm) {
        None => s.push_str("\nNo hosts.nix entry.\n"),
        Some(host) => match recipient(host) {
            None => s.push_str(&format!(
                "\nhosts.nix `{}`: no host key vmctl can read.\n",
                host.name
            )),
            Some((fingerprint, age)) => {
                s.push_str(&format!(
                    "\nhost key `{fingerprint}`\n\nage recipient `{age}`\n"
                ));
                let rules: Vec<String> = crate::secrets::sops_yaml::SopsModel::parse(
                    sops_file(run, defs).map_or("", |(_, t)| t),
                )
                .map(|m| {
                    m.config
                        .rules
                        .iter()
                        .filter(|r| r.key_groups.iter().any(|g| g.age.contains(&age)))
                        .map(|r| format!("`{}`", r.path_regex.as_deref().unwrap_or("(every file)")))
                        .collect()
                })
                .unwrap_or_default();
                if rules.is_empty() {
                    s.push_str("\nin no sops creation rule\n");
                } else {
                    s.push_str(&format!("\nsops rules: {}\n", rules.join(", ")));
                }
            }
        },
    }
    Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: s,
        }),
        range: None,
    }
}

fn location(
    run: &LintRun,
    root: &Path,
    file: FileId,
    start: usize,
    end: usize,
) -> Option<Location> {
    let uri = uri_of(&root.join(run.fleet.db.path(file)))?;
    Some(Location::new(
        uri,
        Lines::new(run.fleet.db.text(file)).range(start, end),
    ))
}

/// From a VM in definitions.nix: its hosts.nix entry, its `hosts/<name>/` configuration and
/// its recipient in `.sops.yaml`. From a host in hosts.nix or a recipient in `.sops.yaml`: the
/// VM in definitions.nix.
pub fn definition(run: &LintRun, root: &Path, file: FileId, offset: usize) -> Vec<Location> {
    let Some((defs_file, defs)) = run.fleet.definitions_file() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let vm_location = |vm: &Vm| {
        location(
            run,
            root,
            defs_file.file,
            vm.source.name.start().into(),
            vm.source.name.end().into(),
        )
    };
    if file == defs_file.file {
        let Some(vm) = vm_at(run, offset) else {
            return out;
        };
        if let Some(host) = host_of(run, vm) {
            let hosts_file = run.fleet.hosts_file().map(|(f, _)| f.file);
            out.extend(hosts_file.and_then(|f| {
                location(
                    run,
                    root,
                    f,
                    host.name_range.start().into(),
                    host.name_range.end().into(),
                )
            }));
            if let (Some((_, age)), Some((sops, text))) = (recipient(host), sops_file(run, defs)) {
                out.extend(
                    text.match_indices(&age)
                        .filter_map(|(i, _)| location(run, root, sops, i, i + age.len())),
                );
            }
        }
        let dir = root
            .join(&defs.settings.hosts_dir)
            .join(vm.nixos_config.as_deref().unwrap_or(&vm.name));
        let target = ["default.nix", "configuration.nix"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
            .or_else(|| dir.is_dir().then_some(dir));
        out.extend(
            target
                .and_then(|p| uri_of(&p))
                .map(|u| Location::new(u, Range::default())),
        );
        return out;
    }
    let vms: Vec<&Vm> = defs.all_vms().collect();
    let vm_of_host = |host: &Host| {
        vms.iter()
            .find(|vm| host_of(run, vm).is_some_and(|h| h.name == host.name))
            .copied()
    };
    if let Some((hosts_file, hosts)) = run.fleet.hosts_file() {
        if file == hosts_file.file {
            let at = hosts.hosts.iter().find(|h| {
                usize::from(h.name_range.start()) <= offset
                    && offset <= usize::from(h.name_range.end())
            });
            out.extend(at.and_then(vm_of_host).and_then(vm_location));
            return out;
        }
        if let Some((sops, text)) = sops_file(run, defs).filter(|(id, _)| *id == file) {
            let _ = sops;
            for host in &hosts.hosts {
                let Some((_, age)) = recipient(host) else {
                    continue;
                };
                let hit = text
                    .match_indices(&age)
                    .any(|(i, _)| i <= offset && offset <= i + age.len());
                if hit {
                    out.extend(vm_of_host(host).and_then(vm_location));
                }
            }
        }
    }
    out
}

/// The attribute path of the innermost set around `offset` in the evaluated file.
fn path_at(value: &Value, offset: usize, path: &mut Vec<String>) {
    let Some(attrs) = value.as_attrs() else {
        return;
    };
    for (name, entry) in attrs.iter() {
        let r = entry.value.span.range;
        if entry.value.as_attrs().is_some()
            && entry.value.span.file == value.span.file
            && usize::from(r.start()) < offset
            && offset < usize::from(r.end())
        {
            path.push(name.clone());
            path_at(&entry.value, offset, path);
            return;
        }
    }
}

/// Fields whose values are Booleans, and what else completes in a value position.
const BOOL_FIELDS: &[&str] = &[
    "readonly",
    "onboot",
    "protection",
    "full",
    "backup",
    "firewall",
];

/// Completion in definitions.nix: the field names of the set around the cursor (from the
/// schema), or after `field = ` the values that field takes (Booleans, `"dhcp"`, the next free
/// VMID).
pub fn completion(run: &LintRun, file: FileId, offset: usize) -> Vec<CompletionItem> {
    let Some((defs_file, defs)) = run.fleet.definitions_file() else {
        return Vec::new();
    };
    if file != defs_file.file {
        return Vec::new();
    }
    let text = run.fleet.db.text(file);
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..offset];
    // A value position: `name = ` and at most a word typed after it.
    if let Some((lhs, rhs)) = before.rsplit_once('=') {
        let field = lhs.trim().rsplit(['.', ' ', '{', ';']).next().unwrap_or("");
        if !rhs.contains(';') && rhs.trim().chars().all(|c| c.is_alphanumeric() || c == '"') {
            let value = |label: String, detail: &str| CompletionItem {
                label,
                kind: Some(CompletionItemKind::VALUE),
                detail: Some(detail.into()),
                ..Default::default()
            };
            if BOOL_FIELDS.contains(&field) {
                return ["true", "false"]
                    .iter()
                    .map(|b| value(b.to_string(), field))
                    .collect();
            }
            if field == "ip" {
                return vec![value("\"dhcp\"".into(), "address from DHCP")];
            }
            if field == "node" {
                // The cluster's nodes as the fleet already names them (definitions.nix has no
                // list of nodes): valid names only, `proxmox.node` first.
                let mut seen = Vec::new();
                let named = defs
                    .proxmox
                    .node
                    .iter()
                    .chain(defs.all_vms().filter_map(|v| v.node.as_ref()));
                for n in named {
                    if crate::proxmox::validate::node(n).is_ok() && !seen.contains(n) {
                        seen.push(n.clone());
                    }
                }
                return seen
                    .into_iter()
                    .map(|n| value(format!("\"{n}\""), "a node the fleet names"))
                    .collect();
            }
            if field == "vmid" {
                let used: std::collections::BTreeSet<u32> =
                    defs.all_vms().filter_map(|v| v.vmid).collect();
                return defs
                    .vmid_ranges
                    .iter()
                    .filter(|_| defs.undetermined.is_empty())
                    .filter_map(|r| {
                        let free = (r.start..=r.end).find(|id| !used.contains(id))?;
                        Some(value(
                            free.to_string(),
                            &format!("next free VMID in range `{}`", r.name),
                        ))
                    })
                    .collect();
            }
            return Vec::new();
        }
    }
    let mut path = Vec::new();
    path_at(&defs_file.eval.value, offset, &mut path);
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let fields: &[&str] = match p.as_slice() {
        [] => TOP_FIELDS,
        ["proxmox"] => PROXMOX_FIELDS,
        ["template"] => TEMPLATE_FIELDS,
        ["managed", _] => MANAGED_FIELDS,
        ["imported", _] => TEMPLATE_FIELDS,
        ["managed", _, "network"] => NETWORK_FIELDS,
        ["vmidRanges", _] => RANGE_FIELDS,
        ["settings"] => SETTINGS_FIELDS,
        _ => &[],
    };
    fields
        .iter()
        .map(|f| CompletionItem {
            label: f.to_string(),
            kind: Some(CompletionItemKind::FIELD),
            detail: Some(format!(
                "{} field",
                p.first().copied().unwrap_or("top-level")
            )),
            ..Default::default()
        })
        .collect()
}

/// The VMs of definitions.nix (or the hosts of hosts.nix) as document symbols.
#[allow(deprecated)] // `DocumentSymbol::deprecated` must be written out; it is not used.
pub fn symbols(run: &LintRun, file: FileId) -> Vec<DocumentSymbol> {
    let lines = Lines::new(run.fleet.db.text(file));
    let symbol =
        |name: String, detail: String, kind, sel: (usize, usize), whole: (usize, usize)| {
            DocumentSymbol {
                name,
                detail: Some(detail),
                kind,
                tags: None,
                deprecated: None,
                range: lines.range(whole.0, whole.1),
                selection_range: lines.range(sel.0, sel.1),
                children: None,
            }
        };
    let mut out = Vec::new();
    if run
        .fleet
        .definitions_file()
        .is_some_and(|(f, _)| f.file == file)
    {
        for (vm, value) in vm_values(run) {
            let sel: (usize, usize) = (vm.source.name.start().into(), vm.source.name.end().into());
            let whole = value.map_or(sel, |v| {
                (
                    sel.0.min(v.span.range.start().into()),
                    sel.1.max(v.span.range.end().into()),
                )
            });
            let detail = match vm.vmid {
                Some(id) => format!("{} VM {id}", vm.kind.as_str()),
                None => format!("{} VM", vm.kind.as_str()),
            };
            out.push(symbol(
                vm.name.clone(),
                detail,
                SymbolKind::OBJECT,
                sel,
                whole,
            ));
        }
    }
    if let Some((_, hosts)) = run.fleet.hosts_file().filter(|(f, _)| f.file == file) {
        for h in &hosts.hosts {
            let sel: (usize, usize) = (h.name_range.start().into(), h.name_range.end().into());
            out.push(symbol(
                h.name.clone(),
                "host".into(),
                SymbolKind::OBJECT,
                sel,
                sel,
            ));
        }
    }
    out
}
