//! `vmctl provision --dry-run --json`: the plan as data (schema in docs/json-output.md), in the
//! common shape of docs/cli.md (`dry_run`, `written`, `changes`, `commands`, `notes`) plus the
//! plan's own fields. The plan layer hands over a [`PlanView`] (this layer is below it).

use serde::Serialize;

/// One file the key ceremony changes, as the dry run shows it.
#[derive(Debug, Clone)]
pub struct FileChangeView<'a> {
    pub file: String,
    /// A new file (else a modified one).
    pub created: bool,
    pub summary: &'a str,
    pub diff: String,
}

/// What the JSON holds: the plan's own fields (serialised as they are, `notes` among them),
/// the command lines, the file changes, the secrets re-keyed and the commit message.
#[derive(Debug, Clone)]
pub struct PlanView<'a, P> {
    pub plan: &'a P,
    pub commands: Vec<String>,
    pub changes: Vec<FileChangeView<'a>>,
    pub rekeyed_secrets: &'a [String],
    pub commit_message: Option<&'a str>,
}

pub fn json<P: Serialize>(view: &PlanView<P>) -> serde_json::Value {
    let mut v = serde_json::to_value(view.plan).expect("a plan serialises");
    // A dry run writes nothing; `changes` are the file changes (with the preview key's
    // diffs) and `commands` the cluster's.
    v["dry_run"] = true.into();
    v["written"] = false.into();
    v["commands"] = view.commands.clone().into();
    v["changes"] = view
        .changes
        .iter()
        .map(|f| {
            serde_json::json!({
                "file": f.file,
                "action": if f.created { "create" } else { "modify" },
                "summary": f.summary,
                "written": false,
                "diff": f.diff,
            })
        })
        .collect::<Vec<_>>()
        .into();
    v["rekeyed_secrets"] = view.rekeyed_secrets.to_vec().into();
    v["commit_message"] = view.commit_message.into();
    v
}
