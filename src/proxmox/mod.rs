//! proxmox layer.
