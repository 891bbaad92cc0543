//! `vmctl hosts`: lossless hosts.nix edits.

use super::Global;

#[derive(Debug, clap::Subcommand)]
pub enum HostsCommand {}

pub fn run(_args: HostsCommand, _g: &Global) -> miette::Result<u8> {
    Err(miette::miette!("`vmctl hosts` is not implemented yet"))
}
