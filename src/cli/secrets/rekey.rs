//! `vmctl secrets rekey`: re-key every selected file for its rule, natively or with sops.

use super::{changes_text, ChangeArgs};
use crate::cli::Global;
use crate::exec::sops::{self as xsops, FileStatus, RekeyOptions};

pub(super) fn rekey(a: ChangeArgs, g: &Global) -> miette::Result<u8> {
    let (resolved, files, found, sops) = super::prepare(&a.select, &a.tools, g)?;
    let config = &resolved.config;
    let opts = RekeyOptions {
        dry_run: a.dry_run,
        identities: &found.identities,
        sops: sops.as_deref(),
        out: crate::cli::ui::reporter(),
    };
    if files.files.len() > 1 && !a.select.json {
        crate::cli::ui::info(&format!(
            "{} {} files with {}",
            if a.dry_run { "checking" } else { "re-keying" },
            files.files.len(),
            resolved.config_shown()
        ));
    }
    let mut reports = Vec::new();
    for (path, display) in &files.files {
        let r = xsops::rekey_file(config, path, display.clone(), &opts);
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
        format!("{} {}", crate::cli::sops::ROTATE, files.join(" "))
    });
    if a.select.json {
        // The common shape of file changes (docs/json-output.md); secrets never show a diff.
        let changes: Vec<_> = reports
            .iter()
            .filter(|r| matches!(r.status, FileStatus::Rekeyed | FileStatus::WouldRekey))
            .map(|r| {
                super::secret_change(
                    &r.path,
                    format!("re-keyed: {}", changes_text(&r.changes)),
                    r.status == FileStatus::Rekeyed,
                )
            })
            .collect();
        let out = serde_json::json!({
            "config": resolved.config_shown(),
            "dry_run": a.dry_run,
            "written": reports.iter().any(|r| r.status == FileStatus::Rekeyed),
            "ok": failed == 0,
            "files": reports,
            "changes": changes,
            "rotate": rotate_cmd,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        super::print_failures(files.files.len(), failed);
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
        crate::cli::ui::note(&format!(
            "{} still hold(s) the old data key of {} file(s) it could decrypt; run `{cmd}` to give them a new one",
            removed.into_iter().collect::<Vec<_>>().join(", "),
            lost.len(),
        ));
    }
    Ok(u8::from(failed > 0))
}
