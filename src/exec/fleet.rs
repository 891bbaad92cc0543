//! Finding and loading the fleet repository from disk.

use std::path::{Path, PathBuf};

use crate::model::{Definitions, Hosts};

/// The fleet as read from disk: its root and the typed views of its files.
#[derive(Debug, Clone)]
pub struct LoadedFleet {
    pub root: PathBuf,
    pub definitions: Definitions,
    /// hosts.nix, when the file exists and has a supported shape.
    pub hosts: Option<Hosts>,
}

impl LoadedFleet {
    /// A fleet-relative path made absolute (e.g. `settings.sops_config`).
    pub fn path(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }
}

/// The fleet root: the nearest ancestor of `start` (inclusive) holding `vms/definitions.nix`.
pub fn find_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| dir.join("vms/definitions.nix").is_file())
        .map(Path::to_path_buf)
}

/// Loads the fleet at `explicit_root`, or the one found upward from the working directory.
/// Fails (with every diagnostic rendered) when definitions.nix has errors.
pub fn load(explicit_root: Option<&Path>) -> miette::Result<LoadedFleet> {
    let _ = explicit_root;
    Err(miette::miette!("fleet loading is not implemented yet"))
}
