//! DF004 and HS004: a fleet file has a shape vmctl cannot read.

use super::{Diagnostic, Rule, Severity};
use crate::model::fleet::{Fleet, NixRole};
use crate::model::read::Issue;

pub const DEFINITIONS_RULE: Rule = Rule {
    code: "DF004",
    name: "unsupported-definitions-shape",
    severity: Severity::Warning,
    summary: "a file read as definitions.nix is not a vmctl definitions file",
    explanation: "\
## What it does
Reports a file read as definitions.nix that is not an attribute set of `proxmox`, `template`,
`imported`, `managed`, `vmidRanges` and `settings`: a function (a NixOS module, another tool's
`{ inputs }: …` inventory), a list, or a set with none of those attributes. Only its Nix
syntax and evaluation are checked; none of the VM checks run.

## Why
vmctl reads this file as the source of truth for every VM; a shape it does not understand
cannot be checked or provisioned from. It is a warning, not an error, because such a file is
usually another tool's (a `vms/definitions.nix` of `mkVm` calls): vmctl then knows no VMs, and
every operation on a VMID it does not know is refused.

## Example
```nix
{ lib, ... }: { managed = { }; }   # a module function, not a plain set
```

## Fix
For vmctl's own file, make it a plain attribute set; put helpers in a `let … in` around it.
For another tool's file, lint it as plain Nix (`vmlint --as nix FILE`).
",
};

pub const HOSTS_RULE: Rule = Rule {
    code: "HS004",
    name: "unsupported-hosts-shape",
    severity: Severity::Warning,
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

fn report(fleet: &Fleet, role: NixRole, rule: &'static Rule, out: &mut Vec<Diagnostic>) {
    for f in fleet.files.iter().filter(|f| f.role == role) {
        for issue in &f.issues {
            if let Issue::Unsupported { span, message } = issue {
                out.push(Diagnostic::new(rule, *span, message.clone()));
            }
        }
    }
}

pub fn check_definitions(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    report(fleet, NixRole::Definitions, &DEFINITIONS_RULE, out)
}

pub fn check_hosts(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    report(fleet, NixRole::Hosts, &HOSTS_RULE, out)
}
