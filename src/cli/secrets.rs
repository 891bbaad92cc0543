//! `vmctl secrets`: re-key sops secrets natively.

use super::Global;

#[derive(Debug, clap::Subcommand)]
pub enum SecretsCommand {}

pub fn run(_args: SecretsCommand, _g: &Global) -> miette::Result<u8> {
    Err(miette::miette!("`vmctl secrets` is not implemented yet"))
}
