//! Where the fleet is: the directory holding `vms/definitions.nix`, given or found upward.
//!
//! Its own module because both the loader (`exec::lint`) and the fleet views built on it
//! (`exec::fleet`), the lock and the commands need it, and neither of the first two may import
//! the other.

use std::path::{Path, PathBuf};

use crate::exec::cannot_act::CannotAct;

/// The fleet root: the nearest ancestor of `start` (inclusive) holding `vms/definitions.nix`.
pub fn find_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| dir.join("vms/definitions.nix").is_file())
        .map(Path::to_path_buf)
}

/// The fleet root: `explicit_root` (which must hold vms/definitions.nix), else the one found
/// upward from the working directory.
pub fn resolve_root(explicit_root: Option<&Path>) -> miette::Result<PathBuf> {
    let cwd = std::env::current_dir()
        .map_err(|e| CannotAct::new(format!("cannot read the current directory: {e}")))?;
    match explicit_root {
        Some(r) => {
            let r = if r.is_absolute() {
                r.to_path_buf()
            } else {
                cwd.join(r)
            };
            if !r.join("vms/definitions.nix").is_file() {
                return Err(CannotAct::new(format!(
                    "`{}` is not a fleet: it has no vms/definitions.nix",
                    r.display()
                ))
                .help("pass the directory that holds vms/definitions.nix")
                .into());
            }
            Ok(r)
        }
        None => find_root(&cwd).ok_or_else(|| {
            CannotAct::new(format!(
                "no fleet found: no vms/definitions.nix in `{}` or any parent directory",
                cwd.display()
            ))
            .help("run vmctl inside your fleet repository or pass --fleet DIR")
            .into()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_found_from_a_directory_below_it() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        assert!(find_root(&root.join("hosts/igpu")).is_some_and(|r| r == root));
    }
}
