//! VM014: `nixosConfig` is not one path component (`../x`, `a/b`, an absolute path).

use super::util::definitions;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;

pub const RULE: Rule = Rule {
    code: "VM014",
    name: "invalid-nixos-config",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "`nixosConfig` is not a single directory name under the hosts directory",
    explanation: "\
## What it does
Checks that `nixosConfig` of every managed and imported VM is one directory name: not empty,
not `.` or `..`, without `/`, not an absolute path.

## Why
`nixosConfig` names the VM's directory under `hosts/`: `vmctl scaffold` writes there and the
docs and the install point at it. `../x` or `/etc` would make vmctl write outside the hosts
directory. Imported VMs are checked too, because they can be scaffolded.

## Example
```nix
managed.web = { vmid = 110; cores = 2; memory = 2048; disk = \"20G\"; nixosConfig = \"../web\"; };
```

## Fix
Write the directory's name only (`nixosConfig = \"web\";`); move the directory under the hosts
directory (or point `settings.hostsDir` at its parent).
",
};

/// Why `s` is not a single path component, if it is not.
pub fn path_component_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        Some("it is empty")
    } else if s.starts_with('/') {
        Some("it is an absolute path")
    } else if s == "." || s == ".." {
        Some("it names a directory outside the VM's own")
    } else if s.contains('/') {
        Some("it has a `/`; it must be one directory name")
    } else if s.contains('\0') || s.contains('\n') {
        Some("it contains a control character")
    } else {
        None
    }
}

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some(d) = definitions(fleet) else { return };
    for vm in d.defs.all_vms() {
        let Some(v) = &vm.source.nixos_config else {
            continue;
        };
        let s = v.value.as_str();
        if let Some(problem) = path_component_problem(s) {
            let base = s.rsplit('/').find(|p| !p.is_empty() && *p != "..");
            let mut diag = Diagnostic::new(
                &RULE,
                d.span(v.range),
                format!("`nixosConfig` of `{}` is `{s}`: {problem}", vm.name),
            );
            diag = match base {
                Some(b) if b != "." => diag.help(format!(
                    "write the directory name under the hosts directory, e.g. `nixosConfig = \"{b}\";`"
                )),
                _ => diag.help("write the directory name under the hosts directory"),
            };
            out.push(diag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::path_component_problem;

    #[test]
    fn one_component_only() {
        for ok in ["web", "proxmox-vm", "a.b", "..x", "x.."] {
            assert_eq!(path_component_problem(ok), None, "{ok}");
        }
        for bad in ["", ".", "..", "../x", "a/b", "/etc", "x/", "a\0b"] {
            assert!(path_component_problem(bad).is_some(), "{bad:?}");
        }
    }
}
