//! Test doubles the provision, post-provision and destroy runners' unit tests share: the demo
//! fleet copied into a temporary directory, a git that records its commits, and a re-keyer's
//! stand-in that changes the demo secret as the native re-keyer would (announced, then written).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Announce, GitError, RekeyError};
use crate::model::Definitions;

/// The demo fleet's files, as the repository holds them.
const DEMO: &[(&str, &str)] = &[
    (
        "vms/definitions.nix",
        include_str!("../../../vms/definitions.nix"),
    ),
    ("hosts.nix", include_str!("../../../hosts.nix")),
    (".sops.yaml", include_str!("../../../.sops.yaml")),
    (
        "docs/machines.md",
        include_str!("../../../docs/machines.md"),
    ),
    (
        "secrets/common.yaml",
        include_str!("../../../secrets/common.yaml"),
    ),
    (
        "hosts-template/README.md",
        include_str!("../../../hosts-template/README.md"),
    ),
    (
        "hosts-template/configuration.nix",
        include_str!("../../../hosts-template/configuration.nix"),
    ),
    (
        "hosts-template/disko.nix",
        include_str!("../../../hosts-template/disko.nix"),
    ),
    (
        "hosts-template/hosts-entry.nix",
        include_str!("../../../hosts-template/hosts-entry.nix"),
    ),
];

/// A copy of the demo fleet and its definitions.
pub(crate) struct Fleet {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) defs: Definitions,
}

impl Fleet {
    pub(crate) fn demo() -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        for (rel, text) in DEMO {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let mut db = crate::syntax::SourceDb::new();
        let f = db.add("/fleet/vms/definitions.nix", DEMO[0].1);
        let ev = crate::syntax::evaluate(&mut db, f, &crate::syntax::NoImports);
        let defs = crate::model::definitions::read_definitions(&ev.value).definitions;
        Fleet { dir, defs }
    }

    pub(crate) fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Every file but vmctl's own runtime state, directories included (as `dir/`).
    pub(crate) fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![self.root().to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                let rel = p.strip_prefix(self.root()).unwrap().to_path_buf();
                if rel.starts_with(".vmctl") {
                    continue;
                }
                if p.is_dir() {
                    out.insert(rel.join(""), Vec::new());
                    stack.push(p);
                } else {
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
        out
    }
}

/// The commits a fake git was asked for: files and message, in order.
#[derive(Default)]
pub(crate) struct Commits(RefCell<Vec<(Vec<PathBuf>, String)>>);

impl std::ops::Deref for Commits {
    type Target = RefCell<Vec<(Vec<PathBuf>, String)>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Commits {
    /// Records a commit of `files` (hash `abc123`), or fails as a refused `git commit` does.
    pub(crate) fn commit(
        &self,
        files: &[PathBuf],
        message: &str,
        fail: bool,
    ) -> Result<String, GitError> {
        if fail {
            return Err(GitError::Failed {
                what: "git commit",
                status: "exit status: 1".into(),
                stderr: "injected fault".into(),
            });
        }
        self.0
            .borrow_mut()
            .push((files.to_vec(), message.to_string()));
        Ok("abc123".into())
    }
}

/// A stand-in for re-wrapping the data key of `secrets/common.yaml`: a line appended, the new
/// bytes announced before the write as the native re-keyer announces them.
pub(crate) fn rekey_common(root: &Path, announce: &mut Announce<'_>) -> Result<(), RekeyError> {
    let p = std::path::absolute(root.join("secrets/common.yaml")).unwrap();
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str("# rekeyed\n");
    announce(&p, text.as_bytes()).map_err(|reason| RekeyError::File {
        path: "secrets/common.yaml".into(),
        reason,
    })?;
    std::fs::write(&p, text).unwrap();
    Ok(())
}
