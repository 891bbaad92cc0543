//! `vmctl ops`: Proxmox operations over SSH.

use super::Global;

#[derive(Debug, clap::Subcommand)]
pub enum OpsCommand {}

pub fn run(_args: OpsCommand, _g: &Global) -> miette::Result<u8> {
    Err(miette::miette!("`vmctl ops` is not implemented yet"))
}
