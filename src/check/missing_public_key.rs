//! HS005: a host without a `publicKey`.

use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::model::Given;
use crate::syntax::Span;

pub const RULE: Rule = Rule {
    code: "HS005",
    name: "missing-public-key",
    severity: Severity::Info,
    cascade: Cascade::Always,
    summary: "a host has no `publicKey`",
    explanation: "\
## What it does
Notes hosts in hosts.nix that have a `hostname` or `sshAlias` but no `publicKey`.

## Why
Without its host key a host cannot be pinned for SSH and gets no sops recipient, so it cannot
decrypt secrets. This is normal for a host not yet provisioned; `vmctl provision` fills it in.

## Example
```nix
web = { hostname = \"web\"; sshAlias = \"web\"; };
```

## Fix
`vmctl hosts set-key NAME --key \"$(ssh-keyscan -t ed25519 HOST | cut -d' ' -f2-)\"`.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some((file, hosts)) = fleet.hosts_file() else {
        return;
    };
    // A publicKey of the wrong type is reported as such, not as missing.
    for h in hosts
        .hosts
        .iter()
        .filter(|h| h.public_key_given == Given::Absent)
    {
        out.push(
            Diagnostic::new(
                &RULE,
                Span::new(file.file, h.name_range),
                format!("host `{}` has no `publicKey`", h.name),
            )
            .help(format!(
                "add it with `vmctl hosts set-key {} --key \"ssh-ed25519 …\"`",
                h.name
            )),
        );
    }
}
