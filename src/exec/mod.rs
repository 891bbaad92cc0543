//! The imperative shell: every side effect (files, processes, SSH) lives here.

pub mod apply;
pub mod apply_cfg;
pub mod backup;
pub mod cannot_act;
pub mod destroy;
pub mod events;
pub mod fleet;
pub mod lint;
pub mod nix_version;
pub mod post_provision;
pub mod process;
pub mod provision;
pub mod proxmox;
pub mod rebuild;
pub mod remote;
pub mod report;
pub mod root;
pub mod signals;
pub mod snapshot;
pub mod sops;
pub mod status;
pub mod template;
