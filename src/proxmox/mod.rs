//! Proxmox VE, the pure part: argv builders, the remote quoting helper, parsers for what `qm`,
//! `pvesh` and `pvesm` print, safety fences and the lock-retry schedule.
//!
//! Nothing here touches the network or the disk. `exec::proxmox` sends the argv built here over
//! SSH (`exec::remote`) and feeds the output back to the parsers.

pub mod argv;
pub mod error;
pub mod fence;
pub mod node_api;
pub mod parse;
pub mod quote;
pub mod redact;
pub mod retry;
pub mod route;
pub mod ssh;
pub mod terminal;
pub mod validate;

use serde::Serialize;

pub use argv::Mutation;
pub use error::{classify, Failure};
pub use fence::{Fence, FenceError};
pub use quote::{command_line, quote};
pub use redact::display_line;
pub use retry::RetryPolicy;
pub use terminal::strip_control;

/// A Proxmox VM id (100–999999999).
pub type VmId = u32;

/// Lowest VMID Proxmox accepts.
pub const VMID_MIN: VmId = 100;
/// Highest VMID Proxmox accepts.
pub const VMID_MAX: VmId = 999_999_999;

/// One VM of `pvesh get /cluster/resources --type vm` (cluster-wide).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VmResource {
    pub vmid: VmId,
    pub name: Option<String>,
    pub node: String,
    /// `running`, `stopped`, `paused`, …
    pub status: String,
    pub template: bool,
    /// `qemu` or `lxc`.
    #[serde(rename = "type")]
    pub kind: String,
    pub maxmem: Option<u64>,
    pub maxcpu: Option<f64>,
    pub maxdisk: Option<u64>,
    /// Set while a task holds the VM (`clone`, `backup`, `snapshot`, …).
    pub lock: Option<String>,
    pub pool: Option<String>,
}

/// One task of `GET /nodes/NODE/tasks`: a running one has no `endtime`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Task {
    pub upid: String,
    /// `qmclone`, `qmstart`, `vzdump`, …
    pub kind: String,
    pub running: bool,
}

/// `qm status ID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmStatus {
    pub vmid: VmId,
    pub status: String,
}

/// `qm config ID`: the current configuration as ordered `key: value` pairs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct VmConfig {
    pub entries: Vec<(String, String)>,
}

impl VmConfig {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn name(&self) -> Option<&str> {
        self.get("name")
    }

    /// The MAC address of `net0` (`virtio=BC:24:11:00:00:01,bridge=vmbr0`).
    pub fn net0_mac(&self) -> Option<String> {
        self.get("net0").and_then(parse::mac_of_net)
    }

    /// True when `protection: 1` blocks removal.
    pub fn protected(&self) -> bool {
        self.get("protection") == Some("1")
    }

    pub fn lock(&self) -> Option<&str> {
        self.get("lock")
    }
}

/// One storage of `pvesm status`. Sizes are KiB, as pvesm prints them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StorageStatus {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub total: u64,
    pub used: u64,
    pub available: u64,
    pub percent: f64,
}

/// One snapshot of `qm listsnapshot ID`; `current` is the "You are here!" entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub name: String,
    /// Depth in the snapshot tree (0 for the oldest root).
    pub depth: usize,
    /// `YYYY-MM-DD HH:MM:SS` as printed, when the entry has one.
    pub time: Option<String>,
    pub description: String,
    pub current: bool,
}

/// One interface of the guest agent's `network-get-interfaces`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuestInterface {
    pub name: String,
    pub hardware_address: Option<String>,
    pub addresses: Vec<GuestAddress>,
}

/// One address of a guest interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuestAddress {
    pub address: std::net::IpAddr,
    pub prefix: Option<u8>,
}

/// One line of `ip neigh show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Neighbour {
    pub address: std::net::IpAddr,
    pub device: Option<String>,
    pub mac: Option<String>,
    /// `REACHABLE`, `STALE`, `FAILED`, …
    pub state: String,
}

/// Where get-ip found an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IpSource {
    GuestAgent,
    NeighbourTable,
}

/// The answer of get-ip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpLookup {
    pub vmid: VmId,
    pub mac: String,
    pub address: std::net::IpAddr,
    pub source: IpSource,
}

/// The lowest VMID in `start..=end` that is not in `used`.
pub fn next_free_vmid(
    used: &std::collections::BTreeSet<VmId>,
    start: VmId,
    end: VmId,
) -> Option<VmId> {
    (start.max(VMID_MIN)..=end.min(VMID_MAX)).find(|id| !used.contains(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_free_vmid_skips_used_and_respects_bounds() {
        let used = [110, 111, 113].into_iter().collect();
        assert_eq!(next_free_vmid(&used, 110, 199), Some(112));
        assert_eq!(next_free_vmid(&used, 110, 111), None);
        assert_eq!(next_free_vmid(&used, 1, 100), Some(100));
    }
}
