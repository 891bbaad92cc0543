//! The `--dry-run` renderings of a destroy plan: text for people, JSON for scripts.

use super::{DestroyPlan, Live, PlannedFile, StepId};
use crate::proxmox::redact::display_line;

/// What only the caller can know: the secrets the re-keying would change, and the commit
/// message listing them.
#[derive(Debug, Clone, Copy)]
pub struct Preview<'a> {
    pub secrets: &'a [String],
    pub commit_message: &'a str,
}

/// One file's change as a unified diff (a deleted file against nothing).
pub fn diff(f: &PlannedFile) -> String {
    let old = String::from_utf8_lossy(&f.old);
    let new = f
        .new
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let name = f.path.display().to_string();
    let b = if f.new.is_some() {
        format!("b/{name}")
    } else {
        "/dev/null".into()
    };
    similar::TextDiff::from_lines(old.as_ref(), new.as_ref())
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &b)
        .to_string()
}

fn live(plan: &DestroyPlan) -> &'static str {
    match plan.live {
        Live::Running => "running",
        Live::Stopped => "stopped",
        Live::Absent => "not on the cluster",
        Live::Unknown => "planned offline",
    }
}

/// The plan as text: every step with its exact command lines, the file diffs and the commit
/// message.
pub fn human(plan: &DestroyPlan, preview: &Preview) -> String {
    let mut o = format!(
        "destroy `{}`: VM {}{} ({})\n",
        plan.name,
        plan.vmid,
        plan.node
            .as_deref()
            .map(|n| format!(" on node {n}"))
            .unwrap_or_default(),
        live(plan)
    );
    for (i, step) in plan.steps.iter().enumerate() {
        o.push_str(&format!(
            "\n{}. [{}] {}\n",
            i + 1,
            step.id.as_str(),
            step.title
        ));
        match step.id {
            StepId::Stop | StepId::Destroy => {
                let m = plan.mutation(step.id).expect("a mutation step");
                o.push_str(&format!("   $ {}\n", display_line(&m.argv())));
            }
            StepId::FleetFiles => {
                for f in &plan.files {
                    o.push_str(&format!("   {}: {}\n", f.path.display(), f.summary));
                }
                for f in &plan.files {
                    o.push_str(&diff(f));
                }
            }
            StepId::Rekey => {
                for f in preview.secrets {
                    o.push_str(&format!("   {f}\n"));
                }
            }
            StepId::Rotate => o.push_str(
                "   a new data key for each secret the re-keying changes, every value \
                 re-encrypted\n",
            ),
            StepId::Commit => {
                for line in preview.commit_message.lines() {
                    o.push_str(&format!("   | {line}\n"));
                }
            }
        }
    }
    if !plan.notes.is_empty() {
        o.push('\n');
        for n in &plan.notes {
            o.push_str(&format!("note: {n}\n"));
        }
    }
    o
}

/// The plan as JSON, in the common shape of docs/cli.md (`dry_run`, `written`, `changes`,
/// `commands`, `notes`) plus the plan's own fields (schema in docs/destroy.md).
pub fn json(plan: &DestroyPlan, preview: &Preview) -> serde_json::Value {
    serde_json::json!({
        "dry_run": true,
        "written": false,
        "name": plan.name,
        "vmid": plan.vmid,
        "node": plan.node,
        "live": plan.live,
        "steps": plan.steps,
        "commands": plan.mutations().iter().map(|m| display_line(&m.argv())).collect::<Vec<_>>(),
        "changes": plan.files.iter().map(|f| serde_json::json!({
            "file": f.path.display().to_string(),
            "action": if f.new.is_some() { "modify" } else { "delete" },
            "summary": f.summary,
            "written": false,
            "diff": diff(f),
        })).collect::<Vec<_>>(),
        "removed_key": plan.removed_key,
        "removed_recipient": plan.removed_recipient,
        "keep_definition": plan.keep_definition,
        "rotate": plan.rotate,
        "rekeyed_secrets": preview.secrets,
        "commit_message": plan.has(StepId::Commit).then_some(preview.commit_message),
        "notes": plan.notes,
    })
}
