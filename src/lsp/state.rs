//! The server's state: the text of every open buffer, and the last lint run of each fleet
//! those buffers belong to (linted with every open buffer's unsaved text).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use lsp_types::{PublishDiagnosticsParams, TextDocumentContentChangeEvent, Url};

use super::convert::{self, Lines};
use crate::exec::lint::{lint_with, LintRun, NixFallback, Overlay};
use crate::syntax::FileId;

/// An open buffer.
pub struct Buffer {
    pub text: String,
    pub version: i32,
}

/// Open buffers and lint runs, by absolute path.
pub struct State {
    pub buffers: BTreeMap<PathBuf, Buffer>,
    /// The last run of each fleet (by root) with an open buffer.
    pub runs: HashMap<PathBuf, LintRun>,
    pub nix: NixFallback,
}

impl State {
    pub fn new(nix: NixFallback) -> Self {
        State {
            buffers: BTreeMap::new(),
            runs: HashMap::new(),
            nix,
        }
    }

    /// Applies a `didChange`'s changes in order; a range outside the text fails and leaves the
    /// buffer as it was.
    pub fn change(
        &mut self,
        path: &Path,
        version: i32,
        changes: Vec<TextDocumentContentChangeEvent>,
    ) -> Result<(), String> {
        let Some(buf) = self.buffers.get_mut(path) else {
            return Err(format!(
                "`{}` changed but was never opened; the client must send didOpen first",
                path.display()
            ));
        };
        let mut text = buf.text.clone();
        for c in changes {
            match c.range {
                None => text = c.text,
                Some(r) => {
                    let lines = Lines::new(&text);
                    let (start, end) = (lines.offset(r.start), lines.offset(r.end));
                    let (start, end) = match (start, end) {
                        (Ok(s), Ok(e)) if s <= e => (s, e),
                        (Err(e), _) | (_, Err(e)) => return Err(e.to_string()),
                        _ => {
                            return Err(
                                "a change whose range ends before it starts; reopen the file"
                                    .into(),
                            )
                        }
                    };
                    text.replace_range(start..end, &c.text);
                }
            }
        }
        buf.text = text;
        buf.version = version;
        Ok(())
    }

    /// The fleet a file belongs to: the directory holding `vms/definitions.nix`, upward from
    /// the file's own.
    pub fn root_of(path: &Path) -> Option<PathBuf> {
        crate::exec::root::find_root(path.parent()?)
    }

    /// Lints the fleet at `root` with the open buffers' text and keeps the run.
    pub fn relint(&mut self, root: &Path) -> Result<&LintRun, String> {
        let overlay: Overlay = self
            .buffers
            .iter()
            .filter(|(p, _)| p.starts_with(root))
            .map(|(p, b)| (p.clone(), b.text.clone()))
            .collect();
        let run = lint_with(&[root.to_path_buf()], None, root, &self.nix, &overlay)
            .map_err(|e| e.to_string())?;
        self.runs.insert(root.to_path_buf(), run);
        Ok(&self.runs[root])
    }

    /// The diagnostics of every open buffer of the fleet at `root`, from its last run; a
    /// buffer that is not one of the fleet's files gets none.
    pub fn publications(&self, root: &Path) -> Vec<PublishDiagnosticsParams> {
        let run = self.runs.get(root);
        let mut out = Vec::new();
        for (path, buf) in self.buffers.iter().filter(|(p, _)| p.starts_with(root)) {
            let Some(uri) = convert::uri_of(path) else {
                continue;
            };
            let mut diagnostics = Vec::new();
            if let Some((run, file)) = run.and_then(|r| Some((r, file_in(r, root, path)?))) {
                let lines = Lines::new(run.fleet.db.text(file));
                diagnostics = run
                    .diagnostics
                    .iter()
                    .filter(|d| d.span.file == file)
                    .map(|d| convert::diagnostic(d, &run.fleet.db, root, &lines))
                    .collect();
            }
            out.push(PublishDiagnosticsParams {
                uri,
                diagnostics,
                version: Some(buf.version),
            });
        }
        out
    }

    /// The run of `path`'s fleet (linting it when there is none yet), the fleet root and the
    /// file's id in that run.
    pub fn run_for(&mut self, uri: &Url) -> Result<(PathBuf, FileId), String> {
        let path = convert::path_of(uri).ok_or_else(|| {
            format!("`{uri}` is not a file: vmctl serves files of a fleet on disk")
        })?;
        let root = Self::root_of(&path).ok_or_else(|| {
            format!(
                "`{}` is in no fleet (no vms/definitions.nix above it): vmctl has nothing to say about it",
                path.display()
            )
        })?;
        if !self.runs.contains_key(&root) {
            self.relint(&root)?;
        }
        let file = file_in(&self.runs[&root], &root, &path).ok_or_else(|| {
            format!(
                "`{}` is not one of the fleet's files (definitions.nix, hosts.nix, .sops.yaml)",
                path.display()
            )
        })?;
        Ok((root, file))
    }
}

/// The id of `path` among the files of `run` (whose paths are relative to `root`).
pub fn file_in(run: &LintRun, root: &Path, path: &Path) -> Option<FileId> {
    (0..run.fleet.db.len() as u32)
        .map(FileId)
        .find(|id| root.join(run.fleet.db.path(*id)) == path)
}
