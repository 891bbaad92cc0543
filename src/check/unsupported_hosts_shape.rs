//! HS004: hosts.nix has a shape vmctl does not read or edit.

use super::util::report_said;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::{Fleet, NixRole};
use crate::model::read::Issue;

pub const RULE: Rule = Rule {
    code: "HS004",
    name: "unsupported-hosts-shape",
    severity: Severity::Warning,
    cascade: Cascade::SuppressedWhenFileBroken,
    summary: "hosts.nix has a shape vmctl does not read or edit",
    explanation: "\
## What it does
Reports a hosts.nix (or an entry of it) that is not in the shape vmctl reads and edits:
an attribute set of `name = { publicKey = \"ssh-ed25519 …\"; hostname = …; sshAlias = …; };`,
optionally inside `let … in`, with non-host entries named `_…`. Lists of keys per name,
nested groups and module functions are reported once per file.

## Why
vmctl adds new hosts to this file and derives their age recipients from it. It will not guess
at a shape it does not understand; it tells you instead, and leaves the file alone.

## Example
```nix
{ alice = [ \"ssh-ed25519 AAAA…\" ]; }   # a list of keys, not a host entry
```

## Fix
Use the supported shape, or point `settings.hostsFile` in definitions.nix at a file that has
it. Entries that are not hosts can be renamed to start with `_`.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    report_said(fleet, &RULE, out, |f, i| {
        f.role == NixRole::Hosts && matches!(i, Issue::Unsupported { .. })
    });
}
