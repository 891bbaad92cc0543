//! `vmctl hosts`: lossless hosts.nix edits (add a host, change its key, remove it).

use std::path::Path;

use miette::{miette, IntoDiagnostic, WrapErr};

use super::Global;
use crate::edit::hosts::{edit_hosts, EntryTemplate, HostIntent, HostsEdit, NewHost};
use crate::exec::fleet::{load, LoadedFleet};
use crate::exec::fs::atomic_write;

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
    Add(AddArgs),
    /// Replace a host's publicKey; only the key's string literal changes.
    SetKey(SetKeyArgs),
    /// Remove a host's entry; comments above it are kept (and reported).
    Remove(RemoveArgs),
}

/// Options shared by every hosts subcommand.
#[derive(Debug, clap::Args)]
pub struct EditOpts {
    /// Show the change as a diff and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON on stdout: {"file", "changed", "summary", "diff"}.
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
    let fleet = load(g.fleet.as_deref())?;
    let path = fleet.path(&fleet.definitions.settings.hosts_file);
    let (intent, opts) = match args {
        HostsCommand::Add(a) => {
            // Defaults come from definitions.nix for a new entry only: an existing entry is
            // compared with what the user passed, not with what vmctl would have filled in.
            let exists = fleet
                .hosts
                .as_ref()
                .is_some_and(|h| h.get(&a.name).is_some());
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
    let before = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        // A fleet without hosts.nix gets one with its first host.
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound && matches!(intent, HostIntent::Add(_)) =>
        {
            "{\n}\n".to_string()
        }
        Err(e) => {
            return Err(miette!(
                help = "check settings.hostsFile in vms/definitions.nix",
                "cannot read `{}`: {e}",
                path.display()
            ))
        }
    };
    let template = entry_template(&fleet)?;
    let out = edit_hosts(&before, &intent, template.as_ref())
        .map_err(|e| miette!("{}: {e}", shown(&fleet, &path)))?;
    report(&fleet, &path, &before, &out, &opts)?;
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
        Err(e) => Err(miette!("cannot read `{}`: {e}", path.display())),
    }
}

/// A fleet file's path as the user knows it (relative to the fleet root).
pub(crate) fn shown(fleet: &LoadedFleet, path: &Path) -> String {
    path.strip_prefix(&fleet.root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A unified diff of a file's change, with the file's fleet-relative name in the headers.
pub(crate) fn unified_diff(name: &str, before: &str, after: &str) -> String {
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

fn report(
    fleet: &LoadedFleet,
    path: &Path,
    before: &str,
    out: &HostsEdit,
    opts: &EditOpts,
) -> miette::Result<()> {
    let name = shown(fleet, path);
    let changed = out.change.is_change();
    let diff = unified_diff(&name, before, &out.text);
    if changed && !opts.dry_run {
        atomic_write(path, out.text.as_bytes())
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot write `{}`", path.display()))?;
    }
    if opts.json {
        let v = serde_json::json!({
            "file": name,
            "changed": changed,
            "written": changed && !opts.dry_run,
            "summary": out.change.summary(),
            "diff": diff,
        });
        println!("{v}");
        return Ok(());
    }
    if opts.dry_run && changed {
        print!("{diff}");
        println!(
            "dry run: {name} not written; would have {}",
            out.change.summary()
        );
    } else {
        println!("{name}: {}", out.change.summary());
    }
    Ok(())
}
