//! VM012: a managed VM too small for a NixOS install with nixos-anywhere.

use super::util::definitions;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::model::units::MIN_DISK;

pub const MIN_INSTALL_MEMORY_MIB: i64 = 1536;
pub const MIN_INSTALL_DISK: u64 = 8 << 30;

pub const RULE: Rule = Rule {
    code: "VM012",
    name: "install-resources-low",
    severity: Severity::Warning,
    cascade: Cascade::Always,
    summary: "a managed VM has too little memory or disk for a NixOS install",
    explanation: "\
## What it does
Warns when a managed VM has less than 1536 MiB of memory or less than 8 GiB of disk.

## Why
nixos-anywhere boots the VM into a NixOS installer with kexec, which runs from RAM and needs
about 1.5 GiB; a NixOS system with a few generations needs several GiB of disk. The install
would fail after the VM was created.

## Example
```nix
managed.tiny = { vmid = 120; cores = 1; memory = 512; disk = \"4G\"; };
```

## Fix
Give the VM at least `memory = 2048;` and `disk = \"16G\";`; you can shrink memory after the
install.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some(d) = definitions(fleet) else { return };
    for vm in &d.defs.managed {
        let src = &vm.source;
        if let Some(v) = src
            .memory
            .as_ref()
            .filter(|m| (16..MIN_INSTALL_MEMORY_MIB).contains(&m.value))
        {
            out.push(
                Diagnostic::new(&RULE, d.span(v.range), format!("`{}` has {} MiB of memory; installing NixOS needs about 1536 MiB", vm.name, v.value))
                    .help("nixos-anywhere's kexec installer runs from RAM; use at least `memory = 2048;` for the install"),
            );
        }
        if let (Some(disk), Some(range)) = (&vm.disk, src.disk) {
            if disk
                .bytes()
                .is_ok_and(|b| (MIN_DISK..MIN_INSTALL_DISK).contains(&b))
            {
                out.push(Diagnostic::new(
                    &RULE,
                    d.span(range),
                    format!(
                        "`{}` has a {} disk; a NixOS system needs at least 8G",
                        vm.name, disk
                    ),
                ));
            }
        }
    }
}
