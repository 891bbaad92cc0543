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
/// Fails (with every error diagnostic rendered) when the fleet files have errors; warnings do
/// not stop a command (`vmlint` shows them).
pub fn load(explicit_root: Option<&Path>) -> miette::Result<LoadedFleet> {
    use crate::check::{check_fleet, Severity};
    use crate::exec::lint::{load_fleet, NixFallback};
    use crate::model::fleet::Fleet;

    let cwd = std::env::current_dir()
        .map_err(|e| miette::miette!("cannot read the current directory: {e}"))?;
    let root = match explicit_root {
        Some(r) => {
            let r = if r.is_absolute() {
                r.to_path_buf()
            } else {
                cwd.join(r)
            };
            if !r.join("vms/definitions.nix").is_file() {
                return Err(miette::miette!(
                    help = "pass the directory that holds vms/definitions.nix",
                    "`{}` is not a fleet: it has no vms/definitions.nix",
                    r.display()
                ));
            }
            r
        }
        None => find_root(&cwd).ok_or_else(|| {
            miette::miette!(
                help = "run vmctl inside your fleet repository or pass --fleet DIR",
                "no fleet found: no vms/definitions.nix in `{}` or any parent directory",
                cwd.display()
            )
        })?,
    };
    let mut fleet = Fleet::default();
    load_fleet(&mut fleet, &root, &cwd, &NixFallback::from_env())
        .map_err(|e| miette::miette!("{e}"))?;
    let errors: Vec<_> = check_fleet(&fleet)
        .into_iter()
        .filter(|d| d.severity() == Severity::Error)
        .collect();
    if !errors.is_empty() {
        eprint!(
            "{}",
            crate::render::human::render(&fleet.db, &errors, false)
        );
        return Err(miette::miette!(
            help = "fix them first; `vmlint` shows every problem",
            "the fleet files have {} error{}",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        ));
    }
    let definitions = fleet
        .definitions_file()
        .map(|(_, d)| d.clone())
        .unwrap_or_default();
    let hosts = fleet.hosts_file().map(|(_, h)| h.clone());
    Ok(LoadedFleet {
        root,
        definitions,
        hosts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_the_demo_fleet() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let f = load(Some(root)).expect("the demo fleet loads");
        assert_eq!(
            f.definitions.vm_by_vmid(104).map(|v| v.readonly),
            Some(true)
        );
        assert_eq!(f.hosts.expect("hosts.nix").hosts.len(), 2);
        assert!(find_root(&root.join("hosts/igpu")).is_some_and(|r| r == root));
    }

    #[test]
    fn refuses_a_directory_without_definitions() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(Some(dir.path())).unwrap_err();
        assert!(err.to_string().contains("is not a fleet"), "{err}");
    }
}
