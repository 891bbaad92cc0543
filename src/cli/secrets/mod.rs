//! `vmctl secrets`: re-key sops secrets for the recipients `.sops.yaml` lists (natively for
//! age-only files, with `sops updatekeys` otherwise) and check that they match.

mod check;
mod rekey;
mod rotate;

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Global;
use crate::exec::sops::{self as xsops, LoadedConfig};
use crate::secrets::rekey::GroupChange;

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Re-wrap each secret's data key for exactly the recipients its creation rule lists,
    /// like `sops updatekeys --yes`.
    ///
    /// Age-only files with one key group are edited natively: only the recipient entries of
    /// the sops metadata change; values, lastmodified, mac, comments and formatting stay
    /// byte for byte. Other files (pgp/kms/vault keys, several key groups, INI) are handed to
    /// the real `sops`. Files whose recipients already match are not written. Identities are
    /// read as sops reads them: SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, SOPS_AGE_SSH_PRIVATE_KEY_FILE,
    /// ~/.config/sops/age/keys.txt, ~/.ssh/id_ed25519, plus --identity; ssh-ed25519 keys are
    /// converted to the age identity of their ssh-to-age recipient, as sops-nix hosts use.
    ///
    /// Exit code 0 when every file is up to date or re-keyed, 1 when any file failed (the
    /// others are still processed; a failed file is never written).
    #[command(after_long_help = "Examples:
  vmctl secrets rekey --dry-run              # which files would change
  vmctl secrets rekey secrets/common.yaml
  vmctl secrets rekey -i ~/.config/sops/age/keys.txt")]
    Rekey(RekeyArgs),
    /// Check that every sops file's recipients match its creation rule, for CI and
    /// `nix flake check`. Exit code 1 when some file is stale or unreadable.
    #[command(after_long_help = "Examples:
  vmctl secrets check                        # every file under the secrets directory
  vmctl secrets check secrets/common.yaml --json")]
    Check(CheckArgs),
    /// Rotate each secret's data key: a new random key, every value re-encrypted under it, a
    /// new MAC, and the new key wrapped for exactly the recipients its creation rule lists.
    ///
    /// Run it after removing a host: the removed host still holds the old data key, so
    /// re-keying alone leaves every value it could read readable to it. Age-only files with
    /// one key group are rotated natively (values' plaintext, keys, comments and layout stay;
    /// only ciphertexts, the MAC, lastmodified and the recipient entries change); other files
    /// go to the real `sops updatekeys` (when stale) and `sops rotate --in-place`. Needs an
    /// identity that opens each file.
    #[command(after_long_help = "Examples:
  vmctl sops remove-recipient oldhost && vmctl secrets rotate
  vmctl secrets rotate secrets/common.yaml --identity ~/.config/sops/age/keys.txt --dry-run")]
    Rotate(RotateArgs),
}

/// File selection and config, shared by `rekey` and `check`.
#[derive(Debug, Args)]
pub struct Selection {
    /// sops files to process. Default: every file under the fleet's secrets directory
    /// (settings.secrets_dir) that a creation rule matches.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The sops config. Default: the fleet's settings.sops_config, else the nearest
    /// .sops.yaml above the current directory (as sops finds it).
    #[arg(long, value_name = "PATH", env = "SOPS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RekeyArgs {
    #[command(flatten)]
    pub select: Selection,
    /// Show per file what would change (recipients added and removed, native or sops) and
    /// write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub tools: SopsTools,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub select: Selection,
    /// Show per file how it would be rotated (native or sops) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub tools: SopsTools,
}

/// The identities and the sops binary that re-keying and rotation both use.
#[derive(Debug, Args)]
pub struct SopsTools {
    /// An age identity file (AGE-SECRET-KEY-1… lines) or an unencrypted OpenSSH ed25519
    /// private key, in addition to the ones sops would find. Repeatable.
    #[arg(long = "identity", short = 'i', value_name = "FILE")]
    pub identities: Vec<PathBuf>,
    /// The sops binary for files vmctl does not handle natively. Default: `sops` on PATH.
    #[arg(long, value_name = "PATH", env = "VMCTL_SOPS")]
    pub sops: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub select: Selection,
}

use check::check;
use rekey::rekey;
use rotate::rotate;

pub fn run(args: SecretsCommand, g: &Global) -> miette::Result<u8> {
    match args {
        SecretsCommand::Rekey(a) => rekey(a, g),
        SecretsCommand::Check(a) => check(a, g),
        SecretsCommand::Rotate(a) => rotate(a, g),
    }
}

/// The config and the default secrets directory. Loading definitions.nix is attempted but not
/// required: with explicit files or --config the commands work without a valid fleet.
fn resolve(select: &Selection, g: &Global) -> miette::Result<(LoadedConfig, Option<PathBuf>)> {
    let start = match &g.fleet {
        Some(d) => d.clone(),
        None => std::env::current_dir().unwrap_or_default(),
    };
    // With --config and explicit files nothing of the fleet is needed: do not even read it.
    let (root, settings) = if select.config.is_some() && !select.files.is_empty() {
        (
            crate::exec::root::find_root(&start),
            crate::model::Settings::default(),
        )
    } else {
        match crate::exec::fleet::load(g.fleet.as_deref()) {
            Ok(f) => (Some(f.root.clone()), f.definitions.settings.clone()),
            Err(_) => {
                let root = crate::exec::root::find_root(&start);
                if root.is_some() {
                    eprintln!(
                        "note: vms/definitions.nix did not load; using the default paths (.sops.yaml, secrets/)"
                    );
                }
                (root, crate::model::Settings::default())
            }
        }
    };
    let config_path = match (&select.config, &root) {
        (Some(c), _) => c.clone(),
        (None, Some(r)) if r.join(&settings.sops_config).is_file() => r.join(&settings.sops_config),
        (None, _) => {
            let cwd = std::env::current_dir().unwrap_or_default();
            xsops::find_config_upwards(&cwd).ok_or_else(|| {
                miette::miette!(
                    "no .sops.yaml found (looked for the fleet's settings.sops_config and upward from {}); pass --config PATH",
                    cwd.display()
                )
            })?
        }
    };
    let config = xsops::load_config(&config_path)?;
    let secrets_dir = root.map(|r| r.join(&settings.secrets_dir));
    Ok((config, secrets_dir))
}

/// What re-keying and rotation both start from: the config, the selected files, the
/// identities found (their notes printed) and the sops binary (an explicit `--sops` must exist).
fn prepare(
    select: &Selection,
    tools: &SopsTools,
    g: &Global,
) -> miette::Result<(
    LoadedConfig,
    xsops::FileSet,
    xsops::DiscoveredIdentities,
    Option<PathBuf>,
)> {
    let (config, secrets_dir) = resolve(select, g)?;
    let files = xsops::select_files(&config, &select.files, secrets_dir.as_deref())?;
    let found = xsops::discover_identities(&xsops::IdentityEnv::from_process(), &tools.identities)?;
    for n in &found.notes {
        eprintln!("note: {n}");
    }
    let bin = xsops::find_sops(tools.sops.as_deref());
    if let (Some(p), None) = (&tools.sops, &bin) {
        return Err(miette::miette!(
            "--sops {}: no such file; {}",
            p.display(),
            xsops::INSTALL_SOPS
        ));
    }
    Ok((config, files, found, bin))
}

fn changes_text(changes: &[GroupChange]) -> String {
    let several = changes.iter().any(|c| c.group > 0);
    changes
        .iter()
        .map(|c| {
            let mut parts: Vec<String> = c.added.iter().map(|k| format!("+{k}")).collect();
            parts.extend(c.removed.iter().map(|k| format!("-{k}")));
            if several {
                format!("group {}: {}", c.group + 1, parts.join(" "))
            } else {
                parts.join(" ")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}
