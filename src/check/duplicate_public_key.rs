//! HS002: two hosts have the same public key.

use std::collections::HashMap;

use super::invalid_public_key::parse_public_key;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::syntax::Span;

pub const RULE: Rule = Rule {
    code: "HS002",
    name: "duplicate-public-key",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "two hosts have the same public key",
    explanation: "\
## What it does
Reports a host whose `publicKey` (ignoring the comment) is the same as an earlier host's, with a
note at the first one.

## Why
Host keys identify machines. Two hosts with one key usually means a VM was cloned with its
host key, or a key was pasted into the wrong entry: SSH cannot tell them apart and both get the
same sops recipient, so one host can read the other's secrets.

## Example
```nix
doc1 = { publicKey = \"ssh-ed25519 AAAAC3Nza…wH\"; };
igpu = { publicKey = \"ssh-ed25519 AAAAC3Nza…wH\"; };
```

## Fix
Put each host's own key in its entry (`ssh-keyscan -t ed25519 HOST`); for a cloned VM,
regenerate its host keys.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some((file, hosts)) = fleet.hosts_file() else {
        return;
    };
    let mut seen: HashMap<Vec<u8>, (&str, Span)> = HashMap::new();
    for h in &hosts.hosts {
        let (Some(key), Some(range)) = (&h.public_key, h.public_key_range) else {
            continue;
        };
        let Ok((_, blob)) = parse_public_key(key) else {
            continue;
        };
        let span = Span::new(file.file, range);
        match seen.get(&blob) {
            Some((first, first_span)) => out.push(
                Diagnostic::new(
                    &RULE,
                    span,
                    format!("host `{}` has the same public key as `{first}`", h.name),
                )
                .note(*first_span, format!("`{first}` has this key")),
            ),
            None => {
                seen.insert(blob, (&h.name, span));
            }
        }
    }
}
