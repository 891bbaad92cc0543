//! The `--dry-run` renderings of a provision plan: text for people, JSON for scripts.

use super::ceremony::PlannedFile;
use super::{Action, ProvisionPlan};
use crate::proxmox::redact::display_line;

/// The key ceremony as the dry run shows it: the files with the preview key, and the commit
/// message they would get.
#[derive(Debug, Clone)]
pub struct CeremonyPreview<'a> {
    pub files: &'a [PlannedFile],
    /// The secrets files the re-keying will change (fleet-relative, sorted): known before the
    /// run, so the plan's commit lists what the real one commits.
    pub secrets: &'a [String],
    pub commit_message: &'a str,
}

/// The plan as text: every step with its exact command lines, the file diffs and the commit
/// message.
pub fn human(plan: &ProvisionPlan, preview: Option<&CeremonyPreview>) -> String {
    let mut o = String::new();
    if let Some(msg) = &plan.nothing_to_do {
        o.push_str(msg);
        o.push('\n');
        return o;
    }
    o.push_str(&format!(
        "provision `{}`: VM {}{}{} (definition {})\n",
        plan.name,
        plan.vmid,
        plan.node
            .as_deref()
            .map(|n| format!(" on node {n}"))
            .unwrap_or_default(),
        if plan.offline {
            ", planned offline"
        } else {
            ""
        },
        plan.definition_hash
    ));
    for (i, step) in plan.steps.iter().enumerate() {
        o.push_str(&format!(
            "\n{}. [{}] {}\n",
            i + 1,
            step.id.as_str(),
            step.title
        ));
        match &step.action {
            Action::Mutations { mutations } => {
                for m in mutations {
                    o.push_str(&format!("   $ {}\n", display_line(&m.argv())));
                }
            }
            Action::CloudInit {
                upload,
                keys,
                mutations,
                remove,
            } => {
                o.push_str(&format!(
                    "   upload {} admin key(s) to {upload} on the Proxmox host (mode 0600)\n",
                    keys.len()
                ));
                for m in mutations {
                    o.push_str(&format!("   $ {}\n", display_line(&m.argv())));
                }
                o.push_str(&format!("   $ {}\n", display_line(remove)));
            }
            Action::DiscoverIp { vmid, static_ip } => match static_ip {
                Some(ip) => o.push_str(&format!("   address: {ip} (static)\n")),
                None => o.push_str(&format!(
                    "   $ {}\n   then, if the agent has no address: $ {}\n",
                    display_line(&crate::proxmox::argv::guest_interfaces(*vmid)),
                    display_line(&crate::proxmox::argv::neighbours())
                )),
            },
            Action::WaitSsh { user } => o.push_str(&format!(
                "   ssh {user}@<IP> with the admin key until it answers\n"
            )),
            Action::KeyCeremony { files } => {
                o.push_str("   files:\n");
                for f in files {
                    o.push_str(&format!("     {f}\n"));
                }
                if let Some(p) = preview {
                    if !p.secrets.is_empty() {
                        o.push_str("   secrets re-keyed for the new host:\n");
                        for f in p.secrets {
                            o.push_str(&format!("     {f}\n"));
                        }
                    }
                    o.push_str(
                        "   diffs, shown with a preview key (the run generates a fresh one):\n",
                    );
                    for f in p.files {
                        o.push_str(&diff(f));
                    }
                }
            }
            Action::Install { argv } => {
                o.push_str(&format!("   $ {}\n", display_line(argv)));
            }
            Action::Verify { hostname } => o.push_str(&format!(
                "   ssh -o StrictHostKeyChecking=yes (known_hosts: only the generated key) \
                 root@<IP> 'hostname && nixos-version'  # expects `{hostname}` and a NixOS\n"
            )),
            Action::Commit { subject } => match preview {
                Some(p) => {
                    for line in p.commit_message.lines() {
                        o.push_str(&format!("   | {line}\n"));
                    }
                }
                None => o.push_str(&format!("   | {subject}\n")),
            },
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

/// One file's change as a unified diff (a created file against nothing).
pub fn diff(f: &PlannedFile) -> String {
    let old = f
        .old
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let new = String::from_utf8_lossy(&f.new);
    let name = f.path.display().to_string();
    let a = if f.old.is_some() {
        format!("a/{name}")
    } else {
        "/dev/null".into()
    };
    similar::TextDiff::from_lines(old.as_ref(), new.as_ref())
        .unified_diff()
        .context_radius(3)
        .header(&a, &format!("b/{name}"))
        .to_string()
}

/// The plan as JSON (shaped by [`crate::render::provision`]): the plan's fields, each
/// mutation's command line, and the ceremony preview.
pub fn json(plan: &ProvisionPlan, preview: Option<&CeremonyPreview>) -> serde_json::Value {
    use crate::render::provision::{FileChangeView, PlanView};
    crate::render::provision::json(&PlanView {
        plan,
        commands: plan
            .mutations()
            .iter()
            .map(|m| display_line(&m.argv()))
            .collect(),
        changes: preview
            .map(|p| {
                p.files
                    .iter()
                    .map(|f| FileChangeView {
                        file: f.path.display().to_string(),
                        created: f.old.is_none(),
                        summary: &f.summary,
                        diff: diff(f),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        rekeyed_secrets: preview.map(|p| p.secrets).unwrap_or_default(),
        commit_message: preview.map(|p| p.commit_message),
    })
}
