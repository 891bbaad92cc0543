//! `vmctl keys`: ssh-ed25519 ↔ age conversion and host key generation.

use super::Global;

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {}

pub fn run(_args: KeysCommand, _g: &Global) -> miette::Result<u8> {
    Err(miette::miette!("`vmctl keys` is not implemented yet"))
}
