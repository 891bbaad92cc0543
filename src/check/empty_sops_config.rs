//! SP006: `.sops.yaml` is empty.

use super::sops_file::{sops_source, span};
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;

pub const RULE: Rule = Rule {
    code: "SP006",
    name: "empty-sops-config",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: ".sops.yaml is empty (no creation rules at all)",
    explanation: "\
## What it does
Reports a .sops.yaml that holds nothing but whitespace and comments.

## Why
An empty config gives sops no creation rules: `sops FILE` for a new secret fails with
`no matching creation rules found`, `sops updatekeys` has nothing to apply, and vmctl cannot
add a host's recipient anywhere. It is usually a file truncated by a failed write or a merge.

## Example
```yaml
# .sops.yaml
```

## Fix
Restore the file from version control, or write the creation rules:
`creation_rules: [ { path_regex: 'secrets/.*', age: 'age1…' } ]`.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some((file, text)) = sops_source(fleet) else {
        return;
    };
    let empty = text.trim().is_empty()
        || matches!(
            crate::yaml::value::load(text),
            Ok(crate::yaml::value::Value::Null)
        );
    if empty {
        out.push(
            Diagnostic::new(
                &RULE,
                span(file, 0, text.len()),
                "the file is empty: sops finds no creation rules in it",
            )
            .help("restore it from version control (`git log -p -- .sops.yaml`) or write its `creation_rules:`"),
        );
    }
}
