//! Age identities discovered the way sops discovers them (environment, default files), plus
//! `--identity` files.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::secrets::Identities;

/// Where identities come from: the process environment and home directory, as sops reads
/// them, plus `--identity` files.
pub struct IdentityEnv {
    pub sops_age_key: Option<OsString>,
    pub sops_age_key_file: Option<OsString>,
    pub sops_age_ssh_private_key_file: Option<OsString>,
    /// Whether `SOPS_AGE_KEY_CMD` is set (vmctl does not run it; sops does, in the fallback).
    pub sops_age_key_cmd: bool,
    pub home: Option<PathBuf>,
    pub xdg_config_home: Option<PathBuf>,
}

impl IdentityEnv {
    /// The real environment.
    pub fn from_process() -> Self {
        let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        IdentityEnv {
            sops_age_key: nonempty("SOPS_AGE_KEY"),
            sops_age_key_file: nonempty("SOPS_AGE_KEY_FILE"),
            sops_age_ssh_private_key_file: nonempty("SOPS_AGE_SSH_PRIVATE_KEY_FILE"),
            sops_age_key_cmd: nonempty("SOPS_AGE_KEY_CMD").is_some(),
            home: nonempty("HOME").map(PathBuf::from),
            xdg_config_home: nonempty("XDG_CONFIG_HOME").map(PathBuf::from),
        }
    }
}

/// Identities found, plus notes about default locations that held no usable key.
pub struct DiscoveredIdentities {
    pub identities: Identities,
    pub notes: Vec<String>,
}

/// Loads identities in sops's order: `SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`,
/// `SOPS_AGE_SSH_PRIVATE_KEY_FILE` (ssh-ed25519 converted to its ssh-to-age identity), the
/// user's `sops/age/keys.txt`, `~/.ssh/id_ed25519` (only when no ssh key file is set), then
/// each `--identity` file. A source the user named explicitly that cannot be used is an
/// error; a default location that is missing or unusable only adds a note.
pub fn discover_identities(
    env: &IdentityEnv,
    explicit: &[PathBuf],
) -> miette::Result<DiscoveredIdentities> {
    let mut ids = Identities::new();
    let mut notes = Vec::new();
    if let Some(text) = &env.sops_age_key {
        ids.add_text(&text.to_string_lossy(), "SOPS_AGE_KEY")
            .map_err(|e| miette::miette!("SOPS_AGE_KEY: {e}"))?;
    }
    if env.sops_age_key_cmd {
        notes.push(
            "SOPS_AGE_KEY_CMD is set but vmctl does not run it; pass its key with --identity FILE if a file needs it"
                .into(),
        );
    }
    let mut required: Vec<(String, PathBuf)> = Vec::new();
    if let Some(p) = &env.sops_age_key_file {
        required.push(("SOPS_AGE_KEY_FILE".into(), PathBuf::from(p)));
    }
    if let Some(p) = &env.sops_age_ssh_private_key_file {
        required.push(("SOPS_AGE_SSH_PRIVATE_KEY_FILE".into(), PathBuf::from(p)));
    }
    for (var, path) in &required {
        add_file(&mut ids, path, &format!("{var}={}", path.display()))
            .map_err(|e| miette::miette!("{var}={}: {e}", path.display()))?;
    }
    let config_home = env
        .xdg_config_home
        .clone()
        .or_else(|| env.home.as_ref().map(|h| h.join(".config")));
    let mut defaults = Vec::new();
    if let Some(c) = config_home {
        defaults.push(c.join("sops/age/keys.txt"));
    }
    if env.sops_age_ssh_private_key_file.is_none() {
        if let Some(h) = &env.home {
            defaults.push(h.join(".ssh/id_ed25519"));
        }
    }
    for path in defaults {
        if path.is_file() {
            if let Err(e) = add_file(&mut ids, &path, &path.display().to_string()) {
                notes.push(format!("skipped {}: {e}", path.display()));
            }
        }
    }
    for path in explicit {
        add_file(&mut ids, path, &format!("--identity {}", path.display()))
            .map_err(|e| miette::miette!("--identity {}: {e}", path.display()))?;
    }
    Ok(DiscoveredIdentities {
        identities: ids,
        notes,
    })
}

/// Why an identity file added nothing. The messages quote their cause whole (the callers
/// print them after the file's name).
#[derive(Debug, thiserror::Error)]
pub enum IdentityFileError {
    #[error("cannot read it: {0}")]
    Read(std::io::Error),
    #[error("{0}")]
    Parse(crate::secrets::identity::IdentityError),
}

pub(super) fn add_file(
    ids: &mut Identities,
    path: &Path,
    source: &str,
) -> Result<(), IdentityFileError> {
    let text =
        zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(IdentityFileError::Read)?);
    ids.add_text(&text, source)
        .map_err(IdentityFileError::Parse)?;
    Ok(())
}
