//! DF006: a free-form field of an imported VM or the template whose name is close to one vmctl
//! acts on (`readOnly`, `vmId`, `nixosconfig`).

use super::util::{issues, rename_fix};
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::model::read::Issue;

pub const RULE: Rule = Rule {
    code: "DF006",
    name: "misspelled-field",
    severity: Severity::Warning,
    cascade: Cascade::Always,
    summary:
        "an annotation of an imported VM or the template is named almost like a field vmctl reads",
    explanation: "\
## What it does
Imported VMs and the template are documentation first: any field vmctl does not read is your
annotation and may hold any value. This rule warns when such a field's name is close to one
vmctl does act on: `vmid`, `readonly`, `nixosConfig`, `hostname`, `sshAlias` (imported VMs) or
`vmid`, `name`, `readonly`, `node`, `storage` (the template).

## Why
`readOnly = true;` is valid Nix and a fine annotation, but it is not `readonly`: the VM would
not be fenced against changes. Only the exact name counts.

## Example
```nix
imported.nas = { vmid = 101; readOnly = true; };
```

## Fix
Rename the field to the suggestion (an unsafe fix: it changes what vmctl does with the VM), or
prefix it with `_` to keep it as an annotation.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    for (_, issue) in issues(fleet) {
        let Issue::Misspelled {
            span,
            field,
            suggestion,
        } = issue
        else {
            continue;
        };
        out.push(
            Diagnostic::new(
                &RULE,
                *span,
                format!("{field} is not read by vmctl; did you mean `{suggestion}`?"),
            )
            .help(format!(
                "rename it to `{suggestion}`, or to `_{}` if it is only an annotation",
                field.name
            ))
            .fix(rename_fix(*span, &field.name, suggestion)),
        );
    }
}
