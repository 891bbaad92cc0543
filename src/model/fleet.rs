//! The fleet as one value: every file read, evaluated and typed, ready for `check/`.

use std::collections::BTreeSet;

use super::definitions::{read_definitions, ReadDefinitions};
use super::hosts::{read_hosts, ReadHosts};
use super::read::Issue;
use super::{Definitions, Hosts};
use crate::syntax::{evaluate, Evaluation, FileId, Loader, SourceDb};

/// What a Nix file is to the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NixRole {
    Definitions,
    Hosts,
    /// Any other Nix file: syntax and evaluation problems only.
    Other,
}

/// One evaluated Nix file and, for fleet files, its typed reading.
#[derive(Debug, Clone)]
pub struct NixFile {
    pub file: FileId,
    pub role: NixRole,
    pub eval: Evaluation,
    pub issues: Vec<Issue>,
}

/// Everything the checks look at.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    pub db: SourceDb,
    pub files: Vec<NixFile>,
    pub definitions: Option<(usize, Definitions)>,
    pub hosts: Option<(usize, Hosts)>,
    /// Names of the directories under the fleet's hosts directory, when the fleet root is
    /// known (the missing-host-directory check needs it).
    pub host_dirs: Option<BTreeSet<String>>,
}

impl Fleet {
    /// Evaluates `text` as a file of the given role and adds it to the fleet.
    pub fn add_nix(
        &mut self,
        path: impl Into<std::path::PathBuf>,
        text: &str,
        role: NixRole,
        loader: &dyn Loader,
    ) -> usize {
        let file = self.db.add(path, text);
        let eval = evaluate(&mut self.db, file, loader);
        self.add_evaluated(file, role, eval)
    }

    /// Adds an already evaluated file (e.g. after a Nix fallback filled its dynamic values).
    pub fn add_evaluated(&mut self, file: FileId, role: NixRole, eval: Evaluation) -> usize {
        let idx = self.files.len();
        let issues = match role {
            NixRole::Definitions => {
                let ReadDefinitions {
                    definitions,
                    issues,
                } = read_definitions(&eval.value);
                self.definitions = Some((idx, definitions));
                issues
            }
            NixRole::Hosts => {
                let ReadHosts { hosts, issues } = read_hosts(&eval.value);
                self.hosts = Some((idx, hosts));
                issues
            }
            NixRole::Other => Vec::new(),
        };
        self.files.push(NixFile {
            file,
            role,
            eval,
            issues,
        });
        idx
    }

    pub fn definitions_file(&self) -> Option<(&NixFile, &Definitions)> {
        self.definitions.as_ref().map(|(i, d)| (&self.files[*i], d))
    }

    pub fn hosts_file(&self) -> Option<(&NixFile, &Hosts)> {
        self.hosts.as_ref().map(|(i, h)| (&self.files[*i], h))
    }
}
