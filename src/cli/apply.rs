//! `vmctl apply [NAME... | --all] [--dry-run] [--reboot]`: brings managed VMs' live
//! configuration to their definitions (cores, memory, tags, description, cloud-init, net0;
//! disks only grow), each update guarded by the config digest read in the same run. Readonly
//! VMs are never touched. What needs a restart is shown as pending; `--reboot` reboots those
//! VMs. `--dry-run` reads the cluster (it must, to know the drift) and changes nothing.

use clap::Args;
use miette::IntoDiagnostic;
use serde_json::json;

use super::ops::Conn;
use super::status::{admin_keys, connect, read};
use super::Global;
use crate::exec::apply_cfg::{apply_vm, commands};
use crate::plan::apply;
use crate::proxmox::{display_line, Fence};

pub const EXAMPLES: &str = "Examples:
  vmctl apply --all --dry-run                 # the digest-guarded updates it would send
  vmctl apply test-automation                 # fix one VM's drift
  vmctl apply --all --reboot                  # and reboot VMs whose changes are pending";

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Managed VMs to apply (names in vms/definitions.nix).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub names: Vec<String>,
    /// Every managed VM (readonly VMs are skipped).
    #[arg(long)]
    pub all: bool,
    /// Read the cluster and show the commands; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Reboot each VM whose changes wait for a restart (cores, memory on a running VM).
    #[arg(long)]
    pub reboot: bool,
    /// Print one JSON object on stdout: `dry_run`, the `commands` sent (or that would be),
    /// `output`, `notes` and `pending` per VM.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Conn,
}

fn err<E: std::error::Error + Send + Sync + 'static>(e: E) -> miette::Report {
    crate::cli::exit::report(e)
}

pub fn run(args: ApplyArgs, g: &Global) -> miette::Result<u8> {
    let loaded = super::load_fleet(g, false)?;
    let defs = &loaded.definitions;
    crate::plan::status::select(defs, &args.names).map_err(|m| miette::miette!("{m}"))?;
    // Named readonly VMs are refused before any connection.
    for n in &args.names {
        if defs.all_vms().any(|v| &v.name == n && v.readonly) {
            return Err(err(apply::ApplyPlanError::Readonly { name: n.clone() }));
        }
    }
    let fence = Fence::from_definitions(defs);
    let remote = connect(&loaded, &args.conn)?;
    let (report, observed) = read(&loaded, &remote, &args.names)?;
    let keys = admin_keys(&loaded);
    let plan = apply::plan(defs, &report, &observed.configs, &keys, &args.names).map_err(err)?;
    let mut sent = Vec::new();
    let mut notes = Vec::new();
    let mut pending = serde_json::Map::new();
    let mut output = String::new();
    for a in &plan {
        notes.extend(a.notes.iter().cloned());
        if args.dry_run {
            fence
                .check(&crate::proxmox::Mutation::Configure {
                    vmid: a.vmid,
                    options: a.set.clone(),
                })
                .map_err(err)?;
            for c in commands(a, false) {
                sent.push(display_line(&c));
            }
            if args.reboot {
                sent.push(format!(
                    "{} (only when changes are pending)",
                    display_line(&crate::proxmox::node_api::reboot(&a.node, a.vmid))
                ));
            }
            continue;
        }
        if a.set.is_empty() && a.grow.is_empty() {
            continue;
        }
        let done = apply_vm(&remote, &fence, a, args.reboot).map_err(err)?;
        sent.extend(done.commands.iter().cloned());
        if !done.pending.is_empty() && !done.rebooted {
            output.push_str(&format!(
                "{}: pending until the next start: {} (`vmctl apply {} --reboot`)\n",
                a.name,
                done.pending.join(", "),
                a.name
            ));
            pending.insert(a.name.clone(), json!(done.pending));
        } else if done.rebooted {
            output.push_str(&format!("{}: rebooted; pending changes applied\n", a.name));
        }
    }
    if args.json {
        let v = json!({
            "dry_run": args.dry_run,
            "commands": sent,
            "output": output,
            "notes": notes,
            "pending": pending,
        });
        println!("{}", serde_json::to_string_pretty(&v).into_diagnostic()?);
    } else {
        if plan.is_empty() {
            println!("nothing to apply: every selected managed VM matches its definition");
        }
        for c in &sent {
            println!("{}{c}", if args.dry_run { "would run: " } else { "ran: " });
        }
        print!("{output}");
        for n in &notes {
            eprintln!("note: {n}");
        }
    }
    Ok(0)
}
