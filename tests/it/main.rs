//! vmctl's integration tests, one binary: cargo links one test executable instead of one per
//! file. Each module is one area (named as its file was before: `cargo test --test it
//! ops_cli::` runs one); helpers shared between areas live in `support`.

mod support;

mod apply_cli;
mod cli_generated;
mod cli_help;
mod cli_lint;
mod cli_output_bounds;
mod demo_fleet;
mod docheavy;
mod docs_cli;
mod edit_refusals;
mod eval_differential;
mod fast_parser;
mod hosts_edit;
mod hosts_edit_cli;
mod keys_cli;
mod keys_convert;
mod keys_generate;
mod lint_codes;
mod lint_nix_fallback;
mod lint_paths;
mod lint_real_world;
mod ops_args;
mod ops_cli;
mod ops_faults;
mod ops_fence;
mod ops_injection;
mod ops_proxmox;
mod ops_signals;
mod ops_ssh;
mod parser_fuzz;
mod provision_cli;
mod provision_e2e;
mod provision_real;
mod provision_sim;
mod scaffold_cli;
mod secrets_cli;
mod secrets_lib;
mod secrets_oracle;
mod secrets_rotate;
mod sops_edit_cases;
mod sops_edit_cli;
mod sops_edit_host_rule;
mod sops_edit_lint;
mod sops_edit_realworld;
mod sops_edit_remove;
mod sops_edit_scanner;
mod sops_model;
mod sops_regex_oracle;
