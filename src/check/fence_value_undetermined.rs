//! VM020: a `vmid` or `readonly` that cannot be determined, so the ops fences fail closed.

use super::util::definitions;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::model::source::Undetermined;

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
    let Some(d) = definitions(fleet) else { return };
    for u in &d.defs.source.undetermined {
        let message = match &u.value {
            Undetermined::Table(field) => format!(
                "`{field}` cannot be determined, so its VMIDs are unknown: \
                 `vmctl ops` refuses every change to every VM"
            ),
            Undetermined::Entry(field, name) => format!(
                "{field} VM `{name}` cannot be determined, so its VMID \
                 is unknown: `vmctl ops` refuses every change to every VM"
            ),
        };
        out.push(Diagnostic::new(&RULE, d.span(u.range), message).help(help));
    }
    for vm in d.defs.all_vms() {
        let kind = vm.kind.as_str();
        let undetermined = [
            (
                vm.source.vmid.as_ref().map(|w| (w.range, w.value.is_undetermined())),
                "vmid",
                "`vmctl ops` refuses every change to every VM, since it cannot tell which VMID \
                 this one is",
            ),
            (
                vm.source.readonly.as_ref().map(|w| (w.range, w.value.is_undetermined())),
                "readonly",
                "`vmctl ops` treats the VM as readonly and refuses every change to it",
            ),
        ];
        for (written, field, consequence) in undetermined {
            if let Some((range, true)) = written {
                out.push(
                    Diagnostic::new(
                        &RULE,
                        d.span(range),
                        format!(
                            "`{field}` of {kind} VM `{}` cannot be determined: {consequence}",
                            vm.name
                        ),
                    )
                    .help(help),
                );
            }
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
