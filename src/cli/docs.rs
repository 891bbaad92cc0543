//! `vmctl docs`: regenerate docs/machines.md sections.

use super::Global;

#[derive(Debug, clap::Args)]
pub struct DocsArgs {}

pub fn run(_args: DocsArgs, _g: &Global) -> miette::Result<u8> {
    Err(miette::miette!("`vmctl docs` is not implemented yet"))
}
