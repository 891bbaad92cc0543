//! SP002: a YAML anchor defined twice in .sops.yaml.

use super::sops_file::{sops_file, span};
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;

pub const RULE: Rule = Rule {
    code: "SP002",
    name: "duplicate-anchor",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "a YAML anchor is defined twice in .sops.yaml",
    explanation: "\
## What it does
Reports every definition of a YAML anchor (`&name`) after the first one in .sops.yaml.

## Why
YAML lets a later `&name` replace an earlier one: aliases (`*name`) before the second
definition mean the first value, aliases after it the second. In a `.sops.yaml` this is almost
always a pasted host entry whose name was not changed, and rules then encrypt for the wrong
key without any error.

## Example
```yaml
keys:
  - &doc1 age1aaa…
  - &doc1 age1bbb…   # meant &doc2
```

## Fix
Rename the second anchor (and the aliases meant for it), or delete the stale definition.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some((file, sops)) = sops_file(fleet) else {
        return;
    };
    let doc = &sops.doc;
    for (i, (name, id)) in doc.anchors.iter().enumerate() {
        let Some((_, first)) = doc.anchors[..i].iter().find(|(n, _)| n == name) else {
            continue;
        };
        let here = doc
            .node(*id)
            .anchor
            .as_ref()
            .expect("anchored")
            .span
            .clone();
        let there = doc
            .node(*first)
            .anchor
            .as_ref()
            .expect("anchored")
            .span
            .clone();
        out.push(
            Diagnostic::new(
                &RULE,
                span(file, here.start, here.end),
                format!(
                    "the anchor &{name} is defined again; aliases after this line get this value"
                ),
            )
            .note(
                span(file, there.start, there.end),
                format!("&{name} is first defined here"),
            )
            .help("rename one of them (and its aliases), or delete the stale definition"),
        );
    }
}
