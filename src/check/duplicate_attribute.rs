//! NX004: the same attribute is defined twice in one set.

use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::syntax::EvalErrorKind;

pub const RULE: Rule = Rule {
    code: "NX004",
    name: "duplicate-attribute",
    severity: Severity::Error,
    cascade: Cascade::SuppressedWhenFileBroken,
    summary: "an attribute is defined twice in the same set",
    explanation: "\
## What it does
Reports an attribute defined twice in one attribute set (including through nested paths such
as `a.b = 1;` next to `a = 2;`), with a note at the first definition.

## Why
Nix refuses such a file (`attribute 'x' already defined`). In definitions.nix it usually means
two VMs were given the same name by copy and paste, so one of them would silently never exist.

## Example
```nix
managed = {
  web = { vmid = 110; };
  web = { vmid = 111; };   # already defined
};
```

## Fix
Rename or remove one of the two definitions. Nothing is fixed automatically.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    for f in &fleet.files {
        for e in f
            .eval
            .errors
            .iter()
            .filter(|e| e.kind == EvalErrorKind::DuplicateAttribute)
        {
            let mut d = Diagnostic::new(&RULE, e.span, e.message.clone());
            if let Some((span, msg)) = &e.related {
                d = d.note(*span, msg.clone());
            }
            out.push(d);
        }
    }
}
