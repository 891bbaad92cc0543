//! `vmctl hosts`: lossless hosts.nix edits (add a host, change its key, remove it).

use std::path::Path;

use miette::miette;

use super::Global;
use crate::edit::hosts::{edit_hosts, EntryTemplate, HostIntent, HostsEdit, NewHost};
use crate::exec::apply::{apply, ChangeSet, FileChange, FleetLock};
use crate::exec::cannot_act::CannotAct;
use crate::exec::fleet::{gate, LoadedFleet};

/// Edit hosts.nix: every change touches only the entry concerned and keeps every comment,
/// blank line and byte around it. Files vmctl cannot edit safely (lists, functions,
/// interpolated names, …) are refused and left untouched.
#[derive(Debug, clap::Subcommand)]
pub enum HostsCommand {
    /// Add a host: `NAME = { hostname; sshAlias; publicKey; };` after the last host entry.
    ///
    /// The entry is rendered from the fleet's hosts-template/hosts-entry.nix when it exists.
    /// Adding a host that is already there with the same key changes nothing; with another
    /// key it is an error (use `vmctl hosts set-key`).
    #[command(after_long_help = "Examples:
  vmctl hosts add test-automation --key \"$(cat keys/test-automation/etc/ssh/ssh_host_ed25519_key.pub)\" --dry-run
  vmctl hosts add test-automation --key 'ssh-ed25519 AAAAC3Nz… root@test-automation' --alias ci")]
    Add(AddArgs),
    /// Replace a host's publicKey; only the key's string literal changes.
    #[command(after_long_help = "Examples:
  vmctl hosts set-key doc1 --key \"$(ssh-keyscan -t ed25519 doc1 | cut -d' ' -f2-)\" --dry-run")]
    SetKey(SetKeyArgs),
    /// Remove a host's entry; comments above it are kept (and reported).
    #[command(after_long_help = "Examples:
  vmctl hosts remove igpu --dry-run          # show the diff
  vmctl hosts remove igpu")]
    Remove(RemoveArgs),
}

/// Options shared by every hosts subcommand.
#[derive(Debug, clap::Args)]
pub struct EditOpts {
    /// Show the change as a diff and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON on stdout (docs/json-output.md, "File changes").
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The host's name in hosts.nix (usually the VM's name in definitions.nix).
    pub name: String,
    /// The host's SSH public host key, e.g. "ssh-ed25519 AAAAC3… root@web".
    #[arg(long, value_name = "KEY")]
    pub key: String,
    /// The SSH alias (`sshAlias`); default: the VM's sshAlias in definitions.nix, else NAME.
    #[arg(long, value_name = "ALIAS")]
    pub alias: Option<String>,
    /// The hostname; default: the VM's hostname in definitions.nix, else NAME.
    #[arg(long, value_name = "HOSTNAME")]
    pub hostname: Option<String>,
    #[command(flatten)]
    pub opts: EditOpts,
}

#[derive(Debug, clap::Args)]
pub struct SetKeyArgs {
    /// The host whose key changes.
    pub name: String,
    /// The new SSH public host key.
    #[arg(long, value_name = "KEY")]
    pub key: String,
    #[command(flatten)]
    pub opts: EditOpts,
}

#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// The host to remove.
    pub name: String,
    #[command(flatten)]
    pub opts: EditOpts,
}

pub fn run(args: HostsCommand, g: &Global) -> miette::Result<u8> {
    let fleet = super::load_fleet(g, true)?;
    let path = fleet.path(&fleet.definitions.settings.hosts_file);
    let name = shown(&fleet, &path);
    let dry_run = match &args {
        HostsCommand::Add(a) => a.opts.dry_run,
        HostsCommand::SetKey(a) => a.opts.dry_run,
        HostsCommand::Remove(a) => a.opts.dry_run,
    };
    // Held from before hosts.nix is read until it is written: concurrent vmctl runs queue up
    // here instead of overwriting each other's entries. A dry run writes nothing: no lock.
    let lock = if dry_run {
        None
    } else {
        Some(FleetLock::acquire(&fleet.root, &super::ui::reporter())?)
    };
    let before = super::changes::read_text_for_change(&path, &name, "Nix text files")?;
    let (intent, opts) = match args {
        HostsCommand::Add(a) => {
            // Defaults come from definitions.nix for a new entry only: an existing entry is
            // compared with what the user passed, not with what vmctl would have filled in.
            let exists = before
                .as_deref()
                .and_then(|t| crate::edit::hosts::locate(t).ok())
                .is_some_and(|d| d.host(&a.name).is_some());
            let vm = fleet.definitions.vm_by_name(&a.name).filter(|_| !exists);
            let intent = HostIntent::Add(NewHost {
                hostname: a.hostname.or_else(|| vm.and_then(|v| v.hostname.clone())),
                ssh_alias: a.alias.or_else(|| vm.and_then(|v| v.ssh_alias.clone())),
                vmid: vm.and_then(|v| v.vmid),
                name: a.name,
                public_key: a.key,
            });
            (intent, a.opts)
        }
        HostsCommand::SetKey(a) => (
            HostIntent::SetKey {
                name: a.name,
                public_key: a.key,
            },
            a.opts,
        ),
        HostsCommand::Remove(a) => (HostIntent::Remove { name: a.name }, a.opts),
    };
    let text = match (&before, &intent) {
        (Some(t), _) => t.clone(),
        // A fleet without hosts.nix gets one with its first host, but only at the default
        // place: a configured path that does not exist is more likely a typo than a new file.
        (None, HostIntent::Add(_))
            if fleet.definitions.settings.hosts_file
                == crate::model::Settings::default().hosts_file =>
        {
            "{\n}\n".to_string()
        }
        (None, _) => {
            return Err(miette!(
                help = "fix `settings.hostsFile` in vms/definitions.nix (see `vmctl explain FL003`); nothing was written",
                "[FL003] `{name}` does not exist: refusing to create a second hosts file"
            ))
        }
    };
    let template = entry_template(&fleet)?;
    let out = edit_hosts(&text, &intent, template.as_ref())
        .map_err(|e| crate::edit::refusal::refusal(e, &name, &text))?;
    let change = FileChange {
        path: path.clone(),
        shown: name.clone(),
        old: before.clone().map(String::into_bytes),
        new: out.text.clone().into_bytes(),
        summary: out.change.summary(),
        create_mode: crate::exec::apply::DEFAULT_MODE,
        secret: false,
    };
    if change.is_change() {
        gate(
            &fleet.root,
            &[(path.clone(), before.clone(), out.text.clone())],
            &super::ui::reporter(),
        )?;
    }
    let set = ChangeSet::one(change);
    if let Some(lock) = &lock {
        apply(&set, lock)?;
    }
    drop(lock);
    report(&set, &out, &opts);
    Ok(0)
}

/// The fleet's hosts-entry.nix, when it has one.
fn entry_template(fleet: &LoadedFleet) -> miette::Result<Option<EntryTemplate>> {
    let path = fleet
        .path(&fleet.definitions.settings.template_dir)
        .join("hosts-entry.nix");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(EntryTemplate { text })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CannotAct::new(format!("cannot read `{}`: {e}", path.display())).into()),
    }
}

/// A fleet file's path as the user knows it (relative to the fleet root).
pub(crate) fn shown(fleet: &LoadedFleet, path: &Path) -> String {
    shown_in(&fleet.root, path)
}

/// `path` relative to the fleet `root`, when it is below it.
pub(crate) fn shown_in(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A unified diff of a file's change, with the file's fleet-relative name in the headers.
pub(crate) fn unified_diff(name: &str, before: &str, after: &str) -> String {
    super::changes::diff(&FileChange::modify(name, name, before, after, "")).unwrap_or_default()
}

fn report(set: &ChangeSet, out: &HostsEdit, opts: &EditOpts) {
    if opts.json {
        let c = &set.changes[0];
        let mut v = super::changes::set_json(set, opts.dry_run);
        // The fields hosts printed before the common shape, kept for existing scripts.
        v["file"] = serde_json::json!(c.shown);
        v["changed"] = serde_json::json!(c.is_change());
        v["summary"] = serde_json::json!(out.change.summary());
        v["diff"] = serde_json::json!(super::changes::diff(c).unwrap_or_default());
        println!("{v}");
        return;
    }
    super::changes::print_human(set, opts.dry_run);
}
