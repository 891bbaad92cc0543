//! VM020: a `vmid` or `readonly` that cannot be determined, so the ops fences fail closed.

use super::util::{definitions_top, vm_entries};
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::syntax::Value;

pub const RULE: Rule = Rule {
    code: "VM020",
    name: "fence-value-undetermined",
    severity: Severity::Warning,
    cascade: Cascade::Always,
    summary: "a `vmid` or `readonly` cannot be determined, so `vmctl ops` refuses changes",
    explanation: "\
## What it does
Reports a VM's `vmid` or `readonly` (or a whole VM entry or VM table) that neither vmctl's
static evaluator nor the Nix fallback could determine, and says what `vmctl ops` does about it.

## Why
The readonly fence is what keeps vmctl away from production VMs. vmctl never guesses a value
the fence relies on: a `readonly` it cannot read makes that VM readonly for every change, and a
`vmid` it cannot read makes every change to every VM refused, since vmctl cannot tell which
VMID the unknown entry protects.

## Example
```nix
imported.doc1 = { vmid = 104; readonly = lib.mkDefault true; };   # `lib` needs nixpkgs
```

## Fix
Write the value as a literal (`readonly = true;`, `vmid = 104;`), or make `nix-instantiate`
available on PATH so vmctl can evaluate the file.
",
};

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let help = "write it as a literal (`readonly = true;`, `vmid = 104;`) so vmctl can read it \
                without Nix, or make nix-instantiate available on PATH";
    if let Some(top) = definitions_top(fleet) {
        for field in ["template", "imported", "managed"] {
            match top.get(field) {
                Some(v) if v.is_unknown() => out.push(
                    Diagnostic::new(
                        &RULE,
                        v.span,
                        format!(
                            "`{field}` cannot be determined, so its VMIDs are unknown: \
                             `vmctl ops` refuses every change to every VM"
                        ),
                    )
                    .help(help),
                ),
                Some(v) if field != "template" => {
                    for (name, entry) in v.as_attrs().into_iter().flat_map(|s| s.iter()) {
                        if entry.value.is_unknown() {
                            out.push(
                                Diagnostic::new(
                                    &RULE,
                                    entry.value.span,
                                    format!(
                                        "{field} VM `{name}` cannot be determined, so its VMID \
                                         is unknown: `vmctl ops` refuses every change to every VM"
                                    ),
                                )
                                .help(help),
                            );
                        }
                    }
                }
                _ => {}
            }
        }
    }
    for e in vm_entries(fleet) {
        let kind = e.kind.as_str();
        if let Some(v) = e.get("vmid").filter(|v| Value::is_unknown(v)) {
            out.push(
                Diagnostic::new(
                    &RULE,
                    v.span,
                    format!(
                        "`vmid` of {kind} VM `{}` cannot be determined: `vmctl ops` refuses \
                         every change to every VM, since it cannot tell which VMID this one is",
                        e.name
                    ),
                )
                .help(help),
            );
        }
        if let Some(v) = e.get("readonly").filter(|v| Value::is_unknown(v)) {
            out.push(
                Diagnostic::new(
                    &RULE,
                    v.span,
                    format!(
                        "`readonly` of {kind} VM `{}` cannot be determined: `vmctl ops` treats \
                         the VM as readonly and refuses every change to it",
                        e.name
                    ),
                )
                .help(help),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::check::check_fleet;
    use crate::model::fleet::{Fleet, NixRole};
    use crate::syntax::{evaluate, NoImports};

    fn vm020(src: &str) -> Vec<String> {
        let mut fleet = Fleet::default();
        let f = fleet.db.add("vms/definitions.nix", src);
        let ev = evaluate(&mut fleet.db, f, &NoImports);
        fleet.add_evaluated(f, NixRole::Definitions, ev);
        check_fleet(&fleet)
            .into_iter()
            .filter(|d| d.code() == "VM020")
            .map(|d| d.message)
            .collect()
    }

    #[test]
    fn names_the_value_and_what_ops_does() {
        let got = vm020(
            r#"{ proxmox.host = "h";
                 imported.doc1 = { vmid = 104; readonly = lib.mkDefault true; };
                 managed.web = { vmid = builtins.add 100 10; cores = 1; memory = 512; disk = "1G"; }; }"#,
        );
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[0].contains("`readonly` of imported VM `doc1`"),
            "{got:?}"
        );
        assert!(got[0].contains("treats the VM as readonly"), "{got:?}");
        assert!(got[1].contains("`vmid` of managed VM `web`"), "{got:?}");
    }

    #[test]
    fn whole_entries_and_tables() {
        let got = vm020(r#"{ proxmox.host = "h"; imported = lib.x; managed.web = mkVm 1; }"#);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got.iter().any(|m| m.starts_with("`imported` cannot")),
            "{got:?}"
        );
        assert!(
            got.iter().any(|m| m.starts_with("managed VM `web`")),
            "{got:?}"
        );
    }

    #[test]
    fn literals_are_quiet() {
        assert!(vm020(
            r#"{ proxmox.host = "h"; imported.doc1 = { vmid = 104; readonly = true; }; }"#
        )
        .is_empty());
    }
}
