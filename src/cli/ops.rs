//! `vmctl ops`: Proxmox operations over SSH — the seed's `proxmox-ops`, with its command names
//! and positional arguments, plus snapshots, migration and protection.
//!
//! Every command reads the fleet (vms/definitions.nix) for the Proxmox connection and the
//! readonly/managed facts; the fences run before any connection is opened, and again in the
//! library. One SSH master connection serves the whole command. What a command does is
//! planned by `plan::ops` and run against any `Proxmox` by `run`; this file maps the command
//! line onto them.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use miette::IntoDiagnostic;

use super::Global;
use crate::exec::remote::wait_for_ssh;
use crate::model::Definitions;
use crate::plan::ops::{self, Read, Request};
use crate::proxmox::argv::CloneSpec;
use crate::proxmox::validate as valid;
use crate::proxmox::{Mutation, VmId};

mod conn;
mod examples;
mod run;
mod snapshot;

pub use conn::Conn;
use examples as ex;
pub use snapshot::SnapshotCommand;

pub(crate) use conn::connect;

use run::err;

/// Options of commands that only read.
#[derive(Debug, Clone, Args)]
pub struct ReadOpts {
    /// Print JSON instead of text (for scripts).
    #[arg(long)]
    pub json: bool,
    /// Print the read-only commands it would send (quoted as sent) and connect to nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub conn: Conn,
}

/// Options of commands that change the cluster.
#[derive(Debug, Clone, Args)]
pub struct WriteOpts {
    /// Print the exact remote command (argv, quoted as sent) and change nothing. The readonly
    /// and destroy fences are still checked; nothing connects to Proxmox.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object on stdout (docs/cli.md): `dry_run`, the `commands` sent (or
    /// that would be), the cluster's `output` and `notes`.
    #[arg(long)]
    pub json: bool,
    /// Allow changing a VMID that vms/definitions.nix does not list (refused otherwise).
    #[arg(long)]
    pub unlisted: bool,
    #[command(flatten)]
    pub conn: Conn,
}

// No doc comment on these two: clap would take it as the subcommand's description.
#[derive(Debug, Clone, Args)]
pub struct VmRead {
    #[arg(value_parser = valid::vmid, help = ex::VMID)]
    pub vmid: VmId,
    #[command(flatten)]
    pub opts: ReadOpts,
}

#[derive(Debug, Clone, Args)]
pub struct VmWrite {
    #[arg(value_parser = valid::vmid, help = ex::VMID)]
    pub vmid: VmId,
    #[command(flatten)]
    pub opts: WriteOpts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Subcommand)]
pub enum OpsCommand {
    /// List every VM of the cluster (all nodes), with what definitions.nix says about it.
    #[command(after_long_help = ex::LIST)]
    List(ReadOpts),
    /// Show a VM's power state (`status: running`).
    #[command(after_long_help = ex::STATUS)]
    Status(VmRead),
    /// Show a VM's configuration (`qm config`).
    #[command(after_long_help = ex::CONFIG)]
    Config(VmRead),
    /// Clone a template into a new VM (full clone unless --linked).
    ///
    /// Refused when NEW_VMID already exists in the cluster or is a readonly VM.
    #[command(after_long_help = ex::CLONE)]
    Clone {
        #[arg(value_parser = valid::vmid, help = ex::TEMPLATE_VMID)]
        template_vmid: VmId,
        #[arg(value_parser = valid::vmid, help = ex::NEW_VMID)]
        new_vmid: VmId,
        /// Name of the new VM (a DNS name).
        #[arg(value_parser = valid::vm_name)]
        name: String,
        /// Storage for the new disks (full clones only).
        #[arg(value_parser = valid::storage)]
        storage: Option<String>,
        /// Make a linked clone (shares the template's base disk; no STORAGE).
        #[arg(long, conflicts_with = "storage")]
        linked: bool,
        /// Create the VM on this node (needs shared storage).
        #[arg(long, value_name = "NODE", value_parser = valid::node)]
        target: Option<String>,
        /// Add the new VM to this resource pool.
        #[arg(long, value_name = "POOL", value_parser = valid::pool)]
        pool: Option<String>,
        /// Description (notes) of the new VM.
        #[arg(long, value_parser = valid::text)]
        description: Option<String>,
        #[command(flatten)]
        opts: WriteOpts,
    },
    /// Set a VM's cores and memory (MiB), plus any other `qm set` option with --set.
    #[command(after_long_help = ex::CONFIGURE)]
    Configure {
        #[arg(value_parser = valid::vmid, help = ex::VMID)]
        vmid: VmId,
        #[arg(value_parser = valid::cores, help = ex::CORES)]
        cores: u32,
        /// Memory in MiB (at least 16).
        #[arg(value_parser = valid::memory)]
        memory: u64,
        /// Another `qm set` option, e.g. `--set ciuser=root --set ipconfig0=ip=dhcp`. Secret
        /// values (`cipassword`, tokens) are shown as `<redacted>`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[command(flatten)]
        opts: WriteOpts,
    },
    /// Allocate a new disk: SIZE in GiB (`20G`), on STORAGE (default: definitions.nix
    /// `proxmox.storage`), as DISK (default scsi0).
    #[command(after_long_help = ex::CREATE_DISK)]
    CreateDisk {
        #[arg(value_parser = valid::vmid, help = ex::VMID)]
        vmid: VmId,
        #[arg(value_parser = valid::disk_size, help = ex::DISK_SIZE)]
        size: String,
        #[arg(value_parser = valid::storage, help = ex::STORAGE_ID)]
        storage: Option<String>,
        #[arg(value_parser = valid::disk, help = ex::NEW_DISK)]
        disk: Option<String>,
        #[command(flatten)]
        opts: WriteOpts,
    },
    /// Grow a disk: SIZE `+10G` grows by, `40G` grows to (Proxmox never shrinks).
    #[command(after_long_help = ex::RESIZE)]
    Resize {
        #[arg(value_parser = valid::vmid, help = ex::VMID)]
        vmid: VmId,
        #[arg(value_parser = valid::disk, help = ex::DISK)]
        disk: String,
        #[arg(value_parser = valid::resize_size, help = ex::RESIZE_SIZE)]
        size: String,
        #[command(flatten)]
        opts: WriteOpts,
    },
    /// Restore a vzdump archive (path on the Proxmox host) as a new VM.
    #[command(after_long_help = ex::RESTORE_VMA)]
    RestoreVma {
        #[arg(value_parser = valid::archive, help = ex::ARCHIVE)]
        archive: String,
        #[arg(value_parser = valid::vmid, help = ex::VMID)]
        vmid: VmId,
        #[arg(value_parser = valid::storage, help = ex::STORAGE_ID)]
        storage: Option<String>,
        #[command(flatten)]
        opts: WriteOpts,
    },
    /// Add a serial socket (serial0) so `console` has a terminal.
    #[command(after_long_help = ex::SERIAL_SOCKET)]
    SerialSocket(VmWrite),
    /// Start a VM.
    #[command(after_long_help = ex::START)]
    Start(VmWrite),
    /// Stop a VM at once (like pulling the plug).
    #[command(after_long_help = ex::STOP)]
    Stop(VmWrite),
    /// Shut a VM down cleanly (ACPI / guest agent).
    #[command(after_long_help = ex::SHUTDOWN)]
    Shutdown(VmWrite),
    /// Convert a VM into a template.
    #[command(after_long_help = ex::TEMPLATE)]
    Template(VmWrite),
    /// Attach to a VM's serial console (interactive; Ctrl+O leaves). Fenced like a change:
    /// refused for readonly and unlisted VMs.
    #[command(after_long_help = ex::CONSOLE)]
    Console {
        #[arg(value_parser = valid::vmid, help = ex::VMID)]
        vmid: VmId,
        /// Allow a VMID that vms/definitions.nix does not list.
        #[arg(long)]
        unlisted: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Destroy a VM and its disks. Only VMs definitions.nix lists under `managed`, and only
    /// with their name confirmed.
    #[command(after_long_help = ex::DESTROY)]
    Destroy {
        #[arg(value_parser = valid::vmid, help = ex::VMID)]
        vmid: VmId,
        /// The VM's name as definitions.nix spells it.
        #[arg(long, value_name = "NAME", value_parser = valid::text)]
        confirm: Option<String>,
        #[command(flatten)]
        opts: WriteOpts,
    },
    /// Print a VM's IP address: the guest agent's on net0, else the host's neighbour table.
    #[command(after_long_help = ex::GET_IP)]
    GetIp(VmRead),
    /// Wait until an SSH server answers on IP (default: 300 s). USER is accepted for the
    /// seed's habits; readiness is the SSH banner, no login is tried.
    #[command(after_long_help = ex::WAIT_SSH)]
    WaitSsh {
        #[arg(help = ex::IP)]
        ip: IpAddr,
        /// Seconds to wait.
        #[arg(value_parser = valid::seconds)]
        timeout: Option<u64>,
        #[arg(value_parser = valid::user, help = ex::USER)]
        user: Option<String>,
        /// SSH port on the VM.
        #[arg(long, default_value_t = 22, value_parser = valid::port)]
        port: u16,
    },
    /// Show the cluster's storages and their free space.
    #[command(after_long_help = ex::STORAGE)]
    Storage(ReadOpts),
    /// Print the lowest VMID in START..=END used neither by the cluster nor by
    /// definitions.nix (default: the `managed` vmidRange).
    #[command(after_long_help = ex::NEXT_VMID)]
    NextVmid {
        #[arg(value_parser = valid::vmid, help = ex::VMID)]
        start: Option<VmId>,
        #[arg(value_parser = valid::vmid, help = ex::VMID)]
        end: Option<VmId>,
        #[command(flatten)]
        opts: ReadOpts,
    },
    /// Snapshots: create, list, rollback, delete.
    #[command(subcommand)]
    #[command(after_long_help = ex::SNAPSHOT)]
    Snapshot(SnapshotCommand),
    /// Move a VM to another node of the cluster.
    #[command(after_long_help = ex::MIGRATE)]
    Migrate {
        #[arg(value_parser = valid::vmid, help = ex::VMID)]
        vmid: VmId,
        #[arg(value_parser = valid::node, help = ex::NODE)]
        node: String,
        /// Live-migrate a running VM.
        #[arg(long)]
        online: bool,
        #[command(flatten)]
        opts: WriteOpts,
    },
    /// Turn Proxmox's protection (blocks removal of the VM and its disks) on or off.
    ///
    /// `--readonly-vms` turns it on for every readonly VM of definitions.nix (the one change
    /// vmctl makes to them), so the web UI and other tools respect the fence too.
    #[command(after_long_help = ex::PROTECT)]
    Protect {
        #[arg(required_unless_present = "readonly_vms", value_parser = valid::vmid, help = ex::VMID)]
        vmid: Option<VmId>,
        #[arg(value_enum, required_unless_present = "readonly_vms")]
        state: Option<OnOff>,
        /// Protect every readonly VM definitions.nix lists.
        #[arg(long, conflicts_with_all = ["vmid", "state"])]
        readonly_vms: bool,
        #[command(flatten)]
        opts: WriteOpts,
    },
}

pub fn run(args: OpsCommand, g: &Global) -> miette::Result<u8> {
    use OpsCommand as C;
    if let C::WaitSsh {
        ip,
        timeout,
        user,
        port,
    } = args
    {
        // Needs no fleet: it talks to the VM, not to Proxmox.
        return wait_ssh(ip, timeout, user, port);
    }
    let loaded = super::load_fleet(g, false)?;
    let defs = loaded.definitions;
    if let C::Console {
        vmid,
        unlisted,
        conn,
    } = args
    {
        return console(&defs, vmid, unlisted, &conn);
    }
    let (req, opts) = request(args);
    let plan = ops::plan(req, &defs, opts.unlisted).map_err(err)?;
    let mode = run::Mode {
        dry_run: opts.dry_run,
        json: opts.json,
    };
    let connect = |fence, announce| connect(&defs, &opts.conn, fence, announce);
    run::execute(&plan, mode, connect, &mut run::Stdio)
}

/// The options of one command, read or write.
struct Opts {
    json: bool,
    dry_run: bool,
    unlisted: bool,
    conn: Conn,
}

impl From<ReadOpts> for Opts {
    fn from(o: ReadOpts) -> Self {
        Opts {
            json: o.json,
            dry_run: o.dry_run,
            unlisted: false,
            conn: o.conn,
        }
    }
}

impl From<WriteOpts> for Opts {
    fn from(o: WriteOpts) -> Self {
        Opts {
            json: o.json,
            dry_run: o.dry_run,
            unlisted: o.unlisted,
            conn: o.conn,
        }
    }
}

/// The command line as a planner request; the decisions are the planner's.
fn request(args: OpsCommand) -> (Request, Opts) {
    use OpsCommand as C;
    use SnapshotCommand as S;
    let read = |r, o: ReadOpts| (Request::Read(r), o.into());
    let change = |m, o: WriteOpts| (Request::Change(m), o.into());
    match args {
        C::List(o) => read(Read::List, o),
        C::Status(a) => read(Read::Status(a.vmid), a.opts),
        C::Config(a) => read(Read::Config(a.vmid), a.opts),
        C::GetIp(a) => read(Read::GetIp(a.vmid), a.opts),
        C::Storage(o) => read(Read::Storage, o),
        C::Snapshot(S::List(a)) => read(Read::Snapshots(a.vmid), a.opts),
        C::NextVmid { start, end, opts } => (Request::NextVmid { start, end }, opts.into()),
        C::Console { .. } | C::WaitSsh { .. } => unreachable!("handled before planning"),
        C::Clone {
            template_vmid,
            new_vmid,
            name,
            storage,
            linked,
            target,
            pool,
            description,
            opts,
        } => change(
            Mutation::Clone(CloneSpec {
                source: template_vmid,
                vmid: new_vmid,
                name,
                full: !linked,
                storage,
                target,
                pool,
                description,
            }),
            opts,
        ),
        C::Configure {
            vmid,
            cores,
            memory,
            set,
            opts,
        } => (
            Request::Configure {
                vmid,
                cores,
                memory,
                set,
            },
            opts.into(),
        ),
        C::CreateDisk {
            vmid,
            size,
            storage,
            disk,
            opts,
        } => (
            Request::CreateDisk {
                vmid,
                size,
                storage,
                disk,
            },
            opts.into(),
        ),
        C::Resize {
            vmid,
            disk,
            size,
            opts,
        } => change(Mutation::Resize { vmid, disk, size }, opts),
        C::RestoreVma {
            archive,
            vmid,
            storage,
            opts,
        } => change(
            Mutation::RestoreVma {
                archive,
                vmid,
                storage,
            },
            opts,
        ),
        C::SerialSocket(a) => change(Mutation::SerialSocket { vmid: a.vmid }, a.opts),
        C::Start(a) => change(Mutation::Start { vmid: a.vmid }, a.opts),
        C::Stop(a) => change(Mutation::Stop { vmid: a.vmid }, a.opts),
        C::Shutdown(a) => change(Mutation::Shutdown { vmid: a.vmid }, a.opts),
        C::Template(a) => change(Mutation::Template { vmid: a.vmid }, a.opts),
        C::Destroy {
            vmid,
            confirm,
            opts,
        } => change(Mutation::Destroy { vmid, confirm }, opts),
        C::Snapshot(S::Create {
            vmid,
            name,
            description,
            vmstate,
            opts,
        }) => change(
            Mutation::SnapshotCreate {
                vmid,
                name,
                description,
                vmstate,
            },
            opts,
        ),
        C::Snapshot(S::Rollback(a)) => change(
            Mutation::SnapshotRollback {
                vmid: a.vmid,
                name: a.name,
            },
            a.opts,
        ),
        C::Snapshot(S::Delete(a)) => change(
            Mutation::SnapshotDelete {
                vmid: a.vmid,
                name: a.name,
            },
            a.opts,
        ),
        C::Migrate {
            vmid,
            node,
            online,
            opts,
        } => (
            Request::Migrate {
                vmid,
                target: node,
                online,
            },
            opts.into(),
        ),
        C::Protect {
            readonly_vms: true,
            opts,
            ..
        } => (Request::ProtectReadonly, opts.into()),
        C::Protect {
            vmid, state, opts, ..
        } => (
            Request::Protect {
                vmid,
                on: state.map(|s| s == OnOff::On),
            },
            opts.into(),
        ),
    }
}

/// `console VMID`: interactive, so it runs over SSH only; the fence refuses before connecting.
fn console(defs: &Definitions, vmid: VmId, unlisted: bool, conn: &Conn) -> miette::Result<u8> {
    let (fence, argv) = ops::console(defs, vmid, unlisted).map_err(err)?;
    let p = connect(defs, conn, fence, false)?;
    // A VM of another node has no serial console through this connection.
    p.check_console(vmid).map_err(err)?;
    let status = p
        .remote()
        .0
        .interactive_command(&argv)
        .interactive()
        .into_diagnostic()?;
    // Exit codes mean the same in every command (docs/cli.md): the session's own status
    // (ssh's 255, the terminal's) is named in the error, not passed through.
    if !status.success() {
        return Err(miette::miette!(
            "the console session of VM {vmid} ended with {status}; check that the VM has a \
             serial socket (`vmctl ops serial-socket {vmid}`) and that ssh reaches the host"
        ));
    }
    Ok(0)
}

fn wait_ssh(
    ip: IpAddr,
    timeout: Option<u64>,
    user: Option<String>,
    port: u16,
) -> miette::Result<u8> {
    let timeout = Duration::from_secs(timeout.unwrap_or(300));
    let addr = SocketAddr::new(ip, port);
    super::ui::info(&format!(
        "waiting up to {}s for SSH on {addr}{}",
        timeout.as_secs(),
        user.map(|u| format!(" (user {u})")).unwrap_or_default()
    ));
    let took = wait_for_ssh(addr, timeout, Duration::from_secs(2)).map_err(err)?;
    println!("ssh is up on {addr} after {:.1}s", took.as_secs_f32());
    Ok(0)
}
