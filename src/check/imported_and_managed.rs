//! VM004: the same name is both imported and managed.

use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::syntax::Span;

pub const RULE: Rule = Rule {
    code: "VM004",
    name: "imported-and-managed",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "the same VM name appears in both `imported` and `managed`",
    explanation: "\
## What it does
Reports a name defined both under `imported` (documentation of a VM vmctl must not touch) and
under `managed` (a VM vmctl creates and changes).

## Why
The two say opposite things about the same VM: one protects it, the other allows vmctl to
clone, reconfigure or destroy it. vmctl will not guess which you meant.

## Example
```nix
imported.doc1 = { vmid = 104; readonly = true; };
managed.doc1 = { vmid = 111; cores = 2; memory = 2048; disk = \"20G\"; };
```

## Fix
Remove one of them, or rename the managed VM.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let Some((file, defs)) = fleet.definitions_file() else {
        return;
    };
    for m in &defs.managed {
        if let Some(i) = defs.imported.iter().find(|i| i.name == m.name) {
            out.push(
                Diagnostic::new(
                    &RULE,
                    Span::new(file.file, m.source.name),
                    format!(
                        "`{}` is defined both as a managed and as an imported VM",
                        m.name
                    ),
                )
                .note(Span::new(file.file, i.source.name), "imported here")
                .help("remove one of the two definitions or rename the managed VM"),
            );
        }
    }
}
