//! Diagnostics: one [`Diagnostic`] type, stable codes in families, one rule per file.
//!
//! Families: `NX` Nix syntax and evaluation, `DF` definitions.nix structure, `VM` VM
//! constraints, `HS` hosts.nix, `SP` .sops.yaml, `FL` cross-file fleet consistency. A code is
//! never reused. Every rule file opens with its explanation (what it does, why, an example,
//! how to fix), which `vmctl explain CODE` prints and `docs/diagnostics.md` lists.

use crate::model::fleet::Fleet;
use crate::syntax::Span;
use crate::text::TextEdit;

mod accidental_key_group;
mod creation_rules_not_a_list;
mod documented_resource;
mod duplicate_anchor;
mod duplicate_attribute;
mod duplicate_public_key;
mod duplicate_vmid;
mod dynamic_value;
mod empty_sops_config;
mod eval_error;
mod fence_undetermined;
mod host_names;
mod host_not_in_sops;
mod imported_not_readonly;
mod install_resources_low;
mod invalid_creation_rule;
mod invalid_network;
mod invalid_nixos_config;
mod invalid_port;
mod invalid_public_key;
mod invalid_vm_name;
mod invalid_vmid_range;
mod missing_creation_rules;
mod missing_field;
mod missing_fleet_file;
mod missing_host_directory;
mod missing_public_key;
mod misspelled_field;
mod name_in_imported_and_managed;
mod nix_fallback_failed;
mod plain_nix_file;
mod resource_bounds;
mod sops_file;
mod sops_not_editable;
mod sops_syntax_error;
mod sops_tab_indent;
mod sops_undefined_alias;
mod stale_sops_recipient;
mod syntax_error;
mod unknown_field;
mod unknown_sops_rule;
mod unsupported_shape;
mod util;
mod vmid_out_of_bounds;
mod vmid_outside_ranges;
mod wrong_type;

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
    /// One line: what the rule reports.
    pub summary: &'static str,
    /// Markdown: what it does, why, an example, how to fix.
    pub explanation: &'static str,
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

/// Every rule with its check, in code order. Rules checked elsewhere (e.g. by `vmctl secrets
/// check`) are registered here too so `explain` and the docs know them.
const CHECKS: &[(&Rule, CheckFn)] = &[
    (&syntax_error::RULE, syntax_error::check),
    (&dynamic_value::RULE, dynamic_value::check),
    (&eval_error::RULE, eval_error::check),
    (&nix_fallback_failed::RULE, nix_fallback_failed::check),
    (&plain_nix_file::RULE, plain_nix_file::check),
    (&duplicate_attribute::RULE, duplicate_attribute::check),
    (&missing_field::RULE, missing_field::check),
    (&wrong_type::RULE, wrong_type::check),
    (&unknown_field::RULE, unknown_field::check),
    (&invalid_port::RULE, invalid_port::check),
    (&misspelled_field::RULE, misspelled_field::check),
    (
        &unsupported_shape::DEFINITIONS_RULE,
        unsupported_shape::check_definitions,
    ),
    (&duplicate_vmid::RULE, duplicate_vmid::check),
    (&vmid_out_of_bounds::RULE, vmid_out_of_bounds::check),
    (&vmid_outside_ranges::RULE, vmid_outside_ranges::check),
    (
        &name_in_imported_and_managed::RULE,
        name_in_imported_and_managed::check,
    ),
    (&invalid_vm_name::RULE, invalid_vm_name::check),
    (&resource_bounds::RULE, resource_bounds::check),
    (&documented_resource::RULE, documented_resource::check),
    (&imported_not_readonly::RULE, imported_not_readonly::check),
    (&fence_undetermined::RULE, fence_undetermined::check),
    (&missing_host_directory::RULE, missing_host_directory::check),
    (&invalid_vmid_range::RULE, invalid_vmid_range::check),
    (&invalid_network::RULE, invalid_network::check),
    (&invalid_nixos_config::RULE, invalid_nixos_config::check),
    (&install_resources_low::RULE, install_resources_low::check),
    (&invalid_public_key::RULE, invalid_public_key::check),
    (&duplicate_public_key::RULE, duplicate_public_key::check),
    (&host_names::RULE, host_names::check),
    (
        &unsupported_shape::HOSTS_RULE,
        unsupported_shape::check_hosts,
    ),
    (&missing_public_key::RULE, missing_public_key::check),
    (&accidental_key_group::RULE, accidental_key_group::check),
    (&duplicate_anchor::RULE, duplicate_anchor::check),
    (&sops_syntax_error::RULE, sops_syntax_error::check),
    (&sops_tab_indent::RULE, sops_tab_indent::check),
    (&sops_undefined_alias::RULE, sops_undefined_alias::check),
    (&empty_sops_config::RULE, empty_sops_config::check),
    (
        &creation_rules_not_a_list::RULE,
        creation_rules_not_a_list::check,
    ),
    (&invalid_creation_rule::RULE, invalid_creation_rule::check),
    (&sops_not_editable::RULE, sops_not_editable::check),
    (&missing_creation_rules::RULE, missing_creation_rules::check),
    (&unknown_sops_rule::RULE, unknown_sops_rule::check),
    (&host_not_in_sops::RULE, host_not_in_sops::check),
    (
        &missing_fleet_file::CONFIGURED_RULE,
        missing_fleet_file::check,
    ),
    (
        &missing_fleet_file::NEEDED_RULE,
        missing_fleet_file::check_none,
    ),
    (&stale_sops_recipient::RULE, stale_sops_recipient::check),
];

/// Codes not reported in a file that has syntax errors.
const CASCADES: &[&str] = &["NX003", "NX004", "DF001", "DF004", "HS004"];

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
    // In a file with syntax errors, evaluation errors and missing fields are mostly echoes of
    // the syntax error (`cores = 2 memory = 4096;` reads as a call of `2`): report the cause.
    let broken: Vec<_> = fleet
        .files
        .iter()
        .flat_map(|f| f.eval.syntax_errors.iter().map(|(id, _)| *id))
        .collect();
    out.retain(|d| !(broken.contains(&d.span.file) && CASCADES.contains(&d.rule.code)));
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
}
