//! NX001: the file is not valid Nix.

use super::{Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::syntax::Span;

pub const RULE: Rule = Rule {
    code: "NX001",
    name: "syntax-error",
    severity: Severity::Error,
    summary: "the file is not valid Nix",
    explanation: "\
## What it does
Reports every syntax error the Nix parser finds, at the exact place it stops making sense.

## Why
A file Nix cannot parse breaks `nix flake check`, every `nixos-rebuild` and vmctl itself.
vmlint keeps checking the rest of the file, so you see every problem at once.

## Example
```nix
{
  doc1 = { hostname = \"doc1\"; }   # missing `;` after the closing brace
  igpu = { hostname = \"igpu\"; };
}
```

## Fix
Add the missing token the message names (often a `;` after an attribute value or a closing
`}`/`]`). Nothing is fixed automatically.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    for f in &fleet.files {
        for (file, e) in &f.eval.syntax_errors {
            out.push(Diagnostic::new(
                &RULE,
                Span::new(*file, e.range),
                e.message.clone(),
            ));
        }
    }
}
