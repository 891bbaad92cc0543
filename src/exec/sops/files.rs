//! Re-keying and checking many secret files: which files, each one's outcome, and the native
//! re-key that writes only what it fully verified, through the applier.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{run_updatekeys, walk_files, LoadedConfig, INSTALL_SOPS};
use crate::exec::apply::{self, ApplyError, ChangeSet, FileChange, FleetLock};
use crate::secrets::check::{self, CheckReport, FileProblem};
use crate::secrets::config;
use crate::secrets::rekey::{self, GroupChange, Route};
use crate::secrets::{Format, Identities, SecretsError, SopsFile};

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    UpToDate,
    Rekeyed,
    WouldRekey,
    Failed,
}

/// One file's outcome, for humans and `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub path: String,
    pub status: FileStatus,
    /// `native` or `sops`, when the file needed changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<&'static str>,
    /// Why sops handles the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// 1-based creation rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<usize>,
    pub changes: Vec<GroupChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl FileReport {
    fn new(path: String) -> Self {
        FileReport {
            path,
            status: FileStatus::Failed,
            route: None,
            reason: None,
            rule: None,
            changes: Vec::new(),
            error: None,
        }
    }

    fn fail(mut self, msg: impl Into<String>) -> Self {
        self.status = FileStatus::Failed;
        self.error = Some(msg.into());
        self
    }
}

/// Options of a re-key run.
pub struct RekeyOptions<'a> {
    pub dry_run: bool,
    pub identities: &'a Identities,
    /// The sops binary for the fallback, if one is available.
    pub sops: Option<&'a Path>,
    /// Where the lock's "waiting" line goes (`-q`).
    pub out: crate::exec::report::Reporter,
}

/// Re-keys one file for the rule `config` gives it. Never writes a file it could not fully
/// verify; every write goes through the applier. Takes the fleet lock for the file's
/// read-modify-write (use [`rekey_file_locked`] when the caller already holds it).
pub fn rekey_file(
    config: &LoadedConfig,
    file: &Path,
    display: String,
    opts: &RekeyOptions<'_>,
) -> FileReport {
    if opts.dry_run {
        return rekey(config, file, display, opts, None, None);
    }
    match FleetLock::for_file(file, &opts.out) {
        Ok(lock) => rekey(config, file, display, opts, Some(&lock), None),
        Err(e) => FileReport::new(display).fail(e.to_string()),
    }
}

/// What a caller is told of a native re-key's new bytes before they replace the file (its
/// absolute path, the bytes); an `Err` stops that file unwritten, the message its error.
pub type Announce<'a> = &'a mut dyn FnMut(&Path, &[u8]) -> Result<(), String>;

/// [`rekey_file`] under a lock the caller holds since before anything was read. `announce`
/// hears each natively re-keyed file's bytes before the write (a journal records them, so a
/// kill after the write is recognised as this write); the sops fallback writes the file itself,
/// and what it writes is not known before.
pub fn rekey_file_locked(
    config: &LoadedConfig,
    file: &Path,
    display: String,
    opts: &RekeyOptions<'_>,
    lock: &FleetLock,
    announce: Option<Announce<'_>>,
) -> FileReport {
    rekey(config, file, display, opts, Some(lock), announce)
}

pub(super) fn rekey(
    config: &LoadedConfig,
    file: &Path,
    display: String,
    opts: &RekeyOptions<'_>,
    lock: Option<&FleetLock>,
    announce: Option<Announce<'_>>,
) -> FileReport {
    let mut rep = FileReport::new(display);
    let abs = match std::path::absolute(file) {
        Ok(a) => a,
        Err(e) => return rep.fail(format!("cannot resolve the path: {e}")),
    };
    let rel = config::path_for_matching(&config.dir, &abs);
    let Some(rule) = config.config.rule_for(&rel) else {
        return rep.fail(format!(
            "no creation rule in {} matches {rel}; add one or pass the right --config",
            config.path.display()
        ));
    };
    rep.rule = Some(rule.index + 1);
    let text = match std::fs::read(&abs) {
        Ok(b) => match String::from_utf8(b) {
            Ok(t) => t,
            Err(_) => return rep.fail("not a sops file (not UTF-8 text)"),
        },
        Err(e) => return rep.fail(format!("cannot read the file: {e}")),
    };
    let format = Format::for_path(&abs);
    let parsed = SopsFile::parse(format, &text);
    let route = match &parsed {
        Ok(f) => {
            rep.changes = rekey::diff_key_groups(&f.metadata.key_id_groups(), &rule.key_groups);
            if rep.changes.is_empty() {
                rep.status = FileStatus::UpToDate;
                return rep;
            }
            rekey::route(f, rule)
        }
        Err(SecretsError::UnsupportedLayout(why)) => Route::Sops(why.clone()),
        Err(e) => return rep.fail(e.to_string()),
    };
    let mut route = route;
    if let (Route::Native, Ok(f)) = (&route, &parsed) {
        rep.route = Some("native");
        if opts.dry_run {
            rep.status = FileStatus::WouldRekey;
            return rep;
        }
        match rekey::rekey_native(f, rule, opts.identities) {
            Ok(out) => {
                let Some(lock) = lock else {
                    return rep.fail("internal error: re-keying without the fleet lock");
                };
                if let Some(announce) = announce {
                    if let Err(e) = announce(&abs, out.text.as_bytes()) {
                        return rep.fail(e);
                    }
                }
                let change = FileChange::modify(
                    &abs,
                    rep.path.clone(),
                    text.as_bytes(),
                    out.text.as_bytes(),
                    "re-keyed",
                )
                .secret();
                match apply::apply(&ChangeSet::one(change), lock) {
                    Ok(_) => {}
                    Err(e @ ApplyError::ChangedUnderneath { .. }) => {
                        return rep.fail(format!("{e} (its new contents were kept)"))
                    }
                    Err(e) => return rep.fail(format!("cannot write the file: {e}")),
                }
                rep.status = FileStatus::Rekeyed;
                return rep;
            }
            Err(SecretsError::UnsupportedLayout(why)) => route = Route::Sops(why),
            Err(e) => return rep.fail(e.to_string()),
        }
    }
    let Route::Sops(reason) = route else {
        unreachable!("native route returned above")
    };
    rep.route = Some("sops");
    rep.reason = Some(reason.clone());
    if opts.dry_run {
        rep.status = FileStatus::WouldRekey;
        return rep;
    }
    let Some(sops) = opts.sops else {
        return rep.fail(format!(
            "needs the sops binary ({reason}) but sops was not found on PATH; {INSTALL_SOPS}"
        ));
    };
    if lock.is_none() {
        return rep.fail("internal error: re-keying without the fleet lock");
    }
    // The file must still be what was read and planned for (the lock keeps other vmctl runs
    // out, not editors).
    if std::fs::read(&abs).ok().as_deref() != Some(text.as_bytes()) {
        return rep.fail(
            "the file changed while vmctl was re-keying it (another program wrote it); its new contents were kept: run the command again",
        );
    }
    match run_updatekeys(sops, config, &abs, opts.identities) {
        Ok(true) => rep.status = FileStatus::Rekeyed,
        Ok(false) => rep.status = FileStatus::UpToDate,
        Err(e) => return rep.fail(crate::exec::process::causes(&e)),
    }
    rep
}

/// The files a command works on and how to name them.
pub struct FileSet {
    pub files: Vec<(PathBuf, String)>,
}

/// Explicit files as given, or every file under `secrets_dir` that a rule matches.
pub fn select_files(
    config: &LoadedConfig,
    explicit: &[PathBuf],
    secrets_dir: Option<&Path>,
    out: &crate::exec::report::Reporter,
) -> miette::Result<FileSet> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let display = |p: &Path| -> String {
        let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        abs.strip_prefix(&cwd)
            .map(|r| r.display().to_string())
            .unwrap_or_else(|_| abs.display().to_string())
    };
    if !explicit.is_empty() {
        return Ok(FileSet {
            files: explicit
                .iter()
                .map(|p| (p.clone(), p.display().to_string()))
                .collect(),
        });
    }
    let dir = secrets_dir.ok_or_else(|| {
        crate::exec::cannot_act::CannotAct::new(
            "no files given and no fleet found to take the secrets directory from; pass FILE… or --fleet DIR",
        )
    })?;
    // A fleet without a secrets directory has nothing to re-key or check.
    if !dir.exists() {
        out.note(&format!(
            "the secrets directory {} does not exist: no sops files to process",
            dir.display()
        ));
        return Ok(FileSet { files: Vec::new() });
    }
    let all = walk_files(dir).map_err(|e| {
        miette::miette!(
            "cannot list the secrets directory {}: {e}; check `settings.secretsDir` or pass FILE…",
            dir.display()
        )
    })?;
    let files = all
        .into_iter()
        .filter(|p| {
            let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
            abs != config.path
                && config
                    .config
                    .rule_for(&config::path_for_matching(&config.dir, &abs))
                    .is_some()
        })
        .map(|p| {
            let d = display(&p);
            (p, d)
        })
        .collect();
    Ok(FileSet { files })
}

/// Compares each file's keys with its rule (no identity needed).
pub fn check_files(config: &LoadedConfig, files: &FileSet) -> CheckReport {
    let mut report = CheckReport::default();
    for (path, display) in &files.files {
        let problem = |message: String| FileProblem {
            path: display.clone(),
            message,
        };
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        let rel = config::path_for_matching(&config.dir, &abs);
        let Some(rule) = config.config.rule_for(&rel) else {
            report.problems.push(problem(format!(
                "no creation rule in {} matches {rel}",
                config.path.display()
            )));
            continue;
        };
        let text = match std::fs::read(&abs).map(String::from_utf8) {
            Ok(Ok(t)) => t,
            Ok(Err(_)) => {
                report
                    .problems
                    .push(problem("not a sops file (not UTF-8 text)".into()));
                continue;
            }
            Err(e) => {
                report.problems.push(problem(format!("cannot read: {e}")));
                continue;
            }
        };
        match SopsFile::parse(Format::for_path(&abs), &text) {
            Ok(f) => {
                report.checked += 1;
                if let Some(s) = check::check_file(display, &f, rule) {
                    report.stale.push(s);
                }
            }
            Err(e) => report.problems.push(problem(e.to_string())),
        }
    }
    report
}
