//! The status report from hand-made observations: missing, unmanaged, unprotected readonly
//! VMs and capacity per node and storage.

use std::collections::BTreeMap;

use super::*;
use crate::model::units::DiskSize;
use crate::proxmox::node_api::{NodeCapacity, StorageCapacity};
use crate::proxmox::VmResource;

fn res(vmid: VmId, node: &str) -> VmResource {
    VmResource {
        vmid,
        name: Some(format!("vm{vmid}")),
        node: node.into(),
        status: "running".into(),
        template: false,
        kind: "qemu".into(),
        maxmem: None,
        maxcpu: None,
        maxdisk: None,
        lock: None,
        pool: None,
    }
}

#[test]
fn missing_unmanaged_unprotected_and_capacity() {
    let mut defs = Definitions::default();
    defs.proxmox.node = Some("prom".into());
    defs.proxmox.storage = Some("nvme".into());
    defs.imported.push(Vm {
        readonly: true,
        ..Vm::new("doc1", VmKind::Imported, Some(104))
    });
    defs.managed.push(Vm {
        memory: Some(4096),
        disk: Some(DiskSize::parse("20G")),
        node: Some("pve2".into()),
        ..Vm::new("new", VmKind::Managed, Some(120))
    });
    let cluster = Cluster {
        vms: vec![res(104, "prom"), res(300, "pve3")],
        nodes: vec![NodeCapacity {
            node: "pve2".into(),
            status: "online".into(),
            maxmem: 8 << 30,
            mem: 6 << 30,
        }],
        storages: vec![StorageCapacity {
            node: "pve2".into(),
            storage: "nvme".into(),
            maxdisk: 100 << 30,
            disk: 90 << 30,
            shared: false,
        }],
    };
    let configs: BTreeMap<VmId, LiveConfig> = [(104, LiveConfig::default())].into();
    let r = status(
        &defs,
        &Inputs {
            cluster: &cluster,
            configs: &configs,
            pending: &BTreeMap::new(),
            admin_keys: &[],
            names: &[],
        },
    )
    .unwrap();
    assert_eq!(r.missing, ["new"]);
    assert_eq!(r.unprotected_readonly, ["doc1"]);
    assert_eq!(r.unmanaged.len(), 1);
    assert_eq!(
        (r.unmanaged[0].vmid, r.unmanaged[0].node.as_str()),
        (300, "pve3")
    );
    // 4096 MiB wanted on pve2, 2048 free; 20 GiB wanted on its nvme, 10 free.
    let mem = r.capacity.iter().find(|c| c.storage.is_none()).unwrap();
    assert_eq!((mem.declared_new, mem.free, mem.fits), (4096, 2048, false));
    let disk = r.capacity.iter().find(|c| c.storage.is_some()).unwrap();
    assert_eq!(
        (disk.declared_new, disk.free, disk.fits),
        (20 << 30, 10 << 30, false)
    );
    // An unknown name is refused, naming the known ones.
    assert!(select(&defs, &["nope".into()])
        .unwrap_err()
        .contains("doc1, new"));
}
