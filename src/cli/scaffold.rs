//! `vmctl scaffold`: create hosts/NAME/ from hosts-template/.

use std::path::{Path, PathBuf};

use miette::{miette, IntoDiagnostic};

use super::hosts::shown;
use super::Global;
use crate::edit::scaffold::{find_vm, plan, Action, TemplateFile, Values};
use crate::exec::apply::{apply, ChangeSet, FileChange, FleetLock};
use crate::exec::cannot_act::CannotAct;
use crate::exec::fleet::errors_of_vm;

/// Create a host's NixOS configuration directory from the fleet's hosts-template/.
///
/// Copies every template file (except README.md and hosts-entry.nix) into
/// `hosts/<nixosConfig or NAME>/`, filling in @hostname@, @vmid@, @disk_device@, @ssh_alias@,
/// @public_key@ and @name@ from vms/definitions.nix and hosts.nix. A file that already
/// exists is never overwritten ("kept"), so running it twice changes nothing.
#[derive(Debug, clap::Args)]
pub struct ScaffoldArgs {
    /// The VM (managed or imported) in vms/definitions.nix.
    pub name: String,
    /// The guest's disk device for @disk_device@ (disko.nix).
    #[arg(long, value_name = "DEVICE", default_value = crate::edit::scaffold::DEFAULT_DISK_DEVICE)]
    pub disk_device: String,
    /// Show what would be created and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON on stdout (docs/json-output.md, "File changes"), with
    /// `dir` and `files: [{path, action, written}]` (kept files included).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ScaffoldArgs, g: &Global) -> miette::Result<u8> {
    // Scaffolding reads one VM (and its host entry): errors there stop it, errors elsewhere in
    // the fleet files do not (`vmlint` shows them).
    let fleet = super::load_fleet(g, true)?;
    let defs = &fleet.definitions;
    let vm = find_vm(defs, &args.name).into_diagnostic()?;
    super::stop_on_errors(
        errors_of_vm(&fleet.root, &vm.name),
        &format!("the definition of `{}`", vm.name),
        "fix them first; nothing was written",
    )?;
    let template_dir = fleet.path(&defs.settings.template_dir);
    if !template_dir.is_dir() {
        return Err(miette!(
            help = "copy vmctl's hosts-template/ into your fleet (or set settings.templateDir)",
            "the fleet has no host template: `{}` is not a directory",
            shown(&fleet, &template_dir)
        ));
    }
    let template = read_template(&template_dir)?;
    let host = fleet.hosts.as_ref().and_then(|h| h.get(&vm.name));
    let values = Values::for_vm(vm, host, Some(&args.disk_device));
    let root = fleet.root.clone();
    let lock = if args.dry_run {
        None
    } else {
        Some(FleetLock::acquire(&fleet.root, &super::ui::reporter())?)
    };
    let planned = plan(vm, &defs.settings.hosts_dir, &template, &values, |rel| {
        std::fs::read(root.join(rel)).ok()
    })
    .map_err(|e| miette!("{}: {e}", shown(&fleet, &template_dir)))?;
    let hosts_dir = fleet.path(&defs.settings.hosts_dir);
    let mut set = ChangeSet::new();
    for f in planned.creates() {
        let path = fleet.path(&f.path);
        inside(&hosts_dir, &path, &shown(&fleet, &path))?;
        set.push(FileChange::create(
            path,
            f.path.display().to_string(),
            f.contents.clone(),
            "created",
        ));
    }
    if let Some(lock) = &lock {
        apply(&set, lock)?;
    }
    let label = |a: &Action| match (a, args.dry_run) {
        (Action::Create, false) => "created",
        (Action::Create, true) => "would create",
        (Action::Keep { identical: true }, _) => "kept (already up to date)",
        (Action::Keep { identical: false }, _) => "kept (exists, not overwritten)",
    };
    if args.json {
        let files: Vec<_> = planned
            .files
            .iter()
            .map(|f| {
                serde_json::json!({
                    "path": f.path.display().to_string(),
                    "action": match f.action {
                        Action::Create => "create",
                        Action::Keep { .. } => "keep",
                    },
                    "written": f.action == Action::Create && !args.dry_run,
                })
            })
            .collect();
        let mut v = super::changes::set_json(&set, args.dry_run);
        v["dir"] = serde_json::json!(planned.dir.display().to_string());
        v["files"] = serde_json::json!(files);
        println!("{v}");
        return Ok(0);
    }
    if args.dry_run {
        super::changes::print_human(&set, true);
    }
    for f in &planned.files {
        println!("{}: {}", label(&f.action), f.path.display());
    }
    let created = planned.creates().count();
    if created == 0 {
        println!("nothing to do: {} is complete", planned.dir.display());
    } else if !args.dry_run {
        super::ui::info(&format!(
            "next: review {}/, then `git add` it (flakes only see tracked files)",
            planned.dir.display()
        ));
    }
    Ok(0)
}

/// Refuses a path that would end up outside the hosts directory, through `..` or a symlinked
/// directory on the way (e.g. `hosts/web` linking to `/etc`).
fn inside(hosts_dir: &Path, path: &Path, shown: &str) -> miette::Result<()> {
    let outside = || {
        miette!(
            help = "make hosts/<name> a real directory inside the fleet, or remove the link",
            "`{shown}` would be written outside the hosts directory `{}`; nothing was written",
            hosts_dir.display()
        )
    };
    let (Some(real_hosts), Some(real)) = (resolved(hosts_dir), resolved(path)) else {
        return Err(outside());
    };
    if !real.starts_with(&real_hosts) {
        return Err(outside());
    }
    Ok(())
}

/// `path` with its deepest existing ancestor resolved (symlinks followed) and the rest
/// appended as written; `None` when the rest holds `.` or `..` (which could climb out).
fn resolved(path: &Path) -> Option<PathBuf> {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    while std::fs::symlink_metadata(&existing).is_err() {
        rest.push(existing.file_name()?.to_os_string());
        existing = existing.parent()?.to_path_buf();
    }
    if rest.iter().any(|n| n == ".." || n == ".") {
        return None;
    }
    let mut real = std::fs::canonicalize(&existing).ok()?;
    for n in rest.iter().rev() {
        real.push(n);
    }
    Some(real)
}

/// Every regular file under `dir`, with paths relative to it.
fn read_template(dir: &Path) -> miette::Result<Vec<TemplateFile>> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let cannot_read = |p: &Path, e: std::io::Error| {
            CannotAct::new(format!("cannot read `{}`: {e}", p.display()))
        };
        let entries = std::fs::read_dir(&d).map_err(|e| cannot_read(&d, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| cannot_read(&d, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| cannot_read(&path, e))?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let contents = std::fs::read(&path).map_err(|e| cannot_read(&path, e))?;
                out.push(TemplateFile {
                    path: path.strip_prefix(dir).expect("under dir").to_path_buf(),
                    contents,
                });
            }
        }
    }
    Ok(out)
}
