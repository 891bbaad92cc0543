//! NX006: a file linted as plain Nix, with which checks ran and how to choose others.

use super::util::report_said;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::model::read::Issue;

pub const RULE: Rule = Rule {
    code: "NX006",
    name: "plain-nix-file",
    severity: Severity::Info,
    cascade: Cascade::Always,
    summary: "a file was checked as plain Nix only (its name is not one vmctl knows)",
    explanation: "\
## What it does
Notes, for a file given by path without `--as`, that vmctl read it as plain Nix: its name is
not `definitions.nix` or `hosts.nix`, so only Nix syntax and evaluation were checked, none of
the fleet checks.

## Why
\"No problems\" on `vmlint my-vms.nix` should not suggest that the VM checks passed: they did
not run.

## Example
```text
vmlint inventory.nix
```

## Fix
Nothing to fix. To check the file as a fleet file, say which: `vmlint --as definitions FILE`
or `vmlint --as hosts FILE`.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    report_said(fleet, &RULE, out, |_, i| matches!(i, Issue::Role { .. }));
}
