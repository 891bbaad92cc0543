//! `vmctl import NAME VMID`: writes an existing cluster VM into the `imported` section of
//! vms/definitions.nix (a lossless insertion; `readonly = true`; node, resources, tags and
//! description from the live config, read through the node that holds it) and regenerates
//! docs/machines.md. A second import of the same VM changes nothing.

use clap::Args;

use super::hosts::shown;
use super::ops::Conn;
use super::status::connect;
use super::Global;
use crate::edit::definitions_import::{add_imported, read, ImportedVm};
use crate::exec::apply::{apply, ChangeSet, FileChange, FleetLock};
use crate::exec::remote::Remote as _;
use crate::plan::status::{boot_disk, normalize};
use crate::proxmox::node_api;
use crate::proxmox::validate as valid;
use crate::proxmox::{display_line, strip_control, VmId};

pub const EXAMPLES: &str = "Examples:
  vmctl import nas 105 --dry-run              # the definitions.nix and docs diff
  vmctl import nas 105                        # write them";

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The VM's name in vms/definitions.nix (a DNS label, like `nas`).
    #[arg(value_parser = valid::vm_name)]
    pub name: String,
    /// The VMID of the VM on the cluster.
    #[arg(value_parser = valid::vmid)]
    pub vmid: VmId,
    /// Show the changes as a diff and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object (`dry_run`, `written`, `changes`) on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Conn,
}

fn err<E: std::error::Error + Send + Sync + 'static>(e: E) -> miette::Report {
    crate::cli::exit::report(e)
}

pub fn run(args: ImportArgs, g: &Global) -> miette::Result<u8> {
    let fleet = super::load_fleet(g, true)?;
    let defs = &fleet.definitions;
    let same = defs
        .imported
        .iter()
        .any(|v| v.name == args.name && v.vmid == Some(args.vmid));
    if !same {
        if let Some(v) = defs.all_vms().find(|v| v.name == args.name) {
            return Err(miette::miette!(
                "`{}` is already in vms/definitions.nix (VMID {}); choose another name",
                args.name,
                v.vmid.map_or("unknown".into(), |i| i.to_string())
            ));
        }
        if let Some(v) = defs.all_vms().find(|v| v.vmid == Some(args.vmid)) {
            return Err(miette::miette!(
                "VMID {} is already `{}` in vms/definitions.nix; nothing to import",
                args.vmid,
                v.name
            ));
        }
    }
    let remote = connect(&fleet, &args.conn)?;
    let all = node_api::cluster_all();
    let out = remote.run(&all).map_err(err)?;
    if !out.success() {
        return Err(miette::miette!(
            "`{}` failed on the Proxmox host: {}; check the host and retry",
            display_line(&all),
            strip_control(out.stderr.trim())
        ));
    }
    let cluster = node_api::parse_cluster(&out.stdout).map_err(err)?;
    let Some(found) = cluster.vms.iter().find(|r| r.vmid == args.vmid) else {
        return Err(miette::miette!(
            "VM {} is not on the cluster; `vmctl status` lists the VMs definitions.nix does not mention",
            args.vmid
        ));
    };
    let read_cfg = node_api::config(&found.node, args.vmid);
    let out = remote.run(&read_cfg).map_err(err)?;
    if !out.success() {
        return Err(miette::miette!(
            "`{}` failed on the Proxmox host: {}; check the VM and retry",
            display_line(&read_cfg),
            strip_control(out.stderr.trim())
        ));
    }
    let cfg = node_api::parse_config(&out.stdout).map_err(err)?;
    let vm = ImportedVm {
        name: args.name.clone(),
        vmid: args.vmid,
        node: found.node.clone(),
        cores: cfg.get("cores").and_then(|c| c.parse().ok()),
        memory: cfg
            .get("memory")
            .and_then(|m| normalize::memory(m).parse().ok()),
        disk: boot_disk(&cfg).map(|(_, b)| normalize::show_size(b)),
        tags: cfg
            .get("tags")
            .map(normalize::tags)
            .unwrap_or_default()
            .split(';')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        description: cfg
            .get("description")
            .map(|d| strip_control(d.trim_end()))
            .filter(|d| !d.is_empty()),
    };
    let path = fleet.path(std::path::Path::new("vms/definitions.nix"));
    let name = shown(&fleet, &path);
    let lock = if args.dry_run {
        None
    } else {
        Some(FleetLock::acquire(&fleet.root, &super::ui::reporter())?)
    };
    let text = super::changes::read_text_for_change(&path, &name, "Nix text")?
        .ok_or_else(|| miette::miette!("{name} does not exist"))?;
    let mut set = ChangeSet::new();
    if let Some(new) = add_imported(&text, &vm).map_err(err)? {
        let new_defs = read(&new);
        set.push(FileChange::modify(
            path.clone(),
            name.clone(),
            text.clone(),
            new.clone(),
            format!(
                "imported `{}` (VMID {} on {}), readonly",
                vm.name, vm.vmid, vm.node
            ),
        ));
        let docs_path = fleet.path(&defs.settings.docs_file);
        let docs_name = shown(&fleet, &docs_path);
        let existing =
            super::changes::read_text_for_change(&docs_path, &docs_name, "Markdown text")?;
        let docs = crate::edit::docs::update(existing.as_deref(), &new_defs)
            .map_err(|e| miette::miette!(help = "nothing was written", "{docs_name}: {e}"))?;
        if existing.as_deref() != Some(docs.text.as_str()) {
            let summary = format!("documented `{}`", vm.name);
            set.push(match existing {
                Some(old) => FileChange::modify(docs_path, docs_name, old, docs.text, summary),
                None => FileChange::create(docs_path, docs_name, docs.text, summary),
            });
        }
    }
    if let Some(lock) = &lock {
        apply(&set, lock)?;
    }
    if args.json {
        println!("{}", super::changes::set_json(&set, args.dry_run));
    } else if !set.is_change() {
        println!(
            "`{}` (VMID {}) is already imported; nothing changed",
            vm.name, vm.vmid
        );
    } else {
        super::changes::print_human(&set, args.dry_run);
    }
    Ok(0)
}
