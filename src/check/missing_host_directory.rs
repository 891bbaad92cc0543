//! VM008: a managed VM without its `hosts/<nixosConfig>/` directory.

use super::util::definitions;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;

pub const RULE: Rule = Rule {
    code: "VM008",
    name: "missing-host-directory",
    severity: Severity::Warning,
    cascade: Cascade::Always,
    summary: "a managed VM has no `hosts/<nixosConfig>/` directory",
    explanation: "\
## What it does
Warns when a managed VM's NixOS configuration directory (`hosts/<nixosConfig>/`, or
`hosts/<name>/` without `nixosConfig`; the `hosts` directory comes from `settings.hostsDir`)
does not exist. Only checked when the fleet root is known.

## Why
`vmctl provision` installs the VM from that configuration with nixos-anywhere; without it the
install cannot start.

## Example
```nix
managed.web = { vmid = 110; cores = 2; memory = 2048; disk = \"20G\"; nixosConfig = \"web\"; };
# but hosts/web/ does not exist
```

## Fix
Run `vmctl scaffold NAME` to create it from `hosts-template/`.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let (Some(dirs), Some(d)) = (&fleet.host_dirs, definitions(fleet)) else {
        return;
    };
    let hosts_dir = d.defs.settings.hosts_dir.display().to_string();
    for vm in &d.defs.managed {
        let dir = vm.config_name();
        // A `nixosConfig` that is not one directory name is VM014's to report.
        let invalid = super::invalid_nixos_config::path_component_problem(dir).is_some();
        if !invalid && !dirs.contains(dir) {
            let range = match (&vm.nixos_config, &vm.source.nixos_config) {
                (Some(_), Some(at)) => at.range,
                _ => vm.source.name,
            };
            out.push(
                Diagnostic::new(
                    &RULE,
                    d.span(range),
                    format!(
                        "managed VM `{}` has no `{hosts_dir}/{dir}/` directory",
                        vm.name
                    ),
                )
                .help(format!(
                    "run `{}` to create it from the host template",
                    crate::proxmox::quote::command_line(&["vmctl", "scaffold", &vm.name])
                )),
            );
        }
    }
}
