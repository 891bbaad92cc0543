//! VM006: cores, memory or disk malformed or out of sane bounds.

use super::util::definitions;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::model::units::{MAX_CORES, MAX_DISK, MAX_MEMORY_MIB, MIN_DISK, MIN_MEMORY_MIB};

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
unit `K`, `M`, `G` or `T` (`\"20G\"`, `\"1.5T\"`), from 1 GiB to 1 PiB. Also the fleet's
`snapshots.keep` (how many automatic snapshots each VM keeps), from 1 to 100, and the backup
policy's `backups.keep` (1 to 1000) and `backups.everyHours` (1 to 8760).

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
    let Some(d) = definitions(fleet) else { return };
    // `snapshots.keep`: automatic snapshots are pruned to it, so 0 would delete the one just
    // taken before a rebuild or rollback.
    let policy = d.defs.backup_policy.as_ref();
    let bounded = [
        ("backups.keep", policy.and_then(|p| p.keep), 1, 1000),
        ("backups.everyHours", policy.and_then(|p| p.every_hours), 1, 8760),
    ];
    for (field, value, lo, hi) in bounded {
        if let Some((v, range)) = value.filter(|(v, _)| !(lo..=hi).contains(v)) {
            out.push(Diagnostic::new(
                &RULE,
                d.span(range),
                format!("`{field}` is {v}; it must be from {lo} to {hi}"),
            ));
        }
    }
    if let Some((keep, range)) = d.defs.snapshot_keep.filter(|(k, _)| !(1..=100).contains(k)) {
        out.push(Diagnostic::new(
            &RULE,
            d.span(range),
            format!("`snapshots.keep` is {keep}; it must be from 1 to 100"),
        ));
    }
    let sane_memory =
        |m: i64| u64::try_from(m).is_ok_and(|m| (MIN_MEMORY_MIB..=MAX_MEMORY_MIB).contains(&m));
    // Imported VMs and the template document their resources (VM013 reads those).
    for vm in &d.defs.managed {
        let src = &vm.source;
        if let Some(v) = src
            .cores
            .as_ref()
            .filter(|c| !(1..=MAX_CORES).contains(&c.value))
        {
            out.push(Diagnostic::new(
                &RULE,
                d.span(v.range),
                format!(
                    "`cores` of `{}` is {}; it must be from 1 to {MAX_CORES}",
                    vm.name, v.value
                ),
            ));
        }
        if let Some(v) = src
            .memory
            .as_ref()
            .filter(|m| !sane_memory(m.value))
        {
            let m = v.value;
            let mut diag = Diagnostic::new(
                &RULE,
                d.span(v.range),
                format!(
                    "`memory` of `{}` is {m} MiB; it must be from {MIN_MEMORY_MIB} MiB to 16 TiB",
                    vm.name
                ),
            );
            if (1..=64).contains(&m) {
                diag = diag.help(format!(
                    "memory is in MiB: {m} GiB is `memory = {};`",
                    m * 1024
                ));
            }
            out.push(diag);
        }
        let (Some(disk), Some(range)) = (&vm.disk, src.disk) else {
            continue;
        };
        match disk.bytes() {
            Err(problem) => out.push(
                Diagnostic::new(
                    &RULE,
                    d.span(range),
                    format!(
                        "`disk` of `{}` is not a size Proxmox accepts: {problem}",
                        vm.name
                    ),
                )
                .help("write a number and a unit K, M, G or T, e.g. `disk = \"20G\";`"),
            ),
            Ok(bytes) if !(MIN_DISK..=MAX_DISK).contains(&bytes) => out.push(Diagnostic::new(
                &RULE,
                d.span(range),
                format!(
                    "`disk` of `{}` is {}; it must be from 1G to 1024T",
                    vm.name, disk
                ),
            )),
            Ok(_) => {}
        }
    }
}
