//! Unit tests of the destroy planner over the demo fleet's files, as provision leaves them:
//! the steps and their exact command lines, every refusal, the file edits (the inverse of
//! provision's with --keep-definition) and the renderings.

use std::path::PathBuf;

use super::*;
use crate::edit::hosts::{edit_hosts, NewHost};
use crate::edit::sops::{add_recipient, AddRecipient};
use crate::proxmox::redact::display_line;
use crate::syntax::{evaluate, NoImports, SourceDb};

const DEFS: &str = include_str!("../../../vms/definitions.nix");
const HOSTS: &str = include_str!("../../../hosts.nix");
const SOPS: &str = include_str!("../../../.sops.yaml");
const DOCS: &str = include_str!("../../../docs/machines.md");
const CONFIG: &[u8] = include_bytes!("../../../hosts/test-automation/configuration.nix");

fn defs_of(src: &str) -> Definitions {
    let mut db = SourceDb::new();
    let f = db.add("/fleet/vms/definitions.nix", src);
    let ev = evaluate(&mut db, f, &NoImports);
    crate::model::definitions::read_definitions(&ev.value).definitions
}

fn resource(vmid: VmId, name: &str, status: &str, template: bool) -> VmResource {
    let mut r = crate::proxmox::parse::cluster_resources(
        r#"[{"type":"qemu","vmid":1,"name":"x","node":"prom","status":"stopped"}]"#,
    )
    .unwrap()
    .remove(0);
    r.vmid = vmid;
    r.name = Some(name.into());
    r.status = status.into();
    r.template = template;
    r
}

fn cluster(with_110: Option<(&str, &str)>) -> Vec<VmResource> {
    let mut vms = vec![
        resource(104, "doc1", "running", false),
        resource(109, "igpu", "running", false),
        resource(9001, "NixosServerBlank", "stopped", true),
    ];
    if let Some((name, status)) = with_110 {
        vms.push(resource(110, name, status, false));
    }
    vms
}

/// hosts.nix and .sops.yaml as `vmctl provision test-automation` leaves them.
fn provisioned() -> (String, String, RemovedKey) {
    let key = crate::plan::provision::ceremony::preview_key("test-automation");
    let public = key.public_openssh.trim_end().to_string();
    let hosts = edit_hosts(
        HOSTS,
        &HostIntent::Add(NewHost {
            name: "test-automation".into(),
            public_key: public.clone(),
            hostname: None,
            ssh_alias: None,
            vmid: Some(110),
        }),
        None,
    )
    .unwrap()
    .text;
    let names = ["doc1".to_string(), "igpu".to_string()];
    let sops = add_recipient(
        SOPS,
        &AddRecipient {
            name: "test-automation",
            recipient: &key.age_recipient,
            rules: &[],
            all: false,
            hosts: &names,
        },
    )
    .unwrap()
    .new_text;
    let removed = RemovedKey {
        public_key: public,
        fingerprint: key.fingerprint,
        age_recipient: key.age_recipient,
    };
    (hosts, sops, removed)
}

use crate::edit::hosts::HostIntent;

struct Case {
    defs: Definitions,
    hosts: String,
    sops: String,
    host_dir: Vec<(PathBuf, Vec<u8>)>,
    vms: Vec<VmResource>,
}

impl Case {
    fn provisioned() -> Case {
        let (hosts, sops, _) = provisioned();
        Case {
            defs: defs_of(DEFS),
            hosts,
            sops,
            host_dir: vec![(
                "hosts/test-automation/configuration.nix".into(),
                CONFIG.to_vec(),
            )],
            vms: cluster(Some(("test-automation", "running"))),
        }
    }

    fn inputs<'a>(&'a self, name: &'a str, confirm: &'a str) -> Inputs<'a> {
        Inputs {
            defs: &self.defs,
            name,
            confirm,
            keep_definition: false,
            rotate: false,
            commit: true,
            observation: Some(&self.vms),
            files: FleetTexts {
                definitions: DEFS,
                hosts: &self.hosts,
                sops: Some(&self.sops),
                docs: Some(DOCS),
                host_dir: &self.host_dir,
            },
        }
    }
}

fn ids(p: &DestroyPlan) -> Vec<&'static str> {
    p.steps.iter().map(|s| s.id.as_str()).collect()
}

fn file<'a>(p: &'a DestroyPlan, path: &str) -> &'a PlannedFile {
    p.files
        .iter()
        .find(|f| f.path == std::path::Path::new(path))
        .unwrap_or_else(|| panic!("no {path} in {:?}", p.files))
}

#[test]
fn a_running_provisioned_vm_is_stopped_destroyed_and_removed_from_every_file() {
    let c = Case::provisioned();
    let p = plan(&c.inputs("test-automation", "test-automation")).unwrap();
    assert_eq!(
        ids(&p),
        ["stop", "destroy", "fleet-files", "rekey", "commit"]
    );
    let argv: Vec<String> = p
        .mutations()
        .iter()
        .map(|m| display_line(&m.argv()))
        .collect();
    assert_eq!(argv, ["qm stop 110", "qm destroy 110 --purge 1"]);
    assert_eq!(p.node.as_deref(), Some("prom"));
    assert_eq!(p.live, Live::Running);
    let (_, _, key) = provisioned();
    assert_eq!(p.removed_key.as_ref(), Some(&key));
    assert_eq!(
        p.removed_recipient.as_deref(),
        Some(key.age_recipient.as_str())
    );
    // The host and recipient edits are the exact inverse of provision's.
    assert_eq!(file(&p, "hosts.nix").new.as_deref(), Some(HOSTS.as_bytes()));
    assert_eq!(file(&p, ".sops.yaml").new.as_deref(), Some(SOPS.as_bytes()));
    let defs = file(&p, "vms/definitions.nix");
    let new_defs = String::from_utf8(defs.new.clone().unwrap()).unwrap();
    assert!(!new_defs.contains("test-automation ="), "{new_defs}");
    assert!(defs_of(&new_defs).managed.is_empty());
    let scaffold = file(&p, "hosts/test-automation/configuration.nix");
    assert_eq!(scaffold.new, None);
    let docs = String::from_utf8(file(&p, "docs/machines.md").new.clone().unwrap()).unwrap();
    assert!(!docs.contains("vm-test-automation"), "{docs}");
    // Without --rotate it says what re-keying leaves open.
    assert!(
        p.notes.iter().any(|n| n.contains("pass --rotate")),
        "{:?}",
        p.notes
    );
}

#[test]
fn keep_definition_touches_only_hosts_and_sops_and_restores_them_byte_for_byte() {
    let c = Case::provisioned();
    let mut i = c.inputs("test-automation", "test-automation");
    i.keep_definition = true;
    i.rotate = true;
    let p = plan(&i).unwrap();
    assert_eq!(
        ids(&p),
        [
            "stop",
            "destroy",
            "fleet-files",
            "rekey",
            "rotate",
            "commit"
        ]
    );
    let paths: Vec<String> = p
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    // The docs are generated from definitions.nix, which stays: they do not change.
    assert_eq!(paths, ["hosts.nix", ".sops.yaml"]);
    assert_eq!(file(&p, "hosts.nix").new.as_deref(), Some(HOSTS.as_bytes()));
    assert_eq!(file(&p, ".sops.yaml").new.as_deref(), Some(SOPS.as_bytes()));
    assert!(p.notes.iter().any(|n| n.contains("--keep-definition")));
    assert!(!p.notes.iter().any(|n| n.contains("pass --rotate")));
}

#[test]
fn refusals_come_before_anything_is_planned() {
    let c = Case::provisioned();
    // Imported and the template: cannot act (exit 2).
    for name in ["doc1", "igpu", "NixosServerBlank", "nosuch"] {
        let e = plan(&c.inputs(name, name)).unwrap_err();
        assert!(matches!(e, PlanError::NotManaged { .. }), "{name}: {e}");
        assert!(e.is_cannot_act());
    }
    let e = plan(&c.inputs("doc1", "doc1")).unwrap_err().to_string();
    assert!(e.contains("imported VM"), "{e}");
    // A wrong confirmation.
    let e = plan(&c.inputs("test-automation", "test")).unwrap_err();
    assert_eq!(
        e,
        PlanError::ConfirmMismatch {
            name: "test-automation".into(),
            given: "test".into()
        }
    );
    assert!(!e.is_cannot_act());
    // A readonly managed VM.
    let ro = defs_of(&DEFS.replace("vmid = 110;", "vmid = 110; readonly = true;"));
    let mut i = c.inputs("test-automation", "test-automation");
    i.defs = &ro;
    assert!(matches!(plan(&i), Err(PlanError::Readonly { .. })));
}

#[test]
fn a_host_key_vmctl_cannot_read_is_refused() {
    let mut c = Case::provisioned();
    // The pinned key of test-automation written through a variable: not a plain string.
    let entry = c.hosts.find("  test-automation = {").unwrap();
    let start = c.hosts[entry..].find("publicKey = ").unwrap() + entry;
    let end = c.hosts[start..].find('\n').unwrap() + start;
    c.hosts.replace_range(start..end, "publicKey = admin;");
    let got = plan(&c.inputs("test-automation", "test-automation"));
    assert!(
        matches!(&got, Err(PlanError::BadKey { .. })),
        "{:?}",
        got.map(|p| p.files.len())
    );
}

#[test]
fn the_live_vm_must_be_this_one() {
    let mut c = Case::provisioned();
    c.vms = cluster(Some(("someone-else", "running")));
    let e = plan(&c.inputs("test-automation", "test-automation")).unwrap_err();
    assert!(matches!(e, PlanError::NotOurVm { .. }), "{e}");
    assert!(e.to_string().contains("`someone-else`"), "{e}");
    c.vms = cluster(None);
    c.vms
        .push(resource(150, "test-automation", "running", false));
    let e = plan(&c.inputs("test-automation", "test-automation")).unwrap_err();
    assert!(matches!(e, PlanError::VmidMoved { live: 150, .. }), "{e}");
    c.vms = cluster(None);
    c.vms
        .push(resource(110, "test-automation", "stopped", true));
    assert!(matches!(
        plan(&c.inputs("test-automation", "test-automation")),
        Err(PlanError::LiveTemplate { .. })
    ));
}

#[test]
fn a_stopped_or_absent_vm_skips_what_is_done() {
    let mut c = Case::provisioned();
    c.vms = cluster(Some(("test-automation", "stopped")));
    let p = plan(&c.inputs("test-automation", "test-automation")).unwrap();
    assert_eq!(ids(&p), ["destroy", "fleet-files", "rekey", "commit"]);
    c.vms = cluster(None);
    let p = plan(&c.inputs("test-automation", "test-automation")).unwrap();
    assert_eq!(ids(&p), ["fleet-files", "rekey", "commit"]);
    assert_eq!(p.live, Live::Absent);
    assert!(p.notes.iter().any(|n| n.contains("not on the cluster")));
}

#[test]
fn a_never_provisioned_vm_offline_changes_only_what_names_it() {
    let c = Case {
        hosts: HOSTS.into(),
        sops: SOPS.into(),
        ..Case::provisioned()
    };
    let mut i = c.inputs("test-automation", "test-automation");
    i.observation = None;
    i.commit = false;
    let p = plan(&i).unwrap();
    assert_eq!(ids(&p), ["stop", "destroy", "fleet-files"]);
    assert_eq!(p.live, Live::Unknown);
    assert!(p.removed_key.is_none() && p.removed_recipient.is_none());
    let paths: Vec<String> = p
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    assert_eq!(
        paths,
        [
            "vms/definitions.nix",
            "hosts/test-automation/configuration.nix",
            "docs/machines.md"
        ]
    );
    assert!(p.notes.iter().any(|n| n.contains("offline")));
    assert!(p.notes.iter().any(|n| n.contains("hosts.nix has no host")));
}

#[test]
fn a_host_directory_another_vm_uses_stays() {
    let defs_text = DEFS.replace(
        "nixosConfig = \"test-automation\";",
        "nixosConfig = \"proxmox-vm\";",
    );
    let mut c = Case::provisioned();
    c.defs = defs_of(&defs_text);
    c.host_dir = vec![("hosts/proxmox-vm/configuration.nix".into(), b"{ }".to_vec())];
    let mut i = c.inputs("test-automation", "test-automation");
    i.files.definitions = &defs_text;
    let p = plan(&i).unwrap();
    assert!(p.files.iter().all(|f| f.new.is_some()), "{:?}", p.files);
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("hosts/proxmox-vm") && n.contains("doc1")),
        "{:?}",
        p.notes
    );
}

#[test]
fn the_commit_message_has_the_trailers_and_the_renderings_show_everything() {
    let c = Case::provisioned();
    let mut i = c.inputs("test-automation", "test-automation");
    i.rotate = true;
    let p = plan(&i).unwrap();
    let files: Vec<String> = p
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    let msg = commit_message(&p, &files);
    assert!(msg.starts_with("feat(vms): destroy test-automation (VMID 110)\n\n"));
    let key = p.removed_key.clone().unwrap();
    for t in [
        "VMID: 110\n".to_string(),
        "Node: prom\n".into(),
        format!("Host-Key-Fingerprint: {}\n", key.fingerprint),
        format!("Age-Recipient: {}\n", key.age_recipient),
        "Definition: removed\n".into(),
        "Rotated: yes\n".into(),
        "  hosts/test-automation/configuration.nix\n".into(),
    ] {
        assert!(msg.contains(&t), "no {t:?} in {msg}");
    }
    let secrets = vec!["secrets/common.yaml".to_string()];
    let preview = render::Preview {
        secrets: &secrets,
        commit_message: &msg,
    };
    let text = render::human(&p, &preview);
    for want in [
        "destroy `test-automation`: VM 110 on node prom (running)",
        "1. [stop] stop VM 110\n   $ qm stop 110\n",
        "   $ qm destroy 110 --purge 1\n",
        "--- a/hosts/test-automation/configuration.nix\n+++ /dev/null\n",
        "-  test-automation = {",
        "   secrets/common.yaml\n",
        "   | feat(vms): destroy test-automation (VMID 110)\n",
    ] {
        assert!(text.contains(want), "no {want:?} in {text}");
    }
    let json = render::json(&p, &preview);
    assert_eq!(json["commands"][1], "qm destroy 110 --purge 1");
    assert_eq!(json["changes"].as_array().unwrap().len(), p.files.len());
    assert_eq!(json["rekeyed_secrets"][0], "secrets/common.yaml");
    assert_eq!(json["commit_message"], msg.as_str());
}

#[test]
fn the_plan_round_trips_through_its_journal_form() {
    let c = Case::provisioned();
    let p = plan(&c.inputs("test-automation", "test-automation")).unwrap();
    let text = serde_json::to_string(&p).unwrap();
    let back: DestroyPlan = serde_json::from_str(&text).unwrap();
    assert_eq!(back, p);
}
