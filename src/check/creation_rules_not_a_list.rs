//! SP007: `creation_rules` in `.sops.yaml` is not a list.

use super::sops_file::{rules_key, sops_model};
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::secrets::config::ConfigError;

pub const RULE: Rule = Rule {
    code: "SP007",
    name: "creation-rules-not-a-list",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "`creation_rules` in .sops.yaml is not a list",
    explanation: "\
## What it does
Reports a `creation_rules` key whose value is a mapping or a scalar instead of a list.

## Why
sops reads `creation_rules` as a list of rules tried in order; anything else makes it reject
the config, so no secret can be created or re-keyed. A missing `-` in front of the first
rule is the usual cause.

## Example
```yaml
creation_rules:
  path_regex: secrets/.*      # missing `- `
  age: age1…
```

## Fix
Make each rule an item of a list: `- path_regex: …` with the rule's other keys indented under
it.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some((file, Err(ConfigError::RulesNotAList))) = sops_model(fleet) else {
        return;
    };
    out.push(
        Diagnostic::new(
            &RULE,
            rules_key(file, fleet.db.text(file)),
            "`creation_rules` must be a list of rules (`- path_regex: …`); sops rejects this file",
        )
        .help("put `- ` in front of each rule"),
    );
}
