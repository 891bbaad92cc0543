//! `vmctl secrets check`: whether every selected file's keys match its rule.

use super::{changes_text, resolve, CheckArgs};
use crate::cli::Global;
use crate::exec::sops as xsops;
use crate::secrets::check::CheckReport;

pub(super) fn print_check(report: &CheckReport) {
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

pub(super) fn check(a: CheckArgs, g: &Global) -> miette::Result<u8> {
    let resolved = resolve(&a.select, g)?;
    let files = resolved.files(&a.select)?;
    let report = xsops::check_files(&resolved.config, &files);
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
            crate::cli::ui::info(&format!("{} sops {files} creation rules", report.checked));
        } else if !report.stale.is_empty() {
            crate::cli::ui::info(&format!(
                "{} of {} files are stale; run `vmctl secrets rekey`",
                report.stale.len(),
                report.checked
            ));
        }
    }
    Ok(u8::from(!report.is_clean()))
}
