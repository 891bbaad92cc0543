//! DF001: a required field is missing.

use super::util::issues;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::model::read::{Field, Issue};

pub const RULE: Rule = Rule {
    code: "DF001",
    name: "missing-field",
    severity: Severity::Error,
    cascade: Cascade::SuppressedWhenFileBroken,
    summary: "a required field is missing",
    explanation: "\
## What it does
Reports a field vmctl needs that the definition does not have: `proxmox.host`; `template.vmid`
and `template.name`; `vmid` of every VM; `cores`, `memory` and `disk` of managed VMs; `start`
and `end` of a VMID range.

## Why
Without them vmctl cannot reach Proxmox or create the VM as described, and a default chosen
silently is not what you wrote.

## Example
```nix
managed.web = { vmid = 110; cores = 2; disk = \"20G\"; };   # memory is missing
```

## Fix
Add the field. Nothing is fixed automatically.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    for (_, issue) in issues(fleet) {
        let Issue::Missing { span, field } = issue else {
            continue;
        };
        let hint = match field.name.as_str() {
            "memory" => " (in MiB, e.g. `memory = 4096;`)",
            "disk" => " (e.g. `disk = \"20G\";`)",
            "cores" => " (e.g. `cores = 2;`)",
            "vmid" => " (a free VMID, e.g. from `vmctl ops next-vmid`)",
            _ => "",
        };
        let Field { name, context } = field;
        out.push(
            Diagnostic::new(&RULE, *span, format!("{context} has no `{name}`"))
                .help(format!("add `{name}`{hint}")),
        );
    }
}
