//! `vmctl known-hosts`: a known_hosts file for the whole fleet from hosts.nix, for users' own
//! ssh (`ssh -o UserKnownHostsFile=…`, or `UserKnownHostsFile` in ~/.ssh/config).

use std::path::{Path, PathBuf};

use clap::Args;
use miette::IntoDiagnostic;

use super::Global;
use crate::exec::apply::{ChangeSet, FileChange, FleetLock};
use crate::plan::rebuild as planner;

#[derive(Debug, Args)]
pub struct KnownHostsArgs {
    /// Write the known_hosts to FILE (created or replaced) instead of printing it.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The ssh_config that says which port (and host name) each name resolves to, as
    /// `ssh -G` reads it; default ~/.ssh/config.
    #[arg(long, value_name = "FILE", env = "VMCTL_SSH_CONFIG")]
    pub ssh_config: Option<PathBuf>,
    /// With --output: show the change and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON on stdout (docs/cli.md): the hosts with their patterns and keys; with
    /// --output, the file change shape with `hosts`.
    #[arg(long)]
    pub json: bool,
}

/// Examples for `--help`.
pub const EXAMPLES: &str = "Examples:
  vmctl known-hosts                                   # print it
  vmctl known-hosts --output ~/.ssh/known_hosts.fleet --dry-run
  ssh -o UserKnownHostsFile=~/.ssh/known_hosts.fleet -o StrictHostKeyChecking=yes doc1";

/// One host's known_hosts patterns: each name as written and as ssh resolves it, with the
/// port ssh would use. Names that are not plain host names are left out with a note.
fn patterns(names: &[String], config: Option<&Path>, host: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        let (resolved, port) = crate::exec::rebuild::resolve(n, config);
        for candidate in [n, &resolved] {
            if !planner::plain_host(candidate) {
                crate::cli::ui::note(&format!(
                    "`{host}`: `{candidate}` is not a plain host name or address: not written as a known_hosts pattern"
                ));
                continue;
            }
            let p = planner::known_hosts_pattern(candidate, port);
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

pub fn run(a: KnownHostsArgs, g: &Global) -> miette::Result<u8> {
    let loaded = crate::cli::load_fleet(g, false)?;
    let empty = crate::model::Hosts::default();
    let hosts = loaded.hosts.as_ref().unwrap_or(&empty);
    let (known, notes) = planner::fleet_known_hosts(&loaded.definitions, hosts);
    for n in &notes {
        crate::cli::ui::note(n);
    }
    let config = a.ssh_config.as_deref();
    let lines: Vec<(Vec<String>, String)> = known
        .iter()
        .map(|k| (patterns(&k.names, config, &k.host), k.key.clone()))
        .filter(|(p, _)| !p.is_empty())
        .collect();
    let hosts_json: Vec<serde_json::Value> = known
        .iter()
        .zip(&lines)
        .map(|(k, (p, key))| serde_json::json!({"host": k.host, "patterns": p, "key": key}))
        .collect();
    let text = planner::render_known_hosts(&lines);
    let Some(out) = &a.output else {
        if a.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&hosts_json).into_diagnostic()?
            );
        } else {
            print!("{text}");
        }
        return Ok(0);
    };
    let shown = shown(out, &loaded.root);
    let old = crate::cli::changes::read_text_for_change(out, &shown, "known_hosts files")?;
    let summary = format!("known_hosts of {} host(s) from hosts.nix", lines.len());
    let change = match old {
        Some(old) => FileChange::modify(out, &shown, old, text, summary),
        None => FileChange::create(out, &shown, text, summary),
    };
    let set = ChangeSet::one(change);
    if !a.dry_run && set.is_change() {
        let lock = FleetLock::for_file(out, &crate::cli::ui::reporter())
            .map_err(crate::cli::exit::report)?;
        crate::exec::apply::apply(&set, &lock).map_err(crate::cli::exit::report)?;
    }
    if a.json {
        let mut v = crate::cli::changes::set_json(&set, a.dry_run);
        v["hosts"] = serde_json::Value::Array(hosts_json);
        println!("{}", serde_json::to_string_pretty(&v).into_diagnostic()?);
    } else {
        crate::cli::changes::print_human(&set, a.dry_run);
    }
    Ok(0)
}

/// How the output file is named in messages: relative to the fleet root when inside it.
fn shown(path: &Path, root: &Path) -> String {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    abs.strip_prefix(root)
        .map(|r| r.display().to_string())
        .unwrap_or_else(|_| abs.display().to_string())
}
