//! DF002: a field has the wrong type.

use super::util::issues;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::model::read::Issue;

pub const RULE: Rule = Rule {
    code: "DF002",
    name: "wrong-type",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "a field has the wrong type",
    explanation: "\
## What it does
Reports a field whose value has a different type than vmctl expects: `vmid`, `cores`, `memory`
and `port` are integers; `disk`, `storage`, `node`, `nixosConfig` are strings; `readonly` is a
Boolean; `services` and `tags` are lists of strings; `network`, `proxmox`, `template`,
`imported`, `managed`, `vmidRanges` and `settings` are attribute sets. For imported VMs and the
template only the fields vmctl acts on are typed (`vmid`, `readonly`, `nixosConfig`,
`hostname`, `sshAlias`; the template's `name`, `node`, `storage`): their resources and
annotations are documentation and may have any type (VM013 warns about resources it cannot
read).

## Why
`vmid = \"110\"` looks right but is a string: Proxmox, the VMID checks and the docs would all
read it differently from what you meant.

## Example
```nix
managed.web = { vmid = \"110\"; memory = \"4G\"; };
```

## Fix
Write the value with the expected type (`vmid = 110; memory = 4096;`).
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    for (_, issue) in issues(fleet) {
        if let Issue::WrongType {
            span,
            field,
            expected,
            found,
        } = issue
        {
            out.push(Diagnostic::new(
                &RULE,
                *span,
                format!("{field} is {found}, expected {expected}"),
            ));
        }
    }
}
