//! `vmctl secrets`: re-key sops secrets for the recipients `.sops.yaml` lists (natively for
//! age-only files, with `sops updatekeys` otherwise) and check that they match.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::Global;
use crate::exec::sops::{self as xsops, FileStatus, LoadedConfig, RekeyOptions};
use crate::secrets::check::CheckReport;
use crate::secrets::rekey::GroupChange;

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Re-wrap each secret's data key for exactly the recipients its creation rule lists,
    /// like `sops updatekeys --yes`.
    ///
    /// Age-only files with one key group are edited natively: only the recipient entries of
    /// the sops metadata change; values, lastmodified, mac, comments and formatting stay
    /// byte for byte. Other files (pgp/kms/vault keys, several key groups, INI) are handed to
    /// the real `sops`. Files whose recipients already match are not written. Identities are
    /// read as sops reads them: SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, SOPS_AGE_SSH_PRIVATE_KEY_FILE,
    /// ~/.config/sops/age/keys.txt, ~/.ssh/id_ed25519, plus --identity; ssh-ed25519 keys are
    /// converted to the age identity of their ssh-to-age recipient, as sops-nix hosts use.
    ///
    /// Exit code 0 when every file is up to date or re-keyed, 1 when any file failed (the
    /// others are still processed; a failed file is never written).
    Rekey(RekeyArgs),
    /// Check that every sops file's recipients match its creation rule, for CI and
    /// `nix flake check`. Exit code 1 when some file is stale or unreadable.
    Check(CheckArgs),
    /// Rotate each secret's data key: a new random key, every value re-encrypted under it, a
    /// new MAC, and the new key wrapped for exactly the recipients its creation rule lists.
    ///
    /// Run it after removing a host: the removed host still holds the old data key, so
    /// re-keying alone leaves every value it could read readable to it. Age-only files with
    /// one key group are rotated natively (values' plaintext, keys, comments and layout stay;
    /// only ciphertexts, the MAC, lastmodified and the recipient entries change); other files
    /// go to the real `sops updatekeys` (when stale) and `sops rotate --in-place`. Needs an
    /// identity that opens each file.
    #[command(after_long_help = "Examples:
  vmctl sops remove-recipient oldhost && vmctl secrets rotate
  vmctl secrets rotate secrets/web.yaml --identity ~/.config/sops/age/keys.txt --dry-run")]
    Rotate(RotateArgs),
}

/// File selection and config, shared by `rekey` and `check`.
#[derive(Debug, Args)]
pub struct Selection {
    /// sops files to process. Default: every file under the fleet's secrets directory
    /// (settings.secrets_dir) that a creation rule matches.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The sops config. Default: the fleet's settings.sops_config, else the nearest
    /// .sops.yaml above the current directory (as sops finds it).
    #[arg(long, value_name = "PATH", env = "SOPS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RekeyArgs {
    #[command(flatten)]
    pub select: Selection,
    /// Show per file what would change (recipients added and removed, native or sops) and
    /// write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// An age identity file (AGE-SECRET-KEY-1… lines) or an unencrypted OpenSSH ed25519
    /// private key, in addition to the ones sops would find. Repeatable.
    #[arg(long = "identity", short = 'i', value_name = "FILE")]
    pub identities: Vec<PathBuf>,
    /// The sops binary for files vmctl does not re-key natively. Default: `sops` on PATH.
    #[arg(long, value_name = "PATH", env = "VMCTL_SOPS")]
    pub sops: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub select: Selection,
    /// Show per file how it would be rotated (native or sops) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// An age identity file (AGE-SECRET-KEY-1… lines) or an unencrypted OpenSSH ed25519
    /// private key, in addition to the ones sops would find. Repeatable.
    #[arg(long = "identity", short = 'i', value_name = "FILE")]
    pub identities: Vec<PathBuf>,
    /// The sops binary for files vmctl does not rotate natively. Default: `sops` on PATH.
    #[arg(long, value_name = "PATH", env = "VMCTL_SOPS")]
    pub sops: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub select: Selection,
}

pub fn run(args: SecretsCommand, g: &Global) -> miette::Result<u8> {
    match args {
        SecretsCommand::Rekey(a) => rekey(a, g),
        SecretsCommand::Check(a) => check(a, g),
        SecretsCommand::Rotate(a) => rotate(a, g),
    }
}

/// The config and the default secrets directory. Loading definitions.nix is attempted but not
/// required: with explicit files or --config the commands work without a valid fleet.
fn resolve(select: &Selection, g: &Global) -> miette::Result<(LoadedConfig, Option<PathBuf>)> {
    let start = match &g.fleet {
        Some(d) => d.clone(),
        None => std::env::current_dir().unwrap_or_default(),
    };
    // With --config and explicit files nothing of the fleet is needed: do not even read it.
    let (root, settings) = if select.config.is_some() && !select.files.is_empty() {
        (
            crate::exec::fleet::find_root(&start),
            crate::model::Settings::default(),
        )
    } else {
        match crate::exec::fleet::load(g.fleet.as_deref()) {
            Ok(f) => (Some(f.root.clone()), f.definitions.settings.clone()),
            Err(_) => {
                let root = crate::exec::fleet::find_root(&start);
                if root.is_some() {
                    eprintln!(
                        "note: vms/definitions.nix did not load; using the default paths (.sops.yaml, secrets/)"
                    );
                }
                (root, crate::model::Settings::default())
            }
        }
    };
    let config_path = match (&select.config, &root) {
        (Some(c), _) => c.clone(),
        (None, Some(r)) if r.join(&settings.sops_config).is_file() => r.join(&settings.sops_config),
        (None, _) => {
            let cwd = std::env::current_dir().unwrap_or_default();
            xsops::find_config_upwards(&cwd).ok_or_else(|| {
                miette::miette!(
                    "no .sops.yaml found (looked for the fleet's settings.sops_config and upward from {}); pass --config PATH",
                    cwd.display()
                )
            })?
        }
    };
    let config = xsops::load_config(&config_path)?;
    let secrets_dir = root.map(|r| r.join(&settings.secrets_dir));
    Ok((config, secrets_dir))
}

fn changes_text(changes: &[GroupChange]) -> String {
    let several = changes.iter().any(|c| c.group > 0);
    changes
        .iter()
        .map(|c| {
            let mut parts: Vec<String> = c.added.iter().map(|k| format!("+{k}")).collect();
            parts.extend(c.removed.iter().map(|k| format!("-{k}")));
            if several {
                format!("group {}: {}", c.group + 1, parts.join(" "))
            } else {
                parts.join(" ")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn rekey(a: RekeyArgs, g: &Global) -> miette::Result<u8> {
    let (config, secrets_dir) = resolve(&a.select, g)?;
    let files = xsops::select_files(&config, &a.select.files, secrets_dir.as_deref())?;
    let found = xsops::discover_identities(&xsops::IdentityEnv::from_process(), &a.identities)?;
    for n in &found.notes {
        eprintln!("note: {n}");
    }
    let sops = xsops::find_sops(a.sops.as_deref());
    if let (Some(p), None) = (&a.sops, &sops) {
        return Err(miette::miette!(
            "--sops {}: no such file; {}",
            p.display(),
            xsops::INSTALL_SOPS
        ));
    }
    let opts = RekeyOptions {
        dry_run: a.dry_run,
        identities: &found.identities,
        sops: sops.as_deref(),
    };
    if files.files.len() > 1 && !a.select.json {
        eprintln!(
            "{} {} files with {}",
            if a.dry_run { "checking" } else { "re-keying" },
            files.files.len(),
            Path::new(&config.path).display()
        );
    }
    let mut reports = Vec::new();
    for (path, display) in &files.files {
        let r = xsops::rekey_file(&config, path, display.clone(), &opts);
        if !a.select.json {
            let how = match (r.route, &r.reason) {
                (Some("sops"), Some(why)) => format!(" (sops: {why})"),
                (Some(route), _) => format!(" ({route})"),
                _ => String::new(),
            };
            match r.status {
                FileStatus::UpToDate => println!("up to date   {}", r.path),
                FileStatus::Rekeyed => {
                    println!("rekeyed      {}{how}: {}", r.path, changes_text(&r.changes))
                }
                FileStatus::WouldRekey => {
                    println!("would rekey  {}{how}: {}", r.path, changes_text(&r.changes))
                }
                FileStatus::Failed => println!(
                    "failed       {}: {}",
                    r.path,
                    r.error.as_deref().unwrap_or("unknown error")
                ),
            }
        }
        reports.push(r);
    }
    let failed = reports
        .iter()
        .filter(|r| r.status == FileStatus::Failed)
        .count();
    let lost: Vec<&xsops::FileReport> = reports
        .iter()
        .filter(|r| {
            matches!(r.status, FileStatus::Rekeyed | FileStatus::WouldRekey)
                && r.changes.iter().any(|c| !c.removed.is_empty())
        })
        .collect();
    let rotate_cmd = (!lost.is_empty()).then(|| {
        let files: Vec<String> = lost
            .iter()
            .map(|r| crate::proxmox::quote(&r.path))
            .collect();
        format!("{} {}", super::sops::ROTATE, files.join(" "))
    });
    if a.select.json {
        // The common shape of file changes (docs/json-output.md); secrets never show a diff.
        let changes: Vec<_> = reports
            .iter()
            .filter(|r| matches!(r.status, FileStatus::Rekeyed | FileStatus::WouldRekey))
            .map(|r| {
                serde_json::json!({
                    "file": r.path,
                    "action": "modify",
                    "summary": format!("re-keyed: {}", changes_text(&r.changes)),
                    "written": r.status == FileStatus::Rekeyed,
                    "diff": null,
                })
            })
            .collect();
        let out = serde_json::json!({
            "config": config.path,
            "dry_run": a.dry_run,
            "written": reports.iter().any(|r| r.status == FileStatus::Rekeyed),
            "ok": failed == 0,
            "files": reports,
            "changes": changes,
            "rotate": rotate_cmd,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else if files.files.is_empty() {
        eprintln!("no sops files matched a creation rule");
    } else if failed > 0 {
        eprintln!(
            "{failed} of {} files failed; they were left unchanged",
            files.files.len()
        );
    }
    // A removed recipient still holds the data key it unwrapped before: say so, with the
    // command that replaces the key.
    if let (Some(cmd), false) = (&rotate_cmd, a.select.json) {
        let removed: std::collections::BTreeSet<String> = lost
            .iter()
            .flat_map(|r| {
                r.changes
                    .iter()
                    .flat_map(|c| c.removed.iter().map(|k| k.to_string()))
            })
            .collect();
        eprintln!(
            "note: {} still hold(s) the old data key of {} file(s) it could decrypt; run `{cmd}` to give them a new one",
            removed.into_iter().collect::<Vec<_>>().join(", "),
            lost.len(),
        );
    }
    Ok(u8::from(failed > 0))
}

fn print_check(report: &CheckReport) {
    for s in &report.stale {
        let regex = s
            .path_regex
            .as_deref()
            .map(|r| format!(" (path_regex: {r})"))
            .unwrap_or_default();
        println!(
            "stale    {}: rule {}{regex} wants {}",
            s.path,
            s.rule,
            changes_text(&s.changes)
        );
    }
    for p in &report.problems {
        println!("error    {}: {}", p.path, p.message);
    }
}

fn check(a: CheckArgs, g: &Global) -> miette::Result<u8> {
    let (config, secrets_dir) = resolve(&a.select, g)?;
    let files = xsops::select_files(&config, &a.select.files, secrets_dir.as_deref())?;
    let report = xsops::check_files(&config, &files);
    if a.select.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print_check(&report);
        if report.is_clean() {
            let files = if report.checked == 1 {
                "file matches its"
            } else {
                "files match their"
            };
            eprintln!("{} sops {files} creation rules", report.checked);
        } else if !report.stale.is_empty() {
            eprintln!(
                "{} of {} files are stale; run `vmctl secrets rekey`",
                report.stale.len(),
                report.checked
            );
        }
    }
    Ok(u8::from(!report.is_clean()))
}

/// One file's rotation, for humans and `--json`.
#[derive(Debug, Clone, serde::Serialize)]
struct RotateReport {
    path: String,
    /// `rotated`, `would_rotate` or `failed`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<usize>,
    /// The recipients the new key is wrapped for (native rotations).
    recipients: Vec<String>,
    /// Recipients the file had that its rule no longer lists (dropped by the rotation).
    removed: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

use crate::exec::apply::{apply, ChangeSet, FileChange, FleetLock};

fn rotate_one(
    config: &LoadedConfig,
    path: &Path,
    display: &str,
    a: &RotateArgs,
    ids: &crate::secrets::Identities,
    sops: Option<&Path>,
) -> RotateReport {
    use crate::secrets::config::path_for_matching;
    use crate::secrets::rekey::{self, Route};
    use crate::secrets::{rotate, Format, SecretsError, SopsFile};
    let mut rep = RotateReport {
        path: display.to_string(),
        status: "failed",
        route: None,
        reason: None,
        rule: None,
        recipients: Vec::new(),
        removed: Vec::new(),
        error: None,
    };
    let fail = |mut rep: RotateReport, e: String| {
        rep.error = Some(e);
        rep
    };
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let rel = path_for_matching(&config.dir, &abs);
    let Some(rule) = config.config.rule_for(&rel) else {
        return fail(
            rep,
            format!(
                "no creation rule in {} matches {rel}; add one or pass the right --config",
                config.path.display()
            ),
        );
    };
    rep.rule = Some(rule.index + 1);
    // Held from the read to the write, so no other vmctl writer's update is lost.
    let lock = if a.dry_run {
        None
    } else {
        match FleetLock::for_file(&abs) {
            Ok(l) => Some(l),
            Err(e) => return fail(rep, e.to_string()),
        }
    };
    let text = match std::fs::read(&abs).map(String::from_utf8) {
        Ok(Ok(t)) => t,
        Ok(Err(_)) => return fail(rep, "not a sops file (not UTF-8 text)".into()),
        Err(e) => return fail(rep, format!("cannot read the file: {e}")),
    };
    let parsed = SopsFile::parse(Format::for_path(&abs), &text);
    let route = match &parsed {
        Ok(f) => rekey::route(f, rule),
        Err(SecretsError::UnsupportedLayout(why)) => Route::Sops(why.clone()),
        Err(e) => return fail(rep, e.to_string()),
    };
    if let (Route::Native, Ok(f)) = (&route, &parsed) {
        rep.route = Some("native");
        let now = rotate::rfc3339_utc(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default(),
        );
        // Dry runs rotate in memory too: the verification is what says it would work.
        match rotate::rotate_native(f, rule, ids, &mut rand_core::OsRng, &now) {
            Ok(out) => {
                rep.recipients = out.recipients.clone();
                rep.removed = out.removed.clone();
                if a.dry_run {
                    rep.status = "would_rotate";
                    return rep;
                }
                // The applier refuses when the file changed since it was read.
                let change =
                    FileChange::modify(&abs, display, text.as_bytes(), out.text, "rotated")
                        .secret();
                let lock = lock.as_ref().expect("locked unless dry run");
                if let Err(e) = apply(&ChangeSet::one(change), lock) {
                    return fail(rep, e.to_string());
                }
                rep.status = "rotated";
                return rep;
            }
            Err(SecretsError::UnsupportedLayout(why)) => {
                return sops_rotate(
                    rep,
                    config,
                    &abs,
                    why,
                    a.dry_run,
                    ids,
                    sops,
                    parsed.ok().as_ref(),
                    rule,
                    lock.as_ref(),
                )
            }
            Err(e) => return fail(rep, e.to_string()),
        }
    }
    let Route::Sops(why) = route else {
        unreachable!("native handled above")
    };
    sops_rotate(
        rep,
        config,
        &abs,
        why,
        a.dry_run,
        ids,
        sops,
        parsed.ok().as_ref(),
        rule,
        lock.as_ref(),
    )
}

/// The sops route: `sops updatekeys` first when the file's keys differ from its rule (so the
/// new data key is not wrapped for a removed host), then `sops rotate --in-place`.
#[allow(clippy::too_many_arguments)]
fn sops_rotate(
    mut rep: RotateReport,
    config: &LoadedConfig,
    abs: &Path,
    why: String,
    dry_run: bool,
    ids: &crate::secrets::Identities,
    sops: Option<&Path>,
    parsed: Option<&crate::secrets::SopsFile>,
    rule: &crate::secrets::CreationRule,
    lock: Option<&FleetLock>,
) -> RotateReport {
    rep.route = Some("sops");
    rep.reason = Some(why.clone());
    if dry_run {
        rep.status = "would_rotate";
        return rep;
    }
    let Some(sops) = sops else {
        rep.error = Some(format!(
            "needs the sops binary ({why}) but sops was not found on PATH; {}",
            xsops::INSTALL_SOPS
        ));
        return rep;
    };
    let stale = parsed.is_none_or(|f| {
        !crate::secrets::rekey::diff_key_groups(&f.metadata.key_id_groups(), &rule.key_groups)
            .is_empty()
    });
    // Both steps or neither: a failed rotation after a successful re-key puts the original
    // back, so "left unchanged" stays true.
    let original = match std::fs::read(abs) {
        Ok(b) => b,
        Err(e) => {
            rep.error = Some(format!("cannot read the file: {e}"));
            return rep;
        }
    };
    if stale {
        if let Err(e) = xsops::run_updatekeys(sops, config, abs, ids) {
            rep.error = Some(e);
            return rep;
        }
    }
    match xsops::run_rotate(sops, config, abs, ids) {
        Ok(()) => rep.status = "rotated",
        Err(e) => {
            let current = std::fs::read(abs).unwrap_or_default();
            let restored = if current == original {
                String::new()
            } else {
                let change =
                    FileChange::modify(abs, rep.path.clone(), current, original, "restored")
                        .secret();
                let undone = match lock {
                    Some(lock) => apply(&ChangeSet::one(change), lock).map(|_| ()),
                    None => Ok(()),
                };
                match undone {
                    Ok(()) => " (the re-key before it was undone)".to_string(),
                    Err(w) => format!(" (and the re-keyed file could not be restored: {w})"),
                }
            };
            rep.error = Some(format!("{e}{restored}"));
        }
    }
    rep
}

fn rotate(a: RotateArgs, g: &Global) -> miette::Result<u8> {
    let (config, secrets_dir) = resolve(&a.select, g)?;
    let files = xsops::select_files(&config, &a.select.files, secrets_dir.as_deref())?;
    let found = xsops::discover_identities(&xsops::IdentityEnv::from_process(), &a.identities)?;
    for n in &found.notes {
        eprintln!("note: {n}");
    }
    let sops = xsops::find_sops(a.sops.as_deref());
    if let (Some(p), None) = (&a.sops, &sops) {
        return Err(miette::miette!(
            "--sops {}: no such file; {}",
            p.display(),
            xsops::INSTALL_SOPS
        ));
    }
    let mut reports = Vec::new();
    for (path, display) in &files.files {
        let r = rotate_one(
            &config,
            path,
            display,
            &a,
            &found.identities,
            sops.as_deref(),
        );
        if !a.select.json {
            let how = match (r.route, &r.reason) {
                (Some("sops"), Some(why)) => format!(" (sops: {why})"),
                (Some(route), _) => format!(" ({route})"),
                _ => String::new(),
            };
            let dropped = if r.removed.is_empty() {
                String::new()
            } else {
                format!("; dropped {}", r.removed.join(", "))
            };
            match r.status {
                "rotated" => println!("rotated       {}{how}: new data key{dropped}", r.path),
                "would_rotate" => println!("would rotate  {}{how}{dropped}", r.path),
                _ => println!(
                    "failed        {}: {}",
                    r.path,
                    r.error.as_deref().unwrap_or("unknown error")
                ),
            }
        }
        reports.push(r);
    }
    let failed = reports.iter().filter(|r| r.status == "failed").count();
    if a.select.json {
        let out = serde_json::json!({
            "config": config.path,
            "dry_run": a.dry_run,
            "ok": failed == 0,
            "files": reports,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else if files.files.is_empty() {
        eprintln!("no sops files matched a creation rule");
    } else if failed > 0 {
        eprintln!(
            "{failed} of {} files failed; they were left unchanged",
            files.files.len()
        );
    } else if !a.dry_run {
        eprintln!(
            "the old data key no longer opens these files; copies of their old versions (git history, backups) still open with it"
        );
    }
    Ok(u8::from(failed > 0))
}
