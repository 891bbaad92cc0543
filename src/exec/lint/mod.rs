//! Loading fleet files from disk for linting: reading, the Nix fallback, the hosts directory.

mod missing_paths;
mod nix_paths;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::check::{check_fleet, Diagnostic};
use crate::exec::process::{Ended, Process, ProcessError};
use crate::model::fleet::{Fleet, NixRole};
use crate::model::read::Issue;
use crate::syntax::{evaluate, LoadError, Loader, Value};

/// Reads imported files from disk.
pub struct FsLoader;

impl Loader for FsLoader {
    fn load(&self, path: &Path) -> Result<String, LoadError> {
        std::fs::read_to_string(path).map_err(|e| LoadError(e.to_string().to_lowercase()))
    }
}

/// Reads imported files from disk, inside one directory tree only (the fleet): an import
/// from elsewhere is left unknown, as the restricted Nix fallback leaves it.
pub struct FleetLoader {
    root: Option<PathBuf>,
}

impl FleetLoader {
    pub fn new(root: &Path) -> Self {
        FleetLoader {
            root: std::fs::canonicalize(root).ok(),
        }
    }
}

impl Loader for FleetLoader {
    fn load(&self, path: &Path) -> Result<String, LoadError> {
        FsLoader.load(path)
    }

    fn allows(&self, path: &Path) -> bool {
        let Some(root) = &self.root else {
            return false;
        };
        // Symlinks resolved: a link inside the fleet to a file outside it is outside. A path
        // that does not exist is allowed through, and its read fails as usual.
        match std::fs::canonicalize(path) {
            Ok(real) => real.starts_with(root),
            Err(_) => true,
        }
    }
}

/// How lint reaches Nix when a value is not known statically.
#[derive(Debug, Clone)]
pub enum NixFallback {
    /// Run `nix-instantiate` (the given binary) for files with dynamic values.
    Use(PathBuf),
    Off,
}

impl NixFallback {
    /// `nix-instantiate` from PATH unless `VMCTL_NO_NIX=1`.
    pub fn from_env() -> Self {
        if std::env::var_os("VMCTL_NO_NIX").is_some_and(|v| v != "0") {
            return NixFallback::Off;
        }
        NixFallback::Use("nix-instantiate".into())
    }
}

/// A problem that stops lint before it can check anything (exit code 2).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LintSetupError {
    #[error("cannot read `{path}`: {message}")]
    Read { path: PathBuf, message: String },
    #[error("`{0}` is a directory but not a fleet: it has no vms/definitions.nix")]
    NotAFleet(PathBuf),
    #[error("no fleet found: no vms/definitions.nix in `{0}` or any parent directory; pass a file or a fleet directory")]
    NoFleet(PathBuf),
}

/// The outcome of a lint run: the fleet as read and the diagnostics.
#[derive(Debug, Clone, Default)]
pub struct LintRun {
    pub fleet: Fleet,
    pub diagnostics: Vec<Diagnostic>,
}

/// The role a file plays, by its name.
pub fn role_by_name(path: &Path) -> NixRole {
    match path.file_name().and_then(|n| n.to_str()) {
        Some("definitions.nix") => NixRole::Definitions,
        Some("hosts.nix") => NixRole::Hosts,
        _ => NixRole::Other,
    }
}

/// How a path is shown: relative to `cwd` when it is under it.
fn display_path(path: &Path, cwd: &Path) -> PathBuf {
    path.strip_prefix(cwd)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

/// How long one Nix evaluation may take: `VMCTL_NIX_TIMEOUT` seconds, default 10 (a fleet
/// file evaluates in well under a second; a loop never ends).
pub fn nix_timeout() -> Duration {
    std::env::var("VMCTL_NIX_TIMEOUT")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(Duration::from_secs(10), Duration::from_secs_f64)
}

/// Why the Nix fallback gave no value, for a diagnostic.
#[derive(Debug, Clone, PartialEq)]
pub struct NixFailure {
    pub message: String,
    pub help: String,
}

/// Asks Nix for the value of `path` as JSON: `nix-instantiate` restricted to `root` (the
/// fleet directory: `restrict-eval` with only `root` on the search path, no `NIX_PATH`), and
/// killed after [`nix_timeout`].
/// `Err(None)` when Nix is not installed.
fn nix_eval_json(
    nix: &Path,
    path: &Path,
    root: &Path,
) -> Result<serde_json::Value, Option<NixFailure>> {
    let fail = |message: String, help: &str| {
        Some(NixFailure {
            message,
            help: help.to_string(),
        })
    };
    let timeout = nix_timeout();
    let done = Process::new(
        format!("evaluate {} with nix-instantiate", path.display()),
        nix,
    )
    .args(["--eval", "--strict", "--json", "--readonly-mode"])
    .args(["--option", "restrict-eval", "true", "-I"])
    .arg(root)
    .arg(path)
    .env("NIX_PATH", "")
    .timeout(timeout)
    .output();
    let (status, stdout, stderr) = match done {
        Ok(done) => (done.status, done.stdout, done.stderr),
        // Without Nix the values simply stay unknown; NX002 already says to install it.
        Err(e) if e.is_not_found() => return Err(None),
        Err(ProcessError::Spawn { error, .. }) => {
            return Err(fail(
                format!(
                    "cannot run `{}`: {}",
                    nix.display(),
                    error.to_string().to_lowercase()
                ),
                "install Nix (apt-get install nix-bin) or pass --no-nix",
            ))
        }
        Err(e) if matches!(e.ended(), Some(Ended::TimedOut(_))) => {
            return Err(fail(
                format!(
                    "nix-instantiate did not finish evaluating this file within {} s and was stopped",
                    timeout.as_secs_f64()
                ),
                "look for a loop in the expression; set VMCTL_NIX_TIMEOUT (seconds) if the file is just slow",
            ))
        }
        Err(ProcessError::Wait { error, .. }) => {
            return Err(fail(
                format!(
                    "cannot wait for nix-instantiate: {}",
                    error.to_string().to_lowercase()
                ),
                "run vmlint again",
            ))
        }
        Err(e) => return Err(fail(e.to_string(), "run vmlint again")),
    };
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    if !status.success() {
        let first = stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix("error:"))
            .map(str::trim)
            .unwrap_or("it failed without a message")
            .to_string();
        let help = if first.contains("restricted mode") {
            "vmctl evaluates fleet files with Nix restricted to the fleet directory; keep imports inside it"
        } else {
            "run `nix-instantiate --eval --strict` on the file to see the whole error"
        };
        return Err(fail(
            format!(
                "nix-instantiate could not evaluate this file: {}",
                nix_paths::fleet_relative(&first, root)
            ),
            help,
        ));
    }
    serde_json::from_slice(&stdout).map_err(|e| {
        fail(
            format!("nix-instantiate printed no JSON vmctl can read: {e}"),
            "run `nix-instantiate --eval --strict --json` on the file to see its output",
        )
    })
}

/// Texts that stand in for files on disk, by absolute path: an editor's unsaved buffers
/// (`vmctl lsp`) and the result of fixes not yet written (`vmlint --diff`).
pub type Overlay = std::collections::BTreeMap<PathBuf, String>;

/// The text of `path`: the overlay's when it has one, else the file's.
fn read_text(path: &Path, shown: &Path, overlay: &Overlay) -> Result<String, LintSetupError> {
    if let Some(text) = overlay.get(path) {
        return Ok(text.clone());
    }
    std::fs::read_to_string(path).map_err(|e| LintSetupError::Read {
        path: shown.to_path_buf(),
        message: e.to_string().to_lowercase(),
    })
}

/// True when `path` is a file on disk or in the overlay.
fn exists(path: &Path, overlay: &Overlay) -> bool {
    overlay.contains_key(path) || path.is_file()
}

/// True for files read as YAML (`.sops.yaml`), not Nix.
fn is_yaml(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

/// Adds a YAML file (the sops config) to the fleet's sources; the SP and FL checks read it.
fn add_yaml(
    fleet: &mut Fleet,
    path: &Path,
    shown: PathBuf,
    overlay: &Overlay,
) -> Result<(), LintSetupError> {
    let text = read_text(path, &shown, overlay)?;
    fleet.db.add(shown, text);
    Ok(())
}

/// Reads one Nix file into the fleet, with the Nix fallback for dynamic values it needs.
fn add_file(
    fleet: &mut Fleet,
    path: &Path,
    shown: PathBuf,
    role: NixRole,
    nix: &NixFallback,
    root: &Path,
    overlay: &Overlay,
) -> Result<(), LintSetupError> {
    let text = read_text(path, &shown, overlay)?;
    // Nix reads the file on disk: a text that differs from it keeps its unknown values.
    let nix = match (nix, overlay.get(path)) {
        (NixFallback::Use(_), Some(t))
            if std::fs::read_to_string(path).ok().as_ref() != Some(t) =>
        {
            &NixFallback::Off
        }
        _ => nix,
    };
    let file = fleet.db.add(shown, text);
    // Imports resolve against the real location, shown relative like the file itself, and
    // only inside the fleet.
    let eval = evaluate(&mut fleet.db, file, &FleetLoader::new(root));
    fleet.add_evaluated(file, role, eval);
    let needs_nix = fleet
        .files
        .last()
        .is_some_and(|f| f.issues.iter().any(|i| matches!(i, Issue::Dynamic { .. })));
    if let (true, NixFallback::Use(bin)) = (needs_nix, nix) {
        match nix_eval_json(bin, path, root) {
            Ok(json) => {
                let mut nf = fleet.files.pop().expect("just added");
                let known = Value::from_json(&json, nf.eval.value.span);
                nf.eval.value.fill_unknown_from(&known);
                fleet.add_evaluated(nf.file, role, nf.eval);
            }
            Err(None) => {}
            Err(Some(failure)) => {
                let nf = fleet.files.last_mut().expect("just added");
                // Pointed at the first value Nix was asked for.
                let span = nf
                    .issues
                    .iter()
                    .find_map(|i| match i {
                        Issue::Dynamic { span, .. } => Some(*span),
                        _ => None,
                    })
                    .unwrap_or(nf.eval.value.span);
                nf.issues.push(Issue::Evaluator {
                    span,
                    message: failure.message,
                    help: failure.help,
                });
            }
        }
    }
    Ok(())
}

fn host_dirs(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Notes on a Nix file read as plain Nix which checks ran, and how to choose others.
fn note_checks_ran(fleet: &mut Fleet, shown: &Path) {
    let nf = fleet.files.last_mut().expect("just added");
    let span = crate::syntax::Span::new(nf.file, rowan::TextRange::empty(0.into()));
    let q = |role: &str| {
        crate::proxmox::quote::command_line(&["vmlint", "--as", role, &shown.display().to_string()])
    };
    nf.issues.push(Issue::Role {
        span,
        message: "vmctl does not know this file by its name (definitions.nix, hosts.nix): only Nix syntax and evaluation were checked".into(),
        help: format!(
            "to check it as a fleet file, run `{}` or `{}`",
            q("definitions"),
            q("hosts")
        ),
    });
}

/// Loads a whole fleet: definitions.nix, then the files its settings name.
pub fn load_fleet(
    fleet: &mut Fleet,
    root: &Path,
    cwd: &Path,
    nix: &NixFallback,
) -> Result<(), LintSetupError> {
    load_fleet_with(fleet, root, cwd, nix, &Overlay::new())
}

/// [`load_fleet`], reading the texts of `overlay` instead of those files on disk.
pub fn load_fleet_with(
    fleet: &mut Fleet,
    root: &Path,
    cwd: &Path,
    nix: &NixFallback,
    overlay: &Overlay,
) -> Result<(), LintSetupError> {
    let defs_path = root.join("vms/definitions.nix");
    if !exists(&defs_path, overlay) {
        return Err(LintSetupError::NotAFleet(display_path(root, cwd)));
    }
    add_file(
        fleet,
        &defs_path,
        display_path(&defs_path, cwd),
        NixRole::Definitions,
        nix,
        root,
        overlay,
    )?;
    let settings = fleet
        .definitions_file()
        .map(|(_, d)| d.settings.clone())
        .unwrap_or_default();
    let hosts_path = root.join(&settings.hosts_file);
    if exists(&hosts_path, overlay) {
        add_file(
            fleet,
            &hosts_path,
            display_path(&hosts_path, cwd),
            NixRole::Hosts,
            nix,
            root,
            overlay,
        )?;
    }
    let sops = root.join(&settings.sops_config);
    if exists(&sops, overlay) {
        add_yaml(fleet, &sops, display_path(&sops, cwd), overlay)?;
    }
    fleet.host_dirs = Some(host_dirs(&root.join(&settings.hosts_dir)));
    missing_paths::report(fleet, root, &settings);
    Ok(())
}

/// Lints `paths` (files or fleet directories), or the fleet found upward from `cwd`.
pub fn lint(
    paths: &[PathBuf],
    role: Option<NixRole>,
    cwd: &Path,
    nix: &NixFallback,
) -> Result<LintRun, LintSetupError> {
    lint_with(paths, role, cwd, nix, &Overlay::new())
}

/// [`lint`], reading the texts of `overlay` instead of those files on disk.
pub fn lint_with(
    paths: &[PathBuf],
    role: Option<NixRole>,
    cwd: &Path,
    nix: &NixFallback,
    overlay: &Overlay,
) -> Result<LintRun, LintSetupError> {
    let mut fleet = Fleet::default();
    if paths.is_empty() {
        let root = crate::exec::root::find_root(cwd)
            .ok_or_else(|| LintSetupError::NoFleet(cwd.to_path_buf()))?;
        load_fleet_with(&mut fleet, &root, cwd, nix, overlay)?;
    }
    for p in paths {
        let abs = if p.is_absolute() {
            p.clone()
        } else {
            cwd.join(p)
        };
        if abs.is_dir() {
            load_fleet_with(&mut fleet, &abs, cwd, nix, overlay)?;
            continue;
        }
        if is_yaml(&abs) {
            add_yaml(&mut fleet, &abs, p.clone(), overlay)?;
            continue;
        }
        let chosen_by_user = role;
        let role = role.unwrap_or_else(|| role_by_name(&abs));
        // Nix may read the file's fleet (or, outside any fleet, its own directory) and nothing
        // else.
        let dir = abs.parent().unwrap_or(Path::new("/"));
        let root = crate::exec::root::find_root(dir).unwrap_or_else(|| dir.to_path_buf());
        add_file(&mut fleet, &abs, p.clone(), role, nix, &root, overlay)?;
        // `--as nix` is a choice; an unknown name is not.
        if role == NixRole::Other && chosen_by_user.is_none() {
            note_checks_ran(&mut fleet, p);
        }
        // A definitions.nix at <root>/vms/ knows its fleet's hosts directory.
        if role == NixRole::Definitions && fleet.host_dirs.is_none() {
            let parent = abs
                .parent()
                .filter(|d| d.file_name().is_some_and(|n| n == "vms"));
            if let Some(root) = parent.and_then(Path::parent) {
                let dir = fleet
                    .definitions_file()
                    .map(|(_, d)| d.settings.hosts_dir.clone())
                    .unwrap_or_default();
                fleet.host_dirs = Some(host_dirs(&root.join(dir)));
            }
        }
    }
    let diagnostics = check_fleet(&fleet);
    Ok(LintRun { fleet, diagnostics })
}
