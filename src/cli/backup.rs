//! `vmctl backup NAME…`, `vmctl backups NAME` and `vmctl restore NAME --from VOLUME`: vzdump
//! backups with notes naming vmctl and the fleet's commit, their volumes, and restores as a new
//! VM or (confirmed, stopped, backed up first) into the VM. Each goes through the API path of
//! the node that holds the VM (read from the cluster in the same run), as a fenced `Mutation`
//! whose Proxmox task is waited for.

use clap::{Args, ValueEnum};
use miette::IntoDiagnostic;

use super::ops::{connect, Conn};
use super::Global;
use crate::exec::backup::{fleet_commit, live_config, locate, run_remote, run_task};
use crate::exec::proxmox::{Proxmox as _, QmProxmox};
use crate::exec::remote::Remote;
use crate::model::Definitions;
use crate::plan::backup::{self as planner, BackupError};
use crate::proxmox::validate as valid;
use crate::proxmox::{argv, display_line, next_free_vmid, Mutation, VmId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// A live backup; the VM keeps running.
    Snapshot,
    /// Stop the VM for a consistent backup, then start it again.
    Stop,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The VMs to back up (names of vms/definitions.nix).
    #[arg(value_name = "NAME", required_unless_present = "due")]
    pub names: Vec<String>,
    /// Back up the VMs of the `backups` policy in definitions.nix whose newest backup is
    /// `everyHours` old or older (or that have none), to its storage, keeping `keep` (for a
    /// timer). The dry run reads the backup lists and prints what it would send.
    #[arg(long, conflicts_with_all = ["names", "storage", "mode"])]
    pub due: bool,
    /// The storage the backups go to (a directory or Proxmox Backup Server storage).
    #[arg(long, value_name = "S", default_value = "local", value_parser = valid::storage)]
    pub storage: String,
    /// vzdump's mode.
    #[arg(long, value_enum, default_value_t = Mode::Snapshot)]
    pub mode: Mode,
    /// Print the backup calls and change nothing (no connection: each call shows the node
    /// vms/definitions.nix gives the VM).
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object on stdout (docs/cli.md): `dry_run`, `commands`, `output`, `notes`.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct BackupsArgs {
    /// The VM (its name in vms/definitions.nix).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The storage to list.
    #[arg(long, value_name = "S", default_value = "local", value_parser = valid::storage)]
    pub storage: String,
    /// Print JSON on stdout: an array of `{volid, size, vmid}`.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The VM whose backup it is (its name in vms/definitions.nix).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The backup volume, as `vmctl backups NAME` lists it.
    #[arg(long, value_name = "VOLUME")]
    pub from: String,
    /// Restore as a new VM of this name, on the next free VMID of the managed range.
    #[arg(long = "as", value_name = "NEWNAME")]
    pub as_name: Option<String>,
    /// Without --as: the VM's name again, to confirm replacing its disks and snapshots.
    #[arg(long, value_name = "NAME")]
    pub confirm: Option<String>,
    /// Print the restore calls and change nothing (no connection: each call shows the node
    /// vms/definitions.nix gives the VM).
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object on stdout (docs/cli.md): `dry_run`, `commands`, `output`, `notes`.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Conn,
}

pub const BACKUP_EXAMPLES: &str = "Examples:
  vmctl backup --due                          # from a systemd timer: the policy's due VMs
  vmctl backup web --dry-run
  vmctl backup web db --storage pbs --mode stop";
pub const BACKUPS_EXAMPLES: &str = "Examples:
  vmctl backups web --storage pbs --json";
pub const RESTORE_EXAMPLES: &str = "Examples:
  vmctl restore web --from local:backup/vzdump-qemu-110-2026_11_30-02_00_00.vma.zst --as web-restored
  vmctl restore web --from local:backup/vzdump-qemu-110-2026_11_30-02_00_00.vma.zst --confirm web";

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

fn refuse(e: BackupError) -> miette::Report {
    miette::Report::new(e)
}

/// The node definitions.nix gives a VM (its `node`, else `proxmox.node`): for the dry run,
/// which connects nowhere (`NODE` when there is none); a real run takes the node from the
/// cluster.
fn declared_node(defs: &Definitions, name: &str) -> String {
    gone_vm_node(defs, name).unwrap_or_else(|| "NODE".into())
}

/// The node definitions.nix gives a VM the cluster no longer has, if it gives one.
fn gone_vm_node(defs: &Definitions, name: &str) -> Option<String> {
    defs.vm_by_name(name)
        .and_then(|v| v.node.clone())
        .or_else(|| defs.proxmox.node.clone())
}

/// A real run for a VM gone from the cluster needs a node to ask: refused when none is known.
fn node_for_gone(defs: &Definitions, name: &str, vmid: VmId) -> miette::Result<String> {
    gone_vm_node(defs, name).ok_or_else(|| {
        miette::miette!(
            help = "write the VM's `node` (or `proxmox.node`) in vms/definitions.nix",
            "VM {vmid} (`{name}`) is not on the cluster and definitions.nix names no node for \
             it: vmctl cannot tell which node holds its backups"
        )
    })
}

const DRY_NODE: &str = "dry run: the node in each command is the one vms/definitions.nix gives \
                        the VM; a real run uses the node the cluster shows it on";

/// The node VM `vmid` (`name`) is on now, from the cluster read in this run.
fn node_now<R: Remote>(p: &QmProxmox<R>, vmid: VmId, name: &str) -> miette::Result<String> {
    match locate(p, vmid).map_err(err)? {
        Some(r) => Ok(r.node),
        None => Err(miette::miette!(
            help = "check `vmctl ops list`; nothing was changed",
            "VM {vmid} (`{name}`) is not on the cluster"
        )),
    }
}

fn progress(msg: &str) {
    crate::cli::ui::info(msg);
}

fn backup_of(node: String, vmid: VmId, storage: &str, mode: &str, notes: String) -> Mutation {
    Mutation::Backup {
        node,
        vmid,
        storage: storage.to_string(),
        mode: mode.to_string(),
        notes,
        keep_last: None,
    }
}

pub fn backup(a: BackupArgs, g: &Global) -> miette::Result<u8> {
    let loaded = crate::cli::load_fleet(g, false)?;
    let defs = &loaded.definitions;
    let commit = fleet_commit(&loaded.root);
    if a.due {
        return backup_due(&a, defs, commit.as_deref());
    }
    let mode = match a.mode {
        Mode::Snapshot => "snapshot",
        Mode::Stop => "stop",
    };
    let fence = crate::plan::ops::fence(defs, false);
    let mut vms = Vec::new();
    for name in &a.names {
        let vmid = crate::plan::snapshot::vmid_of(defs, name).map_err(miette::Report::new)?;
        let notes = planner::notes(name, commit.as_deref());
        let m = backup_of(declared_node(defs, name), vmid, &a.storage, mode, notes);
        // Every VM passes the fence before anything is sent (a readonly VM in `stop` mode).
        fence.check(&m).map_err(err)?;
        vms.push((name, m));
    }
    if a.dry_run {
        let commands: Vec<String> = vms.iter().map(|(_, m)| display_line(&m.argv())).collect();
        return print(a.json, true, &commands, "", &[DRY_NODE.to_string()]);
    }
    let p = connect(defs, &a.conn, fence, !a.json)?;
    let (mut commands, mut output) = (Vec::new(), String::new());
    for (name, m) in vms {
        let Mutation::Backup {
            vmid, mode, notes, ..
        } = m
        else {
            unreachable!("built above")
        };
        let m = backup_of(node_now(&p, vmid, name)?, vmid, &a.storage, &mode, notes);
        output.push_str(&run_task(&p, &m, &progress).map_err(task_err)?);
        commands.push(display_line(&m.argv()));
    }
    let notes = vec![format!(
        "backed up {} to storage `{}`; `vmctl backups NAME --storage {}` lists them",
        a.names.join(", "),
        a.storage,
        a.storage
    )];
    print(a.json, false, &commands, &output, &notes)
}

/// `vmctl backup --due`: the policy's VMs whose newest backup is old enough.
fn backup_due(a: &BackupArgs, defs: &Definitions, commit: Option<&str>) -> miette::Result<u8> {
    let policy = planner::policy(defs).map_err(refuse)?;
    let fence = crate::plan::ops::fence(defs, false);
    let p = connect(defs, &a.conn, fence, !a.json && !a.dry_run)?;
    let now = crate::exec::snapshot::now();
    let mut due = Vec::new();
    let mut notes = Vec::new();
    let cluster = p.list().map_err(err)?;
    for vm in &policy.vms {
        let Some(node) = cluster
            .iter()
            .find(|r| r.vmid == vm.vmid)
            .map(|r| r.node.clone())
        else {
            return Err(miette::miette!(
                help = "check `vmctl ops list`; no backup was taken",
                "VM {} (`{}`) of the backup policy is not on the cluster",
                vm.vmid,
                vm.name
            ));
        };
        let volumes = read_backups(&p, &node, &policy.storage, vm.vmid)?;
        if !planner::is_due(&volumes, vm.vmid, now, policy.every_hours) {
            notes.push(format!(
                "`{}` is not due: its newest backup on `{}` is less than {} hour(s) old",
                vm.name, policy.storage, policy.every_hours
            ));
            continue;
        }
        let mut m = backup_of(
            node,
            vm.vmid,
            &policy.storage,
            &policy.mode,
            planner::notes(&vm.name, commit),
        );
        if let Mutation::Backup { keep_last, .. } = &mut m {
            *keep_last = policy.keep;
        }
        p.fence().check(&m).map_err(err)?;
        due.push(m);
    }
    let commands: Vec<String> = due.iter().map(|m| display_line(&m.argv())).collect();
    if a.dry_run {
        return print(a.json, true, &commands, "", &notes);
    }
    let mut output = String::new();
    for m in &due {
        output.push_str(&run_task(&p, m, &progress).map_err(task_err)?);
    }
    notes.push(format!("{} backup(s) taken", due.len()));
    print(a.json, false, &commands, &output, &notes)
}

/// The backups of `vmid` on `storage`, as the VM's node lists them.
fn read_backups<R: Remote>(
    p: &QmProxmox<R>,
    node: &str,
    storage: &str,
    vmid: VmId,
) -> miette::Result<Vec<planner::Volume>> {
    let argv = argv::backups(node, storage, vmid);
    let json = run_remote(p, &argv).map_err(err)?;
    let volumes = planner::parse_volumes(&json).map_err(|detail| {
        miette::miette!(
            "cannot read the answer of `{}`: {detail}; please report this",
            display_line(&argv)
        )
    })?;
    Ok(volumes.into_iter().filter(|v| v.vmid == vmid).collect())
}

pub fn backups(a: BackupsArgs, g: &Global) -> miette::Result<u8> {
    let loaded = crate::cli::load_fleet(g, false)?;
    let defs = &loaded.definitions;
    let vmid = crate::plan::snapshot::vmid_of(defs, &a.name).map_err(miette::Report::new)?;
    let p = connect(defs, &a.conn, crate::plan::ops::fence(defs, false), false)?;
    // A VM that is gone (the usual reason to look for its backups) is looked up through the
    // node definitions.nix gives it, which holds its backups on node-local storage.
    let node = match locate(&p, vmid).map_err(err)? {
        Some(r) => r.node,
        None => {
            let node = node_for_gone(defs, &a.name, vmid)?;
            crate::cli::ui::note(&format!(
                "VM {vmid} (`{}`) is not on the cluster: listing `{}` as node `{node}` sees it",
                a.name, a.storage
            ));
            node
        }
    };
    let volumes = read_backups(&p, &node, &a.storage, vmid)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&volumes).into_diagnostic()?
        );
    } else {
        for v in &volumes {
            println!("{}  {} bytes", v.volid, v.size);
        }
    }
    Ok(0)
}

pub fn restore(a: RestoreArgs, g: &Global) -> miette::Result<u8> {
    let loaded = crate::cli::load_fleet(g, false)?;
    let defs = &loaded.definitions;
    let vmid = crate::plan::snapshot::vmid_of(defs, &a.name).map_err(miette::Report::new)?;
    let of = planner::volume_vmid(&a.from).map_err(refuse)?;
    if of != vmid {
        return Err(refuse(BackupError::OtherVm {
            volume: a.from.clone(),
            of,
            name: a.name.clone(),
            vmid,
        }));
    }
    let fence = crate::plan::ops::fence(defs, false);
    match a.as_name.clone() {
        Some(new) => restore_as_new(&a, defs, fence, vmid, &new),
        None => restore_into(&a, &loaded, fence, vmid),
    }
}

fn restore_as_new(
    a: &RestoreArgs,
    defs: &Definitions,
    fence: crate::proxmox::Fence,
    vmid: VmId,
    new: &str,
) -> miette::Result<u8> {
    planner::check_new_name(new).map_err(refuse)?;
    if defs.vm_by_name(new).is_some() {
        return Err(refuse(BackupError::NameTaken(new.to_string())));
    }
    let range = defs
        .vmid_ranges
        .iter()
        .find(|r| r.name == "managed")
        .map_or((100, 999_999_999), |r| (r.start, r.end));
    let restore = |node: String, id: VmId| Mutation::Restore {
        node,
        archive: a.from.clone(),
        vmid: id,
        storage: None,
        name: Some(new.to_string()),
        unique: true,
        force: false,
        confirm: None,
    };
    if a.dry_run {
        let m = restore(declared_node(defs, &a.name), 0);
        let shown = [display_line(&m.argv()).replace(" --vmid 0 ", " --vmid NEWID ")];
        let notes = [
            format!(
                "dry run: NEWID is the next free VMID from {} to {} when run for real",
                range.0, range.1
            ),
            DRY_NODE.to_string(),
        ];
        return print(a.json, true, &shown, "", &notes);
    }
    let p = connect(defs, &a.conn, fence, !a.json)?;
    // One cluster read: where the backed-up VM is (its node holds the archive when the
    // storage is local to it) and which VMIDs are taken on any node.
    let cluster = p.list().map_err(err)?;
    let node = match cluster.iter().find(|r| r.vmid == vmid) {
        Some(r) => r.node.clone(),
        None => node_for_gone(defs, &a.name, vmid)?,
    };
    let mut used: std::collections::BTreeSet<VmId> = cluster.iter().map(|r| r.vmid).collect();
    used.extend(p.fence().reserved());
    let id = next_free_vmid(&used, range.0, range.1).ok_or_else(|| {
        miette::miette!(
            help = "widen the `managed` range in vmidRanges",
            "no free VMID between {} and {} for the restored VM",
            range.0,
            range.1
        )
    })?;
    // The fence checks again, against a fresh cluster read, that the VMID is free.
    let m = restore(node, id);
    let output = run_task(&p, &m, &progress).map_err(task_err)?;
    let notes = [format!(
        "restored `{}` as `{new}` (VMID {id}); add it to vms/definitions.nix to manage it",
        a.from
    )];
    print(a.json, false, &[display_line(&m.argv())], &output, &notes)
}

/// Into the VM itself: confirmed, fenced, stopped, and its state now backed up first (a
/// snapshot would go with the disks the restore replaces).
fn restore_into(
    a: &RestoreArgs,
    loaded: &crate::exec::fleet::LoadedFleet,
    fence: crate::proxmox::Fence,
    vmid: VmId,
) -> miette::Result<u8> {
    let defs = &loaded.definitions;
    let storage = planner::volume_storage(&a.from).to_string();
    let notes_text = format!(
        "{} before restoring {}",
        planner::notes(&a.name, fleet_commit(&loaded.root).as_deref()),
        a.from
    );
    let plan = |node: String| {
        let first = backup_of(node.clone(), vmid, &storage, "snapshot", notes_text.clone());
        let over = Mutation::Restore {
            node,
            archive: a.from.clone(),
            vmid,
            storage: None,
            name: None,
            unique: false,
            force: true,
            confirm: a.confirm.clone(),
        };
        (first, over)
    };
    let (first, over) = plan(declared_node(defs, &a.name));
    // Managed, the name confirmed: refused here, before any connection.
    fence.check(&over).map_err(err)?;
    if a.dry_run {
        let commands = [display_line(&first.argv()), display_line(&over.argv())];
        let notes = [
            format!("dry run: when run for real, VM {vmid} must be stopped"),
            DRY_NODE.to_string(),
        ];
        return print(a.json, true, &commands, "", &notes);
    }
    let p = connect(defs, &a.conn, fence, !a.json)?;
    let Some(live) = locate(&p, vmid).map_err(err)? else {
        return Err(miette::miette!(
            help = "restore it as a new VM with `--as NEWNAME`; nothing was changed",
            "VM {vmid} (`{}`) is not on the cluster",
            a.name
        ));
    };
    let (first, over) = plan(live.node.clone());
    let config = live_config(&p, &live.node, vmid).map_err(err)?;
    p.fence()
        .check_restore_live(&over, &config, &live.status)
        .map_err(err)?;
    let mut output = run_task(&p, &first, &progress).map_err(task_err)?;
    output.push_str(&run_task(&p, &over, &progress).map_err(task_err)?);
    let commands = [display_line(&first.argv()), display_line(&over.argv())];
    let notes = [format!(
        "restored `{}` into `{}` (VMID {vmid}); its state before is the newest backup on `{storage}`",
        a.from, a.name
    )];
    print(a.json, false, &commands, &output, &notes)
}

/// Command lines and notes, or the cluster-changing JSON shape.
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
    } else if crate::cli::ui::is_verbose() {
        crate::render::stdio::err(output);
    }
    for n in notes {
        crate::cli::ui::note(n);
    }
    Ok(0)
}
