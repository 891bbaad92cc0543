//! Command-line interface: clap definitions and dispatch. Each command family lives in its own
//! file and exposes `run(args, &Global) -> miette::Result<u8>` returning the process exit code.

use std::path::PathBuf;

use crate::exec::fleet::LoadedFleet;
use crate::render;
use clap::{ArgMatches, Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

pub mod apply;
pub mod backup;
pub mod changes;
pub mod destroy;
pub mod docs;
pub mod exit;
pub mod generate;
pub mod hosts;
pub mod import;
pub mod keys;
pub mod known_hosts;
pub mod lint;
mod lint_fix;
pub mod lsp;
pub mod migrate;
pub mod ops;
pub mod post_provision;
pub mod progress;
pub mod provision;
pub mod rebuild;
pub mod scaffold;
pub mod secrets;
pub mod snapshot;
pub mod sops;
pub mod status;
pub mod template;
pub mod ui;

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
    #[command(flatten)]
    pub ui: ui::Ui,
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
    /// Run the language server for editors on stdin/stdout (see docs/editors.md).
    #[command(after_long_help = "Examples:
  vmctl lsp                                   # started by the editor, never by hand
  nvim --cmd 'lua vim.lsp.start_client({cmd = {\"vmctl\", \"lsp\"}})'")]
    Lsp(lsp::LspArgs),
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
    /// Retire a managed VM: stop and destroy it (with its disks), remove it from hosts.nix,
    /// .sops.yaml, the secrets, the docs and (unless --keep-definition) definitions.nix; commit.
    #[command(after_long_help = destroy::EXAMPLES)]
    Destroy(destroy::DestroyArgs),
    /// Create a managed VM from its definition, install NixOS and integrate it into the fleet
    /// (hosts.nix, .sops.yaml, secrets, docs, one commit); rolls back on failure.
    #[command(after_long_help = provision::EXAMPLES)]
    Provision(provision::ProvisionArgs),
    /// Integrate a managed VM installed some other way: fetch its host key, show the
    /// fingerprint, and once it is accepted integrate it as provision does (one commit).
    #[command(after_long_help = post_provision::EXAMPLES)]
    PostProvision(post_provision::PostProvisionArgs),
    /// The template VM managed VMs are cloned from, made from the flake's Proxmox image.
    #[command(subcommand)]
    #[command(after_long_help = template::EXAMPLES)]
    Template(template::TemplateCommand),
    /// Write a known_hosts file for the whole fleet from hosts.nix, for your own ssh.
    #[command(after_long_help = known_hosts::EXAMPLES)]
    KnownHosts(known_hosts::KnownHostsArgs),
    /// Rebuild managed VMs with nixos-rebuild, their host keys pinned from hosts.nix, each
    /// snapshotted first.
    #[command(after_long_help = rebuild::EXAMPLES)]
    Rebuild(rebuild::RebuildArgs),
    /// A VM's snapshots by name: create, list, rollback (confirmed, the state before kept as
    /// an automatic snapshot), delete; automatic ones pruned to `snapshots.keep`.
    #[command(after_long_help = snapshot::EXAMPLES)]
    Snapshot(snapshot::SnapshotArgs),
    /// Back VMs up with vzdump (notes name vmctl and the fleet's commit).
    #[command(after_long_help = backup::BACKUP_EXAMPLES)]
    Backup(backup::BackupArgs),
    /// List a VM's backups on a storage.
    #[command(after_long_help = backup::BACKUPS_EXAMPLES)]
    Backups(backup::BackupsArgs),
    /// Restore a VM's backup as a new VM (--as), or into the VM (confirmed, stopped, backed
    /// up first).
    #[command(after_long_help = backup::RESTORE_EXAMPLES)]
    Restore(backup::RestoreArgs),
    /// Migrate a managed VM to another node, wait, record its `node` in definitions.nix and
    /// the docs, commit.
    #[command(after_long_help = migrate::EXAMPLES)]
    Migrate(migrate::MigrateArgs),
    /// Definitions against the live cluster: node, power and drift per field of each VM, VMs
    /// not in definitions.nix, missing VMs, unprotected readonly VMs, capacity.
    #[command(after_long_help = status::EXAMPLES)]
    Status(status::StatusArgs),
    /// Bring managed VMs' live configuration to their definitions (digest-guarded; disks only
    /// grow; readonly VMs never touched).
    #[command(after_long_help = apply::EXAMPLES)]
    Apply(apply::ApplyArgs),
    /// Write an existing cluster VM into the `imported` section of vms/definitions.nix
    /// (readonly; node, resources, tags, description from the live config) and the docs.
    #[command(after_long_help = import::EXAMPLES)]
    Import(import::ImportArgs),
    /// Print a shell completion script (bash, zsh or fish) to stdout.
    Completions(generate::CompletionsArgs),
    /// Write man pages for vmctl and every subcommand into a directory.
    Man(generate::ManArgs),
}

/// The `vmctl` binary: parses the command line, runs it and reports a failure, on stderr for
/// people and, when `--json` was asked for, as the error object on stdout for scripts
/// (docs/cli.md). Returns the process exit code.
pub fn main() -> u8 {
    let started = std::time::Instant::now();
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed = Cli::command()
        .try_get_matches_from(&raw)
        .and_then(|m| Ok((Cli::from_arg_matches(&m)?, wants_json(&m))));
    let (cli, json) = match parsed {
        Ok(p) => p,
        Err(e) => return parse_failure(e, &raw),
    };
    cli.global.ui.install();
    let color = ui::stderr_color();
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(miette::MietteHandlerOpts::new().color(color).build())
    }));
    let code = match run(cli) {
        Ok(code) => code,
        Err(report) => {
            let code = exit::code_of(&report);
            if json {
                println!("{}", report_json(&report, code));
            }
            render::stdio::err(&format!("{report:?}\n"));
            code
        }
    };
    ui::detail(&format!(
        "vmctl: exit {code} after {:.2}s",
        started.elapsed().as_secs_f64()
    ));
    code
}

/// Reports a command line clap refused (or `--help`/`--version`, exit 0) and returns the
/// exit code; a refused one that asked for JSON also gets the error object on stdout.
pub(crate) fn parse_failure(e: clap::Error, raw: &[std::ffi::OsString]) -> u8 {
    let code = u8::try_from(e.exit_code()).unwrap_or(2);
    // The arguments did not parse, so only their text can say whether JSON was wanted.
    if code != 0 && json_in_raw(raw) {
        let rendered = e.render().to_string();
        // clap's message is the lines before the first blank one (the usage follows).
        let message = rendered
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        let message = message.strip_prefix("error: ").unwrap_or(&message);
        let help = "see `--help` for the command's usage";
        println!("{}", error_json(message, None, Some(help), code));
    }
    let _ = e.print();
    code
}

/// Whether arguments that did not parse ask for JSON: `--json`, or `--format json`.
pub(crate) fn json_in_raw(raw: &[std::ffi::OsString]) -> bool {
    raw.iter().any(|a| a == "--json" || a == "--format=json")
        || raw.windows(2).any(|w| w[0] == "--format" && w[1] == "json")
}

/// Whether the parsed command asked for JSON: `--json` on the command (any subcommand depth)
/// or lint's `--format json`. Read from the clap tree, so a new command needs nothing here.
fn wants_json(m: &ArgMatches) -> bool {
    let here = matches!(m.try_get_one::<bool>("json"), Ok(Some(true)))
        || matches!(
            m.try_get_one::<lint::Format>("format"),
            Ok(Some(lint::Format::Json))
        );
    here || m.subcommand().is_some_and(|(_, sub)| wants_json(sub))
}

/// The error object a failed `--json` command prints on stdout (docs/cli.md):
/// `{"error": {"message", "code", "help", "exit"}}`, `code` and `help` null when unknown.
pub fn error_json(message: &str, code: Option<&str>, help: Option<&str>, exit: u8) -> String {
    serde_json::json!({
        "error": {
            "message": message,
            "code": code,
            "help": help,
            "exit": exit,
        }
    })
    .to_string()
}

/// [`error_json`] of a miette report: its message with its causes (`message: cause: …`),
/// its diagnostic code and its help.
fn report_json(report: &miette::Report, exit: u8) -> String {
    let message = report
        .chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    let code = report.code().map(|c| c.to_string());
    let help = report.help().map(|h| h.to_string());
    error_json(&message, code.as_deref(), help.as_deref(), exit)
}

/// Loads the fleet (`for_edit`: errors do not stop it, the edit's gate decides; see
/// `exec::fleet`), saying with `-v` which files were read.
pub(crate) fn load_fleet(g: &Global, for_edit: bool) -> miette::Result<LoadedFleet> {
    load_fleet_reporting(g, for_edit, &ui::reporter())
}

/// [`load_fleet`], showing the errors that stop it through `out`.
pub(crate) fn load_fleet_reporting(
    g: &Global,
    for_edit: bool,
    out: &crate::exec::report::Reporter,
) -> miette::Result<LoadedFleet> {
    let fleet = if for_edit {
        crate::exec::fleet::load_for_edit(g.fleet.as_deref())?
    } else {
        crate::exec::fleet::load(g.fleet.as_deref(), out)?
    };
    if ui::is_verbose() {
        let s = &fleet.definitions.settings;
        let files = [
            std::path::Path::new("vms/definitions.nix"),
            &s.hosts_file,
            &s.sops_config,
        ];
        for f in files.into_iter().filter(|f| fleet.path(f).is_file()) {
            ui::detail(&format!("read {}", f.display()));
        }
        ui::detail(&format!("fleet root: {}", fleet.root.display()));
    }
    Ok(fleet)
}

/// Stops a command on the lint errors of what it reads (`checked` holds the files): shows them
/// as `vmlint` would, then fails with "WHAT has N errors" and `help`.
pub(crate) fn stop_on_errors(
    (checked, errors): (crate::model::fleet::Fleet, Vec<crate::check::Diagnostic>),
    what: &str,
    help: &'static str,
) -> miette::Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    Err(ui::reporter().refuse(&checked.db, &errors, |n| format!("{what} has {n}"), help))
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> miette::Result<u8> {
    let g = &cli.global;
    match cli.command {
        Command::Lint(a) => lint::run(a, g),
        Command::Explain(a) => lint::explain(a),
        Command::Lsp(a) => lsp::run(a, g),
        Command::Keys(a) => keys::run(a, g),
        Command::Hosts(a) => hosts::run(a, g),
        Command::Sops(a) => sops::run(a, g),
        Command::Scaffold(a) => scaffold::run(a, g),
        Command::Docs(a) => docs::run(a, g),
        Command::Secrets(a) => secrets::run(a, g),
        Command::Destroy(a) => destroy::run(a, g),
        Command::Ops(a) => ops::run(a, g),
        Command::Provision(a) => provision::run(a, g),
        Command::PostProvision(a) => post_provision::run(a, g),
        Command::Template(a) => template::run(a, g),
        Command::KnownHosts(a) => known_hosts::run(a, g),
        Command::Rebuild(a) => rebuild::run(a, g),
        Command::Snapshot(a) => snapshot::run(a, g),
        Command::Backup(a) => backup::backup(a, g),
        Command::Backups(a) => backup::backups(a, g),
        Command::Restore(a) => backup::restore(a, g),
        Command::Migrate(a) => migrate::run(a, g),
        Command::Status(a) => status::run(a, g),
        Command::Apply(a) => apply::run(a, g),
        Command::Import(a) => import::run(a, g),
        Command::Completions(a) => generate::completions(a),
        Command::Man(a) => generate::man(a),
    }
}
