//! SP010: `.sops.yaml` has no `creation_rules`.

use super::sops_file::{sops_source, span};
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;

pub const RULE: Rule = Rule {
    code: "SP010",
    name: "missing-creation-rules",
    severity: Severity::Warning,
    cascade: Cascade::Always,
    summary: ".sops.yaml has no `creation_rules`",
    explanation: "\
## What it does
Reports a non-empty .sops.yaml whose top level has no `creation_rules` (or an empty one), or
is not a mapping at all.

## Why
Without creation rules sops knows no recipients for new files (`no matching creation rules
found`), and vmctl has no rule to add a host to or to re-key against. A misspelt key
(`creation_rule:`) is the usual cause.

## Example
```yaml
keys:
  - &admin age1…
creation_rule:            # misspelt
  - path_regex: secrets/.*
```

## Fix
Name the list `creation_rules:` at the top level.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some((file, text)) = sops_source(fleet) else {
        return;
    };
    let Ok(doc) = crate::yaml::value::load(text) else {
        return;
    };
    let message = match &doc {
        // Empty files are SP006's.
        crate::yaml::value::Value::Null => return,
        crate::yaml::value::Value::Mapping(m) => match m.get("creation_rules") {
            None => "the file has no top-level `creation_rules:`: sops finds no rule for any file",
            Some(crate::yaml::value::Value::Null) => {
                "`creation_rules` is empty: sops finds no rule for any file"
            }
            Some(crate::yaml::value::Value::Sequence(s)) if s.is_empty() => {
                "`creation_rules` is an empty list: sops finds no rule for any file"
            }
            Some(_) => return,
        },
        _ => "the file is not a mapping with `creation_rules:`: sops finds no rule for any file",
    };
    let end = text.find('\n').unwrap_or(text.len());
    out.push(Diagnostic::new(&RULE, span(file, 0, end), message).help(
        "add `creation_rules:` with at least one `- path_regex: …` rule (check the spelling)",
    ));
}
