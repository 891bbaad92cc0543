//! Diagnostics: one [`Diagnostic`] type, stable codes in families, one rule per file.
//!
//! Families: `NX` Nix syntax and evaluation, `DF` definitions.nix structure, `VM` VM
//! constraints, `HS` hosts.nix, `SP` .sops.yaml, `FL` cross-file fleet consistency. A code is
//! never reused. Every rule file opens with its explanation (what it does, why, an example,
//! how to fix), which `vmctl explain CODE` prints and `docs/diagnostics.md` lists.

use crate::model::fleet::Fleet;
use crate::syntax::Span;
use crate::text::TextEdit;

mod fix;
mod sops_file;
mod util;

pub use fix::{select as select_fixes, FixMode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// A rule: its stable code, a kebab-case name, its severity and its explanation.
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    pub code: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    /// Whether the rule is reported in a file with syntax errors.
    pub cascade: Cascade,
    /// One line: what the rule reports.
    pub summary: &'static str,
    /// Markdown: what it does, why, an example, how to fix.
    pub explanation: &'static str,
}

/// Whether a rule's findings are its own or mostly echoes of another problem in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cascade {
    /// Reported whatever else is wrong with the file.
    Always,
    /// Not reported in a file with syntax errors: there its findings are mostly echoes of the
    /// syntax error (`cores = 2 memory = 4096;` reads as a call of `2`, so `memory` is
    /// "missing"), and the syntax error is the cause to report.
    SuppressedWhenFileBroken,
}

/// How safe it is to apply a fix without looking (ruff's applicability).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applicability {
    Safe,
    Unsafe,
    DisplayOnly,
}

/// A suggested change, as text edits in the diagnostic's file.
#[derive(Debug, Clone, PartialEq)]
pub struct Fix {
    pub message: String,
    pub applicability: Applicability,
    pub edits: Vec<TextEdit>,
}

/// A related location: "first defined here".
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub span: Span,
    pub message: String,
}

/// One problem found in the fleet, at an exact span.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub rule: &'static Rule,
    pub span: Span,
    pub message: String,
    pub notes: Vec<Note>,
    pub help: Option<String>,
    pub fix: Option<Fix>,
}

impl Diagnostic {
    pub fn new(rule: &'static Rule, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            rule,
            span,
            message: message.into(),
            notes: Vec::new(),
            help: None,
            fix: None,
        }
    }

    pub fn note(mut self, span: Span, message: impl Into<String>) -> Self {
        self.notes.push(Note {
            span,
            message: message.into(),
        });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn fix(mut self, fix: Fix) -> Self {
        self.fix = Some(fix);
        self
    }

    pub fn code(&self) -> &'static str {
        self.rule.code
    }

    pub fn severity(&self) -> Severity {
        self.rule.severity
    }
}

/// A check: reads the fleet, pushes diagnostics.
type CheckFn = fn(&Fleet, &mut Vec<Diagnostic>);

/// Declares the rule modules and `CHECKS`, every rule with its check.
macro_rules! registry {
    ($($rule:ident,)*) => {
        $(mod $rule;)*

        const CHECKS: &[(&Rule, CheckFn)] = &[$((&$rule::RULE, $rule::check)),*];
    };
}

// Each rule's module, named after the rule (tests/it/rules.rs checks that), registered with
// its `RULE` and `check`. Rules checked elsewhere (e.g. by `vmctl secrets check`) are here too,
// so `explain` and the docs know them.
registry! {
    accidental_key_group,
    configured_file_missing,
    creation_rules_not_a_list,
    duplicate_anchor,
    duplicate_attribute,
    duplicate_host_name,
    duplicate_public_key,
    duplicate_vmid,
    dynamic_value,
    empty_sops_config,
    evaluation_error,
    fence_value_undetermined,
    fleet_file_missing,
    host_not_in_sops,
    imported_and_managed,
    imported_not_readonly,
    install_resources_low,
    invalid_creation_rule,
    invalid_network,
    invalid_node_name,
    invalid_nixos_config,
    invalid_port,
    invalid_public_key,
    invalid_vm_name,
    invalid_vmid_range,
    missing_admin_keys,
    missing_creation_rules,
    missing_field,
    missing_host_directory,
    missing_public_key,
    misspelled_field,
    nix_fallback_failed,
    plain_nix_file,
    resource_out_of_bounds,
    sops_config_not_editable,
    sops_yaml_syntax,
    sops_yaml_tab,
    stale_sops_recipient,
    syntax_error,
    undefined_alias,
    unknown_field,
    unknown_sops_rule,
    unreadable_documented_resource,
    unsupported_definitions_shape,
    unsupported_hosts_shape,
    vmid_out_of_bounds,
    vmid_outside_ranges,
    wrong_type,
}

/// Every rule vmctl knows, in code order.
pub fn rules() -> Vec<&'static Rule> {
    let mut all: Vec<&'static Rule> = CHECKS.iter().map(|(r, _)| *r).collect();
    all.sort_by_key(|r| r.code);
    all
}

/// The rule with this code (case-insensitive), or with this name.
pub fn rule(code_or_name: &str) -> Option<&'static Rule> {
    rules()
        .into_iter()
        .find(|r| r.code.eq_ignore_ascii_case(code_or_name) || r.name == code_or_name)
}

/// Runs every check over the fleet. Diagnostics come sorted by file, position and code.
pub fn check_fleet(fleet: &Fleet) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (_, check) in CHECKS {
        check(fleet, &mut out);
    }
    fix::attach(fleet, &mut out);
    // In a file with syntax errors, the rules that say so stay quiet: report the cause.
    let broken: Vec<_> = fleet
        .files
        .iter()
        .flat_map(|f| f.eval.syntax_errors.iter().map(|(id, _)| *id))
        .collect();
    out.retain(|d| {
        d.rule.cascade != Cascade::SuppressedWhenFileBroken || !broken.contains(&d.span.file)
    });
    out.sort_by(|a, b| {
        (
            a.span.file,
            a.span.range.start(),
            a.span.range.end(),
            a.rule.code,
        )
            .cmp(&(
                b.span.file,
                b.span.range.start(),
                b.span.range.end(),
                b.rule.code,
            ))
    });
    out.dedup_by(|a, b| a.rule.code == b.rule.code && a.span == b.span && a.message == b.message);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The findings of `code` on a definitions.nix of `src`: the text each points at.
    fn pointed_at(src: &str, code: &str) -> Vec<String> {
        use crate::model::fleet::NixRole;
        use crate::syntax::NoImports;

        let mut fleet = Fleet::default();
        fleet.add_nix("vms/definitions.nix", src, NixRole::Definitions, &NoImports);
        check_fleet(&fleet)
            .into_iter()
            .filter(|d| d.code() == code)
            .map(|d| src[d.span.range].to_string())
            .collect()
    }

    #[test]
    fn codes_are_unique_well_formed_and_explained() {
        let all = rules();
        for w in all.windows(2) {
            assert_ne!(w[0].code, w[1].code, "duplicate code");
        }
        for r in &all {
            assert!(
                r.code.len() == 5 && r.code[2..].chars().all(|c| c.is_ascii_digit()),
                "{}",
                r.code
            );
            assert!(
                ["NX", "DF", "VM", "HS", "SP", "FL"].contains(&&r.code[..2]),
                "{}",
                r.code
            );
            for section in ["## What it does", "## Why", "## Example", "## Fix"] {
                assert!(
                    r.explanation.contains(section),
                    "{} lacks {section}",
                    r.code
                );
            }
            assert!(!r.summary.ends_with('.'), "{}", r.code);
        }
    }

    /// A syntax error makes the rules marked `SuppressedWhenFileBroken` fire in that file
    /// (`cores = 2 memory = 4096;` calls `2` and loses `memory`); the filter keeps them out and
    /// keeps every other finding, and the same rules fire in a file without syntax errors.
    #[test]
    fn rules_marked_so_are_quiet_in_a_file_with_syntax_errors() {
        use crate::model::fleet::NixRole;
        use crate::syntax::NoImports;

        let fleet_of = |src: &str| {
            let mut fleet = Fleet::default();
            fleet.add_nix("vms/definitions.nix", src, NixRole::Definitions, &NoImports);
            fleet
        };
        let raw = |fleet: &Fleet| {
            let mut out = Vec::new();
            for (_, check) in CHECKS {
                check(fleet, &mut out);
            }
            out
        };
        let echoes = |ds: &[Diagnostic]| {
            ds.iter()
                .filter(|d| d.rule.cascade == Cascade::SuppressedWhenFileBroken)
                .map(|d| d.code())
                .collect::<Vec<_>>()
        };
        let broken = fleet_of(
            r#"{ proxmox.host = "h"; managed.web = { vmid = 110; cores = 2 memory = 4096; disk = "20G"; }; }"#,
        );
        assert!(!echoes(&raw(&broken)).is_empty(), "{:?}", raw(&broken));
        let shown = check_fleet(&broken);
        assert!(shown.iter().any(|d| d.code() == "NX001"), "{shown:?}");
        assert_eq!(echoes(&shown), Vec::<&str>::new());
        let kept = raw(&broken)
            .iter()
            .filter(|d| d.rule.cascade == Cascade::Always)
            .count();
        assert_eq!(shown.len(), kept, "{shown:?}");

        let whole = fleet_of(
            r#"{ proxmox.host = "h"; managed.web = { vmid = 110; cores = 2; disk = "20G"; }; }"#,
        );
        assert_eq!(echoes(&check_fleet(&whole)), ["DF001"]);
    }

    /// The model's typed fields cannot hold these (`u32`); the rules read them as written.
    #[test]
    fn values_no_typed_field_can_hold_are_reported_where_written() {
        let cases: [(&str, &str, &[&str]); 2] = [
            (
                "VM002",
                r#"{ proxmox.host = "h"; vmidRanges.lab = { start = -5; end = 5000000000; }; managed.web = { vmid = -1; cores = 1; memory = 2048; disk = "20G"; }; }"#,
                &["-5", "5000000000", "-1"][..],
            ),
            (
                "VM006",
                r#"{ proxmox.host = "h"; managed.web = { vmid = 110; cores = -2; memory = -4096; disk = "0.5G"; }; }"#,
                &["-2", "-4096", "\"0.5G\""][..],
            ),
        ];
        for (code, src, expected) in cases {
            assert_eq!(pointed_at(src, code), expected, "{code}");
        }
    }
}
