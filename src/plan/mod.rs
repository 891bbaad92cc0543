//! The pure planner: a request and definitions.nix in, a fenced `Plan { steps }` out.
//!
//! Nothing here opens a connection, spawns a process or prints: a plan is a value that the
//! command layer either renders (`--dry-run`) or hands to a runner generic over
//! `exec::proxmox::Proxmox` (SSH in production, the recording fake in tests). Provisioning's
//! steps are meant to be planned here the same way.

pub mod apply;
pub mod backup;
pub mod destroy;
pub mod migrate;
pub mod ops;
pub mod post_provision;
pub mod provision;
pub mod rebuild;
pub mod snapshot;
pub mod status;
pub mod template;
