//! `vmctl completions` and `vmctl man`: shell completions and man pages generated from the clap
//! definitions, so they never drift from `--help`.

use std::path::PathBuf;

use clap::{Args, CommandFactory, ValueEnum};

use super::Cli;
use crate::exec::cannot_act::CannotAct;

/// The shells vmctl generates completions for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  vmctl completions bash > ~/.local/share/bash-completion/completions/vmctl\n  vmctl completions fish > ~/.config/fish/completions/vmctl.fish"
)]
pub struct CompletionsArgs {
    /// The shell to print a completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  vmctl man --out share/man/man1")]
pub struct ManArgs {
    /// Directory to write the pages into (created if missing): vmctl.1 and one page per
    /// command and subcommand, e.g. vmctl-ops-stop.1.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Prints the completion script for `args.shell` to stdout.
pub fn completions(args: CompletionsArgs) -> miette::Result<u8> {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "vmctl", &mut script);
    crate::render::stdio::out(&String::from_utf8_lossy(&script));
    Ok(0)
}

/// Writes one roff page per command and subcommand into `args.out`.
pub fn man(args: ManArgs) -> miette::Result<u8> {
    std::fs::create_dir_all(&args.out).map_err(|e| {
        CannotAct::new(format!("cannot create {}: {e}", args.out.display()))
            .help("check the path and its permissions")
    })?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Built, every subcommand knows its full name (`vmctl-ops-stop`), which names its page.
    cmd.build();
    write_pages(&cmd, &args.out).map_err(|e| {
        CannotAct::new(format!(
            "cannot write man pages into {}: {e}",
            args.out.display()
        ))
        .help("check the directory's permissions")
    })?;
    Ok(0)
}

/// Writes `cmd`'s page and its subcommands' pages. Unlike `clap_mangen::generate_to`, every
/// page's footer names vmctl and its commit rather than the subcommand (`stop 0.1.0`).
fn write_pages(cmd: &clap::Command, out: &std::path::Path) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, out)?;
    }
    clap_mangen::Man::new(cmd.clone())
        .source(concat!("vmctl ", env!("VMCTL_VERSION")))
        .generate_to(out)?;
    Ok(())
}
