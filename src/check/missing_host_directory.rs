//! VM008: a managed VM without its `hosts/<nixosConfig>/` directory.

use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::syntax::Span;

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
    let (Some(dirs), Some((file, defs))) = (&fleet.host_dirs, fleet.definitions_file()) else {
        return;
    };
    let hosts_dir = defs.settings.hosts_dir.display().to_string();
    for vm in &defs.managed {
        let dir = vm.config_name();
        // A `nixosConfig` that is not one directory name is VM014's to report.
        let invalid = super::invalid_nixos_config::path_component_problem(dir).is_some();
        if !invalid && !dirs.contains(dir) {
            let span = match (&vm.nixos_config, file.eval.value.as_attrs()) {
                (Some(_), Some(top)) => top
                    .get("managed")
                    .and_then(|m| m.as_attrs())
                    .and_then(|m| m.get(&vm.name))
                    .and_then(|v| v.as_attrs())
                    .and_then(|s| s.get("nixosConfig"))
                    .map(|v| v.span)
                    .unwrap_or(Span::new(file.file, vm.name_range)),
                _ => Span::new(file.file, vm.name_range),
            };
            out.push(
                Diagnostic::new(
                    &RULE,
                    span,
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
