//! Unit tests of the provision planner over the demo fleet's files: the steps and their exact
//! command lines, every refusal, the ceremony's edits and the renderings.

use super::ceremony::{self, FleetFiles};
use super::render::{self, CeremonyPreview};
use super::*;
use crate::proxmox::redact::display_line;
use crate::syntax::{evaluate, NoImports, SourceDb};

const DEFS: &str = include_str!("../../../vms/definitions.nix");
const HOSTS: &str = include_str!("../../../hosts.nix");
const SOPS: &str = include_str!("../../../.sops.yaml");
const DOCS: &str = include_str!("../../../docs/machines.md");
const ADMIN: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHxM2a6DvE298UXZdhKYSMrTPvzvceh5+ZJ77tKj9n0D admin@workstation";

pub(crate) fn demo_defs(src: &str) -> Definitions {
    let mut db = SourceDb::new();
    let f = db.add("/fleet/vms/definitions.nix", src);
    let ev = evaluate(&mut db, f, &NoImports);
    crate::model::definitions::read_definitions(&ev.value).definitions
}

fn resource(vmid: VmId, name: &str, template: bool) -> VmResource {
    let mut r = crate::proxmox::parse::cluster_resources(
        r#"[{"type":"qemu","vmid":1,"name":"x","node":"prom","status":"stopped"}]"#,
    )
    .unwrap()
    .remove(0);
    r.vmid = vmid;
    r.name = Some(name.into());
    r.template = template;
    r
}

pub(crate) fn observation() -> Observation {
    Observation {
        vms: vec![
            resource(104, "doc1", false),
            resource(109, "igpu", false),
            resource(9001, "NixosServerBlank", true),
        ],
        storages: crate::proxmox::parse::storage_status(
            "Name Type Status Total Used Available %\nnvmeprom lvmthin active 100 10 90 10.00%\n",
        )
        .unwrap(),
        template_config: Some(VmConfig {
            entries: vec![
                ("boot".into(), "order=scsi0".into()),
                ("scsi0".into(), "nvmeprom:base-9001-disk-0,size=8G".into()),
            ],
        }),
    }
}

fn inputs<'a>(
    defs: &'a Definitions,
    keys: &'a [String],
    obs: Option<&'a Observation>,
) -> Inputs<'a> {
    Inputs {
        defs,
        name: "test-automation",
        lint_errors: 0,
        admin_keys: keys,
        linked: false,
        host_known: false,
        observation: obs,
        identity: None,
    }
}

fn lines(plan: &ProvisionPlan) -> Vec<String> {
    plan.mutations()
        .iter()
        .map(|m| display_line(&m.argv()))
        .collect()
}

#[test]
fn demo_vm_plans_every_step_with_exact_commands() {
    let defs = demo_defs(DEFS);
    let keys = vec![ADMIN.to_string()];
    let obs = observation();
    let plan = plan(&inputs(&defs, &keys, Some(&obs))).unwrap();
    let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "clone",
            "configure",
            "resize",
            "cloud-init",
            "start",
            "discover-ip",
            "wait-ssh",
            "key-ceremony",
            "install",
            "verify",
            "commit"
        ]
    );
    let hash = &plan.definition_hash;
    assert!(hash.starts_with("sha256:") && hash.len() == 23, "{hash}");
    assert_eq!(
        lines(&plan),
        [
            "qm clone 9001 110 --name test-automation --full 1 --storage nvmeprom".to_string(),
            format!(
                "qm set 110 --cores 2 --memory 4096 --net0 'virtio,bridge=vmbr0' --agent \
                 'enabled=1' --tags 'vmctl;test' --description 'managed by vmctl; definition {hash}'"
            ),
            "qm set 110 --serial0 socket".into(),
            "qm resize 110 scsi0 20G".into(),
            "qm set 110 --ide2 nvmeprom:cloudinit --ciuser root --sshkeys .vmctl-sshkeys-110.pub \
             --ipconfig0 'ip=dhcp' --ciupgrade 0"
                .into(),
            "qm start 110".into(),
        ]
    );
    assert_eq!(plan.node.as_deref(), Some("prom"));
    let Action::CloudInit { keys, remove, .. } = &plan.step(StepId::CloudInit).unwrap().action
    else {
        panic!()
    };
    assert_eq!(keys, &[ADMIN.to_string()]);
    assert_eq!(remove.join(" "), "rm -f -- .vmctl-sshkeys-110.pub");
    let Action::Install { argv } = &plan.step(StepId::Install).unwrap().action else {
        panic!()
    };
    assert_eq!(
        argv.join(" "),
        "nixos-anywhere --flake .#test-automation --extra-files <DIR> --ssh-port <PORT> --target-host root@<IP>"
    );
}

#[test]
fn linked_clone_static_network_vlan_mac_and_no_resize_when_big_enough() {
    let src = DEFS.replace(
        "network = {\n        bridge = \"vmbr0\";\n        ip = \"dhcp\";\n      };",
        "network = { bridge = \"vmbr1\"; vlan = 30; mac = \"bc:24:11:00:01:10\"; \
         ip = \"192.168.30.10/24\"; gateway = \"192.168.30.1\"; };",
    );
    let defs = demo_defs(&src);
    let keys = vec![ADMIN.to_string()];
    let mut obs = observation();
    obs.template_config = Some(VmConfig {
        entries: vec![("virtio0".into(), "nvmeprom:base,size=32G".into())],
    });
    let plan = plan(&Inputs {
        linked: true,
        ..inputs(&defs, &keys, Some(&obs))
    })
    .unwrap();
    let l = lines(&plan);
    assert_eq!(l[0], "qm clone 9001 110 --name test-automation");
    assert!(
        l[1].contains("--net0 'virtio=BC:24:11:00:01:10,bridge=vmbr1,tag=30'"),
        "{}",
        l[1]
    );
    assert!(l.iter().all(|l| !l.contains("resize")), "{l:?}");
    assert!(plan.notes.iter().any(|n| n.contains("never shrinks")));
    assert!(
        l[3].contains("--ipconfig0 'ip=192.168.30.10/24,gw=192.168.30.1'"),
        "{}",
        l[3]
    );
    assert_eq!(
        plan.step(StepId::DiscoverIp).unwrap().action,
        Action::DiscoverIp {
            vmid: 110,
            static_ip: Some("192.168.30.10".into())
        }
    );
}

#[test]
fn offline_plans_from_definitions_alone_and_says_what_it_did_not_check() {
    let defs = demo_defs(DEFS);
    let keys = vec![ADMIN.to_string()];
    let plan = plan(&inputs(&defs, &keys, None)).unwrap();
    assert!(plan.offline);
    assert!(lines(&plan).contains(&"qm resize 110 scsi0 20G".to_string()));
    assert!(plan.notes.iter().any(|n| n.contains("VMID is free")));
    assert_eq!(plan.node.as_deref(), Some("prom"));
}

#[test]
fn refusals() {
    let defs = demo_defs(DEFS);
    let keys = vec![ADMIN.to_string()];
    let obs = observation();
    let base = inputs(&defs, &keys, Some(&obs));
    let err = |i: Inputs| plan(&i).unwrap_err();
    assert_eq!(
        err(Inputs {
            lint_errors: 2,
            ..base
        }),
        PlanError::Lint(2)
    );
    let e = err(Inputs {
        name: "doc1",
        ..base
    })
    .to_string();
    assert!(e.contains("imported VM"), "{e}");
    let e = err(Inputs {
        name: "test-automaton",
        ..base
    })
    .to_string();
    assert!(e.contains("did you mean `test-automation`"), "{e}");
    assert_eq!(
        err(Inputs {
            admin_keys: &[],
            ..base
        }),
        PlanError::NoAdminKeys
    );
    let bad = vec!["not a key".to_string()];
    assert!(matches!(
        err(Inputs {
            admin_keys: &bad,
            ..base
        }),
        PlanError::BadAdminKey { .. }
    ));

    // The VMID taken on the cluster by another VM.
    let mut taken = observation();
    taken.vms.push(resource(110, "someone-else", false));
    let e = err(inputs(&defs, &keys, Some(&taken)));
    assert!(
        matches!(e, PlanError::VmidTaken { ref other, .. } if other == "someone-else"),
        "{e}"
    );
    // Our own VM there, but not integrated: an unfinished run.
    let mut half = observation();
    half.vms.push(resource(110, "test-automation", false));
    assert!(matches!(
        err(inputs(&defs, &keys, Some(&half))),
        PlanError::HalfProvisioned { vmid: 110, .. }
    ));
    // ... and integrated: nothing to do.
    let done = plan(&Inputs {
        host_known: true,
        ..inputs(&defs, &keys, Some(&half))
    })
    .unwrap();
    assert!(done.steps.is_empty());
    assert!(done.nothing_to_do.unwrap().contains("already provisioned"));

    // Duplicated in definitions.
    let dup = demo_defs(&DEFS.replace("vmid = 109;", "vmid = 110;"));
    assert!(matches!(
        err(inputs(&dup, &keys, Some(&obs))),
        PlanError::DuplicateVmid { ref other, .. } if other == "igpu"
    ));
    // The template missing, or not a template.
    let mut no_tpl = observation();
    no_tpl.vms.retain(|r| r.vmid != 9001);
    assert_eq!(
        err(inputs(&defs, &keys, Some(&no_tpl))),
        PlanError::TemplateMissing { vmid: 9001 }
    );
    let mut not_tpl = observation();
    not_tpl.vms[2].template = false;
    assert_eq!(
        err(inputs(&defs, &keys, Some(&not_tpl))),
        PlanError::NotATemplate { vmid: 9001 }
    );
    // Storage the cluster does not have.
    let other = demo_defs(&DEFS.replace("storage = \"nvmeprom\";", "storage = \"ssd\";"));
    assert!(matches!(
        err(inputs(&other, &keys, Some(&obs))),
        PlanError::NoSuchStorage { .. }
    ));
    // Values validated as strictly as Proxmox.
    for (from, to, field) in [
        ("ip = \"dhcp\";", "ip = \"10.0.0.5\";", "network.ip"),
        (
            "ip = \"dhcp\";",
            "ip = \"dhcp\"; mac = \"zz\";",
            "network.mac",
        ),
        (
            "ip = \"dhcp\";",
            "ip = \"dhcp\"; vlan = 5000;",
            "network.vlan",
        ),
        ("tags = [ \"test\" ];", "tags = [ \"Bad Tag\" ];", "tags"),
        ("disk = \"20G\";", "disk = \"512M\";", "disk"),
    ] {
        let d = demo_defs(&DEFS.replace(from, to));
        match err(inputs(&d, &keys, Some(&obs))) {
            PlanError::Invalid { field: f, .. } => assert_eq!(f, field),
            e => panic!("{field}: {e}"),
        }
    }
}

fn files<'a>(hosts: &'a str, names: &'a [String]) -> FleetFiles<'a> {
    FleetFiles {
        hosts,
        sops: SOPS,
        docs: Some(DOCS),
        entry_template: None,
        template: &[],
        host_dir_exists: true,
        host_names: names,
    }
}

#[test]
fn ceremony_adds_the_host_and_its_recipient_and_the_commit_names_them() {
    let defs = demo_defs(DEFS);
    let vm = defs.managed[0].clone();
    let key = ceremony::preview_key("test-automation");
    let names = vec!["doc1".to_string(), "igpu".to_string()];
    let changed = ceremony::changes(
        &defs,
        &vm,
        &files(HOSTS, &names),
        &key.public_openssh,
        &key.age_recipient,
    )
    .unwrap();
    let paths: Vec<String> = changed
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    assert_eq!(paths[..2], ["hosts.nix", ".sops.yaml"]);
    let hosts = String::from_utf8(changed[0].new.clone()).unwrap();
    assert!(hosts.contains(key.public_openssh.trim_end()));
    let sops = String::from_utf8(changed[1].new.clone()).unwrap();
    // Into the shared rule only: the per-host rules of doc1 and igpu are theirs.
    assert_eq!(sops.matches(&key.age_recipient).count(), 1);
    let msg = ceremony::commit_message(
        "test-automation",
        110,
        Some("prom"),
        &key.fingerprint,
        &key.age_recipient,
        &paths,
    );
    assert!(msg.contains(&format!("Host-Key-Fingerprint: {}", key.fingerprint)));
    assert!(msg.contains("VMID: 110\nNode: prom\n"));
    // A second ceremony on the edited hosts.nix with another key is refused, naming why.
    let other = crate::keys::generate_host_key(&mut rand_core::OsRng, None);
    let e = ceremony::changes(
        &defs,
        &vm,
        &files(&hosts, &names),
        &other.public_openssh,
        &other.age_recipient,
    )
    .unwrap_err();
    assert!(e.to_string().contains("already exists in hosts.nix"), "{e}");
}

#[test]
fn scaffolds_only_when_the_host_directory_is_missing() {
    let defs = demo_defs(DEFS);
    let vm = defs.managed[0].clone();
    let key = ceremony::preview_key("test-automation");
    let tpl = vec![crate::edit::scaffold::TemplateFile {
        path: "configuration.nix".into(),
        contents: b"{ networking.hostName = \"@hostname@\"; }\n".to_vec(),
    }];
    let names: Vec<String> = Vec::new();
    let mut f = files(HOSTS, &names);
    f.template = &tpl;
    let with = ceremony::changes(
        &defs,
        &vm,
        &FleetFiles {
            host_dir_exists: false,
            ..f
        },
        &key.public_openssh,
        &key.age_recipient,
    )
    .unwrap();
    assert!(with.iter().any(|c| c.path
        == std::path::Path::new("hosts/test-automation/configuration.nix")
        && c.old.is_none()));
    let without =
        ceremony::changes(&defs, &vm, &f, &key.public_openssh, &key.age_recipient).unwrap();
    assert!(without.iter().all(|c| !c.path.starts_with("hosts/")));
}

#[test]
fn dry_run_renderings_show_commands_diffs_and_commit() {
    let defs = demo_defs(DEFS);
    let keys = vec![ADMIN.to_string()];
    let p = plan(&inputs(&defs, &keys, None)).unwrap();
    let key = ceremony::preview_key("test-automation");
    let names = vec!["doc1".to_string(), "igpu".to_string()];
    let changed = ceremony::changes(
        &defs,
        &defs.managed[0],
        &files(HOSTS, &names),
        &key.public_openssh,
        &key.age_recipient,
    )
    .unwrap();
    let msg = ceremony::commit_message(
        "test-automation",
        110,
        Some("prom"),
        "SHA256:x",
        "age1x",
        &[],
    );
    let secrets = vec!["secrets/common.yaml".to_string()];
    let preview = CeremonyPreview {
        files: &changed,
        secrets: &secrets,
        commit_message: &msg,
    };
    let text = render::human(&p, Some(&preview));
    for want in [
        "1. [clone]",
        "$ qm clone 9001 110 --name test-automation --full 1 --storage nvmeprom",
        "$ rm -f -- .vmctl-sshkeys-110.pub",
        "+++ b/hosts.nix",
        "$ nixos-anywhere --flake '.#test-automation'",
        "| feat(vms): provision test-automation (VMID 110)",
        "note: offline",
        "secrets re-keyed for the new host:\n     secrets/common.yaml",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    let v = render::json(&p, Some(&preview));
    let back: serde_json::Value = serde_json::from_str(&v.to_string()).unwrap();
    assert_eq!(back["vmid"], 110);
    assert_eq!(back["steps"][0]["id"], "clone");
    assert_eq!(back["steps"][0]["action"]["mutations"][0]["op"], "clone");
    assert_eq!(back["commands"][0], lines(&p)[0]);
    assert_eq!(back["changes"][0]["file"], "hosts.nix");
    assert_eq!(back["rekeyed_secrets"][0], "secrets/common.yaml");
    assert_eq!(back["dry_run"], true);
    assert_eq!(back["written"], false);
}

#[test]
fn the_clone_lands_on_the_vms_node_else_proxmox_node_whatever_node_holds_the_template() {
    let keys = vec![ADMIN.to_string()];
    let mut obs = observation();
    obs.vms.iter_mut().for_each(|r| r.node = "pve3".into());
    let clone = |src: &str| {
        let defs = demo_defs(src);
        let plan = plan(&inputs(&defs, &keys, Some(&obs))).unwrap();
        (lines(&plan)[0].clone(), plan.node)
    };
    // No `node`: proxmox.node (prom), not the template's pve3.
    let (line, node) = clone(DEFS);
    assert!(line.ends_with("--target prom"), "{line}");
    assert_eq!(node.as_deref(), Some("prom"));
    // Its own `node`.
    let (line, node) = clone(&DEFS.replace("vmid = 110;", "vmid = 110;\n      node = \"pve2\";"));
    assert!(line.ends_with("--target pve2"), "{line}");
    assert_eq!(node.as_deref(), Some("pve2"));
    // The template's node: no --target.
    let (line, _) = clone(&DEFS.replace("vmid = 110;", "vmid = 110;\n      node = \"pve3\";"));
    assert!(!line.contains("--target"), "{line}");
}
