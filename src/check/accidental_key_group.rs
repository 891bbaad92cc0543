//! SP001: a `key_groups` item that starts a second key group, probably by accident.

use super::sops_file::{sops_file, span};
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;

pub const RULE: Rule = Rule {
    code: "SP001",
    name: "accidental-key-group",
    severity: Severity::Warning,
    cascade: Cascade::Always,
    summary: "a key_groups item starts a second key group (Shamir) without a shamir_threshold",
    explanation: "\
## What it does
Reports the second and later items of a creation rule's `key_groups` list when the rule sets
no `shamir_threshold`, and items of `key_groups` that are not key groups at all.

## Why
Each `-` under `key_groups` is a separate key group, and sops splits the data key between
groups (Shamir secret sharing): without a threshold, decrypting needs a key from *every* group.
A recipient added as `- age: …` or `- *host` under `key_groups` instead of inside the first
group's `age:` list silently makes every secret of that rule need two keys, and the new host
alone cannot decrypt anything.

## Example
```yaml
key_groups:
  - age:
      - *admin
  - age:        # a second group: admin AND newvm are now both required
      - *newvm
```

## Fix
Move the recipients into the first group's `age:` list (`vmctl sops add-recipient` always
does), or set `shamir_threshold` on the rule if Shamir is intended.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some((file, sops)) = sops_file(fleet) else {
        return;
    };
    let doc = &sops.doc;
    for rule in &sops.rules {
        let Some(kg) = doc.get(rule.node, "key_groups") else {
            continue;
        };
        let Some(groups) = doc.resolve(kg.value).and_then(|g| doc.seq(g)) else {
            continue;
        };
        let threshold = doc.get(rule.node, "shamir_threshold").is_some();
        for (i, item) in groups.items.iter().enumerate() {
            let is_group = doc.resolve(item.node).is_some_and(|g| doc.map(g).is_some());
            let end = doc.node(item.node).span.end.max(item.dash + 1);
            let first_line_end = doc.text[item.dash..end]
                .find('\n')
                .map_or(end, |n| item.dash + n);
            if !is_group {
                out.push(
                    Diagnostic::new(
                        &RULE,
                        span(file, item.dash, first_line_end),
                        format!("this item of {}'s key_groups is not a key group (a mapping like `age: [...]`)", rule.label()),
                    )
                    .help("put the recipient in the first group's `age:` list instead"),
                );
            } else if i > 0 && !threshold {
                out.push(
                    Diagnostic::new(
                        &RULE,
                        span(file, item.dash, first_line_end),
                        format!(
                            "this `-` starts key group {} of {}: without shamir_threshold sops needs a key from every group to decrypt",
                            i + 1,
                            rule.label()
                        ),
                    )
                    .help("if these recipients belong with the others, remove the `-` and list them under the first group's `age:`"),
                );
            }
        }
    }
}
