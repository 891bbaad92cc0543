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
    Rekey(ChangeArgs),
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
    Rotate(ChangeArgs),
}

/// File selection and config, shared by `rekey` and `check`.
#[derive(Debug, Args)]
pub struct Selection {
    /// sops files to process. Default: every file under the fleet's secrets directory
    /// (settings.secretsDir) that a creation rule matches.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The sops config. Default: the fleet's settings.sopsConfig, else the nearest
    /// .sops.yaml above the current directory (as sops finds it).
    #[arg(long, value_name = "PATH", env = "SOPS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The arguments of the two commands that rewrite secrets, `rekey` and `rotate`.
#[derive(Debug, Args)]
pub struct ChangeArgs {
    #[command(flatten)]
    pub select: Selection,
    /// Show per file what would be done (recipients added and removed, the native or sops
    /// route) and write nothing.
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
fn resolve(select: &Selection, g: &Global) -> miette::Result<Resolved> {
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
        // A fleet that does not load is not this command's error: its findings are notes.
        match super::load_fleet_reporting(g, false, &super::ui::reporter().findings_as_notes()) {
            Ok(f) => (Some(f.root.clone()), f.definitions.settings.clone()),
            Err(_) => {
                let root = crate::exec::root::find_root(&start);
                if root.is_some() {
                    super::ui::note("vms/definitions.nix did not load; using the default paths (.sops.yaml, secrets/)");
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
                    "no .sops.yaml found (looked for the fleet's settings.sopsConfig and upward from {}); pass --config PATH",
                    cwd.display()
                )
            })?
        }
    };
    let config = xsops::load_config(&config_path)?;
    let secrets_dir = root.as_ref().map(|r| r.join(&settings.secrets_dir));
    let root = root.map(|r| std::path::absolute(&r).unwrap_or(r));
    Ok(Resolved {
        config,
        secrets_dir,
        root,
    })
}

/// The sops config and where the fleet is, as far as it could be found.
struct Resolved {
    config: LoadedConfig,
    secrets_dir: Option<PathBuf>,
    root: Option<PathBuf>,
}

impl Resolved {
    /// The selected files, each shown relative to the fleet root when it is inside the fleet
    /// (one convention for every path vmctl prints, docs/cli.md), else as given.
    fn files(&self, select: &Selection) -> miette::Result<xsops::FileSet> {
        let mut files = xsops::select_files(
            &self.config,
            &select.files,
            self.secrets_dir.as_deref(),
            &super::ui::reporter(),
        )?;
        for (path, shown) in &mut files.files {
            *shown = self.shown(path).unwrap_or_else(|| shown.clone());
        }
        Ok(files)
    }

    /// `path` relative to the fleet root, when it is below it.
    fn shown(&self, path: &std::path::Path) -> Option<String> {
        let abs = std::path::absolute(path).ok()?;
        let rel = abs.strip_prefix(self.root.as_ref()?).ok()?;
        Some(rel.display().to_string())
    }

    /// The config's path as shown.
    fn config_shown(&self) -> String {
        self.shown(&self.config.path)
            .unwrap_or_else(|| self.config.path.display().to_string())
    }
}

/// The summary line after the per-file lines: nothing matched, or how many failed. True when
/// it printed one.
fn print_failures(total: usize, failed: usize) -> bool {
    if total == 0 {
        super::ui::info("no sops files matched a creation rule");
    } else if failed > 0 {
        crate::render::stdio::err(&format!(
            "{failed} of {total} files failed; they were left unchanged\n"
        ));
    } else {
        return false;
    }
    true
}

/// One rewritten secret in the common `changes` shape (docs/json-output.md); the contents of
/// a secret are never shown, so `diff` is null.
fn secret_change(path: &str, summary: String, written: bool) -> serde_json::Value {
    serde_json::json!({
        "file": path,
        "action": "modify",
        "summary": summary,
        "written": written,
        "diff": null,
    })
}

/// What re-keying and rotation both start from: the config, the selected files, the
/// identities found (their notes printed) and the sops binary (an explicit `--sops` must exist).
fn prepare(
    select: &Selection,
    tools: &SopsTools,
    g: &Global,
) -> miette::Result<(
    Resolved,
    xsops::FileSet,
    xsops::DiscoveredIdentities,
    Option<PathBuf>,
)> {
    let resolved = resolve(select, g)?;
    let files = resolved.files(select)?;
    let found = xsops::discover_identities(&xsops::IdentityEnv::from_process(), &tools.identities)?;
    for n in &found.notes {
        super::ui::note(n);
    }
    let bin = xsops::find_sops(tools.sops.as_deref());
    if let (Some(p), None) = (&tools.sops, &bin) {
        return Err(miette::miette!(
            "--sops {}: no such file; {}",
            p.display(),
            xsops::INSTALL_SOPS
        ));
    }
    Ok((resolved, files, found, bin))
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
