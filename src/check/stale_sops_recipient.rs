//! FL002: a .sops.yaml recipient named after a host differs from the one its key derives.

use super::sops_file::{host_recipients, sops_file, value_span};
use super::{Applicability, Cascade, Diagnostic, Fix, Rule, Severity};
use crate::text::TextEdit;
use crate::model::fleet::Fleet;
use crate::syntax::Span;

pub const RULE: Rule = Rule {
    code: "FL002",
    name: "stale-sops-recipient",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "a .sops.yaml recipient named after a host is not that host's key",
    explanation: "\
## What it does
Reports a `.sops.yaml` anchor named after a host of hosts.nix (`&doc1 age1…`), or an inline
recipient commented with the host's name (`- age1… # doc1`), whose recipient is not the one
derived from the host's current `publicKey`.

## Why
When a VM is reinstalled its host key changes. If .sops.yaml still lists the old recipient,
new and re-keyed secrets are encrypted for a key nobody holds any more and the host cannot
decrypt them, while the fleet looks configured.

## Example
```yaml
keys:
  - &doc1 age1old…   # hosts.nix has doc1's new key, whose recipient is age1new…
```

## Fix
Replace the recipient with the derived one (the suggested fix does exactly that; it is unsafe
because existing secrets must then be re-keyed with `vmctl secrets rekey`).
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some((sops_id, sops)) = sops_file(fleet) else {
        return;
    };
    let hosts = host_recipients(fleet);
    // (node, host's file, host, derived recipient, what the stale value is)
    let mut stale = Vec::new();
    // Anchors named after a host.
    for (name, value, id) in sops.scalar_anchors() {
        if let Some((file, host, recipient)) = hosts.iter().find(|(_, h, _)| h.name == name) {
            if value != *recipient && value.starts_with("age1") {
                stale.push((id, *file, *host, recipient, format!("the anchor &{name}")));
            }
        }
    }
    // Inline recipients commented with a host's name.
    for rule in &sops.rules {
        let Ok(list) = &rule.age else { continue };
        for item in &list.items {
            let (Some(id), Some(value), Some(comment)) =
                (item.node, &item.recipient, &item.comment)
            else {
                continue;
            };
            if item.alias.is_some() || stale.iter().any(|s| s.0 == id) {
                continue;
            }
            let word = comment.split_whitespace().next().unwrap_or("");
            if let Some((file, host, recipient)) = hosts.iter().find(|(_, h, _)| h.name == word) {
                if value != recipient {
                    let what = format!("the recipient commented `# {word}`");
                    stale.push((id, *file, *host, recipient, what));
                }
            }
        }
    }
    for (id, hosts_file, host, recipient, what) in stale {
        let span = value_span(sops_id, &sops, id);
        let mut d = Diagnostic::new(
            &RULE,
            span,
            format!(
                "{what} is not host `{}`'s recipient: its publicKey derives {recipient}",
                host.name
            ),
        )
        .help("replace it with the derived recipient, then run `vmctl secrets rekey`")
        .fix(Fix {
            message: format!("use {recipient}"),
            applicability: Applicability::Unsafe,
            edits: vec![TextEdit::replace(
                usize::from(span.range.start()),
                usize::from(span.range.end()),
                recipient,
            )],
        });
        if let Some(range) = host.public_key_range {
            d = d.note(
                Span::new(hosts_file, range),
                format!("`{}`'s key in hosts.nix", host.name),
            );
        }
        out.push(d);
    }
}
