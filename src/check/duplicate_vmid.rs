//! VM001: two VMs share a VMID.

use std::collections::HashMap;

use super::util::definitions;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::syntax::Span;

pub const RULE: Rule = Rule {
    code: "VM001",
    name: "duplicate-vmid",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "two VMs (managed, imported or the template) share a VMID",
    explanation: "\
## What it does
Reports a VMID used by more than one VM anywhere in definitions.nix: managed, imported and
the template, with a note at the first definition.

## Why
A VMID identifies one VM on the whole Proxmox cluster. Two definitions with the same VMID mean
provisioning one would clone onto, or be refused by, the other; `vmctl ops` fences would
protect the wrong VM.

## Example
```nix
imported.doc1 = { vmid = 104; readonly = true; };
managed.web = { vmid = 104; cores = 2; memory = 2048; disk = \"20G\"; };
```

## Fix
Give one of them a free VMID (`vmctl ops next-vmid` lists the next free one in a range).
`vmlint --unsafe-fixes` (or the editor's code action) does it for a plain number inside a
range: the next VMID no VM uses there. Unsafe because only the cluster knows whether that
VMID is free on it: check with `vmctl ops next-vmid` before provisioning.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some(d) = definitions(fleet) else { return };
    let mut seen: HashMap<i64, (&str, Span)> = HashMap::new();
    let mut vmids: Vec<_> = d
        .defs
        .all_vms()
        .filter_map(|vm| {
            let v = vm.source.vmid.as_ref()?;
            Some((vm, *v.value.value()?, d.span(v.range)))
        })
        .collect();
    vmids.sort_by_key(|(_, _, span)| span.range.start());
    for (vm, id, span) in vmids {
        match seen.get(&id) {
            Some((first, first_span)) => out.push(
                Diagnostic::new(
                    &RULE,
                    span,
                    format!("VMID {id} of `{}` is already used by `{first}`", vm.name),
                )
                .note(
                    *first_span,
                    format!("VMID {id} first used here by `{first}`"),
                )
                .help(
                    "give one of them a free VMID; `vmctl ops next-vmid` finds the next free one",
                ),
            ),
            None => {
                seen.insert(id, (&vm.name, span));
            }
        }
    }
}
