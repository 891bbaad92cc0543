//! `vmctl snapshot NAME create|list|rollback|delete`: a VM's snapshots by its definitions.nix
//! name, fenced like every change; a rollback is confirmed and snapshots the state first.

use clap::{Args, Subcommand};
use miette::IntoDiagnostic;

use super::ops::{connect, Conn};
use super::Global;
use crate::exec::proxmox::Proxmox as _;
use crate::plan::snapshot::{self as planner, SnapshotError};
use crate::proxmox::validate as valid;
use crate::proxmox::{display_line, Mutation};

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The VM (its name in vms/definitions.nix).
    #[arg(value_name = "NAME")]
    pub name: String,
    #[command(subcommand)]
    pub action: SnapshotAction,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotAction {
    /// Take a manual snapshot (never pruned).
    #[command(after_long_help = "Examples:
  vmctl snapshot web create before-upgrade --description 'before the 25.05 upgrade'")]
    Create {
        /// The snapshot's name: a letter, then 1 to 39 letters, digits, `_` or `-`; not
        /// starting with `vmctl-auto-` (vmctl's automatic snapshots).
        #[arg(value_parser = valid::snapshot_name)]
        snapshot: String,
        /// Its description (notes).
        #[arg(long, value_parser = valid::text)]
        description: Option<String>,
        #[command(flatten)]
        opts: Change,
    },
    /// List the VM's snapshots, automatic ones marked.
    #[command(after_long_help = "Examples:
  vmctl snapshot web list --json")]
    List {
        /// Print JSON on stdout: an array of `{name, depth, time, description, automatic}`.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Roll the VM back to a snapshot (its disks return to it; the VM stops). The state
    /// before is taken as an automatic snapshot first.
    #[command(after_long_help = "Examples:
  vmctl snapshot web rollback before-upgrade --confirm web --dry-run")]
    Rollback {
        /// The snapshot to roll back to.
        #[arg(value_parser = valid::snapshot_name)]
        snapshot: String,
        /// The VM's name again, to confirm.
        #[arg(long, value_name = "NAME")]
        confirm: Option<String>,
        #[command(flatten)]
        opts: Change,
    },
    /// Delete a snapshot.
    #[command(after_long_help = "Examples:
  vmctl snapshot web delete before-upgrade")]
    Delete {
        /// The snapshot to delete.
        #[arg(value_parser = valid::snapshot_name)]
        snapshot: String,
        #[command(flatten)]
        opts: Change,
    },
}

// No doc comment: clap would take it as a description.
#[derive(Debug, Args)]
pub struct Change {
    /// Print the command lines and change nothing (no connection; the fences are checked).
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object on stdout (docs/cli.md): `dry_run`, `commands`, `output`, `notes`.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Conn,
}

/// Examples for `--help`.
pub const EXAMPLES: &str = "Examples:
  vmctl snapshot web list
  vmctl snapshot web create before-upgrade --description 'before the 25.05 upgrade'
  vmctl snapshot web rollback before-upgrade --confirm web --dry-run
  vmctl snapshot web delete before-upgrade";

fn err<E: std::error::Error + Send + Sync + 'static>(e: E) -> miette::Report {
    crate::cli::exit::report(e)
}

pub fn run(a: SnapshotArgs, g: &Global) -> miette::Result<u8> {
    let loaded = crate::cli::load_fleet(g, false)?;
    let defs = &loaded.definitions;
    let vmid = planner::vmid_of(defs, &a.name).map_err(miette::Report::new)?;
    let fence = crate::plan::ops::fence(defs, false);
    let (mutations, opts, auto_step) = match a.action {
        SnapshotAction::List { json, conn } => {
            let p = connect(defs, &conn, fence, false)?;
            let snaps = p.snapshots(vmid).map_err(err)?;
            if json {
                let v: Vec<serde_json::Value> = snaps
                    .iter()
                    .filter(|s| s.name != "current")
                    .map(|s| {
                        serde_json::json!({
                            "name": s.name, "depth": s.depth, "time": s.time,
                            "description": s.description, "automatic": planner::is_auto(&s.name),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v).into_diagnostic()?);
            } else {
                for s in snaps.iter().filter(|s| s.name != "current") {
                    let kind = if planner::is_auto(&s.name) {
                        "auto"
                    } else {
                        "manual"
                    };
                    println!(
                        "{:indent$}{}  {kind}  {}  {}",
                        "",
                        s.name,
                        s.time.as_deref().unwrap_or("-"),
                        s.description,
                        indent = s.depth * 2
                    );
                }
            }
            return Ok(0);
        }
        SnapshotAction::Create {
            snapshot,
            description,
            opts,
        } => {
            planner::manual_name(&snapshot).map_err(miette::Report::new)?;
            let m = Mutation::SnapshotCreate {
                vmid,
                name: snapshot,
                description,
                vmstate: false,
            };
            (vec![m], opts, None)
        }
        SnapshotAction::Rollback {
            snapshot,
            confirm,
            opts,
        } => {
            if confirm.as_deref() != Some(a.name.as_str()) {
                return Err(miette::Report::new(SnapshotError::NotConfirmed {
                    name: a.name.clone(),
                    snapshot,
                }));
            }
            let m = Mutation::SnapshotRollback {
                vmid,
                name: snapshot,
            };
            (vec![m], opts, Some("rollback"))
        }
        SnapshotAction::Delete { snapshot, opts } => (
            vec![Mutation::SnapshotDelete {
                vmid,
                name: snapshot,
            }],
            opts,
            None,
        ),
    };
    // The static fences (readonly, imported, undetermined) before anything is shown or sent.
    for m in &mutations {
        fence.check(m).map_err(err)?;
    }
    let now = crate::exec::snapshot::now();
    let keep = planner::keep(defs);
    let mut commands: Vec<String> = Vec::new();
    if let Some(step) = auto_step {
        let auto = Mutation::SnapshotCreate {
            vmid,
            name: crate::plan::rebuild::auto_snapshot_name(step, now),
            description: Some(format!("automatic snapshot by vmctl before {step}")),
            vmstate: false,
        };
        commands.push(display_line(&auto.argv()));
    }
    commands.extend(mutations.iter().map(|m| display_line(&m.argv())));
    if opts.dry_run {
        let mut notes = Vec::new();
        if auto_step.is_some() {
            notes.push(format!(
                "dry run: when run for real, automatic snapshots beyond snapshots.keep = {keep} are pruned after the first one (manual ones never)"
            ));
        }
        return print(opts.json, true, &commands, "", &notes);
    }
    let p = connect(defs, &opts.conn, fence, !opts.json)?;
    let mut notes = Vec::new();
    let mut output = String::new();
    if let Some(step) = auto_step {
        let target = mutations.iter().find_map(|m| match m {
            Mutation::SnapshotRollback { name, .. } => Some(name.as_str()),
            _ => None,
        });
        let taken =
            crate::exec::snapshot::take_auto(&p, vmid, step, now, keep, target).map_err(err)?;
        notes.push(format!("took automatic snapshot `{}` first", taken.name));
        for old in taken.pruned {
            notes.push(format!(
                "pruned automatic snapshot `{old}` (snapshots.keep = {keep})"
            ));
        }
    }
    for m in &mutations {
        output.push_str(&p.apply(m).map_err(err)?);
    }
    print(opts.json, false, &commands, &output, &notes)
}

/// The cluster-changing command's output: command lines and notes, or its JSON shape.
fn print(
    json: bool,
    dry_run: bool,
    commands: &[String],
    output: &str,
    notes: &[String],
) -> miette::Result<u8> {
    if json {
        let v = serde_json::json!({
            "dry_run": dry_run, "commands": commands, "output": output, "notes": notes,
        });
        println!("{}", serde_json::to_string_pretty(&v).into_diagnostic()?);
        return Ok(0);
    }
    if dry_run {
        for c in commands {
            println!("{c}");
        }
    } else if !output.trim().is_empty() {
        print!("{output}");
    }
    for n in notes {
        crate::cli::ui::note(n);
    }
    Ok(0)
}
