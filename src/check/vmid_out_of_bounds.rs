//! VM002: a VMID outside what Proxmox accepts (100–999999999).

use super::util::definitions;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;

pub const MIN_VMID: i64 = 100;
pub const MAX_VMID: i64 = 999_999_999;

pub const RULE: Rule = Rule {
    code: "VM002",
    name: "vmid-out-of-bounds",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "a VMID or VMID range bound outside 100–999999999",
    explanation: "\
## What it does
Reports a VMID, or a bound of a `vmidRanges` entry, outside the range Proxmox accepts:
100 to 999999999. IDs below 100 are reserved by Proxmox.

## Why
`qm clone` and `qm create` refuse such IDs, so provisioning would fail halfway.

## Example
```nix
managed.web = { vmid = 42; cores = 2; memory = 2048; disk = \"20G\"; };
```

## Fix
Choose a VMID of 100 or more inside one of your `vmidRanges`.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some(d) = definitions(fleet) else { return };
    let bad = |id: i64| !(MIN_VMID..=MAX_VMID).contains(&id);
    for vm in d.defs.all_vms() {
        let Some(v) = &vm.source.vmid else { continue };
        if let Some(&id) = v.value.value().filter(|id| bad(**id)) {
            out.push(
                Diagnostic::new(
                    &RULE,
                    d.span(v.range),
                    format!("VMID {id} of `{}` is outside 100–999999999", vm.name),
                )
                .help("Proxmox accepts VMIDs from 100 to 999999999"),
            );
        }
    }
    for b in d
        .defs
        .source
        .range_bounds
        .iter()
        .filter(|b| bad(b.value.value))
    {
        out.push(Diagnostic::new(
            &RULE,
            d.span(b.value.range),
            format!(
                "`{}` {} of VMID range `{}` is outside 100–999999999",
                b.field, b.value.value, b.name
            ),
        ));
    }
}
