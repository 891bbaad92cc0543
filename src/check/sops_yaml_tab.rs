//! SP004: a tab in the indentation of `.sops.yaml`.

use super::sops_file::{sops_source, span, yaml_problem, YamlProblem};
use super::{Applicability, Cascade, Diagnostic, Fix, Rule, Severity};
use crate::text::TextEdit;
use crate::model::fleet::Fleet;

pub const RULE: Rule = Rule {
    code: "SP004",
    name: "sops-yaml-tab",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "a tab in the indentation of .sops.yaml makes it invalid YAML",
    explanation: "\
## What it does
Reports tab characters in the indentation of .sops.yaml lines when they keep the file from
parsing.

## Why
YAML allows only spaces for indentation. An editor that inserts a tab makes the whole file
unreadable for sops (`found character that cannot start any token`), and the line it points
at is often not the one with the tab.

## Example
```yaml
creation_rules:
\t- path_regex: secrets/.*   # indented with a tab
```

## Fix
Indent with spaces. The suggested fix replaces each tab of the indentation with two spaces;
check the nesting afterwards (it is unsafe: the intended depth is a guess).
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some((file, text)) = sops_source(fleet) else {
        return;
    };
    let Some(YamlProblem::Tabs(tabs)) = yaml_problem(text) else {
        return;
    };
    for (start, end) in tabs {
        let indent = &text[start..end];
        out.push(
            Diagnostic::new(
                &RULE,
                span(file, start, end),
                "a tab in the indentation: YAML indents with spaces only, so sops cannot read this file",
            )
            .help("indent this line with spaces")
            .fix(Fix {
                message: "replace the tabs with two spaces each".into(),
                applicability: Applicability::Unsafe,
                edits: vec![TextEdit::replace(start, end, indent.replace('\t', "  "))],
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::sops_file::{yaml_problem, YamlProblem};

    #[test]
    fn tabs_in_indentation_are_found_and_tabs_elsewhere_are_not() {
        let text = "creation_rules:\n\t- path_regex: a\n";
        assert_eq!(yaml_problem(text), Some(YamlProblem::Tabs(vec![(16, 17)])));
        // A tab after the indentation is content (or separation), not indentation.
        assert_eq!(yaml_problem("creation_rules:\n  - path_regex:\ta\n"), None);
    }
}
