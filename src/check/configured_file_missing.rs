//! FL003: `settings.hostsFile` or `settings.sopsConfig` names a file that does not exist.

use super::util::report_missing_paths;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;

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

/// A path a setting names explicitly: an error, since vmctl would edit the wrong file.
pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    report_missing_paths(fleet, true, &RULE, out)
}
