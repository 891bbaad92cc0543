//! The key ceremony's file changes and the commit message, for a given host public key.
//!
//! The run calls [`changes`] with the key it just generated; the planner and `--dry-run` call
//! it with [`preview_key`], so an edit that would be refused (a host already in hosts.nix with
//! another key, an ambiguous .sops.yaml rule) stops the run before anything is cloned.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::edit::hosts::{edit_hosts, EntryTemplate, HostIntent, HostsEditError, NewHost};
use crate::edit::scaffold::{self, Action as ScaffoldAction, TemplateFile, Values};
use crate::edit::sops::{add_recipient, AddRecipient, SopsEditError};
use crate::keys::HostKeyPair;
use crate::model::{Definitions, Host, Vm};
use crate::proxmox::VmId;

/// The fleet files the ceremony reads, as they are now.
#[derive(Debug, Clone, Copy)]
pub struct FleetFiles<'a> {
    pub hosts: &'a str,
    pub sops: &'a str,
    /// docs/machines.md, when it exists.
    pub docs: Option<&'a str>,
    pub entry_template: Option<&'a EntryTemplate>,
    /// The fleet's hosts-template/ files.
    pub template: &'a [TemplateFile],
    /// Whether `hosts/CONFIG/` exists; scaffolding happens only when it does not.
    pub host_dir_exists: bool,
    /// The host names of hosts.nix, so the recipient is not added to another host's rule.
    pub host_names: &'a [String],
}

/// One file the ceremony writes: fleet-relative path, the bytes it was computed from (`None`:
/// created) and the bytes it gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedFile {
    pub path: PathBuf,
    #[serde(skip)]
    pub old: Option<Vec<u8>>,
    #[serde(skip)]
    pub new: Vec<u8>,
    pub summary: String,
}

/// Why the ceremony's edits cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CeremonyError {
    #[error("hosts.nix: {0}")]
    Hosts(#[from] HostsEditError),
    #[error(".sops.yaml: {0}")]
    Sops(#[from] SopsEditError),
    #[error("scaffold: {0}")]
    Scaffold(#[from] scaffold::ScaffoldError),
    #[error("docs: {0}")]
    Docs(#[from] crate::edit::docs::DocsError),
}

/// The files the ceremony may change, fleet-relative, for the plan's listing.
pub fn touched_files(defs: &Definitions, vm: &Vm) -> Vec<String> {
    let s = &defs.settings;
    vec![
        s.hosts_file.display().to_string(),
        s.sops_config.display().to_string(),
        format!("{}/ (re-keyed)", s.secrets_dir.display()),
        format!(
            "{}/ (when missing)",
            s.hosts_dir.join(vm.config_name()).display()
        ),
        s.docs_file.display().to_string(),
    ]
}

/// The ceremony's file changes for the host key `key`: hosts.nix gains the host, .sops.yaml
/// its age recipient, `hosts/CONFIG/` is scaffolded when missing and machines.md regenerated.
/// Files that would not change are left out. Secrets are re-keyed afterwards by the runner.
pub fn changes(
    defs: &Definitions,
    vm: &Vm,
    files: &FleetFiles,
    public_key: &str,
    age_recipient: &str,
) -> Result<Vec<PlannedFile>, CeremonyError> {
    let s = &defs.settings;
    let public = public_key.trim_end().to_string();
    let mut out = Vec::new();
    let hosts = edit_hosts(
        files.hosts,
        &HostIntent::Add(NewHost {
            name: vm.name.clone(),
            public_key: public.clone(),
            hostname: vm.hostname.clone(),
            ssh_alias: vm.ssh_alias.clone(),
            vmid: vm.vmid,
        }),
        files.entry_template,
    )?;
    push(
        &mut out,
        &s.hosts_file,
        Some(files.hosts),
        &hosts.text,
        hosts.change.summary(),
    );
    let sops = add_recipient(
        files.sops,
        &AddRecipient {
            name: &vm.name,
            recipient: age_recipient,
            rules: &vm.sops_rules,
            all: false,
            hosts: files.host_names,
        },
    )?;
    push(
        &mut out,
        &s.sops_config,
        Some(files.sops),
        &sops.new_text,
        format!("added the age recipient of `{}`", vm.name),
    );
    if !files.host_dir_exists {
        let host = Host {
            name: vm.name.clone(),
            public_key: Some(public),
            hostname: vm.hostname.clone(),
            ssh_alias: vm.ssh_alias.clone(),
            name_range: Default::default(),
            public_key_range: None,
            public_key_given: crate::model::Given::Known,
        };
        let values = Values::for_vm(vm, Some(&host), None);
        let none = BTreeMap::<PathBuf, Vec<u8>>::new();
        let plan = scaffold::plan(vm, &s.hosts_dir, files.template, &values, |p: &Path| {
            none.get(p).cloned()
        })?;
        for f in plan.files {
            if f.action == ScaffoldAction::Create {
                out.push(PlannedFile {
                    path: f.path,
                    old: None,
                    new: f.contents,
                    summary: "scaffolded".into(),
                });
            }
        }
    }
    let docs = crate::edit::docs::update(files.docs, defs)?;
    push(
        &mut out,
        &s.docs_file,
        files.docs,
        &docs.text,
        "regenerated".into(),
    );
    Ok(out)
}

fn push(out: &mut Vec<PlannedFile>, path: &Path, old: Option<&str>, new: &str, summary: String) {
    if old != Some(new) {
        out.push(PlannedFile {
            path: path.to_path_buf(),
            old: old.map(|o| o.as_bytes().to_vec()),
            new: new.as_bytes().to_vec(),
            summary,
        });
    }
}

/// A fixed host key for showing the ceremony's diffs before the real one exists. Never
/// installed anywhere: the run generates a fresh key.
pub fn preview_key(name: &str) -> HostKeyPair {
    let key = crate::keys::PrivateKey::from_seed([7u8; 32], Some(format!("root@{name}")));
    HostKeyPair {
        private_openssh: key.to_openssh(),
        public_openssh: format!("{}\n", key.public.to_openssh()),
        fingerprint: key.public.fingerprint(),
        age_recipient: key.public.age_recipient().expect("a valid point"),
        public: key.public,
    }
}

pub fn commit_subject(name: &str, vmid: VmId) -> String {
    format!("feat(vms): provision {name} (VMID {vmid})")
}

/// The commit message: the subject, the files, and trailers a reviewer (or a script) can check
/// against the VM.
pub fn commit_message(
    name: &str,
    vmid: VmId,
    node: Option<&str>,
    fingerprint: &str,
    recipient: &str,
    files: &[String],
) -> String {
    integration_message(
        &commit_subject(name, vmid),
        "Created by `vmctl provision`: the VM, its host key pinned in hosts.nix, its\nage recipient in .sops.yaml and the secrets re-keyed for it.",
        vmid,
        node,
        fingerprint,
        recipient,
        files,
    )
}

/// A fleet-integration commit message: `subject`, the paragraph `intro`, the files, and the
/// trailers every integration carries (`vmctl provision` and `vmctl post-provision` alike).
pub fn integration_message(
    subject: &str,
    intro: &str,
    vmid: VmId,
    node: Option<&str>,
    fingerprint: &str,
    recipient: &str,
    files: &[String],
) -> String {
    let mut m = format!("{subject}\n\n{intro}\n\nFiles:\n");
    for f in files {
        m.push_str(&format!("  {f}\n"));
    }
    m.push_str(&format!("\nVMID: {vmid}\n"));
    if let Some(n) = node {
        m.push_str(&format!("Node: {n}\n"));
    }
    m.push_str(&format!(
        "Host-Key-Fingerprint: {fingerprint}\nAge-Recipient: {recipient}\n"
    ));
    m
}
