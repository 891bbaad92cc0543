//! `vmctl sops`: lossless .sops.yaml edits.

use super::Global;

#[derive(Debug, clap::Subcommand)]
pub enum SopsCommand {}

pub fn run(_args: SopsCommand, _g: &Global) -> miette::Result<u8> {
    Err(miette::miette!("`vmctl sops` is not implemented yet"))
}
