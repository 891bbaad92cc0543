//! `vmctl provision --dry-run --json`: the plan as data (schema in docs/json-output.md), in the
//! common shape of docs/cli.md (`dry_run`, `written`, `changes`, `commands`, `notes`) plus the
//! plan's own fields.

use crate::plan::provision::render::{diff, CeremonyPreview};
use crate::plan::provision::ProvisionPlan;
use crate::proxmox::redact::display_line;

/// The plan's fields, each mutation's command line, the ceremony preview's file changes, the
/// secrets the run re-keys and the commit message.
pub fn json(plan: &ProvisionPlan, preview: Option<&CeremonyPreview>) -> serde_json::Value {
    let mut v = serde_json::to_value(plan).expect("a plan serialises");
    // A dry run writes nothing; `changes` are the file changes (with the preview key's
    // diffs) and `commands` the cluster's.
    v["dry_run"] = true.into();
    v["written"] = false.into();
    v["commands"] = plan
        .mutations()
        .iter()
        .map(|m| display_line(&m.argv()))
        .collect();
    v["changes"] = preview
        .map(|p| {
            p.files
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "file": f.path.display().to_string(),
                        "action": if f.old.is_some() { "modify" } else { "create" },
                        "summary": f.summary,
                        "written": false,
                        "diff": diff(f),
                    })
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into();
    v["rekeyed_secrets"] = preview
        .map(|p| p.secrets.to_vec())
        .unwrap_or_default()
        .into();
    v["commit_message"] = preview.map(|p| p.commit_message).into();
    v
}
