//! vmctl: declarative NixOS VMs on Proxmox, from `vms/definitions.nix` to a fleet-integrated host.
//!
//! Layers (functional core, imperative shell; see `docs/architecture.md`): `text` (edits,
//! lines, newline style) lies below everything; `syntax` → `model` → `check` → `render` are
//! pure; `keys`, `yaml`, `edit`, `secrets` and `proxmox` (argv builders and output parsers)
//! are pure too, and so is `plan` (what a command will do, as a value); only `exec`, `cli` and `lsp`
//! (the language server, beside `cli`) touch the world.

pub mod check;
pub mod cli;
pub mod edit;
pub mod exec;
pub mod keys;
pub mod lsp;
pub mod model;
pub mod plan;
pub mod proxmox;
pub mod render;
pub mod secrets;
pub mod syntax;
pub mod text;
pub mod yaml;
