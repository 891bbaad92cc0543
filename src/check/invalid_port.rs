//! DF007: `proxmox.port` outside 1–65535.

use super::util::definitions;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;

pub const RULE: Rule = Rule {
    code: "DF007",
    name: "invalid-port",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "`proxmox.port` is not a TCP port (1 to 65535)",
    explanation: "\
## What it does
Checks that `proxmox.port`, the SSH port of the Proxmox host, is from 1 to 65535.

## Why
A port outside that range cannot be connected to; vmctl would otherwise have to guess (and
connecting to port 22 instead of the one you wrote is a guess that reaches the wrong service).

## Example
```nix
proxmox = { host = \"pve.lan\"; port = 222222; };
```

## Fix
Write the port sshd listens on (`port = 22;` by default).
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some(d) = definitions(fleet) else { return };
    let Some(port) = &d.defs.source.port else {
        return;
    };
    let n = port.value;
    if !(1..=65535).contains(&n) {
        out.push(
            Diagnostic::new(
                &RULE,
                d.span(port.range),
                format!("`proxmox.port` is {n}, not a TCP port (1 to 65535)"),
            )
            .help("write the port the Proxmox host's sshd listens on, e.g. `port = 22;`"),
        );
    }
}
