//! Reading `hosts.nix` (evaluated) into [`Hosts`].
//!
//! The supported shape is the seed's: an attribute set (possibly inside `let … in`) whose
//! entries are `name = { publicKey = "ssh-ed25519 …"; hostname = …; sshAlias = …; … };`.
//! Entries whose name starts with `_` (like `_proxmox`) are not hosts. Anything else is
//! reported as unsupported rather than guessed at.

use super::read::{Ctx, Field, Fields, Issue, Ty};
use super::{Given, Host, Hosts};
use crate::syntax::{Value, ValueKind};

/// Fields that mark an attribute set as a host entry.
pub const HOST_MARKERS: &[&str] = &["publicKey", "hostname", "sshAlias"];

/// What an attribute of the hosts set is. The one definition both readers of hosts.nix use:
/// lint (this module, on the evaluated value) and the editor (`edit::hosts`, on the syntax
/// tree), so they never disagree on which entries are hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// `_`-prefixed: fleet settings such as `_proxmox`, never a host; may hold anything.
    Setting,
    /// An attribute set with at least one of [`HOST_MARKERS`]; `publicKey` may be missing
    /// (a host whose key is not known yet).
    Host,
    /// Anything else: not something vmctl understands as a host.
    Unsupported,
}

/// Classifies the attribute `name` of the hosts set; `attrs` holds the attribute names of its
/// value when that value is an attribute set, `None` otherwise.
pub fn classify<'a>(name: &str, attrs: Option<impl IntoIterator<Item = &'a str>>) -> EntryKind {
    if name.starts_with('_') {
        return EntryKind::Setting;
    }
    let has_marker = attrs.is_some_and(|a| a.into_iter().any(|k| HOST_MARKERS.contains(&k)));
    if has_marker {
        EntryKind::Host
    } else {
        EntryKind::Unsupported
    }
}

#[derive(Debug, Clone, Default)]
pub struct ReadHosts {
    pub hosts: Hosts,
    pub issues: Vec<Issue>,
}

pub fn read_hosts(value: &Value) -> ReadHosts {
    let mut out = ReadHosts::default();
    let top = match &value.kind {
        ValueKind::Attrs(a) => a,
        ValueKind::Error => return out,
        ValueKind::Dynamic(reason) => {
            out.issues.push(Issue::Unsupported {
                span: value.span,
                message: format!("hosts.nix cannot be read statically: it {reason}"),
            });
            return out;
        }
        _ => {
            let hint = if matches!(value.kind, ValueKind::Lambda) {
                " (it is a function, like a NixOS module)"
            } else {
                ""
            };
            out.issues.push(Issue::Unsupported {
                span: value.span,
                message: format!(
                    "hosts.nix must evaluate to an attribute set of hosts, not {}{hint}",
                    value.type_name()
                ),
            });
            return out;
        }
    };
    let mut unsupported: Vec<(String, &Value)> = Vec::new();
    for (name, entry) in top.iter() {
        let v = &entry.value;
        let set = v.as_attrs();
        match classify(name, set.map(|s| s.iter().map(|(k, _)| k.as_str()))) {
            EntryKind::Setting => {
                if name == "_proxmox" {
                    admin_keys_unknown(v, &mut out.issues);
                }
                continue;
            }
            EntryKind::Unsupported => {
                if !v.is_unknown() {
                    unsupported.push((name.clone(), v));
                }
                continue;
            }
            EntryKind::Host => {}
        }
        let set = set.expect("a host is an attribute set");
        let f = Fields::new(set, v.span, Ctx::named("host `", name, "`"));
        let pk = f.get("publicKey", Ty::Str, &mut out.issues);
        out.hosts.hosts.push(Host {
            name: name.clone(),
            public_key: pk.and_then(Value::as_str).map(str::to_string),
            hostname: f.str("hostname", &mut out.issues),
            ssh_alias: f.str("sshAlias", &mut out.issues),
            name_range: entry.key_span.range,
            public_key_range: pk.map(|v| v.span.range),
            public_key_given: if set.get("publicKey").is_some() {
                Given::Known
            } else {
                Given::Absent
            },
        });
    }
    if let Some((name, v)) = unsupported.first() {
        let more = match unsupported.len() {
            1 => String::new(),
            2 => " (and 1 more entry like it)".to_string(),
            n => format!(" (and {} more entries like it)", n - 1),
        };
        out.issues.push(Issue::Unsupported {
            span: v.span,
            message: format!(
                "entry `{name}` is {}, not a host `{{ publicKey = \"ssh-ed25519 …\"; hostname = …; }}`{more}",
                describe(v)
            ),
        });
    }
    out
}

/// Records the parts of `_proxmox.adminKeys` only Nix can compute, so the Nix fallback
/// evaluates hosts.nix for them: provision installs these keys, and must know every one.
fn admin_keys_unknown(proxmox: &Value, issues: &mut Vec<Issue>) {
    let dynamic = |v: &Value, field: &str, issues: &mut Vec<Issue>| {
        if let ValueKind::Dynamic(reason) = &v.kind {
            issues.push(Issue::Dynamic {
                span: v.span,
                field: Field::new(field, "`_proxmox` in hosts.nix"),
                reason: reason.clone(),
            });
        }
    };
    dynamic(proxmox, "_proxmox", issues);
    let Some(keys) = proxmox.as_attrs().and_then(|p| p.get("adminKeys")) else {
        return;
    };
    dynamic(keys, "adminKeys", issues);
    for item in keys.as_list().into_iter().flatten() {
        dynamic(item, "adminKeys", issues);
    }
}

fn describe(v: &Value) -> &'static str {
    match &v.kind {
        ValueKind::Attrs(_) => "a set without `publicKey`, `hostname` or `sshAlias`",
        _ => v.type_name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::{evaluate, NoImports, SourceDb};

    fn read(src: &str) -> ReadHosts {
        let mut db = SourceDb::new();
        let f = db.add("/fleet/hosts.nix", src);
        read_hosts(&evaluate(&mut db, f, &NoImports).value)
    }

    #[test]
    fn reads_the_demo_hosts_file() {
        let r = read(include_str!("../../hosts.nix"));
        assert_eq!(r.issues, vec![]);
        let names: Vec<&str> = r.hosts.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["doc1", "igpu"]);
        assert!(r
            .hosts
            .get("doc1")
            .unwrap()
            .public_key
            .as_deref()
            .unwrap()
            .starts_with("ssh-ed25519 "));
    }

    #[test]
    fn other_shapes_are_unsupported_not_guessed() {
        let r = read(r#"{ alice = [ "ssh-ed25519 AAAA" ]; bob = [ ]; }"#);
        assert!(r.hosts.hosts.is_empty());
        assert!(
            matches!(&r.issues[..], [Issue::Unsupported { message, .. }] if message.contains("1 more"))
        );
        let r = read("{ config, ... }: { }");
        assert!(
            matches!(&r.issues[..], [Issue::Unsupported { message, .. }] if message.contains("function"))
        );
    }
}
