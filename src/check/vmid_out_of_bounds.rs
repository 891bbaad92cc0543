//! VM002: a VMID outside what Proxmox accepts (100–999999999).

use super::util::{definitions_top, vm_entries};
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::syntax::Value;

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
    let bad = |v: &Value| v.as_int().filter(|i| !(MIN_VMID..=MAX_VMID).contains(i));
    for e in vm_entries(fleet) {
        if let Some(v) = e.get("vmid") {
            if let Some(id) = bad(v) {
                out.push(
                    Diagnostic::new(
                        &RULE,
                        v.span,
                        format!("VMID {id} of `{}` is outside 100–999999999", e.name),
                    )
                    .help("Proxmox accepts VMIDs from 100 to 999999999"),
                );
            }
        }
    }
    let Some(ranges) = definitions_top(fleet)
        .and_then(|t| t.get("vmidRanges"))
        .and_then(Value::as_attrs)
    else {
        return;
    };
    for (name, entry) in ranges.iter() {
        let Some(set) = entry.value.as_attrs() else {
            continue;
        };
        for field in ["start", "end"] {
            if let Some(v) = set.get(field) {
                if let Some(id) = bad(v) {
                    out.push(Diagnostic::new(
                        &RULE,
                        v.span,
                        format!("`{field}` {id} of VMID range `{name}` is outside 100–999999999"),
                    ));
                }
            }
        }
    }
}
