//! SP011: a VM's `sopsRules` names a rule `.sops.yaml` does not have.

use super::sops_file::sops_model;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;

pub const RULE: Rule = Rule {
    code: "SP011",
    name: "unknown-sops-rule",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "a VM's `sopsRules` names no creation rule of .sops.yaml",
    explanation: "\
## What it does
Checks every `sopsRules` entry of the VMs in definitions.nix against the `path_regex` of the
creation rules in .sops.yaml: each must be exactly one of them.

## Why
`sopsRules` records which creation rules a VM's age recipient goes into, so that
`vmctl sops add-recipient` (and provisioning) never has to ask. An entry that matches no rule
(a typo, or a rule renamed since) makes that step fail in the middle of provisioning, after
the VM was created.

## Example
```nix
managed.web1 = {
  sopsRules = [ \"secrets/web/.+\" ];   # .sops.yaml says `secrets/web/.*`
};
```

## Fix
Copy the `path_regex` exactly as .sops.yaml writes it (without YAML quoting).
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some((_, Ok(model))) = sops_model(fleet) else {
        return;
    };
    let Some((file, _)) = fleet.definitions_file() else {
        return;
    };
    let known: Vec<&str> = model
        .config
        .rules
        .iter()
        .filter_map(|r| r.path_regex.as_deref())
        .collect();
    let Some(root) = file.eval.value.as_attrs() else {
        return;
    };
    for section in ["managed", "imported"] {
        let Some(vms) = root.get(section).and_then(|v| v.as_attrs()) else {
            continue;
        };
        for (name, vm) in vms.iter() {
            let Some(list) = vm
                .value
                .as_attrs()
                .and_then(|a| a.get("sopsRules"))
                .and_then(|v| v.as_list())
            else {
                continue;
            };
            for item in list {
                let Some(re) = item.as_str() else { continue };
                if known.contains(&re) {
                    continue;
                }
                let closest = known
                    .iter()
                    .min_by_key(|k| strsim::levenshtein(k, re))
                    .map(|k| format!("; the closest rule is `{k}`"))
                    .unwrap_or_default();
                out.push(
                    Diagnostic::new(
                        &RULE,
                        item.span,
                        format!("`sopsRules` of `{name}` names `{re}`, which is no creation rule's path_regex{closest}"),
                    )
                    .help(format!("the rules are: {}", if known.is_empty() { "(none with a path_regex)".to_string() } else { known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ") })),
                );
            }
        }
    }
}
