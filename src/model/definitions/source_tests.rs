//! The spans of what definitions.nix wrote, read through `read_definitions`: values the typed
//! fields cannot hold keep where they were written (kept here, not in `model::source`, so the
//! source layer does not import the reader that fills it).

use crate::model::definitions::read_definitions;
use crate::model::source::{Undetermined, Written};
use crate::model::{Given, TextRange};
use crate::syntax::{evaluate, NoImports, SourceDb};

#[test]
fn keeps_what_the_typed_fields_cannot_hold_and_where_it_is() {
    let src = r#"{
      proxmox = { host = "h"; port = 70000; };
      vmidRanges.lab = { start = -5; end = 199; };
      imported.doc1 = { vmid = 104; readonly = lib.x; };
      managed.web = {
        vmid = -1; cores = -2; memory = 4; disk = "20GB"; nixosConfig = "../web";
        network = { vlan = -3; ip = "dhcp"; };
      };
      managed.db = mkVm 1;
    }"#;
    let mut db = SourceDb::new();
    let f = db.add("/fleet/vms/definitions.nix", src);
    let defs = read_definitions(&evaluate(&mut db, f, &NoImports).value).definitions;
    let at = |r: TextRange| &src[r];

    let web = defs.vm_by_name("web").unwrap();
    assert_eq!((web.vmid, web.cores), (None, None));
    let s = &web.source;
    let vmid = s.vmid.as_ref().unwrap();
    assert_eq!((&vmid.value, at(vmid.range)), (&Written::Value(-1), "-1"));
    assert_eq!(s.cores.as_ref().map(|c| c.value), Some(-2));
    assert_eq!(s.memory.as_ref().map(|m| at(m.range)), Some("4"));
    assert_eq!(s.disk.map(at), Some("\"20GB\""));
    let disk = web.disk.as_ref().unwrap();
    assert!(disk.bytes().unwrap_err().contains("write `20G`"));
    assert_eq!(
        web.disk.as_deref(),
        Some("20GB"),
        "the same size, parsed once"
    );
    assert_eq!(at(s.nixos_config.as_ref().unwrap().range), "\"../web\"");
    assert_eq!(s.network.vlan.as_ref().map(|v| v.value), Some(-3));
    assert_eq!(at(s.name), "web");

    let doc1 = defs.vm_by_name("doc1").unwrap();
    let ro = doc1.source.readonly.as_ref().unwrap();
    assert_eq!((&ro.value, at(ro.range)), (&Written::Undetermined, "lib.x"));
    assert_eq!(doc1.fence.readonly, Given::Undetermined);

    let port = defs.source.port.as_ref().unwrap();
    assert_eq!((port.value, at(port.range)), (70000, "70000"));
    assert_eq!(defs.proxmox.port, 22, "the typed port falls back");
    let bounds: Vec<_> = defs
        .source
        .range_bounds
        .iter()
        .map(|b| (b.name.as_str(), b.field, b.value.value))
        .collect();
    assert_eq!(bounds, [("lab", "start", -5), ("lab", "end", 199)]);
    assert!(defs.vmid_ranges.is_empty(), "-5 is no VMID");
    let und = &defs.source.undetermined;
    assert_eq!(und.len(), 1);
    assert_eq!(und[0].value, Undetermined::Entry("managed", "db".into()));
    assert_eq!(at(und[0].range), "mkVm 1");
    assert_eq!(defs.undetermined, ["`managed.db`"]);
}
