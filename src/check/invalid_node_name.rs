//! VM015: a `node` (of `proxmox`, the template or a managed VM) that is not a Proxmox node name.

use super::util::definitions;
use super::{Applicability, Cascade, Diagnostic, Fix, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::syntax::{AttrEntry, AttrSet, Value};
use crate::text::TextEdit;

pub const RULE: Rule = Rule {
    code: "VM015",
    name: "invalid-node-name",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "a `node` that is not a Proxmox node name",
    explanation: "\
## What it does
Checks `proxmox.node`, `template.node` and the `node` of every managed VM against Proxmox's
node name format (pve-common's `pve-node`): letters, digits and hyphens, not starting or ending
with a hyphen; one DNS label, so at most 63 characters and no dots. It is the check
`vmctl migrate` and `vmctl ops` apply to a node given on the command line. An imported VM's
`node` (flat or under `specs`) is documentation first and is not checked: an error there would
stop every command of the fleet, while vmctl only compares it with where the VM runs and, for a
VM gone from the cluster, asks that node for its backups, where Proxmox refuses a bad name.

## Why
vmctl reaches a VM through its node: `pvesh … /nodes/NODE/qemu/VMID/…` for status, apply,
snapshots and backups, `qm clone --target NODE` when provisioning. Proxmox refuses any other
name (\"value does not look like a valid node name\"), so the operation would fail on the
cluster; a node's domain (`pve1.lan`) is the usual slip, since the node name is the host's short
name.

## Example
```nix
proxmox = { host = \"pve1.lan\"; node = \"pve1.lan\"; };
```

## Fix
Write the node's name as `pvecm nodes` (or the web UI's tree) shows it: `node = \"pve1\";`.
For a name with a domain, an unsafe fix keeps the first label.
",
};

/// Why `name` is not a node name, if it is not (`proxmox::validate::node`, the validator of
/// every NODE argument, says so).
pub fn node_name_problem(name: &str) -> Option<String> {
    crate::proxmox::validate::node(name).err()
}

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some(d) = definitions(fleet) else { return };
    let Some((file, _)) = fleet.definitions_file() else {
        return;
    };
    let Some(top) = file.eval.value.as_attrs() else {
        return;
    };
    fn set(v: Option<&Value>) -> Option<&AttrSet> {
        v.and_then(Value::as_attrs)
    }
    fn node(s: Option<&AttrSet>) -> Option<&AttrEntry> {
        s.and_then(|s| s.entry("node"))
    }
    let mut nodes: Vec<(String, Option<&AttrEntry>)> = vec![
        ("`proxmox.node`".into(), node(set(top.get("proxmox")))),
        ("`node` of the template".into(), node(set(top.get("template")))),
    ];
    if let Some(managed) = set(top.get("managed")) {
        // `_`-prefixed entries are not VMs (the model skips them too).
        for (name, entry) in managed.iter().filter(|(n, _)| !n.starts_with('_')) {
            let what = format!("`node` of managed VM `{name}`");
            nodes.push((what, node(entry.value.as_attrs())));
        }
    }
    let text = fleet.db.text(d.file);
    for (what, entry) in nodes {
        let Some(entry) = entry else { continue };
        let v = &entry.value;
        // Another type is DF002's; a value in another file is reported where it is used.
        let Some(name) = v.as_str() else { continue };
        if v.span.file != d.file {
            continue;
        }
        if node_name_problem(name).is_none() {
            continue;
        }
        let shown: String = name.chars().flat_map(char::escape_debug).collect();
        let mut diag = Diagnostic::new(
            &RULE,
            v.span,
            format!("{what} `{shown}` is not a Proxmox node name: use letters, digits and inner hyphens (one DNS label: no dots, at most 63 characters), like `pve2`"),
        )
        .help("write the node's name as `pvecm nodes` shows it");
        // `pve1.lan` is the host's name with its domain: the node is `pve1`. Only a plain
        // string literal written right after `node =` is replaced: one bound in a `let` may
        // be `proxmox.host` too.
        let written = &text[v.span.range];
        let between = (entry.key_span.file == d.file && entry.key_span.range.end() <= v.span.range.start())
            .then(|| &text[usize::from(entry.key_span.range.end())..usize::from(v.span.range.start())]);
        let short = name.split('.').next().unwrap_or("");
        if name.contains('.')
            && node_name_problem(short).is_none()
            && written == format!("\"{name}\"")
            && between.is_some_and(|b| b.trim() == "=")
        {
            diag = diag.fix(Fix {
                message: format!("use `{short}`, the name without its domain"),
                applicability: Applicability::Unsafe,
                edits: vec![TextEdit::replace(
                    usize::from(v.span.range.start()),
                    usize::from(v.span.range.end()),
                    format!("\"{short}\""),
                )],
            });
        }
        out.push(diag);
    }
}

#[cfg(test)]
mod tests {
    use super::node_name_problem;
    use crate::check::check_fleet;
    use crate::model::fleet::{Fleet, NixRole};
    use crate::syntax::NoImports;

    /// What pve-common's `pve-node` format accepts (`^([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)$`),
    /// as one DNS label.
    #[test]
    fn node_names_as_proxmox_takes_them() {
        for ok in ["pve", "PVE", "pve-2", "1", "0pve", "a-b-c", &"n".repeat(63)] {
            assert_eq!(node_name_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "pve1.lan",
            "pve_1",
            "-pve",
            "pve-",
            "pve 1",
            "pve1 ",
            "pvé",
            "../nodes",
            &"n".repeat(64),
        ] {
            assert!(node_name_problem(bad).is_some(), "{bad:?}");
        }
    }

    fn vm015(src: &str) -> Vec<String> {
        let mut fleet = Fleet::default();
        fleet.add_nix("vms/definitions.nix", src, NixRole::Definitions, &NoImports);
        check_fleet(&fleet)
            .into_iter()
            .filter(|d| d.code() == "VM015")
            .map(|d| src[d.span.range].to_string())
            .collect()
    }

    #[test]
    fn every_node_vmctl_acts_on_is_checked_where_it_is_written() {
        let src = r#"{
  proxmox = { host = "pve1.lan"; node = "pve1.lan"; };
  template = { vmid = 9000; name = "t"; node = "pve_1"; };
  imported.old = { vmid = 100; readonly = true; node = "the old box"; };
  managed = {
    web = { vmid = 110; cores = 1; memory = 1024; disk = "8G"; node = "pve-2"; };
    db = { vmid = 111; cores = 1; memory = 1024; disk = "8G"; node = "-pve3"; };
  };
}"#;
        assert_eq!(vm015(src), ["\"pve1.lan\"", "\"pve_1\"", "\"-pve3\""]);
        let via_let = r#"let n = "pve 2"; in { proxmox = { host = "h"; node = n; }; }"#;
        assert_eq!(vm015(via_let), ["\"pve 2\""]);
    }

    /// The fix keeps the first label of a name with a domain, and only where `node = "…"` is
    /// written: a string bound in a `let` may be another field's too.
    #[test]
    fn a_name_with_a_domain_is_fixed_only_where_written() {
        let fixes = |src: &str| {
            let mut fleet = Fleet::default();
            fleet.add_nix("vms/definitions.nix", src, NixRole::Definitions, &NoImports);
            check_fleet(&fleet)
                .into_iter()
                .filter(|d| d.code() == "VM015")
                .map(|d| d.fix.map(|f| f.edits[0].insert.clone()))
                .collect::<Vec<_>>()
        };
        let direct = r#"{ proxmox = { host = "pve1.lan"; node = "pve1.lan"; }; managed.a = { vmid = 110; cores = 1; memory = 1024; disk = "8G"; node = "pve_2"; }; }"#;
        assert_eq!(fixes(direct), [Some("\"pve1\"".to_string()), None]);
        let shared = r#"let h = "pve1.lan"; in { proxmox = { host = h; node = h; }; }"#;
        assert_eq!(fixes(shared), [None]);
    }
}
