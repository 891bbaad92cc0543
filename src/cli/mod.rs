//! Command-line interface: clap definitions and dispatch. Each command family lives in its own
//! file and exposes `run(args, &Global) -> miette::Result<u8>` returning the process exit code.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub mod changes;
pub mod docs;
pub mod generate;
pub mod hosts;
pub mod keys;
pub mod lint;
pub mod ops;
pub mod scaffold;
pub mod secrets;
pub mod sops;

/// Declarative NixOS VMs on Proxmox.
///
/// Describe VMs in `vms/definitions.nix`, then let vmctl validate them, create them on
/// Proxmox over SSH, install NixOS and integrate each new host into the fleet
/// (hosts.nix, .sops.yaml, secrets, docs/machines.md, git).
#[derive(Debug, Parser)]
#[command(
    name = "vmctl",
    version = env!("VMCTL_VERSION"),
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command understands.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Fleet repository root (the directory holding `vms/definitions.nix`).
    /// Default: found by walking up from the current directory.
    #[arg(long, global = true, value_name = "DIR", env = "VMCTL_FLEET")]
    pub fleet: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the fleet files (definitions.nix, hosts.nix, .sops.yaml) and report problems
    /// with their exact source location. Same as the `vmlint` binary.
    Lint(lint::LintArgs),
    /// Print the explanation of a diagnostic code, e.g. `vmctl explain VM001`.
    Explain(lint::ExplainArgs),
    /// Convert and generate SSH host keys and age identities.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Edit hosts.nix: add a host, change its key, remove it.
    #[command(subcommand)]
    Hosts(hosts::HostsCommand),
    /// Edit .sops.yaml: add or remove a host's age recipient, add a per-host rule.
    #[command(subcommand)]
    Sops(sops::SopsCommand),
    /// Create hosts/NAME/ from the fleet's hosts-template/.
    Scaffold(scaffold::ScaffoldArgs),
    /// Regenerate the generated sections of docs/machines.md.
    Docs(docs::DocsArgs),
    /// Re-key sops secrets for the recipients .sops.yaml lists, or check that they match.
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
    /// Proxmox operations over SSH (the seed's `proxmox-ops`), with readonly fences.
    #[command(subcommand)]
    Ops(ops::OpsCommand),
    /// Print a shell completion script (bash, zsh or fish) to stdout.
    Completions(generate::CompletionsArgs),
    /// Write man pages for vmctl and every subcommand into a directory.
    Man(generate::ManArgs),
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> miette::Result<u8> {
    let g = &cli.global;
    match cli.command {
        Command::Lint(a) => lint::run(a, g),
        Command::Explain(a) => lint::explain(a),
        Command::Keys(a) => keys::run(a, g),
        Command::Hosts(a) => hosts::run(a, g),
        Command::Sops(a) => sops::run(a, g),
        Command::Scaffold(a) => scaffold::run(a, g),
        Command::Docs(a) => docs::run(a, g),
        Command::Secrets(a) => secrets::run(a, g),
        Command::Ops(a) => ops::run(a, g),
        Command::Completions(a) => generate::completions(a),
        Command::Man(a) => generate::man(a),
    }
}
