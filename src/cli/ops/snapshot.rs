//! `vmctl ops snapshot`: the snapshot subcommands' command line (moved out of ops.rs to keep
//! that file within the length limit; the behaviour is in ops.rs's `run`).

use clap::{Args, Subcommand};

use super::examples as ex;
use super::{VmRead, WriteOpts};
use crate::proxmox::validate as valid;
use crate::proxmox::VmId;

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Take a snapshot.
    #[command(after_long_help = ex::SNAP_CREATE)]
    Create {
        #[arg(value_parser = valid::vmid, help = ex::VMID)]
        vmid: VmId,
        #[arg(value_parser = valid::snapshot_name, help = ex::SNAPSHOT_NAME)]
        name: String,
        /// Description (notes) of the snapshot.
        #[arg(long, value_parser = valid::text)]
        description: Option<String>,
        /// Include the RAM of a running VM.
        #[arg(long)]
        vmstate: bool,
        #[command(flatten)]
        opts: WriteOpts,
    },
    /// List a VM's snapshots.
    #[command(after_long_help = ex::SNAP_LIST)]
    List(VmRead),
    /// Roll a VM back to a snapshot (the VM is stopped).
    #[command(after_long_help = ex::SNAP_ROLLBACK)]
    Rollback(SnapshotOf),
    /// Delete a snapshot.
    #[command(after_long_help = ex::SNAP_DELETE)]
    Delete(SnapshotOf),
}

// No doc comment: clap would take it as the subcommand's description.
#[derive(Debug, Clone, Args)]
pub struct SnapshotOf {
    #[arg(value_parser = valid::vmid, help = ex::VMID)]
    pub vmid: VmId,
    #[arg(value_parser = valid::snapshot_name, help = ex::SNAPSHOT_NAME)]
    pub name: String,
    #[command(flatten)]
    pub opts: WriteOpts,
}
