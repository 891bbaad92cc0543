//! DF004: a file read as definitions.nix is not a vmctl definitions file.

use super::util::report_said;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::{Fleet, NixRole};
use crate::model::read::Issue;

pub const RULE: Rule = Rule {
    code: "DF004",
    name: "unsupported-definitions-shape",
    severity: Severity::Warning,
    cascade: Cascade::SuppressedWhenFileBroken,
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

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    report_said(fleet, &RULE, out, |f, i| {
        f.role == NixRole::Definitions && matches!(i, Issue::Unsupported { .. })
    });
}
