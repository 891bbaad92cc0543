//! Reading what the key ceremony edits, fresh from the fleet (under the fleet lock in a run),
//! and re-keying the secrets with every write journaled.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::journal::{self, JournalError};
use super::{FleetFileError, RekeyError, Rekeyer};
use crate::edit::hosts::EntryTemplate;
use crate::edit::scaffold::TemplateFile;
use crate::exec::apply::FleetLock;
use crate::model::{Definitions, Vm};
use crate::plan::provision::ceremony::FleetFiles;

/// The fleet files the ceremony reads, owned.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub hosts: String,
    pub sops: String,
    pub docs: Option<String>,
    pub entry_template: Option<EntryTemplate>,
    pub template: Vec<TemplateFile>,
    pub host_dir_exists: bool,
    pub host_names: Vec<String>,
}

impl Loaded {
    pub fn view(&self) -> FleetFiles<'_> {
        FleetFiles {
            hosts: &self.hosts,
            sops: &self.sops,
            docs: self.docs.as_deref(),
            entry_template: self.entry_template.as_ref(),
            template: &self.template,
            host_dir_exists: self.host_dir_exists,
            host_names: &self.host_names,
        }
    }
}

/// Reads hosts.nix, .sops.yaml, machines.md, the hosts template and whether `hosts/CONFIG/`
/// exists. hosts.nix and .sops.yaml must exist: provisioning edits them.
pub fn load(root: &Path, defs: &Definitions, vm: &Vm) -> Result<Loaded, FleetFileError> {
    let s = &defs.settings;
    let read = |rel: &Path| {
        std::fs::read_to_string(root.join(rel)).map_err(|source| FleetFileError {
            path: rel.to_path_buf(),
            source,
        })
    };
    let optional = |rel: &Path| std::fs::read_to_string(root.join(rel)).ok();
    let hosts = read(&s.hosts_file)?;
    let host_names = crate::edit::hosts::locate(&hosts)
        .map(|d| d.hosts().map(|e| e.name.clone()).collect())
        .unwrap_or_default();
    let template_dir = root.join(&s.template_dir);
    Ok(Loaded {
        sops: read(&s.sops_config)?,
        docs: optional(&s.docs_file),
        entry_template: optional(&s.template_dir.join("hosts-entry.nix"))
            .map(|text| EntryTemplate { text }),
        template: read_tree(&template_dir)?,
        host_dir_exists: root.join(&s.hosts_dir).join(vm.config_name()).exists(),
        host_names,
        hosts,
    })
}

/// Every regular file below `dir` (relative paths); none when it does not exist.
fn read_tree(dir: &Path) -> Result<Vec<TemplateFile>, FleetFileError> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|source| FleetFileError {
            path: d.clone(),
            source,
        })?;
        for entry in rd.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let contents = std::fs::read(&path).map_err(|source| FleetFileError {
                    path: path.clone(),
                    source,
                })?;
                out.push(TemplateFile {
                    path: path.strip_prefix(dir).expect("below dir").to_path_buf(),
                    contents,
                });
            }
        }
    }
    Ok(out)
}

/// Every file below `dir`, keyed by its path relative to `root`.
pub fn snapshot(dir: &Path, root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => {
                    if let Ok(b) = std::fs::read(&p) {
                        out.insert(p.strip_prefix(root).unwrap_or(&p).to_path_buf(), b);
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// A run's journal as the re-keying keeps it (provision's, post-provision's, destroy's).
pub(crate) trait SecretsJournal {
    /// Records a secret's bytes before the run (`None`: the run created it) and after a write;
    /// a secret recorded earlier keeps its first before-state.
    fn record_secret(&mut self, path: PathBuf, before: Option<&[u8]>, after: &[u8]);
    /// Saves the journal atomically, not waiting for the disk.
    fn checkpoint(&self, root: &Path) -> Result<(), JournalError>;
}

impl SecretsJournal for journal::Journal {
    fn record_secret(&mut self, path: PathBuf, before: Option<&[u8]>, after: &[u8]) {
        self.record_file(path, before, after);
    }
    fn checkpoint(&self, root: &Path) -> Result<(), JournalError> {
        journal::checkpoint(root, self)
    }
}

/// Re-keys the secrets below `secrets` (whose bytes before are `before`, journaled and saved
/// by the caller), recording in `j` each file's re-keyed bytes before the re-keyer writes them:
/// after a kill half-way, rollback knows every file the re-keyer wrote as this run's own write,
/// byte for byte, and still refuses anything else. What a re-keyer writes unannounced (the sops
/// fallback) is recorded once it returns, even when it failed half-way; the caller saves.
pub(crate) fn rekey_journaled<J: SecretsJournal>(
    rekeyer: &dyn Rekeyer,
    root: &Path,
    lock: &FleetLock,
    j: &mut J,
    before: &BTreeMap<PathBuf, Vec<u8>>,
    secrets: &Path,
) -> Result<(), RekeyError> {
    let abs_root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let mut announced = BTreeSet::new();
    let rekeyed = rekeyer.rekey_announcing(root, lock, &mut |abs: &Path, bytes: &[u8]| {
        // Only files journaled before: one outside that snapshot was never the run's to
        // restore, and a rollback does not touch it.
        let rel = abs.strip_prefix(&abs_root).unwrap_or(abs);
        let Some(was) = before.get(rel) else {
            return Ok(());
        };
        j.record_secret(rel.to_path_buf(), Some(was), bytes);
        announced.insert(rel.to_path_buf());
        // Atomic, not waited for: a kill cannot lose it. A power cut can, after the secret's
        // own write reached the disk: rollback then refuses that file (fail closed).
        j.checkpoint(root).map_err(|e| e.to_string())
    });
    // Lets a test kill the run once the secrets are re-keyed but before the step ends.
    crate::exec::apply::test_pause("rekeyed", secrets);
    // An announced file keeps its announced bytes: anything else in it now was written by
    // someone else, and rollback refuses it.
    for (rel, bytes) in snapshot(secrets, root) {
        if !announced.contains(&rel) {
            let was = before.get(&rel).map(Vec::as_slice);
            j.record_secret(rel, was, &bytes);
        }
    }
    rekeyed
}
