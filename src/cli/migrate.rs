//! `vmctl migrate NAME NODE [--online] [--with-local-disks]`: the migration through the API
//! path of the node the cluster shows the VM on (a fenced `Mutation::Migrate`), its task waited
//! for, the VM seen on NODE, then recorded: `node` in vms/definitions.nix (lossless edit),
//! docs/machines.md, one git commit. The edit is computed before the cluster is touched, so a
//! file vmctl cannot edit stops the run with nothing changed.

use std::path::PathBuf;

use clap::Args;
use miette::IntoDiagnostic;

use super::ops::{connect, Conn};
use super::Global;
use crate::exec::apply::{ChangeSet, FileChange, FleetLock};
use crate::exec::backup::{locate, run_task};
use crate::exec::provision::Git as _;
use crate::model::VmKind;
use crate::proxmox::validate as valid;
use crate::proxmox::{display_line, Mutation};

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The managed VM (its name in vms/definitions.nix).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The cluster node to move it to.
    #[arg(value_name = "NODE", value_parser = valid::node)]
    pub node: String,
    /// Migrate a running VM live (Proxmox refuses a running VM without it).
    #[arg(long)]
    pub online: bool,
    /// Live-migrate the VM's disks on node-local storage too (Proxmox refuses a live migration
    /// of local disks without it; an offline migration copies them anyway).
    #[arg(long)]
    pub with_local_disks: bool,
    /// Print the migration's API call and the file diffs; change nothing, connect nowhere.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object on stdout: `dry_run`, `written`, `changes`, `commands`, `notes`.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Conn,
}

pub const EXAMPLES: &str = "Examples:
  vmctl migrate web prom2 --dry-run
  vmctl migrate web prom2 --online";

fn err<E: std::error::Error + Send + Sync + 'static>(e: E) -> miette::Report {
    crate::cli::exit::report(e)
}

/// A task's error, its Proxmox part unwrapped so the exit code sees a lost connection.
fn task_err(e: crate::exec::backup::TaskError) -> miette::Report {
    match e {
        crate::exec::backup::TaskError::Proxmox(e) => err(e),
        other => err(other),
    }
}

pub fn run(a: MigrateArgs, g: &Global) -> miette::Result<u8> {
    let loaded = crate::cli::load_fleet(g, false)?;
    let defs = &loaded.definitions;
    let vmid = crate::plan::snapshot::vmid_of(defs, &a.name).map_err(miette::Report::new)?;
    let vm = defs.vm_by_name(&a.name).expect("vmid_of found it");
    let migrate = |node: String| Mutation::Migrate {
        node,
        vmid,
        target: a.node.clone(),
        online: a.online,
        with_local_disks: a.with_local_disks,
    };
    // For the fence and the dry run, the node definitions.nix gives the VM; a real run sends
    // the migration through the node the cluster shows it on.
    let declared = vm
        .node
        .clone()
        .or_else(|| defs.proxmox.node.clone())
        .unwrap_or_else(|| "NODE".into());
    let m = migrate(declared);
    let fence = crate::plan::ops::fence(defs, false);
    fence.check(&m).map_err(err)?;
    if vm.kind != VmKind::Managed {
        return Err(miette::miette!(
            help = "migrate it with `vmctl ops migrate` and record its node by hand",
            "`{}` is not a managed VM: vmctl records only managed VMs' nodes",
            a.name
        ));
    }
    // Every file change first: a definitions.nix vmctl cannot edit stops here.
    let defs_path = loaded.path(std::path::Path::new("vms/definitions.nix"));
    let old = crate::cli::changes::read_text_for_change(&defs_path, "vms/definitions.nix", "Nix")?
        .unwrap_or_default();
    let new =
        crate::plan::migrate::set_node(&old, &a.name, &a.node).map_err(miette::Report::new)?;
    let summary = format!("`{}` is on node `{}`", a.name, a.node);
    let mut set = ChangeSet::one(FileChange::modify(
        &defs_path,
        "vms/definitions.nix",
        old,
        new,
        summary.clone(),
    ));
    let docs_rel = defs.settings.docs_file.clone();
    let docs_path = loaded.path(&docs_rel);
    let mut notes = Vec::new();
    let docs_shown = docs_rel.display().to_string();
    match crate::cli::changes::read_text_for_change(&docs_path, &docs_shown, "Markdown")? {
        Some(text) => {
            let mut after = defs.clone();
            if let Some(v) = after.managed.iter_mut().find(|v| v.name == a.name) {
                v.node = Some(a.node.clone());
            }
            let up = crate::edit::docs::update(Some(&text), &after).map_err(err)?;
            set.push(FileChange::modify(
                &docs_path,
                &docs_shown,
                text,
                up.text,
                summary.clone(),
            ));
        }
        None => notes.push(format!("{docs_shown} does not exist: not written")),
    }
    let mut commands = vec![display_line(&m.argv())];
    if a.dry_run {
        notes.push(
            "dry run: the node in the command is the one vms/definitions.nix gives the VM; a \
             real run uses the node the cluster shows it on"
                .into(),
        );
        return report(&a, &set, true, &commands, &notes);
    }
    let root = loaded.root.clone();
    let lock = FleetLock::acquire(&root, &crate::cli::ui::reporter()).map_err(err)?;
    let p = connect(defs, &a.conn, fence, !a.json)?;
    let node_of = |p: &_| -> miette::Result<Option<String>> {
        Ok(locate(p, vmid).map_err(err)?.map(|r| r.node))
    };
    let mut sent = None;
    match node_of(&p)? {
        None => {
            return Err(miette::miette!(
                help = "check `vmctl ops list`; nothing was changed",
                "VM {vmid} (`{}`) is not on the cluster",
                a.name
            ))
        }
        Some(n) if n == a.node => {
            commands.clear();
            notes.push(format!(
                "`{}` is already on `{}`: nothing sent to the cluster",
                a.name, a.node
            ))
        }
        Some(from) => {
            let m = migrate(from);
            run_task(&p, &m, &|msg: &str| crate::cli::ui::info(msg)).map_err(task_err)?;
            // The task ended well; the cluster view must agree before the files say so.
            if node_of(&p)?.as_deref() != Some(a.node.as_str()) {
                return Err(miette::miette!(
                    help = "look at the migration task on the Proxmox host; the files were not changed",
                    "VM {vmid} does not show on `{}` after the migration",
                    a.node
                ));
            }
            commands = vec![display_line(&m.argv())];
            sent = Some(commands[0].clone());
        }
    }
    if set.is_change() {
        crate::exec::apply::apply(&set, &lock).map_err(err)?;
        let files: Vec<PathBuf> = set
            .changes
            .iter()
            .filter(|c| c.is_change())
            .map(|c| PathBuf::from(&c.shown))
            .collect();
        let message = format!(
            "vmctl migrate {}: now on node {}\n\n{}",
            a.name,
            a.node,
            sent.as_deref()
                .unwrap_or("(already on that node: nothing was sent to the cluster)")
        );
        let hash = crate::exec::provision::real::GitCli
            .commit(&root, &files, &message)
            .map_err(err)?;
        notes.push(format!("committed {hash}"));
    }
    report(&a, &set, false, &commands, &notes)
}

fn report(
    a: &MigrateArgs,
    set: &ChangeSet,
    dry_run: bool,
    commands: &[String],
    notes: &[String],
) -> miette::Result<u8> {
    if a.json {
        let mut v = crate::cli::changes::set_json(set, dry_run);
        v["commands"] = serde_json::json!(commands);
        v["notes"] = serde_json::json!(notes);
        println!("{}", serde_json::to_string_pretty(&v).into_diagnostic()?);
        return Ok(0);
    }
    if dry_run {
        for c in commands {
            println!("{c}");
        }
    }
    crate::cli::changes::print_human(set, dry_run);
    for n in notes {
        crate::cli::ui::note(n);
    }
    Ok(0)
}
