//! `vmlint --fix`, `--unsafe-fixes` and `--diff`: the rules' fixes applied in rounds in memory
//! (a fix can reveal another), then written at once through the change-set applier.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::check::{select_fixes, FixMode};
use crate::exec::apply::{apply, ChangeSet, FileChange, FleetLock};
use crate::exec::lint::{lint, lint_with, LintRun, NixFallback, Overlay};
use crate::model::fleet::NixRole;
use crate::render::stdio;

/// Rounds of fixing before giving up on reaching a fixed point (each round re-lints).
const MAX_ROUNDS: usize = 10;

/// What a fix run did.
pub enum Fixed {
    /// `--diff`: the exit code (1 when there is something to fix).
    Diff(u8),
    /// The files were written (or nothing needed fixing): the run after, to report.
    Written(Box<LintRun>),
}

/// The lock for writing fixes: the fleet's, found from the paths or the working directory.
fn lock(paths: &[PathBuf], cwd: &Path, fleet_root: Option<&Path>) -> Result<FleetLock, String> {
    let out = super::ui::reporter();
    let first = paths.first().map(|p| cwd.join(p));
    let root = fleet_root.map(Path::to_path_buf).or_else(|| match &first {
        Some(p) if p.is_dir() => crate::exec::root::find_root(p),
        Some(p) => crate::exec::root::find_root(p.parent().unwrap_or(cwd)),
        None => crate::exec::root::find_root(cwd),
    });
    match (root, first) {
        (Some(root), _) => FleetLock::acquire(&root, &out),
        (None, Some(file)) => FleetLock::for_file(&file, &out),
        (None, None) => FleetLock::acquire_dir(cwd, &out),
    }
    .map_err(|e| e.to_string())
}

/// Applies the fixes `mode` allows; with `diff` (`--diff`) prints them and writes nothing.
pub fn run(
    mode: FixMode,
    diff: bool,
    paths: &[PathBuf],
    role: Option<NixRole>,
    cwd: &Path,
    nix: &NixFallback,
    fleet_root: Option<&Path>,
) -> Result<Fixed, String> {
    // Held from before the first read until the write: the fixes are computed from the text
    // the applier then checks is still there.
    let lock = if diff {
        None
    } else {
        Some(lock(paths, cwd, fleet_root)?)
    };
    let mut overlay = Overlay::new();
    // Every changed file: its path as shown and its text before the first fix.
    let mut originals: BTreeMap<PathBuf, (String, String)> = BTreeMap::new();
    let mut fixed = 0;
    for _ in 0..MAX_ROUNDS {
        let run = lint_with(paths, role, cwd, nix, &overlay).map_err(|e| e.to_string())?;
        let mut changed = false;
        for (file, edits) in select_fixes(&run.diagnostics, mode) {
            let shown = run.fleet.db.path(file).to_path_buf();
            let old = run.fleet.db.text(file);
            let new = crate::text::apply(old, &edits).map_err(|e| {
                format!(
                    "a fix of `{}` is broken ({e}); please report it",
                    shown.display()
                )
            })?;
            if new == old {
                continue;
            }
            changed = true;
            fixed += edits.len();
            let abs = cwd.join(&shown);
            originals
                .entry(abs.clone())
                .or_insert_with(|| (shown.display().to_string(), old.to_string()));
            overlay.insert(abs, new);
        }
        if !changed {
            break;
        }
    }
    let mut set = ChangeSet::new();
    for (abs, (shown, old)) in &originals {
        let new = overlay
            .get(abs)
            .expect("every changed file is in the overlay");
        set.push(FileChange::modify(
            abs,
            shown,
            old.as_bytes(),
            new.as_bytes(),
            "apply vmlint's fixes",
        ));
    }
    let what = if fixed == 1 { "fix" } else { "fixes" };
    match lock {
        None => {
            for change in &set.changes {
                if let Some(diff) = super::changes::diff(change) {
                    stdio::out(&diff);
                }
            }
            super::ui::info(&format!("vmlint: {fixed} {what} to apply"));
            Ok(Fixed::Diff(u8::from(set.is_change())))
        }
        Some(lock) => {
            if set.is_change() {
                apply(&set, &lock).map_err(|e| e.to_string())?;
            }
            super::ui::info(&format!("vmlint: applied {fixed} {what}"));
            lint(paths, role, cwd, nix)
                .map(|r| Fixed::Written(Box::new(r)))
                .map_err(|e| e.to_string())
        }
    }
}
