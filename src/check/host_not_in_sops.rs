//! FL001: a host of hosts.nix whose age recipient is in no creation rule of .sops.yaml.

use super::sops_file::{host_recipients, sops_model};
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::syntax::Span;

pub const RULE: Rule = Rule {
    code: "FL001",
    name: "host-not-in-sops",
    severity: Severity::Warning,
    cascade: Cascade::Always,
    summary: "a host's age recipient is in no creation rule of .sops.yaml",
    explanation: "\
## What it does
Derives each host's age recipient from its `publicKey` in hosts.nix (as ssh-to-age does) and
reports a host whose recipient appears in no key group of any `creation_rules` entry of
.sops.yaml.

## Why
sops-nix on that host decrypts with its SSH host key. If no rule lists the host, no secret is
encrypted for it and activation fails on first boot, or the host silently runs without its
secrets. It is the step the old post-provision script most often missed.

## Example
```nix
# hosts.nix
doc2 = { publicKey = \"ssh-ed25519 AAAAC3Nza…\"; };
```
```yaml
# .sops.yaml: no rule lists doc2's age1…
creation_rules:
  - path_regex: secrets/[^/]+\\.yaml$
    key_groups:
      - age:
          - age18ezv… # admin
```

## Fix
`vmctl sops add-recipient doc2 age1…` (add `--rule` to pick rules), then
`vmctl secrets rekey` so existing secrets are encrypted for it.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    // The rules as sops (and re-keying) reads them; a file sops cannot use is reported by the
    // SP checks instead.
    let Some((sops_id, Ok(model))) = sops_model(fleet) else {
        return;
    };
    let listed: Vec<&str> = model
        .config
        .rules
        .iter()
        .flat_map(|r| &r.key_groups)
        .flat_map(|g| g.age.iter().map(String::as_str))
        .collect();
    for (file, host, recipient) in host_recipients(fleet) {
        if listed.contains(&recipient.as_str()) {
            continue;
        }
        let shown = fleet.db.path(sops_id).display().to_string();
        out.push(
            Diagnostic::new(
                &RULE,
                Span::new(file, host.name_range),
                format!(
                    "host `{}` (age recipient {recipient}) is in no creation rule of {shown}: it cannot decrypt any secret",
                    host.name
                ),
            )
            .help(format!(
                "run `vmctl sops add-recipient {} {recipient}`, then `vmctl secrets rekey`",
                host.name
            )),
        );
    }
}
