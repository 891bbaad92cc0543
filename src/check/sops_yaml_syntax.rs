//! SP003: `.sops.yaml` is not valid YAML.

use super::sops_file::{point, sops_source, span, yaml_problem, YamlProblem};
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;

pub const RULE: Rule = Rule {
    code: "SP003",
    name: "sops-yaml-syntax",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: ".sops.yaml is not valid YAML",
    explanation: "\
## What it does
Parses .sops.yaml with a real YAML parser (the kind sops uses) and reports where it fails.
Tabs in indentation and undefined aliases have their own codes (SP004, SP005).

## Why
sops refuses a config it cannot parse, so every `sops` command in the repository fails, and
vmctl cannot add recipients or re-key. The other .sops.yaml checks cannot run either.

## Example
```yaml
creation_rules:
  - path_regex: secrets/.*
    age: [age1…   # the flow list is never closed
```

## Fix
Correct the YAML at the reported position; `vmlint` runs the .sops.yaml checks again once it
parses.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some((file, text)) = sops_source(fleet) else {
        return;
    };
    if let Some(YamlProblem::Syntax(offset, message)) = yaml_problem(text) {
        let at = match offset {
            Some(o) => point(file, text, o),
            None => span(file, 0, 0),
        };
        out.push(
            Diagnostic::new(&RULE, at, format!("not valid YAML: {message}"))
                .help("fix the YAML here; sops and vmctl cannot read the file until then"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::sops_file::{yaml_problem, YamlProblem};

    #[test]
    fn an_unclosed_flow_list_is_a_syntax_error_with_a_position() {
        let p = yaml_problem("creation_rules:\n  - age: [a, b\n").unwrap();
        assert!(matches!(p, YamlProblem::Syntax(Some(_), _)), "{p:?}");
        assert_eq!(yaml_problem("creation_rules:\n  - age: [a, b]\n"), None);
    }
}
