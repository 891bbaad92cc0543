//! VM005: a VM name that is not a valid DNS label.

use super::util::definitions;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;

pub const RULE: Rule = Rule {
    code: "VM005",
    name: "invalid-vm-name",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "a VM name that is not a valid DNS label",
    explanation: "\
## What it does
Reports VM names (the attribute names under `managed` and `imported`, and `template.name`)
that are not valid DNS labels: 1 to 63 letters, digits and hyphens, not starting or ending with
a hyphen.

## Why
Proxmox stores a VM's name as a DNS name and `qm clone --name` refuses anything else; vmctl
also uses the name as the host name, the `hosts/` directory and the sops anchor.

## Example
```nix
managed.\"web_server\" = { vmid = 110; cores = 2; memory = 2048; disk = \"20G\"; };
```

## Fix
Use letters, digits and hyphens only, e.g. `web-server`.
",
};

/// Why `name` is not a valid DNS label, if it is not.
pub fn dns_label_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".into());
    }
    if name.len() > 63 {
        return Some(format!(
            "it is {} characters long; at most 63 are allowed",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Some(format!(
            "it contains `{}`; only letters, digits and `-` are allowed",
            c.escape_default()
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some("it starts or ends with `-`".into());
    }
    None
}

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some(d) = definitions(fleet) else { return };
    for vm in d.defs.all_vms() {
        if let Some(problem) = dns_label_problem(&vm.name) {
            let suggestion: String = vm
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect::<String>()
                .trim_matches('-')
                .chars()
                .take(63)
                .collect();
            let mut diag = Diagnostic::new(
                &RULE,
                d.span(vm.source.name),
                format!("VM name `{}` is not a valid DNS label: {problem}", vm.name),
            );
            if !suggestion.is_empty() {
                diag = diag.help(format!(
                    "Proxmox VM names are DNS names; try `{suggestion}`"
                ));
            }
            out.push(diag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::dns_label_problem;

    #[test]
    fn dns_labels() {
        for ok in [
            "doc1",
            "test-automation",
            "NixosServerBlank",
            "a",
            &"x".repeat(63),
        ] {
            assert_eq!(dns_label_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "web_server",
            "-web",
            "web-",
            "a.b",
            "ünï",
            &"x".repeat(64),
        ] {
            assert!(dns_label_problem(bad).is_some(), "{bad}");
        }
    }
}
