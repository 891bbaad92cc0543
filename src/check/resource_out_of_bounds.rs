//! VM006: cores, memory or disk malformed or out of sane bounds.

use super::util::vm_entries;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::model::units::parse_disk_size;
use crate::model::VmKind;

use crate::model::units::MAX_CORES;
const MIN_MEMORY_MIB: i64 = crate::model::units::MIN_MEMORY_MIB as i64;
const MAX_MEMORY_MIB: i64 = crate::model::units::MAX_MEMORY_MIB as i64;
pub const MIN_DISK: u64 = 1 << 30;
pub const MAX_DISK: u64 = 1 << 50;

pub const RULE: Rule = Rule {
    code: "VM006",
    name: "resource-out-of-bounds",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "cores, memory or disk malformed or out of sane bounds",
    explanation: "\
## What it does
Checks the resources of every managed VM (those vmctl creates; imported VMs and the
template only document theirs, see VM013): `cores` from 1 to 512; `memory` in MiB from 16 to 16 TiB
(so `memory = 4;` meaning 4 GiB is caught); `disk` in Proxmox's size format, a number with a
unit `K`, `M`, `G` or `T` (`\"20G\"`, `\"1.5T\"`), from 1 GiB to 1 PiB.

## Why
`\"20GB\"` or `\"-5G\"` would be rejected by `qm resize` after the VM was already cloned;
`memory = 4` would create a VM that cannot boot.

## Example
```nix
managed.web = { vmid = 110; cores = 0; memory = 4; disk = \"20GB\"; };
```

## Fix
Write `cores` as a positive count, `memory` in MiB (`4096` for 4 GiB) and `disk` like `\"20G\"`.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    // Imported VMs and the template document their resources (VM013 reads those).
    for e in vm_entries(fleet)
        .into_iter()
        .filter(|e| e.kind == VmKind::Managed)
    {
        if let Some(v) = e.resource("cores") {
            if let Some(c) = v.as_int().filter(|c| !(1..=MAX_CORES).contains(c)) {
                out.push(Diagnostic::new(
                    &RULE,
                    v.span,
                    format!(
                        "`cores` of `{}` is {c}; it must be from 1 to {MAX_CORES}",
                        e.name
                    ),
                ));
            }
        }
        if let Some(v) = e.resource("memory") {
            if let Some(m) = v
                .as_int()
                .filter(|m| !(MIN_MEMORY_MIB..=MAX_MEMORY_MIB).contains(m))
            {
                let mut d = Diagnostic::new(
                    &RULE,
                    v.span,
                    format!("`memory` of `{}` is {m} MiB; it must be from {MIN_MEMORY_MIB} MiB to 16 TiB", e.name),
                );
                if (1..=64).contains(&m) {
                    d = d.help(format!(
                        "memory is in MiB: {m} GiB is `memory = {};`",
                        m * 1024
                    ));
                }
                out.push(d);
            }
        }
        if let Some(v) = e.resource("disk") {
            let Some(s) = v.as_str() else { continue };
            match parse_disk_size(s) {
                Err(problem) => out.push(
                    Diagnostic::new(
                        &RULE,
                        v.span,
                        format!(
                            "`disk` of `{}` is not a size Proxmox accepts: {problem}",
                            e.name
                        ),
                    )
                    .help("write a number and a unit K, M, G or T, e.g. `disk = \"20G\";`"),
                ),
                Ok(bytes) if !(MIN_DISK..=MAX_DISK).contains(&bytes) => out.push(Diagnostic::new(
                    &RULE,
                    v.span,
                    format!("`disk` of `{}` is {s}; it must be from 1G to 1024T", e.name),
                )),
                Ok(_) => {}
            }
        }
    }
}
