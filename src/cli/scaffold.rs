//! `vmctl scaffold`: create hosts/NAME/ from hosts-template/.

use super::Global;

#[derive(Debug, clap::Args)]
pub struct ScaffoldArgs {}

pub fn run(_args: ScaffoldArgs, _g: &Global) -> miette::Result<u8> {
    Err(miette::miette!("`vmctl scaffold` is not implemented yet"))
}
