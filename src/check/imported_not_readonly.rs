//! VM007: an imported VM that is not marked `readonly = true`.

use super::util::vm_entries;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::model::VmKind;

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
    for e in vm_entries(fleet)
        .into_iter()
        .filter(|e| e.kind == VmKind::Imported)
    {
        let span = match e.get("readonly") {
            Some(v) if v.as_bool() == Some(true) || v.is_unknown() => continue,
            Some(v) => v.span,
            None => e.key,
        };
        out.push(
            Diagnostic::new(
                &RULE,
                span,
                format!("imported VM `{}` is not marked `readonly = true`", e.name),
            )
            .help("add `readonly = true;` so vmctl refuses every change to this VM"),
        );
    }
}
