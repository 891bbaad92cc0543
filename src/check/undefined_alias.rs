//! SP005: an alias in `.sops.yaml` names an anchor that is not defined before it.

use super::sops_file::{sops_source, span, yaml_problem, YamlProblem};
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;

pub const RULE: Rule = Rule {
    code: "SP005",
    name: "undefined-alias",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "an alias (`*name`) in .sops.yaml has no anchor (`&name`) before it",
    explanation: "\
## What it does
Reports an alias `*name` whose anchor `&name` is not defined earlier in .sops.yaml.

## Why
An alias can only refer back to an anchor defined above it. sops refuses the whole file
(`unknown anchor`), so nothing can be encrypted, decrypted with updated keys, or re-keyed.
It usually follows a renamed or removed host.

## Example
```yaml
keys:
  - &admin age1…
creation_rules:
  - path_regex: secrets/.*
    key_groups:
      - age:
          - *admin
          - *doc9     # no &doc9 above
```

## Fix
Define the anchor in the `keys:` list (`- &doc9 age1…`, or `vmctl sops add-recipient doc9`
after removing the alias), or remove the alias.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some((file, text)) = sops_source(fleet) else {
        return;
    };
    if let Some(YamlProblem::UndefinedAlias(at, name)) = yaml_problem(text) {
        out.push(
            Diagnostic::new(
                &RULE,
                span(file, at, at + 1 + name.len()),
                format!("*{name} refers to no anchor: no `&{name}` is defined before it"),
            )
            .help(format!(
                "define `- &{name} age1…` in the `keys:` list above, or remove this alias"
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::sops_file::{yaml_problem, YamlProblem};

    #[test]
    fn an_alias_before_or_without_its_anchor_is_undefined() {
        let text = "keys:\n  - &a x\ncreation_rules:\n  - age:\n      - *a\n      - *doc9\n";
        let p = yaml_problem(text).unwrap();
        let at = text.find("*doc9").unwrap();
        assert_eq!(p, YamlProblem::UndefinedAlias(at, "doc9".into()));
        assert_eq!(yaml_problem("keys:\n  - &a x\nr: [*a]\n"), None);
    }
}
