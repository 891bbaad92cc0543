//! SP009: `.sops.yaml` is valid for sops but outside what vmctl edits and checks in detail.

use super::sops_file::{point, rules_key, sops_model};
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::secrets::sops_yaml::ViewError;

pub const RULE: Rule = Rule {
    code: "SP009",
    name: "sops-config-not-editable",
    severity: Severity::Warning,
    cascade: Cascade::Always,
    summary:
        ".sops.yaml is valid for sops but outside what vmctl can edit, so some checks did not run",
    explanation: "\
## What it does
Reports a .sops.yaml that sops reads but whose layout vmctl's lossless editor does not cover
(for example a flow-style `creation_rules: [...]`, tags, multi-line plain scalars, several
documents), or where vmctl's span-keeping reading of the rules differs from sops's. It names
the checks that therefore did not run.

## Why
The checks that point into the file (SP001 accidental key group, SP002 duplicate anchor,
FL002 stale recipient) and `vmctl sops add-recipient`/`remove-recipient`/`add-host-rule`
need that reading. Rather than skip them silently, vmlint says they were skipped; re-keying
and FL001 still work, as they read the file as sops does.

## Example
```yaml
creation_rules: [{path_regex: secrets/.*, age: age1…}]
```

## Fix
Rewrite the file in block style (`creation_rules:` then `- path_regex: …` items), or edit it
by hand and keep in mind that the checks above did not look at it.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some((file, Ok(model))) = sops_model(fleet) else {
        return;
    };
    let text = fleet.db.text(file);
    let (at, why) = match &model.view {
        Ok(_) => return,
        // No rules: SP010's.
        Err(ViewError::NoRules) => return,
        Err(ViewError::Scan(e)) => (point(file, text, e.offset), e.message.clone()),
        Err(e @ (ViewError::RulesNotList | ViewError::Disagrees(_))) => {
            (rules_key(file, text), e.to_string())
        }
    };
    out.push(
        Diagnostic::new(
            &RULE,
            at,
            format!("vmctl cannot edit this file ({why}): checks SP001, SP002 and FL002 did not run, and `vmctl sops` edits are refused"),
        )
        .help("rewrite the file as one block-style YAML document (`creation_rules:` then `- path_regex: …` items) to get those checks and edits"),
    );
}
