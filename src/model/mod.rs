//! Typed views of the fleet files, with the source ranges checks need.
//!
//! The types here are plain data: `syntax::eval` produces spanned values and
//! `model::definitions` / `model::hosts` read them into these structs. Consumers that only
//! need values (ops, secrets, edits) use the plain fields; checks use the ranges.

pub mod definitions;
pub mod fleet;
pub mod hosts;
pub mod read;
pub mod source;
pub mod units;

use std::path::PathBuf;

pub use rowan::TextRange;

use self::source::DefinitionsSource;
pub use self::source::{Spanned, VmSource};
use self::units::DiskSize;

/// The connection to the Proxmox host (definitions.nix `proxmox`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Proxmox {
    pub host: Option<String>,
    pub node: Option<String>,
    /// SSH user; default `root`.
    pub user: String,
    /// SSH port; default 22.
    pub port: u16,
    /// Default storage for new disks (`storage`, alias `defaultStorage`).
    pub storage: Option<String>,
    pub bridge: Option<String>,
    /// Pinned host key of the Proxmox host (`hostKey = "ssh-ed25519 AAAA…"`); when set it is
    /// the only key accepted, otherwise the user's known_hosts decides.
    pub host_key: Option<String>,
}

/// What kind of entry a VM is in definitions.nix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VmKind {
    Managed,
    Imported,
    Template,
}

impl VmKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VmKind::Managed => "managed",
            VmKind::Imported => "imported",
            VmKind::Template => "template",
        }
    }
}

/// Network settings of a managed VM.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Network {
    pub bridge: Option<String>,
    pub vlan: Option<u32>,
    /// `"dhcp"` or a CIDR like `"192.168.1.50/24"`; default dhcp.
    pub ip: Option<String>,
    pub gateway: Option<String>,
    pub mac: Option<String>,
}

/// One VM of definitions.nix: managed, imported or the template.
#[derive(Debug, Clone, PartialEq)]
pub struct Vm {
    pub name: String,
    pub kind: VmKind,
    pub vmid: Option<u32>,
    /// True when definitions.nix says `readonly = true` (imported VMs should).
    pub readonly: bool,
    pub cores: Option<u32>,
    /// Memory in MiB.
    pub memory: Option<u64>,
    /// Disk size, e.g. `"20G"` (for imported VMs and the template, documentation text).
    pub disk: Option<DiskSize>,
    pub storage: Option<String>,
    pub node: Option<String>,
    pub nixos_config: Option<String>,
    pub hostname: Option<String>,
    pub ssh_alias: Option<String>,
    pub purpose: Option<String>,
    pub description: Option<String>,
    pub status: Option<String>,
    pub services: Vec<String>,
    pub tags: Vec<String>,
    pub network: Network,
    /// `sopsRules`: the `path_regex`es of the .sops.yaml creation rules the VM's age recipient
    /// goes into, when more than one rule could take it (`vmctl sops add-recipient` reads it).
    pub sops_rules: Vec<String>,
    /// The fields as written, each with its range (the name's: `test-automation` in
    /// `test-automation = {`), for the checks. Boxed: most readers of a `Vm` never look, and
    /// ten thousand VMs stay small.
    pub source: Box<VmSource>,
    /// How `vmid` and `readonly` were given, for the fences that must not guess.
    pub fence: FenceFacts,
}

/// How definitions.nix gives a value the safety fences rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Given {
    /// Not written.
    #[default]
    Absent,
    /// Written and known (statically or through the Nix fallback).
    Known,
    /// Written, but neither the static evaluator nor Nix could determine it.
    Undetermined,
}

/// What the fences need to know beyond the values: whether `vmid` and `readonly` were
/// written, and whether they could be determined. An undetermined `readonly` makes the VM
/// readonly; an undetermined `vmid` makes every mutation refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FenceFacts {
    pub vmid: Given,
    pub readonly: Given,
}

/// A declared VMID range (`vmidRanges.<name> = { start; end; description; }`).
#[derive(Debug, Clone, PartialEq)]
pub struct VmidRange {
    pub name: String,
    pub start: u32,
    pub end: u32,
    pub description: Option<String>,
    pub range: TextRange,
}

/// Paths of the fleet's files, relative to the fleet root (definitions.nix `settings`).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub hosts_file: PathBuf,
    pub sops_config: PathBuf,
    pub secrets_dir: PathBuf,
    pub hosts_dir: PathBuf,
    pub docs_file: PathBuf,
    pub template_dir: PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            hosts_file: "hosts.nix".into(),
            sops_config: ".sops.yaml".into(),
            secrets_dir: "secrets".into(),
            hosts_dir: "hosts".into(),
            docs_file: "docs/machines.md".into(),
            template_dir: "hosts-template".into(),
        }
    }
}

/// definitions.nix as typed data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Definitions {
    pub proxmox: Proxmox,
    pub template: Option<Vm>,
    pub imported: Vec<Vm>,
    pub managed: Vec<Vm>,
    pub vmid_ranges: Vec<VmidRange>,
    pub settings: Settings,
    /// `snapshots.keep` as written, with its range: how many automatic snapshots
    /// (`vmctl-auto-…`) each VM keeps; manual ones are never pruned.
    pub snapshot_keep: Option<(i64, TextRange)>,
    /// `backups`: which VMs `vmctl backup --due` backs up, where, how often, how many kept.
    pub backup_policy: Option<BackupPolicy>,
    /// VM tables or entries the evaluator could not determine (`imported` from a function,
    /// `managed.web = mkVm …` without Nix), described for messages. Their VMIDs are unknown,
    /// so the fences refuse every mutation while this is not empty.
    pub undetermined: Vec<String>,
    /// What the file writes beyond the VMs, with ranges, for the checks.
    pub source: DefinitionsSource,
}

impl Definitions {
    /// Every VM: template first, then imported, then managed, each in file order.
    pub fn all_vms(&self) -> impl Iterator<Item = &Vm> {
        self.template
            .iter()
            .chain(self.imported.iter())
            .chain(self.managed.iter())
    }

    /// The VM definitions.nix gives this VMID, if any.
    pub fn vm_by_vmid(&self, vmid: u32) -> Option<&Vm> {
        self.all_vms().find(|v| v.vmid == Some(vmid))
    }

    /// The VM with this name (managed or imported or the template), if any.
    pub fn vm_by_name(&self, name: &str) -> Option<&Vm> {
        self.all_vms().find(|v| v.name == name)
    }
}

/// The fleet's backup policy (`backups` in definitions.nix); numbers with their ranges.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BackupPolicy {
    pub vms: Vec<String>,
    pub storage: Option<String>,
    pub mode: Option<String>,
    pub keep: Option<(i64, TextRange)>,
    pub every_hours: Option<(i64, TextRange)>,
}

/// One entry of hosts.nix.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    pub name: String,
    /// `publicKey` as written (an OpenSSH public key line), when it is a plain string.
    pub public_key: Option<String>,
    pub hostname: Option<String>,
    pub ssh_alias: Option<String>,
    pub name_range: TextRange,
    pub public_key_range: Option<TextRange>,
    /// Whether `publicKey` is written at all: a host whose key has the wrong type (DF002) or
    /// could not be determined is not missing one.
    pub public_key_given: Given,
}

/// hosts.nix as typed data. Attributes whose name starts with `_` (like `_proxmox`) and
/// attributes that are not attrsets are not hosts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Hosts {
    pub hosts: Vec<Host>,
}

impl Hosts {
    pub fn get(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

impl Vm {
    /// A VM with only a name, a kind and a VMID; every other field empty. Build the rest with
    /// struct update syntax: `Vm { readonly: true, ..Vm::new("doc1", VmKind::Imported, Some(104)) }`.
    pub fn new(name: impl Into<String>, kind: VmKind, vmid: Option<u32>) -> Self {
        Vm {
            name: name.into(),
            kind,
            vmid,
            readonly: false,
            cores: None,
            memory: None,
            disk: None,
            storage: None,
            node: None,
            nixos_config: None,
            hostname: None,
            ssh_alias: None,
            purpose: None,
            description: None,
            status: None,
            services: Vec::new(),
            tags: Vec::new(),
            network: Network::default(),
            sops_rules: Vec::new(),
            source: Box::default(),
            fence: FenceFacts {
                vmid: if vmid.is_some() {
                    Given::Known
                } else {
                    Given::Absent
                },
                readonly: Given::Absent,
            },
        }
    }
}
