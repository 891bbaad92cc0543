//! `vmctl status [NAME...] [--json]`: definitions against the live cluster in one table (node,
//! power, drift per field with both values), then VMs definitions.nix does not mention,
//! declared VMs the cluster lacks, readonly VMs without protection, and capacity.
//!
//! Exit 0 when every selected VM is on the cluster as declared, 1 when some VM drifted, is
//! missing or could not be compared (the answer is no), 2 when vmctl could not act.

use clap::Args;
use miette::IntoDiagnostic;

use super::ops::Conn;
use super::Global;
use crate::exec::fleet::LoadedFleet;
use crate::exec::remote::SshRemote;
use crate::exec::status::{observe, Observed};
use crate::model::fleet::NixRole;
use crate::plan::status::{self, Inputs, StatusReport};
use crate::proxmox::ssh::SshTarget;
use crate::proxmox::strip_control;

pub const EXAMPLES: &str = "Examples:
  vmctl status                                # every VM: node, power, drift
  vmctl status test-automation --json         # one VM, for scripts
  vmctl apply --all --dry-run                 # what would bring the drift back";

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// VMs to show (names in vms/definitions.nix); all when none is given.
    pub names: Vec<String>,
    /// Print one JSON object instead of the table (for scripts).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Conn,
}

fn err<E: std::error::Error + Send + Sync + 'static>(e: E) -> miette::Report {
    crate::cli::exit::report(e)
}

/// hosts.nix `_proxmox.adminKeys`: the keys cloud-init was given.
pub(crate) fn admin_keys(loaded: &LoadedFleet) -> Vec<String> {
    let (fleet, _) = crate::exec::fleet::lint_with(&loaded.root, &[]);
    fleet
        .files
        .iter()
        .find(|f| f.role == NixRole::Hosts)
        .and_then(|f| {
            let list = f
                .eval
                .value
                .as_attrs()?
                .get("_proxmox")?
                .as_attrs()?
                .get("adminKeys")?
                .as_list()?
                .iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect::<Vec<_>>();
            Some(list)
        })
        .unwrap_or_default()
}

/// The one SSH connection to the Proxmox host definitions.nix names.
pub(crate) fn connect(loaded: &LoadedFleet, conn: &Conn) -> miette::Result<SshRemote> {
    let target = SshTarget::from_proxmox(&loaded.definitions.proxmox, conn.ssh_config.clone())
        .map_err(err)?;
    SshRemote::connect(&target).map_err(err)
}

/// Observes and compares: the report and what was read (apply plans from both).
pub(crate) fn read(
    loaded: &LoadedFleet,
    remote: &SshRemote,
    names: &[String],
) -> miette::Result<(StatusReport, Observed)> {
    let defs = &loaded.definitions;
    let observed = observe(remote, defs, names).map_err(err)?;
    let keys = admin_keys(loaded);
    let report = status::status(
        defs,
        &Inputs {
            cluster: &observed.cluster,
            configs: &observed.configs,
            pending: &observed.pending,
            admin_keys: &keys,
            names,
        },
    )
    .map_err(|m| miette::miette!("{m}"))?;
    Ok((report, observed))
}

pub fn run(args: StatusArgs, g: &Global) -> miette::Result<u8> {
    let loaded = super::load_fleet(g, false)?;
    status::select(&loaded.definitions, &args.names).map_err(|m| miette::miette!("{m}"))?;
    let remote = connect(&loaded, &args.conn)?;
    let (report, _) = read(&loaded, &remote, &args.names)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).into_diagnostic()?
        );
    } else {
        print!("{}", table(&report));
    }
    // A VM vmctl could not compare is not known to match: the answer is not yes.
    let unsure = report.vms.iter().any(|v| v.problem.is_some());
    Ok(
        if report.drifted() || !report.missing.is_empty() || unsure {
            1
        } else {
            0
        },
    )
}

/// The human table; every value from the cluster stripped of control characters.
pub fn table(r: &StatusReport) -> String {
    let c = |s: &str| strip_control(s);
    let mut out = format!(
        "{:<20} {:>6} {:<9} {:<10} {:<9} {}\n",
        "NAME", "VMID", "KIND", "NODE", "POWER", "DRIFT"
    );
    for v in &r.vms {
        let drift = if v.node.is_none() {
            "missing from the cluster".to_string()
        } else if let Some(p) = &v.problem {
            format!("cannot compare: {p}")
        } else if v.drift.is_empty() {
            "none".to_string()
        } else {
            v.drift
                .iter()
                .map(|d| d.field.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "{:<20} {:>6} {:<9} {:<10} {:<9} {}\n",
            v.name,
            v.vmid,
            if v.readonly { "readonly" } else { v.kind },
            c(v.node.as_deref().unwrap_or("-")),
            c(v.power.as_deref().unwrap_or("-")),
            drift
        ));
        for d in &v.drift {
            out.push_str(&format!(
                "    {}: declared {:?}, live {:?}\n",
                d.field,
                d.declared,
                c(&d.live)
            ));
        }
        if !v.pending.is_empty() {
            out.push_str(&format!(
                "    pending until the next start: {}\n",
                c(&v.pending.join(", "))
            ));
        }
    }
    if !r.unmanaged.is_empty() {
        out.push_str("\nnot in vms/definitions.nix (`vmctl import NAME VMID` documents one):\n");
        for u in &r.unmanaged {
            out.push_str(&format!(
                "  {:>6} {:<20} on {}{}\n",
                u.vmid,
                c(u.name.as_deref().unwrap_or("(no name)")),
                c(&u.node),
                if u.template { " (template)" } else { "" }
            ));
        }
    }
    if !r.missing.is_empty() {
        out.push_str(&format!(
            "\ndeclared but not on the cluster: {} (`vmctl provision NAME` creates a managed one)\n",
            r.missing.join(", ")
        ));
    }
    if !r.unprotected_readonly.is_empty() {
        out.push_str(&format!(
            "\nreadonly without Proxmox protection: {} (`vmctl ops protect --readonly-vms` sets it)\n",
            r.unprotected_readonly.join(", ")
        ));
    }
    if !r.capacity.is_empty() {
        out.push_str("\ncapacity (declared, not yet created / free):\n");
        for cap in &r.capacity {
            let what = match &cap.storage {
                None => format!("{} memory", c(&cap.node)),
                Some(s) => format!("{} {}", c(&cap.node), c(s)),
            };
            let (need, free) = match cap.storage {
                None => (
                    format!("{} MiB", cap.declared_new),
                    format!("{} MiB", cap.free),
                ),
                Some(_) => (
                    format!("{} GiB", cap.declared_new >> 30),
                    format!("{} GiB", cap.free >> 30),
                ),
            };
            out.push_str(&format!(
                "  {what:<28} {need} / {free}{}\n",
                if cap.fits { "" } else { "  DOES NOT FIT" }
            ));
        }
    }
    out
}
