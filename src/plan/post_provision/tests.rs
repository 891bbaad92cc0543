//! Unit tests of post-provision's decisions over the demo fleet's definitions: which VM, the
//! address and fingerprint arguments, the scanned key, consent and the commit message.

use super::*;
use crate::keys::PrivateKey;
use crate::syntax::{evaluate, NoImports, SourceDb};

const DEFS: &str = include_str!("../../../vms/definitions.nix");

fn defs() -> Definitions {
    let mut db = SourceDb::new();
    let f = db.add("/fleet/vms/definitions.nix", DEFS);
    let ev = evaluate(&mut db, f, &NoImports);
    crate::model::definitions::read_definitions(&ev.value).definitions
}

fn resource(vmid: VmId, name: Option<&str>, template: bool) -> VmResource {
    let mut r = crate::proxmox::parse::cluster_resources(
        r#"[{"type":"qemu","vmid":1,"name":"x","node":"prom","status":"running"}]"#,
    )
    .unwrap()
    .remove(0);
    r.vmid = vmid;
    r.name = name.map(str::to_string);
    r.template = template;
    r
}

fn key(seed: u8) -> PublicKey {
    PrivateKey::from_seed([seed; 32], Some("root@x".into())).public
}

#[test]
fn the_definition_must_be_managed_with_this_vmid() {
    let d = defs();
    assert_eq!(
        definition(&d, "test-automation", 110).unwrap().name,
        "test-automation"
    );
    let err = |name, vmid| definition(&d, name, vmid).unwrap_err();
    assert_eq!(
        err("test-automation", 111),
        PostProvisionError::VmidDiffers {
            name: "test-automation".into(),
            declared: 110,
            given: 111
        }
    );
    for (name, want) in [
        ("doc1", "imported VM"),
        ("NixosServerBlank", "the template"),
        ("nosuch", "add it under `managed` (with `vmid = 104;`)"),
    ] {
        let e = err(name, 104);
        assert!(matches!(e, PostProvisionError::NotManaged { .. }), "{e}");
        assert!(e.to_string().contains(want), "{name}: {e}");
    }
    let mut d = defs();
    d.managed[0].vmid = None;
    assert_eq!(
        definition(&d, "test-automation", 110).unwrap_err(),
        PostProvisionError::NoVmid {
            name: "test-automation".into(),
            given: 110
        }
    );
}

#[test]
fn the_cluster_must_show_the_vmid_under_the_name() {
    let d = defs();
    let vm = definition(&d, "test-automation", 110).unwrap();
    let cluster = vec![
        resource(104, Some("doc1"), false),
        resource(110, Some("test-automation"), false),
    ];
    let t = target(vm, 110, &cluster).unwrap();
    assert_eq!(t.node, Some("prom"));
    assert_eq!(t.vm.name, "test-automation");

    assert_eq!(
        target(vm, 110, &cluster[..1]).unwrap_err(),
        PostProvisionError::NotOnCluster { vmid: 110 }
    );
    for (found, shown) in [(Some("intruder"), "intruder"), (None, "(no name)")] {
        let other = vec![resource(110, found, false)];
        let e = target(vm, 110, &other).unwrap_err();
        assert_eq!(
            e,
            PostProvisionError::OtherName {
                name: "test-automation".into(),
                vmid: 110,
                found: shown.into(),
                node: "prom".into()
            }
        );
        assert!(e.to_string().contains("will not give it"), "{e}");
    }
    let tpl = vec![resource(110, Some("test-automation"), true)];
    assert_eq!(
        target(vm, 110, &tpl).unwrap_err(),
        PostProvisionError::Template { vmid: 110 }
    );
}

#[test]
fn addresses_are_read_as_ssh_would_connect_or_refused() {
    for (given, want) in [
        ("192.168.1.50", "192.168.1.50"),
        ("127.0.0.110", "127.0.0.110"),
        ("::1", "::1"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("2001:DB8:0:0::7", "2001:db8::7"),
        ("fe80::1%eth0", "fe80::1%eth0"),
        ("[fe80::1%enp1s0]", "fe80::1%enp1s0"),
    ] {
        assert_eq!(ip(given).as_deref(), Ok(want), "{given}");
    }
    for bad in [
        "",
        "-oProxyCommand=touch /tmp/x",
        "127.1",
        "010.0.0.1",
        "0x7f.0.0.1",
        "192.168.1.50:22",
        " 192.168.1.50",
        "192.168.1.50\n",
        "web.lan",
        "0.0.0.0",
        "::",
        "224.0.0.1",
        "255.255.255.255",
        "::1%eth0",
        "192.168.1.1%eth0",
        "fe80::1%",
        "fe80::1%eth0;rm",
    ] {
        assert!(ip(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn fingerprints_are_taken_in_ssh_format_only() {
    let k = key(1);
    let fp = k.fingerprint();
    assert!(fp.starts_with("SHA256:") && fp.len() == 7 + 43, "{fp}");
    assert_eq!(fingerprint(&fp).as_deref(), Ok(fp.as_str()));
    let lower = fp.replacen("SHA256:", "sha256:", 1);
    assert_eq!(fingerprint(&lower).as_deref(), Ok(fp.as_str()));
    assert_eq!(fingerprint(&format!("{fp}=")).as_deref(), Ok(fp.as_str()));
    for bad in [
        "",
        &fp[7..],
        &fp[..fp.len() - 1],
        &format!("{fp}A"),
        &format!("{fp}=="),
        "MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48",
        "SHA256:!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        &format!(" {fp}"),
    ] {
        assert!(fingerprint(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn the_scanned_key_is_the_one_ed25519_key_offered() {
    let k = key(2);
    let line = format!("127.0.0.110 {}", k.to_openssh());
    let out = format!("# 127.0.0.110:22 SSH-2.0-OpenSSH_9.2\n{line}\n{line}\n");
    let got = scanned_key(&out, "127.0.0.110:22", "").unwrap();
    assert_eq!(got.key, k.key);
    assert_eq!(got.fingerprint(), k.fingerprint());
    // Another type's line is not an ed25519 key, and is no reason to refuse.
    let rsa = "[127.0.0.110]:2222 ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7\n";
    assert_eq!(
        scanned_key(&format!("{rsa}{line}\n"), "a", "").unwrap().key,
        k.key
    );
    let none = scanned_key(rsa, "127.0.0.110:22", "Connection refused").unwrap_err();
    assert!(
        none.to_string().contains(
            "127.0.0.110:22 offered no ed25519 host key (ssh-keyscan: Connection refused)"
        ),
        "{none}"
    );
    assert!(matches!(
        scanned_key("", "a", "").unwrap_err(),
        ScanError::NoKey { .. }
    ));
    let two = format!("{line}\n127.0.0.110 {}\n", key(3).to_openssh());
    assert_eq!(
        scanned_key(&two, "a", "").unwrap_err(),
        ScanError::Several {
            addr: "a".into(),
            count: 2
        }
    );
    assert!(matches!(
        scanned_key("127.0.0.110 ssh-ed25519 !!notbase64\n", "a", "").unwrap_err(),
        ScanError::Unreadable { .. }
    ));
}

#[test]
fn consent_is_the_exact_fingerprint_or_a_person() {
    let fp = key(4).fingerprint();
    let other = key(5).fingerprint();
    assert_eq!(consent(Some(&fp), &fp, false), Consent::Accepted);
    assert_eq!(consent(Some(&fp), &fp, true), Consent::Accepted);
    assert_eq!(
        consent(Some(&other), &fp, true),
        Consent::Mismatch {
            given: other.clone()
        }
    );
    assert_eq!(consent(None, &fp, true), Consent::Ask);
    assert_eq!(consent(None, &fp, false), Consent::NeedFlag);
}

#[test]
fn the_commit_message_says_how_the_key_was_trusted() {
    let k = key(6);
    let files = vec!["hosts.nix".to_string(), ".sops.yaml".to_string()];
    let m = commit_message(
        "test-automation",
        110,
        Some("prom"),
        &k,
        "127.0.0.110:22",
        Acceptance::Terminal,
        &files,
    );
    assert!(m.starts_with("feat(vms): post-provision test-automation (VMID 110)\n\n"));
    for want in [
        "vmctl post-provision",
        "fetched from 127.0.0.110:22",
        "  hosts.nix\n  .sops.yaml\n",
        "\nVMID: 110\nNode: prom\n",
        &format!("Host-Key-Fingerprint: {}\n", k.fingerprint()),
        &format!("Age-Recipient: {}\n", k.age_recipient().unwrap()),
        "Host-Key-Accepted-By: yes at a terminal\n",
    ] {
        assert!(m.contains(want), "no {want:?} in {m}");
    }
    assert_eq!(addr("::1", 22), "[::1]:22");
    assert_eq!(addr("10.0.0.7", 2222), "10.0.0.7:2222");
}
