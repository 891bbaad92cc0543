//! `vmctl lint` / `vmlint` and `vmctl explain`.

use super::Global;

#[derive(Debug, clap::Args)]
pub struct LintArgs {}

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// Diagnostic code, e.g. VM001.
    pub code: String,
}

pub fn run(_args: LintArgs, _g: &Global) -> miette::Result<u8> {
    Err(miette::miette!("`vmctl lint` is not implemented yet"))
}

pub fn explain(_args: ExplainArgs) -> miette::Result<u8> {
    Err(miette::miette!("`vmctl explain` is not implemented yet"))
}

/// Entry point of the `vmlint` binary.
pub fn vmlint_main() -> u8 {
    2
}
