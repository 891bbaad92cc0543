//! VM007: an imported VM that is not marked `readonly = true`.

use super::util::definitions;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::model::source::Written;

pub const RULE: Rule = Rule {
    code: "VM007",
    name: "imported-not-readonly",
    severity: Severity::Warning,
    cascade: Cascade::Always,
    summary: "an imported VM is not marked `readonly = true`",
    explanation: "\
## What it does
Warns about VMs under `imported` that lack `readonly = true`.

## Why
Imported VMs existed before vmctl: they are production systems described for documentation.
`readonly = true` is what makes every mutating `vmctl ops` command (stop, configure, destroy,
…) refuse to touch them.

## Example
```nix
imported.doc1 = { vmid = 104; purpose = \"Docker host\"; };
```

## Fix
Add `readonly = true;` to the VM, unless you really want vmctl to be able to change it.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some(d) = definitions(fleet) else { return };
    for vm in &d.defs.imported {
        let range = match &vm.source.readonly {
            Some(v) if matches!(v.value, Written::Value(true) | Written::Undetermined) => continue,
            Some(v) => v.range,
            None => vm.source.name,
        };
        out.push(
            Diagnostic::new(
                &RULE,
                d.span(range),
                format!("imported VM `{}` is not marked `readonly = true`", vm.name),
            )
            .help("add `readonly = true;` so vmctl refuses every change to this VM"),
        );
    }
}
