//! SP008: a creation rule of `.sops.yaml` that sops cannot use.

use super::sops_file::{rules_key, sops_model, span};
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::secrets::config::ConfigError;
use crate::secrets::sops_yaml::SopsYaml;

pub const RULE: Rule = Rule {
    code: "SP008",
    name: "invalid-creation-rule",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "a creation rule of .sops.yaml has a value sops cannot use",
    explanation: "\
## What it does
Reads every creation rule as sops does and reports the first one sops would reject: a
`path_regex` that does not compile, a key list that is not a string or a list of strings,
`key_groups` that is not a list, a non-numeric `shamir_threshold`, a rule that is not a
mapping.

## Why
sops stops at such a rule, for every file, not only for the files the rule is meant for: the
whole repository's secrets become impossible to create or re-key.

## Example
```yaml
creation_rules:
  - path_regex: secrets/(.*     # unbalanced parenthesis
    age: age1…
```

## Fix
Correct the rule as the message says; `path_regex` uses Go's RE2 syntax (no look-around, no
back-references).
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some((file, Err(ConfigError::Rule { rule, message }))) = sops_model(fleet) else {
        return;
    };
    let text = fleet.db.text(file);
    // The scanner usually still reads a file whose values sops rejects: point at the rule.
    let at = SopsYaml::parse(text)
        .ok()
        .and_then(|v| v.rules.get(rule - 1).map(|r| r.dash))
        .map(|dash| {
            let end = text[dash..].find('\n').map_or(text.len(), |n| dash + n);
            span(file, dash, end)
        })
        .unwrap_or_else(|| rules_key(file, text));
    out.push(
        Diagnostic::new(
            &RULE,
            at,
            format!("creation rule #{rule}: {message}; sops rejects the whole file"),
        )
        .help("fix this rule (path_regex is Go RE2 syntax; key lists are strings or lists of strings)"),
    );
}
