//! `vmctl ops`: Proxmox operations over SSH — the seed's `proxmox-ops`, with its command names
//! and positional arguments, plus snapshots, migration and protection.
//!
//! Every command reads the fleet (vms/definitions.nix) for the Proxmox connection and the
//! readonly/managed facts; the fences run before any connection is opened, and again in the
//! library. One SSH master connection serves the whole command.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use miette::{miette, IntoDiagnostic};
use serde::Serialize;

use super::Global;
use crate::exec::fleet;
use crate::exec::proxmox::{Proxmox, QmProxmox};
use crate::exec::remote::{wait_for_ssh, Remote, SshRemote};
use crate::model::Definitions;
use crate::proxmox::argv::{self, parse_size_gib, CloneSpec};
use crate::proxmox::redact::display_line;
use crate::proxmox::ssh::SshTarget;
use crate::proxmox::validate as valid;
use crate::proxmox::{strip_control, Fence, Mutation, RetryPolicy, VmId, VMID_MAX, VMID_MIN};

/// How to reach Proxmox and how patient to be with its locks.
#[derive(Debug, Clone, Args)]
pub struct Conn {
    /// An ssh_config file to use instead of ~/.ssh/config (host alias, port, identity,
    /// UserKnownHostsFile). The host, user and port come from definitions.nix `proxmox`.
    #[arg(long, value_name = "FILE", env = "VMCTL_SSH_CONFIG")]
    pub ssh_config: Option<PathBuf>,
    /// How often to retry a command that hit a Proxmox lock ("can't lock file … got
    /// timeout", "VM is locked"): 0 to 100; 0 disables retries.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 5,
        env = "VMCTL_LOCK_RETRIES",
        value_parser = valid::lock_retries
    )]
    pub lock_retries: u32,
    /// First wait before a lock retry, in milliseconds (1 to 10000); it doubles each retry
    /// (at most 10x).
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 2000,
        env = "VMCTL_LOCK_BACKOFF_MS",
        value_parser = valid::lock_backoff_ms
    )]
    pub lock_backoff_ms: u64,
}

/// Options of commands that only read.
#[derive(Debug, Clone, Args)]
pub struct ReadOpts {
    /// Print JSON instead of text (for scripts).
    #[arg(long)]
    pub json: bool,
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
    /// Allow changing a VMID that vms/definitions.nix does not list (refused otherwise).
    #[arg(long)]
    pub unlisted: bool,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Subcommand)]
pub enum OpsCommand {
    /// List every VM of the cluster (all nodes), with what definitions.nix says about it.
    List(ReadOpts),
    /// Show a VM's power state (`status: running`).
    Status {
        #[arg(value_parser = valid::vmid)]
        vmid: VmId,
        #[command(flatten)]
        opts: ReadOpts,
    },
    /// Show a VM's configuration (`qm config`).
    Config {
        #[arg(value_parser = valid::vmid)]
        vmid: VmId,
        #[command(flatten)]
        opts: ReadOpts,
    },
    /// Clone a template into a new VM (full clone unless --linked).
    ///
    /// Refused when NEW_VMID already exists in the cluster or is a readonly VM.
    Clone {
        #[arg(value_parser = valid::vmid)]
        template_vmid: VmId,
        #[arg(value_parser = valid::vmid)]
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
    Configure {
        #[arg(value_parser = valid::vmid)]
        vmid: VmId,
        #[arg(value_parser = valid::cores)]
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
    CreateDisk {
        #[arg(value_parser = valid::vmid)]
        vmid: VmId,
        #[arg(value_parser = valid::disk_size)]
        size: String,
        #[arg(value_parser = valid::storage)]
        storage: Option<String>,
        #[arg(value_parser = valid::disk)]
        disk: Option<String>,
        #[command(flatten)]
        opts: WriteOpts,
    },
    /// Grow a disk: SIZE `+10G` grows by, `40G` grows to (Proxmox never shrinks).
    Resize {
        #[arg(value_parser = valid::vmid)]
        vmid: VmId,
        #[arg(value_parser = valid::disk)]
        disk: String,
        #[arg(value_parser = valid::resize_size)]
        size: String,
        #[command(flatten)]
        opts: WriteOpts,
    },
    /// Restore a vzdump archive (path on the Proxmox host) as a new VM.
    RestoreVma {
        #[arg(value_parser = valid::archive)]
        archive: String,
        #[arg(value_parser = valid::vmid)]
        vmid: VmId,
        #[arg(value_parser = valid::storage)]
        storage: Option<String>,
        #[command(flatten)]
        opts: WriteOpts,
    },
    /// Add a serial socket (serial0) so `console` has a terminal.
    SerialSocket {
        #[arg(value_parser = valid::vmid)]
        vmid: VmId,
        #[command(flatten)]
        opts: WriteOpts,
    },
    /// Start a VM.
    Start {
        #[arg(value_parser = valid::vmid)]
        vmid: VmId,
        #[command(flatten)]
        opts: WriteOpts,
    },
    /// Stop a VM at once (like pulling the plug).
    Stop {
        #[arg(value_parser = valid::vmid)]
        vmid: VmId,
        #[command(flatten)]
        opts: WriteOpts,
    },
    /// Shut a VM down cleanly (ACPI / guest agent).
    Shutdown {
        #[arg(value_parser = valid::vmid)]
        vmid: VmId,
        #[command(flatten)]
        opts: WriteOpts,
    },
    /// Convert a VM into a template.
    Template {
        #[arg(value_parser = valid::vmid)]
        vmid: VmId,
        #[command(flatten)]
        opts: WriteOpts,
    },
    /// Attach to a VM's serial console (interactive; Ctrl+O leaves). Fenced like a change:
    /// refused for readonly and unlisted VMs.
    Console {
        #[arg(value_parser = valid::vmid)]
        vmid: VmId,
        /// Allow a VMID that vms/definitions.nix does not list.
        #[arg(long)]
        unlisted: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Destroy a VM and its disks. Only VMs definitions.nix lists under `managed`, and only
    /// with their name confirmed.
    Destroy {
        #[arg(value_parser = valid::vmid)]
        vmid: VmId,
        /// The VM's name as definitions.nix spells it.
        #[arg(long, value_name = "NAME", value_parser = valid::text)]
        confirm: Option<String>,
        #[command(flatten)]
        opts: WriteOpts,
    },
    /// Print a VM's IP address: the guest agent's on net0, else the host's neighbour table.
    GetIp {
        #[arg(value_parser = valid::vmid)]
        vmid: VmId,
        #[command(flatten)]
        opts: ReadOpts,
    },
    /// Wait until an SSH server answers on IP (default: 300 s). USER is accepted for the
    /// seed's habits; readiness is the SSH banner, no login is tried.
    WaitSsh {
        ip: IpAddr,
        /// Seconds to wait.
        #[arg(value_parser = valid::seconds)]
        timeout: Option<u64>,
        #[arg(value_parser = valid::user)]
        user: Option<String>,
        /// SSH port on the VM.
        #[arg(long, default_value_t = 22, value_parser = valid::port)]
        port: u16,
    },
    /// Show the cluster's storages and their free space.
    Storage(ReadOpts),
    /// Print the lowest VMID in START..=END used neither by the cluster nor by
    /// definitions.nix (default: the `managed` vmidRange).
    NextVmid {
        #[arg(value_parser = valid::vmid)]
        start: Option<VmId>,
        #[arg(value_parser = valid::vmid)]
        end: Option<VmId>,
        #[command(flatten)]
        opts: ReadOpts,
    },
    /// Snapshots: create, list, rollback, delete.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Move a VM to another node of the cluster.
    Migrate {
        #[arg(value_parser = valid::vmid)]
        vmid: VmId,
        #[arg(value_parser = valid::node)]
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
    Protect {
        #[arg(required_unless_present = "readonly_vms", value_parser = valid::vmid)]
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

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Take a snapshot.
    Create {
        #[arg(value_parser = valid::vmid)]
        vmid: VmId,
        #[arg(value_parser = valid::snapshot_name)]
        name: String,
        #[arg(long, value_parser = valid::text)]
        description: Option<String>,
        /// Include the RAM of a running VM.
        #[arg(long)]
        vmstate: bool,
        #[command(flatten)]
        opts: WriteOpts,
    },
    /// List a VM's snapshots.
    List {
        #[arg(value_parser = valid::vmid)]
        vmid: VmId,
        #[command(flatten)]
        opts: ReadOpts,
    },
    /// Roll a VM back to a snapshot (the VM is stopped).
    Rollback {
        #[arg(value_parser = valid::vmid)]
        vmid: VmId,
        #[arg(value_parser = valid::snapshot_name)]
        name: String,
        #[command(flatten)]
        opts: WriteOpts,
    },
    /// Delete a snapshot.
    Delete {
        #[arg(value_parser = valid::vmid)]
        vmid: VmId,
        #[arg(value_parser = valid::snapshot_name)]
        name: String,
        #[command(flatten)]
        opts: WriteOpts,
    },
}

pub fn run(args: OpsCommand, g: &Global) -> miette::Result<u8> {
    if let OpsCommand::WaitSsh {
        ip,
        timeout,
        user,
        port,
    } = args
    {
        // Needs no fleet: it talks to the VM, not to Proxmox.
        return wait_ssh(ip, timeout, user, port);
    }
    let loaded = fleet::load(g.fleet.as_deref())?;
    let defs = loaded.definitions;
    match plan(args, &defs)? {
        Plan::Read(read, opts) => {
            let p = connect(&defs, &opts.conn, false)?;
            read_and_print(&p, read, opts.json)
        }
        Plan::Write(m, opts) => write(&defs, m, &opts),
        Plan::ProtectReadonly(opts) => protect_readonly(&defs, &opts),
        Plan::Console(vmid, unlisted, conn) => {
            // Refuse before connecting, like every mutation.
            fence(&defs, unlisted)
                .check_console(vmid)
                .map_err(|e| miette!("{e}"))?;
            let p = connect(&defs, &conn, unlisted)?;
            let status = p
                .remote()
                .interactive_command(&argv::console(vmid))
                .status()
                .into_diagnostic()?;
            Ok(status
                .code()
                .and_then(|c| u8::try_from(c).ok())
                .unwrap_or(1))
        }
    }
}

enum Read {
    List,
    Status(VmId),
    Config(VmId),
    GetIp(VmId),
    Storage,
    NextVmid(VmId, VmId),
    Snapshots(VmId),
}

enum Plan {
    Read(Read, ReadOpts),
    Write(Mutation, WriteOpts),
    /// `protect --readonly-vms`.
    ProtectReadonly(WriteOpts),
    Console(VmId, bool, Conn),
}

/// Turns the command line into a read or a mutation (pure but for the defaults it reads).
fn plan(args: OpsCommand, defs: &Definitions) -> miette::Result<Plan> {
    use OpsCommand as C;
    let w = |m, o| Ok(Plan::Write(m, o));
    match args {
        C::List(o) => Ok(Plan::Read(Read::List, o)),
        C::Status { vmid, opts } => Ok(Plan::Read(Read::Status(vmid), opts)),
        C::Config { vmid, opts } => Ok(Plan::Read(Read::Config(vmid), opts)),
        C::GetIp { vmid, opts } => Ok(Plan::Read(Read::GetIp(vmid), opts)),
        C::Storage(o) => Ok(Plan::Read(Read::Storage, o)),
        C::NextVmid { start, end, opts } => {
            let managed = defs.vmid_ranges.iter().find(|r| r.name == "managed");
            let start = start.or(managed.map(|r| r.start)).unwrap_or(VMID_MIN);
            let end = end.or(managed.map(|r| r.end)).unwrap_or(VMID_MAX);
            if start > end {
                return Err(miette!("START ({start}) is above END ({end})"));
            }
            Ok(Plan::Read(Read::NextVmid(start, end), opts))
        }
        C::Snapshot(SnapshotCommand::List { vmid, opts }) => {
            Ok(Plan::Read(Read::Snapshots(vmid), opts))
        }
        C::Console {
            vmid,
            unlisted,
            conn,
        } => Ok(Plan::Console(vmid, unlisted, conn)),
        C::WaitSsh { .. } => unreachable!("handled before the fleet is loaded"),
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
        } => w(
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
        } => {
            let mut options = vec![
                ("cores".to_string(), cores.to_string()),
                ("memory".to_string(), memory.to_string()),
            ];
            for kv in &set {
                // Parsed here, not by clap: clap would echo a malformed value, which may be a
                // secret.
                let pair =
                    valid::key_value(kv).map_err(|e| miette!("invalid value for --set: {e}"))?;
                options.push(pair);
            }
            w(Mutation::Configure { vmid, options }, opts)
        }
        C::CreateDisk {
            vmid,
            size,
            storage,
            disk,
            opts,
        } => {
            let size_gib = parse_size_gib(&size).ok_or_else(|| {
                miette!("disk size `{size}` is not whole GiB; write it like `20G`")
            })?;
            let storage = storage.or(defs.proxmox.storage.clone()).ok_or_else(|| {
                miette!(
                    "no storage given and definitions.nix has no `proxmox.storage`; pass STORAGE"
                )
            })?;
            w(
                Mutation::CreateDisk {
                    vmid,
                    disk: disk.unwrap_or_else(|| "scsi0".into()),
                    storage,
                    size_gib,
                },
                opts,
            )
        }
        C::Resize {
            vmid,
            disk,
            size,
            opts,
        } => w(Mutation::Resize { vmid, disk, size }, opts),
        C::RestoreVma {
            archive,
            vmid,
            storage,
            opts,
        } => w(
            Mutation::RestoreVma {
                archive,
                vmid,
                storage,
            },
            opts,
        ),
        C::SerialSocket { vmid, opts } => w(Mutation::SerialSocket { vmid }, opts),
        C::Start { vmid, opts } => w(Mutation::Start { vmid }, opts),
        C::Stop { vmid, opts } => w(Mutation::Stop { vmid }, opts),
        C::Shutdown { vmid, opts } => w(Mutation::Shutdown { vmid }, opts),
        C::Template { vmid, opts } => w(Mutation::Template { vmid }, opts),
        C::Destroy {
            vmid,
            confirm,
            opts,
        } => w(Mutation::Destroy { vmid, confirm }, opts),
        C::Snapshot(SnapshotCommand::Create {
            vmid,
            name,
            description,
            vmstate,
            opts,
        }) => w(
            Mutation::SnapshotCreate {
                vmid,
                name,
                description,
                vmstate,
            },
            opts,
        ),
        C::Snapshot(SnapshotCommand::Rollback { vmid, name, opts }) => {
            w(Mutation::SnapshotRollback { vmid, name }, opts)
        }
        C::Snapshot(SnapshotCommand::Delete { vmid, name, opts }) => {
            w(Mutation::SnapshotDelete { vmid, name }, opts)
        }
        C::Migrate {
            vmid,
            node,
            online,
            opts,
        } => w(
            Mutation::Migrate {
                vmid,
                target: node,
                online,
            },
            opts,
        ),
        C::Protect {
            readonly_vms: true,
            opts,
            ..
        } => Ok(Plan::ProtectReadonly(opts)),
        C::Protect {
            vmid: Some(vmid),
            state: Some(state),
            opts,
            ..
        } => w(
            Mutation::Protect {
                vmid,
                on: state == OnOff::On,
            },
            opts,
        ),
        C::Protect { .. } => Err(miette!(
            "protect needs VMID and on|off, or --readonly-vms; see `vmctl ops protect --help`"
        )),
    }
}

fn retry_policy(c: &Conn) -> RetryPolicy {
    let initial = Duration::from_millis(c.lock_backoff_ms);
    RetryPolicy {
        retries: c.lock_retries,
        initial,
        max: initial.saturating_mul(10),
    }
}

fn fence(defs: &Definitions, unlisted: bool) -> Fence {
    Fence::from_definitions(defs).allow_unlisted(unlisted)
}

fn connect(
    defs: &Definitions,
    conn: &Conn,
    unlisted: bool,
) -> miette::Result<QmProxmox<SshRemote>> {
    let target = SshTarget::from_proxmox(&defs.proxmox, conn.ssh_config.clone())
        .map_err(|e| miette!("{e}"))?;
    let remote = SshRemote::connect(&target).map_err(|e| miette!("{e}"))?;
    Ok(
        QmProxmox::new(remote, fence(defs, unlisted), retry_policy(conn))
            .with_reporter(Box::new(|m| eprintln!("proxmox lock: {m}"))),
    )
}

/// `protect --readonly-vms`: protection on for every readonly VM the cluster has.
fn protect_readonly(defs: &Definitions, opts: &WriteOpts) -> miette::Result<u8> {
    let fence = fence(defs, false);
    let targets: Vec<(VmId, String)> = fence
        .readonly_vms()
        .map(|(id, k)| (id, k.name.clone()))
        .collect();
    // Checked before connecting: an undetermined VMID refuses this too.
    for (vmid, _) in &targets {
        fence
            .check(&Mutation::Protect {
                vmid: *vmid,
                on: true,
            })
            .map_err(err)?;
    }
    if targets.is_empty() {
        eprintln!("definitions.nix marks no VM readonly; nothing to protect");
        return Ok(0);
    }
    if opts.dry_run {
        for (vmid, _) in &targets {
            println!(
                "{}",
                display_line(
                    &Mutation::Protect {
                        vmid: *vmid,
                        on: true
                    }
                    .argv()
                )
            );
        }
        eprintln!(
            "dry run: when run for real, vmctl skips readonly VMs the cluster does not have or \
             that are already protected"
        );
        return Ok(0);
    }
    let p = connect(defs, &opts.conn, false)?;
    let on_cluster: BTreeSet<VmId> = p.list().map_err(err)?.iter().map(|r| r.vmid).collect();
    // One VM failing (another node's VM, a lock) does not stop the others; the exit code says.
    let mut failed = 0;
    for (vmid, name) in &targets {
        if !on_cluster.contains(vmid) {
            eprintln!("VM {vmid} ({name}): not on the cluster, skipped");
            continue;
        }
        let done = p.config(*vmid).and_then(|c| {
            if c.protected() {
                return Ok(false);
            }
            p.apply(&Mutation::Protect {
                vmid: *vmid,
                on: true,
            })
            .map(|_| true)
        });
        match done {
            Ok(false) => println!("VM {vmid} ({name}): already protected"),
            Ok(true) => println!("VM {vmid} ({name}): protection on"),
            Err(e) => {
                failed += 1;
                eprintln!("VM {vmid} ({name}): {e}");
            }
        }
    }
    if failed > 0 {
        return Err(miette!(
            "{failed} readonly VM{} could not be protected; see above, fix the cause and run \
             `vmctl ops protect --readonly-vms` again",
            if failed == 1 { "" } else { "s" }
        ));
    }
    Ok(0)
}

fn write(defs: &Definitions, m: Mutation, opts: &WriteOpts) -> miette::Result<u8> {
    // Refuse before connecting: a fenced VM never sees a connection attempt.
    let fence = fence(defs, opts.unlisted);
    fence.check(&m).map_err(|e| miette!("{e}"))?;
    // Secrets (`--set cipassword=…`) are shown as `<redacted>`, here and in every error.
    let line = display_line(&m.argv());
    if opts.dry_run {
        println!("{line}");
        if Fence::needs_cluster_check(&m) {
            eprintln!(
                "dry run: when run for real, vmctl first checks that VMID {} is free in the cluster",
                m.vmid()
            );
        }
        if Fence::needs_live_check(&m) {
            eprintln!(
                "dry run: when run for real, vmctl first reads VM {} and refuses unless its name \
                 is the one definitions.nix gives, it is not a template and protection is off",
                m.vmid()
            );
        }
        return Ok(0);
    }
    let p = connect(defs, &opts.conn, opts.unlisted)?;
    let target = p.remote().target();
    let p = p.with_on_send(Box::new(move |line| {
        eprintln!("running on {target}: {line}")
    }));
    let out = p.apply(&m).map_err(|e| miette!("{e}"))?;
    print!(
        "{}",
        strip_control(&crate::proxmox::redact::scrub(
            &out,
            &crate::proxmox::redact::secrets(&m.argv())
        ))
    );
    Ok(0)
}

fn print_json<T: Serialize>(v: &T) -> miette::Result<u8> {
    println!("{}", serde_json::to_string_pretty(v).into_diagnostic()?);
    Ok(0)
}

fn err(e: impl std::fmt::Display) -> miette::Report {
    miette!("{e}")
}

fn read_and_print(p: &QmProxmox<SshRemote>, read: Read, json: bool) -> miette::Result<u8> {
    match read {
        Read::List => {
            let list = p.list().map_err(err)?;
            // Protection is not in the cluster list: read it for the readonly VMs only (few),
            // so the list shows which of them the web UI could still change.
            let mut protected = std::collections::BTreeMap::new();
            for vm in &list {
                if p.fence().known(vm.vmid).is_some_and(|k| k.readonly) {
                    // A read that fails (a VM `qm` cannot see from this node) leaves it
                    // unknown rather than failing the whole list.
                    protected.insert(vm.vmid, p.config(vm.vmid).ok().map(|c| c.protected()));
                }
            }
            let fleet = |vmid| match (p.fence().known(vmid), protected.get(&vmid)) {
                (Some(k), Some(Some(false))) => {
                    format!("{} (readonly, unprotected)", k.kind.as_str())
                }
                (Some(k), Some(None)) => {
                    format!("{} (readonly, protection unknown)", k.kind.as_str())
                }
                (Some(k), _) if k.readonly => format!("{} (readonly)", k.kind.as_str()),
                (Some(k), _) => k.kind.as_str().to_string(),
                (None, _) => "-".into(),
            };
            let unprotected: Vec<String> = protected
                .iter()
                .filter(|(_, on)| **on == Some(false))
                .map(|(id, _)| id.to_string())
                .collect();
            if !unprotected.is_empty() {
                eprintln!(
                    "readonly VMs without Proxmox protection: {}; `vmctl ops protect \
                     --readonly-vms` turns it on so other tools respect the fence too",
                    unprotected.join(", ")
                );
            }
            if json {
                #[derive(Serialize)]
                struct Row<'a> {
                    #[serde(flatten)]
                    vm: &'a crate::proxmox::VmResource,
                    fleet: Option<&'static str>,
                    readonly: bool,
                    /// Proxmox protection, read for readonly VMs only.
                    #[serde(skip_serializing_if = "Option::is_none")]
                    protected: Option<bool>,
                }
                let rows: Vec<Row> = list
                    .iter()
                    .map(|vm| {
                        let d = p.fence().known(vm.vmid);
                        Row {
                            vm,
                            fleet: d.map(|d| d.kind.as_str()),
                            readonly: d.is_some_and(|d| d.readonly),
                            protected: protected.get(&vm.vmid).copied().flatten(),
                        }
                    })
                    .collect();
                return print_json(&rows);
            }
            println!(
                "{:>9}  {:<24} {:<8} {:<9} {:<10} FLEET",
                "VMID", "NAME", "NODE", "STATUS", "NOTE"
            );
            for vm in &list {
                let note = match (&vm.lock, vm.template) {
                    (Some(l), _) => format!("lock:{l}"),
                    (None, true) => "template".into(),
                    _ => String::new(),
                };
                // Everything the cluster sent is stripped of terminal control sequences.
                println!(
                    "{:>9}  {:<24} {:<8} {:<9} {:<10} {}",
                    vm.vmid,
                    strip_control(vm.name.as_deref().unwrap_or("")),
                    strip_control(&vm.node),
                    strip_control(&vm.status),
                    strip_control(&note),
                    fleet(vm.vmid)
                );
            }
        }
        Read::Status(vmid) => {
            let s = p.status(vmid).map_err(err)?;
            if json {
                return print_json(&s);
            }
            println!("status: {}", strip_control(&s.status));
        }
        Read::Config(vmid) => {
            let c = p.config(vmid).map_err(err)?;
            if json {
                let map: serde_json::Map<String, serde_json::Value> = c
                    .entries
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect();
                return print_json(&map);
            }
            for (k, v) in &c.entries {
                println!("{}: {}", strip_control(k), strip_control(v));
            }
        }
        Read::GetIp(vmid) => {
            let ip = p.get_ip(vmid).map_err(err)?;
            if json {
                return print_json(&ip);
            }
            eprintln!(
                "VM {vmid} (MAC {}): found by the {}",
                ip.mac,
                match ip.source {
                    crate::proxmox::IpSource::GuestAgent => "guest agent",
                    crate::proxmox::IpSource::NeighbourTable => "Proxmox host's neighbour table",
                }
            );
            println!("{}", ip.address);
        }
        Read::Storage => {
            let s = p.storage().map_err(err)?;
            if json {
                return print_json(&s);
            }
            println!(
                "{:<16} {:<10} {:<8} {:>12} {:>12} {:>7}",
                "NAME", "TYPE", "STATUS", "FREE(GiB)", "TOTAL(GiB)", "USED"
            );
            for st in &s {
                println!(
                    "{:<16} {:<10} {:<8} {:>12.1} {:>12.1} {:>6.1}%",
                    strip_control(&st.name),
                    strip_control(&st.kind),
                    strip_control(&st.status),
                    st.available as f64 / 1048576.0,
                    st.total as f64 / 1048576.0,
                    st.percent
                );
            }
        }
        Read::NextVmid(start, end) => {
            let id = p.next_vmid(start, end).map_err(err)?;
            if json {
                return print_json(&serde_json::json!({ "vmid": id }));
            }
            println!("{id}");
        }
        Read::Snapshots(vmid) => {
            let s = p.snapshots(vmid).map_err(err)?;
            if json {
                return print_json(&s);
            }
            for snap in &s {
                println!(
                    "{}{:<24} {:<19}  {}",
                    "  ".repeat(snap.depth),
                    strip_control(&snap.name),
                    strip_control(snap.time.as_deref().unwrap_or("")),
                    strip_control(&snap.description)
                );
            }
        }
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
    eprintln!(
        "waiting up to {}s for SSH on {addr}{}",
        timeout.as_secs(),
        user.map(|u| format!(" (user {u})")).unwrap_or_default()
    );
    let took = wait_for_ssh(addr, timeout, Duration::from_secs(2)).map_err(err)?;
    println!("ssh is up on {addr} after {:.1}s", took.as_secs_f32());
    Ok(0)
}
