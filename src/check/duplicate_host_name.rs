//! HS003: two hosts share a name, hostname or SSH alias.

use std::collections::HashMap;

use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::syntax::Span;

pub const RULE: Rule = Rule {
    code: "HS003",
    name: "duplicate-host-name",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "two hosts share a name (ignoring case), a `hostname` or an `sshAlias`",
    explanation: "\
## What it does
Reports hosts in hosts.nix whose names differ only in case (`Doc1` and `doc1`), or that declare
the same `hostname` or the same `sshAlias`. (Two entries with exactly the same name are a Nix
error, reported as NX004.)

## Why
Host names are DNS names, which ignore case; SSH aliases select one machine. Two entries that
resolve to the same name send deployments and secrets to the wrong machine.

## Example
```nix
doc1 = { hostname = \"doc1\"; sshAlias = \"doc1\"; };
docs = { hostname = \"doc1\"; sshAlias = \"docs\"; };
```

## Fix
Give each host its own name, `hostname` and `sshAlias`.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some((file, hosts)) = fleet.hosts_file() else {
        return;
    };
    let span = |r| Span::new(file.file, r);
    let mut names: HashMap<String, &str> = HashMap::new();
    let mut hostnames: HashMap<String, &str> = HashMap::new();
    let mut aliases: HashMap<String, &str> = HashMap::new();
    for h in &hosts.hosts {
        let first_range = |n: &str| {
            hosts
                .get(n)
                .map(|f| span(f.name_range))
                .unwrap_or(span(h.name_range))
        };
        let lower = h.name.to_lowercase();
        if let Some(first) = names.get(&lower) {
            out.push(
                Diagnostic::new(
                    &RULE,
                    span(h.name_range),
                    format!("host `{}` differs from `{first}` only in case", h.name),
                )
                .note(first_range(first), format!("`{first}` is defined here")),
            );
        } else {
            names.insert(lower, &h.name);
        }
        for (value, seen, what) in [
            (&h.hostname, &mut hostnames, "hostname"),
            (&h.ssh_alias, &mut aliases, "sshAlias"),
        ] {
            let Some(v) = value else { continue };
            let key = v.to_lowercase();
            match seen.get(&key) {
                Some(first) => out.push(
                    Diagnostic::new(
                        &RULE,
                        span(h.name_range),
                        format!("host `{}` has the same {what} `{v}` as `{first}`", h.name),
                    )
                    .note(first_range(first), format!("`{first}` uses {what} `{v}`")),
                ),
                None => {
                    seen.insert(key, &h.name);
                }
            }
        }
    }
}
