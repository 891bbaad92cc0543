//! FL005: definitions.nix declares managed VMs, but hosts.nix gives no admin key
//! (`_proxmox.adminKeys`) `vmctl provision` can hand to cloud-init.

use super::{Cascade, Diagnostic, Rule, Severity};
use crate::keys::{KeyError, PublicKey};
use crate::model::fleet::Fleet;
use crate::syntax::{Span, Value, ValueKind};

pub const RULE: Rule = Rule {
    code: "FL005",
    name: "missing-admin-keys",
    severity: Severity::Warning,
    cascade: Cascade::Always,
    summary: "managed VMs are declared but hosts.nix gives no admin key provision can use",
    explanation: "\
## What it does
When definitions.nix declares managed VMs, reads `_proxmox.adminKeys` of hosts.nix as
`vmctl provision` does and warns, at `managed`, when provision would refuse them: the
attribute is missing, is not a list, holds no string, holds a string that is not an
`ssh-ed25519` public key line, or is (or holds) an expression only Nix can evaluate
(`builtins.readFile ./admin.pub`) and Nix did not evaluate it (`VMCTL_NO_NIX`, no
`nix-instantiate`, or an evaluation error), or holds an entry that is not a string (a path
`./admin.pub`, a number): provision refuses it rather than leave out a key you meant. Both
`vmlint` and provision take what Nix computes, so a key read from a file with
`builtins.readFile` is fine when Nix runs. A related location points into hosts.nix.
Only checked when hosts.nix is part of the run.

## Why
cloud-init installs these keys for root in every new VM: they are the only way in before
NixOS is installed. Without them a provisioned VM is unreachable, so `vmctl provision` refuses
to start; this shows it while you edit, not when you provision.

## Example
```nix
# vms/definitions.nix
managed.web = { vmid = 110; cores = 2; memory = 2048; disk = \"20G\"; };
```
```nix
# hosts.nix: no `_proxmox.adminKeys`
{ doc1 = { publicKey = \"ssh-ed25519 AAAAC3Nza…\"; }; }
```

## Fix
Add your workstation's public key to hosts.nix:
`_proxmox.adminKeys = [ \"ssh-ed25519 AAAA… you@workstation\" ];` (only `ssh-ed25519` keys).
",
};

/// What provision would make of `_proxmox.adminKeys`, when it would refuse.
enum Refusal<'a> {
    /// No `_proxmox`, or no `adminKeys` in the `_proxmox` whose name is at this span.
    Missing(Option<Span>),
    /// `_proxmox` or `adminKeys` (named at the span) is a value of another type.
    NotAList(&'static str, Span, &'a Value),
    /// An empty list.
    NoKey(&'a Value),
    /// A string provision refuses as a key.
    BadKey(&'a Value, KeyError),
    /// An entry that is not a string (a path, a number): provision refuses rather than drop a
    /// key the user meant.
    NotAString(&'a Value),
    /// A value only Nix could compute (`builtins.readFile ./admin.pub`) that Nix did not
    /// evaluate: provision refuses to guess which keys were meant.
    NeedsNix(&'a Value),
}

/// True for a value the static evaluator leaves to Nix; a failed one (`Error`) was reported
/// where it failed and is not reported again.
fn needs_nix(v: &Value) -> bool {
    matches!(v.kind, ValueKind::Dynamic(_))
}

/// The first reason provision would refuse the admin keys of hosts.nix's value `hosts`; `None`
/// when it would take them. Both read the value with the Nix fallback's results filled in
/// (`extra_inputs` in cli/provision.rs): what is still dynamic here, Nix did not evaluate.
fn refusal(hosts: &Value) -> Option<Refusal<'_>> {
    // hosts.nix that is not a set is HS005's.
    let top = hosts.as_attrs()?;
    let Some(entry) = top.entry("_proxmox") else {
        return Some(Refusal::Missing(None));
    };
    let proxmox = &entry.value;
    if needs_nix(proxmox) {
        return Some(Refusal::NeedsNix(proxmox));
    }
    if proxmox.is_unknown() {
        return None;
    }
    let Some(set) = proxmox.as_attrs() else {
        return Some(Refusal::NotAList("_proxmox", entry.key_span, proxmox));
    };
    let Some(keys_entry) = set.entry("adminKeys") else {
        return Some(Refusal::Missing(Some(entry.key_span)));
    };
    let keys = &keys_entry.value;
    if needs_nix(keys) {
        return Some(Refusal::NeedsNix(keys));
    }
    if keys.is_unknown() {
        return None;
    }
    let Some(items) = keys.as_list() else {
        return Some(Refusal::NotAList("adminKeys", keys_entry.key_span, keys));
    };
    // Provision refuses to run with an entry it cannot know: it may be the key that was meant.
    if let Some(dynamic) = items.iter().find(|i| needs_nix(i)) {
        return Some(Refusal::NeedsNix(dynamic));
    }
    // Provision refuses an entry that is not a string, then parses every string and refuses
    // the first bad one.
    if let Some(other) = items.iter().find(|i| i.as_str().is_none() && !i.is_unknown()) {
        return Some(Refusal::NotAString(other));
    }
    for item in items {
        if let Some(line) = item.as_str() {
            if let Err(e) = PublicKey::parse(line) {
                return Some(Refusal::BadKey(item, e));
            }
        }
    }
    if items.iter().any(|i| i.as_str().is_some()) {
        return None;
    }
    // A failed entry is reported where it failed; it may have been meant as the key.
    if items.iter().any(Value::is_unknown) {
        return None;
    }
    Some(Refusal::NoKey(keys))
}

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let (Some((defs_file, _)), Some((hosts_file, _))) =
        (fleet.definitions_file(), fleet.hosts_file())
    else {
        return;
    };
    let Some(managed) = defs_file
        .eval
        .value
        .as_attrs()
        .and_then(|top| top.entry("managed"))
    else {
        return;
    };
    // An empty `managed` provisions nothing; one Nix could not determine may hold VMs.
    let declares_vms = match managed.value.as_attrs() {
        Some(set) => !set.is_empty(),
        None => managed.value.is_unknown(),
    };
    if !declares_vms {
        return;
    }
    let Some(refusal) = refusal(&hosts_file.eval.value) else {
        return;
    };
    let hosts_path = fleet.db.path(hosts_file.file).display().to_string();
    // Spans keep their own file: `_proxmox` may be imported from another one.
    let at = |v: &Value| v.span;
    let add = format!(
        "add your public key to {hosts_path}: `_proxmox.adminKeys = [ \"ssh-ed25519 AAAA… you@workstation\" ];`"
    );
    let mut help = add;
    let (message, note) = match refusal {
        Refusal::Missing(None) => {
            // The opening brace of hosts.nix's set: where `_proxmox` would go.
            let top = hosts_file.eval.value.span;
            let text = fleet.db.text(top.file);
            let start = usize::from(top.range.start());
            let brace = (text.get(start..start + 1) == Some("{")).then(|| {
                Span::new(
                    top.file,
                    rowan::TextRange::at(top.range.start(), 1.into()),
                )
            });
            (
                format!("managed VMs are declared, but {hosts_path} has no `_proxmox.adminKeys`: provisioned VMs would be unreachable"),
                brace.map(|b| (b, "this set has no `_proxmox`".to_string())),
            )
        }
        Refusal::Missing(Some(key)) => (
            format!("managed VMs are declared, but `_proxmox` in {hosts_path} has no `adminKeys`: provisioned VMs would be unreachable"),
            Some((key, "`_proxmox` without `adminKeys`".to_string())),
        ),
        Refusal::NotAList(field, key, v) => (
            format!(
                "managed VMs are declared, but `{field}` in {hosts_path} is {}, not {}: provision finds no admin key in it",
                v.type_name(),
                if field == "adminKeys" { "a list of key lines" } else { "an attribute set" }
            ),
            Some((key, format!("`{field}` is {} here", v.type_name()))),
        ),
        Refusal::NoKey(v) => (
            format!("managed VMs are declared, but `_proxmox.adminKeys` in {hosts_path} holds no key line: provisioned VMs would be unreachable"),
            Some((at(v), "an empty list".to_string())),
        ),
        Refusal::NeedsNix(v) => {
            help = "let Nix evaluate it (install `nix-instantiate`, unset VMCTL_NO_NIX, fix the evaluation error `vmlint` shows), or write the key lines themselves: `adminKeys = [ \"ssh-ed25519 AAAA… you@workstation\" ];`".into();
            (
                format!("managed VMs are declared, but `_proxmox.adminKeys` in {hosts_path} is computed by Nix and Nix did not evaluate it: provision cannot know which keys to install"),
                Some((at(v), "only Nix can compute this".to_string())),
            )
        }
        Refusal::NotAString(v) => {
            help = "write the public key line itself, or `(builtins.readFile ./admin.pub)` to read it from a file".into();
            (
                format!(
                    "managed VMs are declared, but `_proxmox.adminKeys` in {hosts_path} holds {}, not a key line: provision refuses it rather than leave that key out",
                    v.type_name()
                ),
                Some((at(v), format!("{}, not a key line", v.type_name()))),
            )
        }
        Refusal::BadKey(v, e) => {
            let why = match e {
                KeyError::UnsupportedType(kind) => {
                    format!("it is a `{kind}` key, and provision gives cloud-init ssh-ed25519 keys only")
                }
                other => other.to_string(),
            };
            help = "replace it with an ssh-ed25519 public key line (`ssh-ed25519 AAAA… you@workstation`), or remove it".into();
            (
                format!("managed VMs are declared, but provision refuses an admin key in {hosts_path}: {why}"),
                Some((at(v), "this admin key".to_string())),
            )
        }
    };
    let mut d = Diagnostic::new(&RULE, managed.key_span, message).help(help);
    if let Some((span, label)) = note {
        d = d.note(span, label);
    }
    out.push(d);
}

#[cfg(test)]
mod tests {
    use crate::check::check_fleet;
    use crate::model::fleet::{Fleet, NixRole};
    use crate::syntax::NoImports;

    const DEFS: &str = r#"{ proxmox.host = "h"; managed.web = { vmid = 110; cores = 2; memory = 2048; disk = "20G"; }; }"#;
    const ADMIN: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHxM2a6DvE298UXZdhKYSMrTPvzvceh5+ZJ77tKj9n0D admin@workstation";

    /// FL005's findings on a fleet of `defs` and `hosts`: the text each points at in
    /// definitions.nix, and the text of its note in hosts.nix.
    fn fl005(defs: &str, hosts: Option<&str>) -> Vec<(String, Option<String>)> {
        let mut fleet = Fleet::default();
        fleet.add_nix("vms/definitions.nix", defs, NixRole::Definitions, &NoImports);
        if let Some(h) = hosts {
            fleet.add_nix("hosts.nix", h, NixRole::Hosts, &NoImports);
        }
        check_fleet(&fleet)
            .into_iter()
            .filter(|d| d.code() == "FL005")
            .map(|d| {
                let note = d.notes.first().map(|n| hosts.unwrap()[n.span.range].to_string());
                (defs[d.span.range].to_string(), note)
            })
            .collect()
    }

    fn keys(list: &str) -> String {
        format!("let admin = \"{ADMIN}\"; in {{ _proxmox = {{ hostname = \"prom.lan\"; adminKeys = {list}; }}; }}")
    }

    #[test]
    fn fires_at_managed_with_the_reason_in_hosts_nix() {
        let managed = || "managed".to_string();
        let cases: &[(String, Option<&str>)] = &[
            ("{ doc1 = { publicKey = \"x\"; }; }".into(), Some("{")),
            ("let a = 1; in { doc1 = { publicKey = \"x\"; }; }".into(), Some("{")),
            ("{ _proxmox = { hostname = \"p\"; }; }".into(), Some("_proxmox")),
            (keys("[ ]"), Some("[ ]")),
            (keys("admin"), Some("adminKeys")),
            (keys("[ 42 ./admin.pub ]"), Some("42")),
            (keys("[ admin ./admin.pub ]"), Some("./admin.pub")),
            (keys("[ admin 42 ]"), Some("42")),
            (keys("[ admin \"not a key\" ]"), Some("\"not a key\"")),
            (keys("[ \"\" ]"), Some("\"\"")),
            (keys("[ \"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 rsa@host\" ]"), Some("\"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 rsa@host\"")),
            ("{ _proxmox = \"prom.lan\"; }".into(), Some("_proxmox")),
            // What only Nix computes, left unevaluated (here: no Nix fallback ran): provision
            // cannot know the keys, even beside one it knows.
            (keys("[ (builtins.readFile ./admin.pub) ]"), Some("builtins.readFile ./admin.pub")),
            (keys("[ admin (builtins.readFile ./admin.pub) ]"), Some("builtins.readFile ./admin.pub")),
            (keys("builtins.fromJSON (builtins.readFile ./keys.json)"), Some("builtins.fromJSON (builtins.readFile ./keys.json)")),
        ];
        for (hosts, note) in cases {
            assert_eq!(
                fl005(DEFS, Some(hosts)),
                [(managed(), note.map(str::to_string))],
                "{hosts}"
            );
        }
    }

    #[test]
    fn silent_when_provision_takes_the_keys_or_nothing_is_provisioned_or_it_cannot_be_known() {
        let quiet: &[(&str, Option<String>)] = &[
            (DEFS, Some(keys("[ admin ]"))),
            (DEFS, Some(keys(&format!("[ \"  {ADMIN}  \" ]")))),
            (DEFS, Some(keys(&format!("[ \"from=\\\"10.0.0.0/8\\\" {ADMIN}\" ]")))),
            // Nothing to provision.
            (r#"{ proxmox.host = "h"; managed = { }; }"#, Some("{ }".into())),
            (r#"{ proxmox.host = "h"; imported.a = { vmid = 100; readonly = true; }; }"#, Some("{ }".into())),
            // hosts.nix not in the run (a definitions.nix linted alone).
            (DEFS, None),
        ];
        for (defs, hosts) in quiet {
            assert_eq!(fl005(defs, hosts.as_deref()), [], "{defs} {hosts:?}");
        }
    }
}
