//! Which VMs a many-VM provision takes and how many at once: `--all` (every managed VM not yet
//! on the cluster), the names given (each once), the worker count, and the VMIDs two of them
//! share (both refused before any clone).

use std::collections::BTreeMap;

use crate::model::Definitions;
use crate::proxmox::{VmId, VmResource};

/// Workers when `--jobs` is not given: up to 4 (the clones serialize on the storage lock
/// anyway; more mostly overlaps installs).
pub const DEFAULT_JOBS: usize = 4;

/// The names to provision: with `all`, every managed VM (not `readonly`) that the cluster does
/// not hold under its name yet (every one when planning offline, `cluster` `None`); else
/// `names` in the order given, each once.
pub fn select(
    defs: &Definitions,
    names: &[String],
    all: bool,
    cluster: Option<&[VmResource]>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if all {
        for vm in defs.managed.iter().filter(|v| !v.readonly) {
            let there = cluster.is_some_and(|vms| {
                vms.iter()
                    .any(|r| Some(r.vmid) == vm.vmid && r.name.as_deref() == Some(&vm.name))
            });
            if !there {
                out.push(vm.name.clone());
            }
        }
        return out;
    }
    for n in names {
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    out
}

/// The worker count: `jobs` when given, else [`DEFAULT_JOBS`]; never more than `count` VMs
/// nor fewer than one.
pub fn jobs(jobs: Option<usize>, count: usize) -> usize {
    jobs.unwrap_or(DEFAULT_JOBS).min(count).max(1)
}

/// Each VM that shares its VMID with another of `vms` (name, VMID), with the other's name.
pub fn shared_vmids(vms: &[(String, VmId)]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (i, (a, id)) in vms.iter().enumerate() {
        if let Some((b, _)) = vms
            .iter()
            .enumerate()
            .find(|(k, (_, other))| *k != i && other == id)
            .map(|(_, v)| v)
        {
            out.insert(a.clone(), b.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_of_a_shared_vmid_are_named_and_the_rest_left_alone() {
        let vms = vec![
            ("a".to_string(), 120),
            ("b".to_string(), 121),
            ("c".to_string(), 120),
        ];
        let shared = shared_vmids(&vms);
        assert_eq!(shared.get("a").map(String::as_str), Some("c"));
        assert_eq!(shared.get("c").map(String::as_str), Some("a"));
        assert!(!shared.contains_key("b"));
    }

    #[test]
    fn jobs_default_to_four_and_never_exceed_the_vms() {
        assert_eq!(jobs(None, 8), 4);
        assert_eq!(jobs(None, 2), 2);
        assert_eq!(jobs(Some(8), 3), 3);
        assert_eq!(jobs(Some(0), 3), 1);
    }

    #[test]
    fn names_given_twice_are_taken_once_in_order() {
        let defs = Definitions::default();
        let names = ["b", "a", "b"].map(String::from);
        assert_eq!(select(&defs, &names, false, None), ["b", "a"]);
    }
}
