//! `vmctl template create`: the template VM definitions.nix declares, from the flake's VMA image
//! (or one given with --image), restored on the Proxmox host, with a cloud-init drive, as a
//! template; fenced and journaled, with `--dry-run`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use miette::IntoDiagnostic;

use super::ops::{connect, Conn};
use super::Global;
use crate::exec::apply::FleetLock;
use crate::exec::fleet;
use crate::exec::template::{self as run, Outcome};
use crate::plan::template::{self as planner, TemplatePlan};

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Create the template VM of vms/definitions.nix (`template.vmid`, `template.name`, on
    /// `template.storage` or `proxmox.defaultStorage`) from a VMA image: upload, qmrestore, add
    /// the cloud-init drive, convert to a template. An interrupted run continues from its
    /// journal (.vmctl/journal/template@VMID.json) when run again.
    #[command(after_long_help = EXAMPLES)]
    Create(CreateArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The VMA archive to restore (`*.vma`, `*.vma.zst`, `*.vma.gz`, `*.vma.lzo`). Default:
    /// build `.#proxmox-template` with `nix build` in the fleet (needs Nix 2.18 or later).
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,
    /// Print every step's command line and change nothing (no connection, no build).
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object on stdout (docs/cli.md): `dry_run`, the `commands` sent (or that
    /// would be), the cluster's `output`, `notes`.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Conn,
}

/// Examples for `--help`.
pub const EXAMPLES: &str = "Examples:
  vmctl template create --dry-run                           # the steps, nothing sent
  vmctl template create                                     # build .#proxmox-template, restore it
  vmctl template create --image result/vzdump-qemu-nixos.vma.zst";

fn err<E: std::error::Error + Send + Sync + 'static>(e: E) -> miette::Report {
    crate::cli::exit::report(e)
}

pub fn run(c: TemplateCommand, g: &Global) -> miette::Result<u8> {
    let TemplateCommand::Create(a) = c;
    let loaded = fleet::load(g.fleet.as_deref(), &crate::cli::ui::reporter())?;
    let defs = &loaded.definitions;
    let image = match &a.image {
        Some(p) if !p.is_file() => {
            return Err(err(crate::exec::cannot_act::CannotAct::new(format!(
                "the image `{}` is not a file: build one with `nix build .#proxmox-template`, or leave out --image",
                p.display()
            ))))
        }
        Some(p) => Some(std::path::absolute(p).into_diagnostic()?),
        None => None,
    };
    let plan = planner::plan(defs, image.as_deref()).map_err(err)?;
    if a.dry_run {
        return dry_run(&plan, a.json);
    }
    let root = loaded.root.clone();
    let _lock = FleetLock::acquire(&root, &crate::cli::ui::reporter()).map_err(err)?;
    let journal = run::load(&root, plan.vmid).map_err(err)?;
    if journal.is_some() {
        crate::cli::ui::info(&format!(
            "continuing the interrupted run from its journal `{}`",
            run::journal_path(&root, plan.vmid).display()
        ));
    }
    // Without an image the run builds one: an old Nix stops it before anything is sent.
    if image.is_none() {
        crate::exec::nix_version::require("building the template image").map_err(err)?;
    }
    let fence = crate::plan::ops::fence(defs, false);
    let p = connect(defs, &a.conn, fence, !a.json)?;
    let report = |l: &str| crate::cli::ui::info(l);
    let outcome = run::run(&p, &root, &plan, journal, &report).map_err(|e| {
        let journal = run::journal_path(&root, plan.vmid);
        let e = err(e);
        if journal.exists() {
            e.wrap_err(format!(
                "template create stopped; its journal `{}` keeps what was done: fix the cause and run `vmctl template create` again to continue",
                journal.display()
            ))
        } else {
            e
        }
    })?;
    let (done, note) = match outcome {
        Outcome::AlreadyTemplate => (
            format!(
                "VMID {} is already the template `{}`: nothing to do",
                plan.vmid, plan.name
            ),
            true,
        ),
        Outcome::Created { .. } => (
            format!(
                "template `{}` (VMID {}) created on storage `{}`",
                plan.name, plan.vmid, plan.storage
            ),
            false,
        ),
    };
    if a.json {
        let sent: Vec<String> = if note {
            Vec::new()
        } else {
            plan.steps.iter().map(|s| s.line()).collect()
        };
        print_json(false, &sent, &[done])?;
    } else {
        println!("{done}");
    }
    Ok(0)
}

fn dry_run(plan: &TemplatePlan, json: bool) -> miette::Result<u8> {
    let notes = [
        format!(
            "dry run: when run for real, VMID {} must be free on the cluster (or already the template `{}`), and without --image the image is built with Nix 2.18 or later",
            plan.vmid, plan.name
        ),
    ];
    if json {
        let lines: Vec<String> = plan.steps.iter().map(|s| s.line()).collect();
        print_json(true, &lines, &notes)?;
    } else {
        print!("{}", planner::render(plan));
        for n in &notes {
            crate::cli::ui::note(n);
        }
    }
    Ok(0)
}

/// The cluster-changing command's JSON (docs/cli.md): `{dry_run, commands, output, notes}`.
fn print_json(dry_run: bool, commands: &[String], notes: &[String]) -> miette::Result<()> {
    let v = serde_json::json!({
        "dry_run": dry_run,
        "commands": commands,
        "output": "",
        "notes": notes,
    });
    println!("{}", serde_json::to_string_pretty(&v).into_diagnostic()?);
    Ok(())
}
