//! VM009: a VMID range that is empty or overlaps another.

use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::syntax::Span;

pub const RULE: Rule = Rule {
    code: "VM009",
    name: "invalid-vmid-range",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "a VMID range ends before it starts or overlaps another range",
    explanation: "\
## What it does
Reports `vmidRanges` entries whose `start` is greater than their `end`, and pairs of ranges
that overlap.

## Why
Ranges decide where `vmctl ops next-vmid` allocates and which VMs the docs group together; an
empty or overlapping range makes both ambiguous.

## Example
```nix
vmidRanges = {
  managed = { start = 110; end = 199; };
  lab = { start = 150; end = 160; };   # overlaps `managed`
};
```

## Fix
Make every range `start <= end` and keep ranges disjoint.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some((file, defs)) = fleet.definitions_file() else {
        return;
    };
    let ranges = &defs.vmid_ranges;
    for (i, r) in ranges.iter().enumerate() {
        let span = Span::new(file.file, r.range);
        if r.start > r.end {
            out.push(Diagnostic::new(
                &RULE,
                span,
                format!(
                    "VMID range `{}` starts at {} but ends at {}",
                    r.name, r.start, r.end
                ),
            ));
            continue;
        }
        for o in &ranges[..i] {
            if o.start <= o.end && r.start <= o.end && o.start <= r.end {
                out.push(
                    Diagnostic::new(
                        &RULE,
                        span,
                        format!(
                            "VMID range `{}` ({}–{}) overlaps `{}` ({}–{})",
                            r.name, r.start, r.end, o.name, o.start, o.end
                        ),
                    )
                    .note(
                        Span::new(file.file, o.range),
                        format!("`{}` is declared here", o.name),
                    ),
                );
            }
        }
    }
}
