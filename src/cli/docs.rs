//! `vmctl docs`: regenerate the generated sections of docs/machines.md.

use miette::{miette, IntoDiagnostic, WrapErr};

use super::hosts::{shown, unified_diff};
use super::Global;
use crate::edit::docs::update;
use crate::exec::fleet::load;
use crate::exec::fs::atomic_write;

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
}

pub fn run(args: DocsArgs, g: &Global) -> miette::Result<u8> {
    let fleet = load(g.fleet.as_deref())?;
    let path = fleet.path(&fleet.definitions.settings.docs_file);
    let name = shown(&fleet, &path);
    let existing = match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(miette!("cannot read `{name}`: {e}")),
    };
    let out = update(existing.as_deref(), &fleet.definitions)
        .map_err(|e| miette!(help = "the file was not changed", "{name}: {e}"))?;
    let up_to_date = existing.as_deref() == Some(out.text.as_str());
    for s in &out.unknown {
        eprintln!("note: {name}: section `{s}` is not one vmctl generates; left as it is");
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
    if up_to_date {
        println!("{name} is up to date");
        return Ok(0);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot create `{}`", parent.display()))?;
    }
    atomic_write(&path, out.text.as_bytes())
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot write `{}`", path.display()))?;
    let mut what = Vec::new();
    if existing.is_none() {
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
    println!("{name}: {}", what.join("; "));
    Ok(0)
}
