//! DF003: a field vmctl does not know (often a typo).

use super::util::{issues, rename_fix};
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::model::read::{Field, Issue};

pub const RULE: Rule = Rule {
    code: "DF003",
    name: "unknown-field",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "a field vmctl does not know, often a typo",
    explanation: "\
## What it does
Reports fields of `proxmox`, managed VMs, their `network`, `vmidRanges` entries, `settings`
and the top level that vmctl does not know, and suggests the closest known name. Imported VMs
and the template are documentation and may hold any field (DF006 warns about names close to
the fields vmctl reads there). Names starting with `_` are always allowed, for your own
annotations.

## Why
A typo like `memroy = 8192;` is valid Nix, so nothing else notices it: the VM would be created
without the memory you asked for.

## Example
```nix
managed.web = { vmid = 110; cores = 2; memroy = 8192; disk = \"20G\"; };
```

## Fix
Rename the field to the suggestion (an unsafe fix: it changes what the definition means), or
prefix it with `_` if it is your own annotation.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    for (_, issue) in issues(fleet) {
        let Issue::Unknown {
            span,
            field: Field { name, context },
            suggestion,
        } = issue
        else {
            continue;
        };
        let d = Diagnostic::new(
            &RULE,
            *span,
            format!("unknown field `{name}` in {context}"),
        );
        out.push(match suggestion {
            Some(s) => d
                .help(format!("did you mean `{s}`?"))
                .fix(rename_fix(*span, name, s)),
            None => d.help(format!(
                "remove it, or rename it to `_{name}` to keep it as an annotation"
            )),
        });
    }
}
