//! NX002: a value vmctl needs cannot be determined without evaluating Nix.

use super::util::issues;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::model::read::Issue;

pub const RULE: Rule = Rule {
    code: "NX002",
    name: "dynamic-value",
    severity: Severity::Warning,
    cascade: Cascade::Always,
    summary: "a value vmctl needs cannot be determined statically",
    explanation: "\
## What it does
vmlint evaluates fleet files itself, without Nix, for the subset of the language fleet files
use (literals, lists, sets, `let`, `rec`, `inherit`, `//`, `++`, interpolation, functions
defined in the file, `import` of relative paths). When a value it needs comes from outside that
subset (a builtin, `pkgs`, `lib`, a function passed in), it asks `nix-instantiate --eval
--strict --json` for the file. This warning means neither could determine the value, so the
checks that need it were skipped.

## Why
A check that silently skips a value is worse than no check: you would trust a VMID or a
memory size nobody looked at.

## Example
```nix
managed.web = { vmid = 110; memory = lib.mkDefault 4096; };   # needs nixpkgs' lib
```

## Fix
Write the value as a literal, or install Nix (`apt-get install nix-bin`) so vmlint can fall
back to it. Files that need `pkgs` or `lib` cannot be checked without them.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    for (_, issue) in issues(fleet) {
        if let Issue::Dynamic { span, field, reason } = issue {
            out.push(
                Diagnostic::new(&RULE, *span, format!("{field} cannot be determined statically: it {reason}"))
                    .help("write the value as a literal, or install Nix (apt-get install nix-bin) so vmlint can evaluate this file"),
            );
        }
    }
}
