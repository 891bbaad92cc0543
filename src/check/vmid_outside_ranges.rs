//! VM003: a VMID outside every declared `vmidRanges` entry.

use super::util::definitions;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::model::{VmKind, VmidRange};

pub const RULE: Rule = Rule {
    code: "VM003",
    name: "vmid-outside-ranges",
    severity: Severity::Warning,
    cascade: Cascade::Always,
    summary: "a VMID outside every declared VMID range",
    explanation: "\
## What it does
When definitions.nix declares `vmidRanges`, reports a VM whose VMID lies in none of them, and a
template outside a range whose name contains `template` (when such a range is declared).

## Why
VMID ranges are how a fleet keeps imported VMs, managed VMs and templates apart; `vmctl ops
next-vmid` allocates inside them. A VMID outside every range is usually a typo or a VM that
will collide with a future allocation.

## Example
```nix
vmidRanges.managed = { start = 110; end = 199; };
managed.web = { vmid = 250; cores = 2; memory = 2048; disk = \"20G\"; };
```

## Fix
Move the VM into a range, or widen or add a range.
",
};

fn describe(ranges: &[&VmidRange]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|r| format!("`{}` {}–{}", r.name, r.start, r.end))
        .collect();
    parts.join(", ")
}

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some(d) = definitions(fleet) else { return };
    let ranges = &d.defs.vmid_ranges;
    if ranges.is_empty() {
        return;
    }
    let template_ranges: Vec<&VmidRange> = ranges
        .iter()
        .filter(|r| r.name.to_lowercase().contains("template"))
        .collect();
    let all: Vec<&VmidRange> = ranges.iter().collect();
    for vm in d.defs.all_vms() {
        let Some(v) = &vm.source.vmid else { continue };
        let Some(&id) = v.value.value() else { continue };
        let candidates = if vm.kind == VmKind::Template && !template_ranges.is_empty() {
            &template_ranges
        } else {
            &all
        };
        if candidates
            .iter()
            .any(|r| (r.start as i64..=r.end as i64).contains(&id))
        {
            continue;
        }
        let what = if vm.kind == VmKind::Template && !template_ranges.is_empty() {
            "any template range"
        } else {
            "every declared VMID range"
        };
        out.push(
            Diagnostic::new(
                &RULE,
                d.span(v.range),
                format!("VMID {id} of `{}` is outside {what}", vm.name),
            )
            .help(format!("declared ranges: {}", describe(candidates))),
        );
    }
}
