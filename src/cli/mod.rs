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
pub mod provision;
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
    max_term_width = 100,
    after_long_help = "Examples:
  vmctl lint                                  # check the fleet files
  vmctl ops list                              # every VM of the cluster
  vmctl ops stop 110 --dry-run                # print the remote command, change nothing
  vmctl scaffold test-automation --dry-run"
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
    #[command(after_long_help = "Examples:
  vmctl lint                                  # the whole fleet
  vmctl lint vms/definitions.nix --format json
  vmctl lint --deny-warnings --no-nix         # for a pre-commit hook")]
    Lint(lint::LintArgs),
    /// Print the explanation of a diagnostic code, e.g. `vmctl explain VM001`.
    #[command(after_long_help = "Examples:
  vmctl explain VM001
  vmctl explain duplicate-vmid
  vmctl explain --list")]
    Explain(lint::ExplainArgs),
    /// Convert and generate SSH host keys and age identities.
    #[command(subcommand)]
    #[command(after_long_help = "Examples:
  ssh-keyscan doc1 | vmctl keys to-age
  vmctl keys fingerprint /etc/ssh/ssh_host_ed25519_key.pub
  vmctl keys generate --out ~/.local/share/vmctl/keys/test-automation/etc/ssh")]
    Keys(keys::KeysCommand),
    /// Edit hosts.nix: add a host, change its key, remove it.
    #[command(subcommand)]
    #[command(after_long_help = "Examples:
  vmctl hosts add test-automation --key \"$(cat keys/test-automation/etc/ssh/ssh_host_ed25519_key.pub)\" --dry-run
  vmctl hosts remove igpu --dry-run")]
    Hosts(hosts::HostsCommand),
    /// Edit .sops.yaml: add or remove a host's age recipient, add a per-host rule.
    #[command(subcommand)]
    #[command(after_long_help = "Examples:
  vmctl sops add-recipient doc1 --dry-run     # recipient derived from hosts.nix
  vmctl sops remove-recipient igpu --dry-run")]
    Sops(sops::SopsCommand),
    /// Create hosts/NAME/ from the fleet's hosts-template/.
    #[command(after_long_help = "Examples:
  vmctl scaffold test-automation --dry-run   # what hosts/test-automation/ would hold
  vmctl scaffold test-automation --disk-device /dev/vda")]
    Scaffold(scaffold::ScaffoldArgs),
    /// Regenerate the generated sections of docs/machines.md.
    #[command(after_long_help = "Examples:
  vmctl docs                                  # rewrite docs/machines.md
  vmctl docs --check                          # in CI: exit 1 when out of date
  vmctl docs --stdout | less")]
    Docs(docs::DocsArgs),
    /// Re-key sops secrets for the recipients .sops.yaml lists, or check that they match.
    #[command(subcommand)]
    #[command(after_long_help = "Examples:
  vmctl secrets check                         # exit 1 when some file is stale
  vmctl secrets rekey --dry-run")]
    Secrets(secrets::SecretsCommand),
    /// Proxmox operations over SSH (the seed's `proxmox-ops`), with readonly fences.
    #[command(subcommand)]
    #[command(after_long_help = "Examples:
  vmctl ops list
  vmctl ops status 110
  vmctl ops stop 110 --dry-run                # print the `qm stop` it would send")]
    Ops(ops::OpsCommand),
    /// Create a managed VM from its definition, install NixOS and integrate it into the fleet
    /// (hosts.nix, .sops.yaml, secrets, docs, one commit); rolls back on failure.
    #[command(after_long_help = provision::EXAMPLES)]
    Provision(provision::ProvisionArgs),
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
        Command::Provision(a) => provision::run(a, g),
        Command::Completions(a) => generate::completions(a),
        Command::Man(a) => generate::man(a),
    }
}
