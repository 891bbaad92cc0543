//! NX003: evaluating the file fails the way Nix itself would fail.

use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::syntax::EvalErrorKind;

pub const RULE: Rule = Rule {
    code: "NX003",
    name: "evaluation-error",
    severity: Severity::Error,
    cascade: Cascade::SuppressedWhenFileBroken,
    summary:
        "evaluating the file fails: undefined variable, type error, missing attribute, bad import",
    explanation: "\
## What it does
Evaluates the file statically and reports what would make Nix fail: an undefined variable, an
operator applied to the wrong types (`1 + \"a\"`), selecting an attribute that does not exist,
an `import` of a file that is not there, infinite recursion, a failed `assert`, division by
zero, a function called with a missing or unexpected argument.

## Why
These errors only show up when Nix evaluates the file, often much later (during
`nixos-rebuild` or provisioning). vmlint shows them at the exact expression, in seconds.

## Example
```nix
let cores = 2; in {
  managed.web = { vmid = 110; cores = core; };   # undefined variable `core`
}
```

## Fix
Correct the expression the label points at. Nothing is fixed automatically.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    for f in &fleet.files {
        for e in &f.eval.errors {
            if e.kind == EvalErrorKind::DuplicateAttribute {
                continue;
            }
            let mut d = Diagnostic::new(&RULE, e.span, e.message.clone());
            if let Some((span, msg)) = &e.related {
                d = d.note(*span, msg.clone());
            }
            if e.kind == EvalErrorKind::Import {
                d = d.help("imports are resolved relative to the importing file; check the path and that the file exists");
            }
            out.push(d);
        }
    }
}
