//! FL003: `settings.hostsFile` or `settings.sopsConfig` names a file that does not exist.

use super::util::report_said;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::model::read::Issue;

pub const RULE: Rule = Rule {
    code: "FL003",
    name: "configured-file-missing",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "`settings.hostsFile` or `settings.sopsConfig` names a file that does not exist",
    explanation: "\
## What it does
Reports a `settings.hostsFile` or `settings.sopsConfig` in definitions.nix whose file does not
exist, at the setting.

## Why
vmctl edits these files. With a typo in the setting, the real file would be silently skipped by
every check, and `vmctl hosts add` or `vmctl sops add-recipient` would create a second file at
the mistyped path.

## Example
```nix
settings.hostsFile = \"hosts/hosts.nix\";   # the file is ./hosts.nix
```

## Fix
Correct the path, or create the file where the setting says.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    report_said(fleet, &RULE, out, |_, i| {
        matches!(i, Issue::MissingPath { error: true, .. })
    });
}
