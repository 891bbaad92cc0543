//! NX005: the Nix fallback could not evaluate a file (a timeout, a read outside the fleet, an
//! error).

use super::util::report_said;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::model::read::Issue;

pub const RULE: Rule = Rule {
    code: "NX005",
    name: "nix-fallback-failed",
    severity: Severity::Warning,
    cascade: Cascade::Always,
    summary: "nix-instantiate could not evaluate a file whose values vmctl needs",
    explanation: "\
## What it does
When the static evaluator cannot know a value (NX002), vmctl asks `nix-instantiate` for the
file. That evaluation is restricted to the fleet directory (Nix's `restrict-eval`, with only
the fleet root on the search path and no `NIX_PATH`) and stopped after 10 seconds
(`VMCTL_NIX_TIMEOUT`). This rule reports why it gave no value: a timeout, a read outside the
fleet, or an evaluation error. The values stay unknown (NX002), and whatever depends on them
is treated as unknown: vmctl refuses rather than guesses.

## Why
Linting must not hang on a loop, and must not read (or run builtins over) files outside the
repository it was pointed at.

## Example
```nix
managed.web = { vmid = 110; cores = (import ../../elsewhere.nix).cores; memory = 4096; disk = \"20G\"; };
```

## Fix
Keep imports inside the fleet; remove the loop; or write the value as a literal.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    report_said(fleet, &RULE, out, |_, i| {
        matches!(i, Issue::Evaluator { .. })
    });
}
