//! Reading `hosts.nix` (evaluated) into [`Hosts`].
//!
//! The supported shape is the seed's: an attribute set (possibly inside `let … in`) whose
//! entries are `name = { publicKey = "ssh-ed25519 …"; hostname = …; sshAlias = …; … };`.
//! Entries whose name starts with `_` (like `_proxmox`) are not hosts. Anything else is
//! reported as unsupported rather than guessed at.

use super::read::{Ctx, Fields, Issue, Ty};
use super::{Host, Hosts};
use crate::syntax::{Value, ValueKind};

/// Fields that mark an attribute set as a host entry.
pub const HOST_MARKERS: &[&str] = &["publicKey", "hostname", "sshAlias"];

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
        if name.starts_with('_') {
            continue;
        }
        let v = &entry.value;
        let Some(set) = v.as_attrs() else {
            if !v.is_unknown() {
                unsupported.push((name.clone(), v));
            }
            continue;
        };
        if !HOST_MARKERS.iter().any(|m| set.get(m).is_some()) {
            unsupported.push((name.clone(), v));
            continue;
        }
        let f = Fields::new(set, v.span, Ctx::named("host `", name, "`"));
        let pk = f.get("publicKey", Ty::Str, &mut out.issues);
        out.hosts.hosts.push(Host {
            name: name.clone(),
            public_key: pk.and_then(Value::as_str).map(str::to_string),
            hostname: f.str("hostname", &mut out.issues),
            ssh_alias: f.str("sshAlias", &mut out.issues),
            name_range: entry.key_span.range,
            public_key_range: pk.map(|v| v.span.range),
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
