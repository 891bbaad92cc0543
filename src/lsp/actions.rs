//! Code actions that edit another file than the diagnostic's, computed with vmctl's own
//! `.sops.yaml` edits (the ones `vmctl sops add-recipient`, `add-host-rule` and
//! `remove-recipient` make): a host in no creation rule (FL001, in hosts.nix) gets its recipient
//! added, or a `secrets/hosts/<name>/` rule of its own; a stale recipient (FL002, in
//! `.sops.yaml`) can be removed instead of replaced.

use std::path::Path;

use lsp_types::{CodeAction, CodeActionKind, CodeActionOrCommand, TextEdit, WorkspaceEdit};

use super::convert::{uri_of, Lines};
use super::features::{host_of, recipient, sops_file};
use crate::edit::sops::{
    add_host_rule, add_recipient, remove_recipient, AddHostRule, AddRecipient, SopsEdit,
};
use crate::exec::lint::LintRun;
use crate::syntax::FileId;

/// An unsafe quick fix editing `.sops.yaml` (the secrets must then be re-keyed).
fn action(
    run: &LintRun,
    root: &Path,
    sops: FileId,
    title: String,
    edit: &SopsEdit,
) -> Option<CodeActionOrCommand> {
    let uri = uri_of(&root.join(run.fleet.db.path(sops)))?;
    let lines = Lines::new(run.fleet.db.text(sops));
    let edits = edit
        .edits
        .iter()
        .map(|e| TextEdit::new(lines.range(e.start, e.end), e.insert.clone()))
        .collect();
    Some(CodeActionOrCommand::CodeAction(CodeAction {
        title,
        kind: Some(CodeActionKind::QUICKFIX),
        edit: Some(WorkspaceEdit {
            changes: Some([(uri, edits)].into_iter().collect()),
            ..Default::default()
        }),
        is_preferred: Some(false),
        ..Default::default()
    }))
}

/// The cross-file actions for the diagnostics of `file` that touch `start..end`.
pub fn sops_actions(
    run: &LintRun,
    root: &Path,
    file: FileId,
    (start, end): (usize, usize),
) -> Vec<CodeActionOrCommand> {
    let mut out = Vec::new();
    let (Some((_, defs)), Some((_, hosts))) =
        (run.fleet.definitions_file(), run.fleet.hosts_file())
    else {
        return out;
    };
    let Some((sops, text)) = sops_file(run, defs) else {
        return out;
    };
    let names: Vec<String> = hosts.hosts.iter().map(|h| h.name.clone()).collect();
    let touched = run.diagnostics.iter().filter(|d| {
        d.span.file == file
            && usize::from(d.span.range.start()) <= end
            && start <= usize::from(d.span.range.end())
    });
    for d in touched {
        let at = run
            .fleet
            .db
            .text(file)
            .get(usize::from(d.span.range.start())..usize::from(d.span.range.end()));
        match d.code() {
            "FL001" => {
                let Some(host) = at.and_then(|name| hosts.get(name)) else {
                    continue;
                };
                let Some((_, age)) = recipient(host) else {
                    continue;
                };
                // The rules the VM's `sopsRules` names, when it has them; else vmctl's default
                // choice (an ambiguous one offers nothing: the user must choose).
                let rules = defs
                    .all_vms()
                    .find(|vm| host_of(run, vm).is_some_and(|h| h.name == host.name))
                    .map(|vm| vm.sops_rules.clone())
                    .unwrap_or_default();
                let req = AddRecipient {
                    name: &host.name,
                    recipient: &age,
                    rules: &rules,
                    all: false,
                    hosts: &names,
                };
                if let Ok(edit) = add_recipient(text, &req).filter_noop() {
                    let title = format!("add `{}`'s recipient to .sops.yaml, then run `vmctl secrets rekey` (FL001, unsafe)", host.name);
                    out.extend(action(run, root, sops, title, &edit));
                }
                // The fleet's layout for a host's own secrets: `secrets/hosts/<name>/`.
                let req = AddHostRule {
                    name: &host.name,
                    recipient: &age,
                    path_regex: None,
                    admins: None,
                    hosts: &names,
                };
                if let Ok(edit) = add_host_rule(text, &req).filter_noop() {
                    let title = format!(
                        "add a creation rule for `secrets/hosts/{}/` with the admins and `{}` (FL001, unsafe)",
                        host.name, host.name
                    );
                    out.extend(action(run, root, sops, title, &edit));
                }
            }
            "FL002" if file == sops => {
                let Some(stale) = at else { continue };
                for host in &hosts.hosts {
                    if let Ok(edit) = remove_recipient(text, &host.name, Some(stale)).filter_noop()
                    {
                        if edit.recipient == stale {
                            let title = format!(
                                "remove `{}`'s stale recipient from .sops.yaml (FL002, unsafe)",
                                host.name
                            );
                            out.extend(action(run, root, sops, title, &edit));
                            break;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// An edit that changes nothing is no action.
trait FilterNoop: Sized {
    fn filter_noop(self) -> Result<SopsEdit, ()>;
}

impl<E> FilterNoop for Result<SopsEdit, E> {
    fn filter_noop(self) -> Result<SopsEdit, ()> {
        match self {
            Ok(e) if !e.is_noop() => Ok(e),
            _ => Err(()),
        }
    }
}
