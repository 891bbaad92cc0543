//! FL003 and FL004: a fleet file or directory that `settings` names, or that the fleet needs,
//! does not exist.

use super::{Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::model::read::Issue;

pub const CONFIGURED_RULE: Rule = Rule {
    code: "FL003",
    name: "configured-file-missing",
    severity: Severity::Error,
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

pub const NEEDED_RULE: Rule = Rule {
    code: "FL004",
    name: "fleet-file-missing",
    severity: Severity::Warning,
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
    for f in &fleet.files {
        for issue in &f.issues {
            if let Issue::MissingPath {
                span,
                message,
                help,
                error,
            } = issue
            {
                let rule = if *error {
                    &CONFIGURED_RULE
                } else {
                    &NEEDED_RULE
                };
                out.push(Diagnostic::new(rule, *span, message.clone()).help(help.clone()));
            }
        }
    }
}

/// FL004 is reported by [`check`] with FL003; this keeps it in the registry.
pub fn check_none(_: &Fleet, _: &mut Vec<Diagnostic>) {}
