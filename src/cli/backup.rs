//! `vmctl backup NAME…`, `vmctl backups NAME` and `vmctl restore NAME --from VOLUME`: vzdump
//! backups with notes naming vmctl and the fleet's commit, their volumes, and restores as a new
//! VM or (confirmed, stopped, backed up first) into the VM.

use clap::{Args, ValueEnum};
use miette::IntoDiagnostic;

use super::ops::{connect, Conn};
use super::Global;
use crate::exec::backup::{fleet_commit, run_remote};
use crate::exec::proxmox::Proxmox as _;
use crate::model::VmKind;
use crate::plan::backup::{self as planner, BackupError};
use crate::proxmox::validate as valid;
use crate::proxmox::{display_line, Mutation};

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
    /// Print the vzdump command lines and change nothing (no connection).
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
    /// Print the command lines and change nothing (no connection).
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

fn refuse(e: BackupError) -> miette::Report {
    miette::Report::new(e)
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
    let mut argvs = Vec::new();
    for name in &a.names {
        let vmid = crate::plan::snapshot::vmid_of(defs, name).map_err(miette::Report::new)?;
        let vm = defs.vm_by_name(name).expect("vmid_of found it");
        if a.mode == Mode::Stop && (vm.readonly || vm.kind == VmKind::Imported) {
            return Err(refuse(BackupError::StopReadonly(name.clone())));
        }
        let notes = planner::notes(name, commit.as_deref());
        argvs.push(planner::vzdump_argv(vmid, &a.storage, mode, &notes));
    }
    let commands: Vec<String> = argvs.iter().map(|v| display_line(v)).collect();
    if a.dry_run {
        return print(a.json, true, &commands, "", &[]);
    }
    let fence = crate::plan::ops::fence(defs, false);
    let p = connect(defs, &a.conn, fence, !a.json)?;
    let mut output = String::new();
    for argv in &argvs {
        output.push_str(&run_remote(&p, argv).map_err(err)?);
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
fn backup_due(
    a: &BackupArgs,
    defs: &crate::model::Definitions,
    commit: Option<&str>,
) -> miette::Result<u8> {
    let policy = planner::policy(defs).map_err(refuse)?;
    let fence = crate::plan::ops::fence(defs, false);
    let p = connect(defs, &a.conn, fence, !a.json && !a.dry_run)?;
    let now = crate::exec::snapshot::now();
    let mut argvs = Vec::new();
    let mut notes = Vec::new();
    for vm in &policy.vms {
        let text = run_remote(&p, &planner::list_argv(&policy.storage, vm.vmid)).map_err(err)?;
        let volumes = planner::parse_volumes(&text);
        if !planner::is_due(&volumes, vm.vmid, now, policy.every_hours) {
            notes.push(format!(
                "`{}` is not due: its newest backup on `{}` is less than {} hour(s) old",
                vm.name, policy.storage, policy.every_hours
            ));
            continue;
        }
        let mut argv = planner::vzdump_argv(
            vm.vmid,
            &policy.storage,
            &policy.mode,
            &planner::notes(&vm.name, commit),
        );
        if let Some(k) = policy.keep {
            argv.extend(["--prune-backups".into(), format!("keep-last={k}")]);
        }
        argvs.push(argv);
    }
    let commands: Vec<String> = argvs.iter().map(|v| display_line(v)).collect();
    if a.dry_run {
        return print(a.json, true, &commands, "", &notes);
    }
    let mut output = String::new();
    for argv in &argvs {
        output.push_str(&run_remote(&p, argv).map_err(err)?);
    }
    notes.push(format!("{} backup(s) taken", argvs.len()));
    print(a.json, false, &commands, &output, &notes)
}

pub fn backups(a: BackupsArgs, g: &Global) -> miette::Result<u8> {
    let loaded = crate::cli::load_fleet(g, false)?;
    let defs = &loaded.definitions;
    let vmid = crate::plan::snapshot::vmid_of(defs, &a.name).map_err(miette::Report::new)?;
    let p = connect(defs, &a.conn, crate::plan::ops::fence(defs, false), false)?;
    let text = run_remote(&p, &planner::list_argv(&a.storage, vmid)).map_err(err)?;
    let volumes: Vec<_> = planner::parse_volumes(&text)
        .into_iter()
        .filter(|v| v.vmid == vmid)
        .collect();
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
    if let Some(new) = &a.as_name {
        planner::check_new_name(new).map_err(refuse)?;
        if defs.vm_by_name(new).is_some() {
            return Err(refuse(BackupError::NameTaken(new.clone())));
        }
        let range = defs
            .vmid_ranges
            .iter()
            .find(|r| r.name == "managed")
            .map_or((100, 999_999_999), |r| (r.start, r.end));
        if a.dry_run {
            let shown = [
                display_line(&planner::restore_argv(&a.from, 0)).replace(" 0 ", " NEWID "),
                format!("qm set NEWID --name {new}"),
            ];
            let notes = [format!(
                "dry run: NEWID is the next free VMID from {} to {} when run for real",
                range.0, range.1
            )];
            return print(a.json, true, &shown, "", &notes);
        }
        let p = connect(defs, &a.conn, fence, !a.json)?;
        let id = p.next_vmid(range.0, range.1).map_err(err)?;
        let restore = planner::restore_argv(&a.from, id);
        let mut output = run_remote(&p, &restore).map_err(err)?;
        let rename: Vec<String> = ["qm", "set", &id.to_string(), "--name", new]
            .map(String::from)
            .to_vec();
        output.push_str(&run_remote(&p, &rename).map_err(err)?);
        let notes = [format!(
            "restored `{}` as `{new}` (VMID {id}); add it to vms/definitions.nix to manage it",
            a.from
        )];
        return print(
            a.json,
            false,
            &[display_line(&restore), display_line(&rename)],
            &output,
            &notes,
        );
    }
    // Into the VM itself: confirmed, fenced, stopped, and its state now backed up first (a
    // snapshot would go with the disks qmrestore replaces).
    if a.confirm.as_deref() != Some(a.name.as_str()) {
        return Err(refuse(BackupError::NotConfirmed(a.name.clone())));
    }
    let vm = defs.vm_by_name(&a.name).expect("vmid_of found it");
    let destroy = Mutation::Destroy {
        vmid,
        confirm: Some(a.name.clone()),
    };
    if vm.readonly || vm.kind == VmKind::Imported || fence.check(&destroy).is_err() {
        return Err(refuse(BackupError::Readonly(a.name.clone())));
    }
    let storage = a
        .from
        .split_once(':')
        .map_or("local", |(s, _)| s)
        .to_string();
    let notes_text = format!(
        "{} before restoring {}",
        planner::notes(&a.name, fleet_commit(&loaded.root).as_deref()),
        a.from
    );
    let first = planner::vzdump_argv(vmid, &storage, "snapshot", &notes_text);
    let over = planner::restore_over_argv(&a.from, vmid);
    let commands = [display_line(&first), display_line(&over)];
    if a.dry_run {
        let notes = [format!(
            "dry run: when run for real, VM {vmid} must be stopped"
        )];
        return print(a.json, true, &commands, "", &notes);
    }
    let p = connect(defs, &a.conn, fence, !a.json)?;
    if p.status(vmid).map_err(err)?.status == "running" {
        return Err(refuse(BackupError::Running(a.name.clone())));
    }
    let mut output = run_remote(&p, &first).map_err(err)?;
    output.push_str(&run_remote(&p, &over).map_err(err)?);
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
