//! SP011: a VM's `sopsRules` names a rule `.sops.yaml` does not have.

use super::sops_file::sops_model;
use super::util::definitions;
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
    let Some(d) = definitions(fleet) else { return };
    let known: Vec<&str> = model
        .config
        .rules
        .iter()
        .filter_map(|r| r.path_regex.as_deref())
        .collect();
    for vm in d.defs.imported.iter().chain(&d.defs.managed) {
        for rule in &vm.source.sops_rules {
            let re = rule.value.as_str();
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
                    d.span(rule.range),
                    format!("`sopsRules` of `{}` names `{re}`, which is no creation rule's path_regex{closest}", vm.name),
                )
                .help(format!("the rules are: {}", if known.is_empty() { "(none with a path_regex)".to_string() } else { known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ") })),
            );
        }
    }
}
