//! `vmctl secrets rotate`: a new data key for each selected file, natively for age-only files
//! or through `sops rotate`.

use std::path::Path;

use super::ChangeArgs;
use crate::cli::Global;
use crate::exec::apply::{apply, ChangeSet, FileChange, FleetLock};
use crate::exec::sops::{self as xsops, LoadedConfig};

/// One file's rotation, for humans and `--json`.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct RotateReport {
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

pub(super) fn rotate_one(
    config: &LoadedConfig,
    path: &Path,
    display: &str,
    a: &ChangeArgs,
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
        match FleetLock::for_file(&abs, &crate::cli::ui::reporter()) {
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
    let why = if let (Route::Native, Ok(f)) = (&route, &parsed) {
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
            // A layout the native route turned out not to handle goes to sops below.
            Err(SecretsError::UnsupportedLayout(why)) => why,
            Err(e) => return fail(rep, e.to_string()),
        }
    } else {
        let Route::Sops(why) = route else {
            unreachable!("native handled above")
        };
        why
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
pub(super) fn sops_rotate(
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
            rep.error = Some(crate::exec::process::causes(&e));
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
            rep.error = Some(format!("{}{restored}", crate::exec::process::causes(&e)));
        }
    }
    rep
}

pub(super) fn rotate(a: ChangeArgs, g: &Global) -> miette::Result<u8> {
    let (resolved, files, found, sops) = super::prepare(&a.select, &a.tools, g)?;
    let config = &resolved.config;
    let mut reports = Vec::new();
    for (path, display) in &files.files {
        let r = rotate_one(
            config,
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
        // The common shape of file changes (docs/json-output.md) besides rotate's own.
        let changes: Vec<_> = reports
            .iter()
            .filter(|r| r.status != "failed")
            .map(|r| {
                super::secret_change(
                    &r.path,
                    "rotated: new data key".into(),
                    r.status == "rotated",
                )
            })
            .collect();
        let out = serde_json::json!({
            "config": resolved.config_shown(),
            "dry_run": a.dry_run,
            "written": reports.iter().any(|r| r.status == "rotated"),
            "ok": failed == 0,
            "files": reports,
            "changes": changes,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else if !super::print_failures(files.files.len(), failed) && !a.dry_run {
        crate::cli::ui::info("the old data key no longer opens these files; copies of their old versions (git history, backups) still open with it");
    }
    Ok(u8::from(failed > 0))
}
