//! VM013: a resource an imported VM or the template documents that vmctl cannot read or that
//! looks wrong (never an error: nothing is created from it).

use super::util::report_said;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::model::read::Issue;

pub const RULE: Rule = Rule {
    code: "VM013",
    name: "unreadable-documented-resource",
    severity: Severity::Warning,
    cascade: Cascade::Always,
    summary:
        "a documented resource of an imported VM or the template cannot be read or looks wrong",
    explanation: "\
## What it does
Imported VMs and the template describe their resources for the docs, flat or under `specs`.
vmctl reads them leniently: `cores = 4` or `\"4 vCPUs\"`; `memory = 16384` (MiB), `\"16G\"` or
`\"16 GB\"`; `disk`, `storage` and `node` as any text (`\"passthrough of /dev/sdb\"` is fine).
This rule warns when `cores` or `memory` cannot be read as a count or an amount, or is outside
what a VM can have (`memory = 16;` is 16 MiB), or `specs` is not a set.

## Why
Nothing is created from these values, so they never stop a command; but `docs/machines.md`
shows nothing (or something misleading) for a value vmctl cannot read.

## Example
```nix
imported.nas = { vmid = 101; readonly = true; specs = { cores = \"lots\"; memory = 16; }; };
```

## Fix
Write a count and an amount (`cores = 4; memory = 16384;`), or keep free text in `notes` or
a `_`-prefixed field.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    report_said(fleet, &RULE, out, |_, i| {
        matches!(i, Issue::Documentation { .. })
    });
}
