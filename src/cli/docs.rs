//! `vmctl docs`: regenerate the generated sections of docs/machines.md.

use miette::miette;

use super::hosts::{shown, unified_diff};
use super::Global;
use crate::edit::docs::update;
use crate::exec::apply::{apply, ChangeSet, FileChange, FleetLock};
use crate::exec::fleet::errors_of_definitions;

/// Regenerate docs/machines.md from vms/definitions.nix.
///
/// Only the text between `<!-- vmctl:begin NAME -->` and `<!-- vmctl:end NAME -->` markers
/// changes: the inventory table, the template, the VMID ranges (with the next free VMID of
/// each) and one section per VM. Missing sections are added; everything outside the markers
/// is kept byte for byte. The same definitions always give the same bytes.
///
/// Exit status: 0 when the file is (now) up to date; with --check, 1 when it is out of date.
#[derive(Debug, clap::Args)]
pub struct DocsArgs {
    /// Write nothing; exit 1 (with a diff on stderr) when the file is out of date. For CI and
    /// pre-commit hooks.
    #[arg(long, conflicts_with = "stdout")]
    pub check: bool,
    /// Print the regenerated file on stdout instead of writing it.
    #[arg(long)]
    pub stdout: bool,
    /// Show the change as a diff and write nothing.
    #[arg(long, conflicts_with_all = ["check", "stdout"])]
    pub dry_run: bool,
    /// Print the result as JSON on stdout (docs/json-output.md, "File changes").
    #[arg(long, conflicts_with_all = ["check", "stdout"])]
    pub json: bool,
}

pub fn run(args: DocsArgs, g: &Global) -> miette::Result<u8> {
    // machines.md is generated from definitions.nix alone: its errors stop this, errors of
    // hosts.nix or .sops.yaml do not.
    let fleet = super::load_fleet(g, true)?;
    super::stop_on_errors(
        errors_of_definitions(&fleet.root),
        "vms/definitions.nix",
        "fix them first; `vmlint` shows every problem",
    )?;
    let path = fleet.path(&fleet.definitions.settings.docs_file);
    let name = shown(&fleet, &path);
    let writes = !(args.check || args.stdout || args.dry_run);
    // Held from the read to the write, so two runs never interleave (only when writing).
    let lock = if writes {
        Some(FleetLock::acquire(&fleet.root, &super::ui::reporter())?)
    } else {
        None
    };
    let existing = super::changes::read_text_for_change(&path, &name, "Markdown text")?;
    let out = update(existing.as_deref(), &fleet.definitions)
        .map_err(|e| miette!(help = "the file was not changed", "{name}: {e}"))?;
    let up_to_date = existing.as_deref() == Some(out.text.as_str());
    for s in &out.unknown {
        super::ui::note(&format!(
            "{name}: section `{s}` is not one vmctl generates; left as it is"
        ));
    }
    if args.stdout {
        print!("{}", out.text);
        return Ok(0);
    }
    if args.check {
        if up_to_date {
            println!("{name} is up to date");
            return Ok(0);
        }
        eprint!(
            "{}",
            unified_diff(&name, existing.as_deref().unwrap_or(""), &out.text)
        );
        eprintln!("{name} is out of date: run `vmctl docs` to regenerate it");
        return Ok(1);
    }
    let mut what = Vec::new();
    if up_to_date {
        what.push("up to date".to_string());
    } else if existing.is_none() {
        what.push("created".to_string());
    } else {
        what.push("regenerated".to_string());
    }
    if existing.is_some() && !out.added.is_empty() {
        what.push(format!("added {}", out.added.join(", ")));
    }
    if !out.removed.is_empty() {
        what.push(format!("removed {}", out.removed.join(", ")));
    }
    let change = FileChange {
        path: path.clone(),
        shown: name.clone(),
        old: existing.map(String::into_bytes),
        new: out.text.into_bytes(),
        summary: what.join("; "),
        create_mode: crate::exec::apply::DEFAULT_MODE,
        secret: false,
    };
    let set = ChangeSet::one(change);
    if let Some(lock) = &lock {
        apply(&set, lock)?;
    }
    if args.json {
        println!("{}", super::changes::set_json(&set, args.dry_run));
    } else if up_to_date {
        println!("{name} is up to date");
    } else {
        super::changes::print_human(&set, args.dry_run);
    }
    Ok(0)
}
