//! FL004: a fleet file or directory the fleet needs, or that `settings` names, is missing.

use super::util::report_said;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::model::read::Issue;

pub const RULE: Rule = Rule {
    code: "FL004",
    name: "fleet-file-missing",
    severity: Severity::Warning,
    cascade: Cascade::Always,
    summary: "a fleet file or directory the fleet needs, or that `settings` names, is missing",
    explanation: "\
## What it does
Warns when `settings.hostsDir`, `settings.templateDir` or `settings.secretsDir` names a
directory that does not exist; when the secrets directory holds files but there is no
`.sops.yaml` (or it sits at `secrets/.sops.yaml` while vmctl reads `.sops.yaml`); and when
there is a `.sops.yaml` but no hosts.nix.

## Why
Each of these makes a group of checks or a command quietly do nothing: no recipient checks
without the sops configuration, no host checks without hosts.nix.

## Example
```text
secrets/.sops.yaml     # vmctl reads .sops.yaml unless settings.sopsConfig says otherwise
```

## Fix
Create the file or directory, or point the setting at the one you use
(`settings.sopsConfig = \"secrets/.sops.yaml\";`).
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    report_said(fleet, &RULE, out, |_, i| {
        matches!(i, Issue::MissingPath { error: false, .. })
    });
}
