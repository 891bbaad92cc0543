//! Finding and loading the fleet repository from disk.

use std::path::{Path, PathBuf};

use crate::exec::report::Reporter;
use crate::exec::root::resolve_root;
use crate::model::{Definitions, Hosts};

/// The fleet as read from disk: its root and the typed views of its files.
#[derive(Debug, Clone)]
pub struct LoadedFleet {
    pub root: PathBuf,
    pub definitions: Definitions,
    /// hosts.nix, when the file exists and has a supported shape.
    pub hosts: Option<Hosts>,
    /// hosts.nix's value as evaluated, with what only Nix could compute filled in by the Nix
    /// fallback (`builtins.readFile ./admin.pub`): what the typed model does not carry is read
    /// from here, exactly as `vmlint` sees it.
    pub hosts_value: Option<crate::syntax::Value>,
    /// definitions.nix's value, likewise.
    pub definitions_value: Option<crate::syntax::Value>,
}

impl LoadedFleet {
    /// A fleet-relative path made absolute (e.g. `settings.sops_config`).
    pub fn path(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }
}

/// Loads the fleet at `explicit_root`, or the one found upward from the working directory.
/// Fails (with every error diagnostic rendered) when the fleet files have errors; warnings do
/// not stop a command (`vmlint` shows them). Commands that edit a fleet file use
/// [`load_for_edit`] and [`gate`] instead, which stop only on errors the edit keeps or adds.
/// The errors are shown through `out` (its colour).
pub fn load(explicit_root: Option<&Path>, out: &Reporter) -> miette::Result<LoadedFleet> {
    use crate::check::{check_fleet, Severity};

    let (root, fleet) = read_fleet(explicit_root)?;
    let errors: Vec<_> = check_fleet(&fleet)
        .into_iter()
        .filter(|d| d.severity() == Severity::Error)
        .collect();
    if !errors.is_empty() {
        return Err(out.refuse(
            &fleet.db,
            &errors,
            |n| format!("the fleet files have {n}"),
            "fix them first; `vmlint` shows every problem",
        ));
    }
    Ok(loaded(root, &fleet))
}

/// Loads the fleet for a command that edits one of its files: errors do not stop it here;
/// [`gate`] compares the diagnostics before and after the edit.
pub fn load_for_edit(explicit_root: Option<&Path>) -> miette::Result<LoadedFleet> {
    let (root, fleet) = read_fleet(explicit_root)?;
    Ok(loaded(root, &fleet))
}

fn read_fleet(
    explicit_root: Option<&Path>,
) -> miette::Result<(PathBuf, crate::model::fleet::Fleet)> {
    use crate::exec::lint::{load_fleet, NixFallback};
    use crate::model::fleet::Fleet;

    let cwd = std::env::current_dir().map_err(|e| {
        crate::exec::cannot_act::CannotAct::new(format!("cannot read the current directory: {e}"))
    })?;
    let root = resolve_root(explicit_root)?;
    let mut fleet = Fleet::default();
    load_fleet(&mut fleet, &root, &cwd, &NixFallback::from_env()).map_err(miette::Report::new)?;
    Ok((root, fleet))
}

fn loaded(root: PathBuf, fleet: &crate::model::fleet::Fleet) -> LoadedFleet {
    let definitions = fleet
        .definitions_file()
        .map(|(_, d)| d.clone())
        .unwrap_or_default();
    let hosts = fleet.hosts_file().map(|(_, h)| h.clone());
    let value_of = |role| {
        fleet
            .files
            .iter()
            .find(|f| f.role == role)
            .map(|f| f.eval.value.clone())
    };
    LoadedFleet {
        root,
        definitions,
        hosts,
        hosts_value: value_of(crate::model::fleet::NixRole::Hosts),
        definitions_value: value_of(crate::model::fleet::NixRole::Definitions),
    }
}

/// The fleet's lint files (definitions.nix, hosts.nix, .sops.yaml) read from disk, with the
/// texts of `overrides` (absolute path → text) in place of what is on disk, and their
/// diagnostics. Paths are shown as `vmlint` shows them (relative to the working directory). Statically evaluated only (no
/// Nix fallback): [`gate`] compares two such runs, so both see the same values.
pub fn lint_with(
    root: &Path,
    overrides: &[(PathBuf, String)],
) -> (crate::model::fleet::Fleet, Vec<crate::check::Diagnostic>) {
    use crate::exec::lint::FsLoader;
    use crate::model::fleet::{Fleet, NixRole};

    let text_of = |path: &Path| -> Option<String> {
        overrides
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, t)| t.clone())
            .or_else(|| std::fs::read_to_string(path).ok())
    };
    let shown = |path: &Path| gate_path(path);
    let mut fleet = Fleet::default();
    let defs = root.join("vms/definitions.nix");
    if let Some(text) = text_of(&defs) {
        fleet.add_nix(shown(&defs), &text, NixRole::Definitions, &FsLoader);
    }
    let settings = fleet
        .definitions_file()
        .map(|(_, d)| d.settings.clone())
        .unwrap_or_default();
    let hosts = root.join(&settings.hosts_file);
    if let Some(text) = text_of(&hosts) {
        fleet.add_nix(shown(&hosts), &text, NixRole::Hosts, &FsLoader);
    }
    let sops = root.join(&settings.sops_config);
    if let Some(text) = text_of(&sops) {
        fleet.db.add(shown(&sops), text);
    }
    let dirs = std::fs::read_dir(root.join(&settings.hosts_dir))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    fleet.host_dirs = Some(dirs);
    let diagnostics = crate::check::check_fleet(&fleet);
    (fleet, diagnostics)
}

/// How [`lint_with`] names a file: relative to the working directory when below it (as
/// `vmlint` shows it), else absolute; either way imports resolve from it as from the file.
fn gate_path(path: &Path) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&cwd)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

/// The errors of definitions.nix, with the fleet for rendering: what a command that reads only
/// definitions.nix (`docs`) stops on; errors of hosts.nix or .sops.yaml do not concern it.
pub fn errors_of_definitions(
    root: &Path,
) -> (crate::model::fleet::Fleet, Vec<crate::check::Diagnostic>) {
    use crate::check::Severity;
    use crate::model::fleet::NixRole;

    let (fleet, diagnostics) = lint_with(root, &[]);
    let defs: Vec<_> = fleet
        .files
        .iter()
        .filter(|f| f.role == NixRole::Definitions)
        .map(|f| f.file)
        .collect();
    let errors = diagnostics
        .into_iter()
        .filter(|d| d.severity() == Severity::Error && defs.contains(&d.span.file))
        .collect();
    (fleet, errors)
}

/// The errors of the fleet files that concern the VM `name`: syntax errors of definitions.nix
/// or hosts.nix (their values cannot be trusted), and errors inside the VM's entry of
/// definitions.nix (any section) or the host's entry of hosts.nix. With the fleet, for
/// rendering. A command that reads one VM stops on these, not on errors elsewhere.
pub fn errors_of_vm(
    root: &Path,
    name: &str,
) -> (crate::model::fleet::Fleet, Vec<crate::check::Diagnostic>) {
    use crate::check::Severity;
    use crate::model::fleet::NixRole;

    let (fleet, diagnostics) = lint_with(root, &[]);
    let mut entries: Vec<crate::syntax::Span> = Vec::new();
    for f in &fleet.files {
        let Some(top) = f.eval.value.as_attrs() else {
            continue;
        };
        match f.role {
            NixRole::Definitions => {
                for section in ["managed", "imported", "template"] {
                    let Some(sec) = top.get(section).and_then(|v| v.as_attrs()) else {
                        continue;
                    };
                    if let Some(v) = sec.get(name) {
                        entries.push(v.span);
                    }
                }
            }
            NixRole::Hosts => {
                if let Some(v) = top.get(name) {
                    entries.push(v.span);
                }
            }
            NixRole::Other => {}
        }
    }
    let concerns = |d: &crate::check::Diagnostic| {
        d.code() == "NX001"
            || entries.iter().any(|e| {
                e.file == d.span.file
                    && e.range.start() <= d.span.range.start()
                    && d.span.range.end() <= e.range.end()
            })
    };
    let errors = diagnostics
        .into_iter()
        .filter(|d| d.severity() == Severity::Error && concerns(d))
        .collect();
    (fleet, errors)
}

/// The errors that make an edit of the fleet files unacceptable: errors the edited files
/// would have that they do not have now, and errors inside the bytes the edit writes (the
/// edit would write them, e.g. replacing one truncated key with another). Errors the edit
/// leaves alone elsewhere never block it, so an edit that fixes or removes a broken entry
/// always works.
pub fn blocking_errors(
    before_fleet: &crate::model::fleet::Fleet,
    before: &[crate::check::Diagnostic],
    after_fleet: &crate::model::fleet::Fleet,
    after: &[crate::check::Diagnostic],
    written: &[(PathBuf, std::ops::Range<usize>)],
) -> Vec<crate::check::Diagnostic> {
    use crate::check::Severity;

    // Diagnostics are compared by file, code and message: positions move with the edit.
    let key = |db: &crate::syntax::SourceDb, d: &crate::check::Diagnostic| {
        (
            d.rule.code,
            db.path(d.span.file).to_path_buf(),
            d.message.clone(),
        )
    };
    let mut remaining: Vec<_> = before
        .iter()
        .filter(|d| d.severity() == Severity::Error)
        .map(|d| key(&before_fleet.db, d))
        .collect();
    let mut out = Vec::new();
    for d in after.iter().filter(|d| d.severity() == Severity::Error) {
        let k = key(&after_fleet.db, d);
        let path = after_fleet.db.path(d.span.file);
        let start = usize::from(d.span.range.start());
        let end = usize::from(d.span.range.end());
        let in_written = written.iter().any(|(p, r)| {
            p.as_path() == path && start < r.end.max(r.start + 1) && end.max(start + 1) > r.start
        });
        match remaining.iter().position(|x| *x == k) {
            Some(i) if !in_written => {
                remaining.swap_remove(i);
            }
            _ => out.push(d.clone()),
        }
    }
    out
}

/// The byte range of `new` that differs from `old` (common prefix and suffix removed).
pub fn changed_range(old: &str, new: &str) -> std::ops::Range<usize> {
    let prefix = old
        .bytes()
        .zip(new.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let max_suffix = old.len().min(new.len()) - prefix;
    let suffix = old
        .bytes()
        .rev()
        .zip(new.bytes().rev())
        .take(max_suffix)
        .take_while(|(a, b)| a == b)
        .count();
    prefix..new.len() - suffix
}

/// Refuses an edit of fleet files (absolute path, text before, text after) that would leave
/// an error it adds or writes, rendering those errors like `vmlint` does. Errors elsewhere
/// are only mentioned (a note through `out`, silent with `-q`).
pub fn gate(
    root: &Path,
    edits: &[(PathBuf, Option<String>, String)],
    out: &Reporter,
) -> miette::Result<()> {
    use crate::check::Severity;

    // A file the edit creates is absent before (it is not on disk either).
    let before_overrides: Vec<(PathBuf, String)> = edits
        .iter()
        .filter_map(|(p, before, _)| Some((p.clone(), before.clone()?)))
        .collect();
    let after_overrides: Vec<(PathBuf, String)> = edits
        .iter()
        .map(|(p, _, after)| (p.clone(), after.clone()))
        .collect();
    let (before_fleet, before) = lint_with(root, &before_overrides);
    let (after_fleet, after) = lint_with(root, &after_overrides);
    let written: Vec<(PathBuf, std::ops::Range<usize>)> = edits
        .iter()
        .map(|(p, b, a)| {
            let shown = gate_path(p);
            (shown, changed_range(b.as_deref().unwrap_or(""), a))
        })
        .collect();
    let blocking = blocking_errors(&before_fleet, &before, &after_fleet, &after, &written);
    if !blocking.is_empty() {
        return Err(out.refuse(
            &after_fleet.db,
            &blocking,
            |n| format!("this change would make the fleet files invalid ({n})"),
            "nothing was written; fix the value you passed (the diagnostic above says what `vmlint` would report)",
        ));
    }
    let kept = after
        .iter()
        .filter(|d| d.severity() == Severity::Error)
        .count();
    if kept > 0 {
        out.note(&format!(
            "the fleet files still have {kept} error{} this change does not touch; `vmlint` shows {}",
            if kept == 1 { "" } else { "s" },
            if kept == 1 { "it" } else { "them" }
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_the_demo_fleet() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let f = load(Some(root), &Reporter::default()).expect("the demo fleet loads");
        assert_eq!(
            f.definitions.vm_by_vmid(104).map(|v| v.readonly),
            Some(true)
        );
        assert_eq!(f.hosts.expect("hosts.nix").hosts.len(), 2);
    }

    #[test]
    fn the_changed_range_is_what_the_edit_wrote() {
        assert_eq!(changed_range("abc", "abc"), 3..3);
        assert_eq!(changed_range("a{}b", "a{x}b"), 2..3);
        assert_eq!(changed_range("aXb", "ab"), 1..1);
        assert_eq!(changed_range("", "new"), 0..3);
        // A repeated byte at the seam is not counted twice.
        assert_eq!(changed_range("aa", "aaa"), 2..3);
    }

    #[test]
    fn only_errors_an_edit_adds_or_writes_block_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("vms")).unwrap();
        std::fs::write(root.join("vms/definitions.nix"), "{ }").unwrap();
        let hosts = root.join("hosts.nix");
        let good =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO8VKyhzcBQ4yMgYmcX8xILCt0u2lTGGk4vH1uMd4X9T";
        let broken = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO8VKyhz";
        let file = |entries: &str| format!("{{\n{entries}}}\n");
        let a_broken = format!("  a = {{ publicKey = \"{broken}\"; }};\n");
        let b_good = format!("  b = {{ publicKey = \"{good}\"; }};\n");
        let b_broken = format!("  b = {{ publicKey = \"{broken}x\"; }};\n");
        let run = |before: &str, after: &str| {
            let (bf, b) = lint_with(root, &[(hosts.clone(), before.to_string())]);
            let (af, a) = lint_with(root, &[(hosts.clone(), after.to_string())]);
            let written = vec![(gate_path(&hosts), changed_range(before, after))];
            blocking_errors(&bf, &b, &af, &a, &written).len()
        };
        // Adding a good host next to a broken one: the old error does not block.
        assert_eq!(
            run(&file(&a_broken), &file(&format!("{a_broken}{b_good}"))),
            0
        );
        // Adding a broken host: blocked.
        assert_eq!(run(&file(""), &file(&b_broken)), 1);
        // Removing the broken host: fine.
        assert_eq!(
            run(&file(&format!("{a_broken}{b_good}")), &file(&b_good)),
            0
        );
    }

    #[test]
    fn refuses_a_directory_without_definitions() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(Some(dir.path()), &Reporter::default()).unwrap_err();
        assert!(err.to_string().contains("is not a fleet"), "{err}");
    }
}
