//! `vmctl rebuild NAME…|--all`: `nixos-rebuild switch --flake .#CONFIG --target-host root@HOST`
//! with the host key hosts.nix pins for the VM as the only trusted key (no trust on first use),
//! after an automatic snapshot of each VM.

use std::path::PathBuf;
use std::sync::Mutex;

use clap::Args;
use miette::IntoDiagnostic;

use super::ops::{connect, Conn};
use super::Global;
use crate::exec::rebuild::{self as run, Pinned};
use crate::plan::rebuild::{self as planner, Target};
use crate::proxmox::{display_line, Mutation};

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// The managed VMs to rebuild (names of vms/definitions.nix).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Rebuild every managed VM that is not readonly.
    #[arg(long)]
    pub all: bool,
    /// How many rebuilds run at once (1 to 16).
    #[arg(long, short, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=16))]
    pub jobs: u16,
    /// The private key root logs in with (`-i`), when not your ssh default.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Print each VM's host key check, snapshot and nixos-rebuild command line; change nothing
    /// and connect nowhere.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object on stdout (docs/cli.md): `dry_run`, the `commands` run (or that
    /// would be), `output`, `notes`.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Conn,
}

/// Examples for `--help`.
pub const EXAMPLES: &str = "Examples:
  vmctl rebuild test-automation --dry-run   # the checks, the snapshot and the command line
  vmctl rebuild web db --jobs 2
  vmctl rebuild --all --identity ~/.ssh/admin";

/// One VM's three steps as command lines (the check, the snapshot, the rebuild).
fn lines(p: &Pinned, snapshot: &str) -> Vec<String> {
    let t = &p.target;
    let snap = Mutation::SnapshotCreate {
        vmid: t.vmid,
        name: snapshot.to_string(),
        description: Some("automatic snapshot by vmctl before rebuild".into()),
        vmstate: false,
    };
    vec![
        format!(
            "ssh {} -p {} -l root -- {} true",
            p.sshopts, p.port, t.address
        ),
        display_line(&snap.argv()),
        format!(
            "NIX_SSHOPTS='{}' {}",
            p.sshopts,
            display_line(&planner::rebuild_argv(t))
        ),
    ]
}

pub fn run(a: RebuildArgs, g: &Global) -> miette::Result<u8> {
    let loaded = crate::cli::load_fleet(g, false)?;
    let defs = &loaded.definitions;
    let empty = crate::model::Hosts::default();
    let hosts = loaded.hosts.as_ref().unwrap_or(&empty);
    let targets = planner::targets(defs, hosts, &a.names, a.all).map_err(miette::Report::new)?;
    let now = crate::exec::snapshot::now();
    let keep = crate::plan::snapshot::keep(defs);
    let snapshot = planner::auto_snapshot_name("rebuild", now);
    // The pinned known_hosts live in a private temp directory (0700) gone after the run.
    let dir = tempfile::Builder::new()
        .prefix("vmctl-rebuild-")
        .tempdir()
        .into_diagnostic()?;
    let config = a.conn.ssh_config.as_deref();
    let identity = a.identity.as_deref();
    let pinned: Vec<Pinned> = targets
        .iter()
        .map(|t| run::pin(dir.path(), t, config, identity))
        .collect::<Result<_, _>>()
        .map_err(miette::Report::new)?;
    let commands: Vec<String> = pinned.iter().flat_map(|p| lines(p, &snapshot)).collect();
    if a.dry_run {
        let notes = vec![format!(
            "dry run: when run for real, each VM must present the host key hosts.nix pins for it before anything is snapshotted or rebuilt; the known_hosts path is a new temp directory's"
        )];
        return print(a.json, true, &commands, "", &notes);
    }
    // 1. Every VM's host key, before anything changes anywhere.
    for p in &pinned {
        run::check_host_key(p).map_err(miette::Report::new)?;
        crate::cli::ui::info(&format!(
            "{}: host key matches hosts.nix ({})",
            p.target.name, p.target.address
        ));
    }
    // 2. The automatic snapshots, over one fenced connection.
    let fence = crate::plan::ops::fence(defs, false);
    let px = connect(defs, &a.conn, fence, !a.json)?;
    for p in &pinned {
        let taken =
            run::snapshot(&px, &p.target, "rebuild", now, keep).map_err(miette::Report::new)?;
        for old in &taken.pruned {
            crate::cli::ui::info(&format!(
                "{}: pruned automatic snapshot `{old}` (snapshots.keep = {keep})",
                p.target.name
            ));
        }
    }
    drop(px);
    // 3. The rebuilds, `--jobs` at a time.
    let results = rebuild_all(&loaded.root, &pinned, a.jobs.into());
    let mut output = String::new();
    let mut notes = Vec::new();
    let mut failed = Vec::new();
    for (t, r) in &results {
        match r {
            Ok(out) => {
                output.push_str(&String::from_utf8_lossy(&out.stdout));
                let line = format!("{}: rebuilt (snapshot `{snapshot}` taken first)", t.name);
                if !a.json {
                    println!("{line}");
                }
                notes.push(line);
            }
            Err(e) => {
                let line = format!(
                    "{}: {e}; the VM's state before is snapshot `{snapshot}` (`vmctl ops snapshot rollback {} {snapshot}`)",
                    t.name, t.vmid
                );
                crate::cli::ui::note(&line);
                notes.push(line);
                failed.push(t.name.clone());
            }
        }
    }
    if a.json {
        print(true, false, &commands, &output, &notes)?;
    }
    if failed.is_empty() {
        Ok(0)
    } else {
        Err(miette::miette!(
            help = "fix the cause shown above and rebuild those VMs again (a new snapshot is taken first)",
            "{} of {} rebuilds failed: {}",
            failed.len(),
            results.len(),
            failed.join(", ")
        ))
    }
}

type Outcome = Result<crate::exec::process::Finished, String>;

/// Runs every VM's nixos-rebuild, `jobs` at a time; results in the order of `pinned`.
fn rebuild_all(root: &std::path::Path, pinned: &[Pinned], jobs: usize) -> Vec<(Target, Outcome)> {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new(pinned.iter().map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.min(pinned.len()).max(1) {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap_or_else(|e| e.into_inner());
                    let i = *n;
                    *n += 1;
                    i
                };
                let Some(p) = pinned.get(i) else { break };
                let argv = planner::rebuild_argv(&p.target);
                let r = match run::rebuild(root, &argv, &p.sshopts) {
                    Ok(f) if f.status.success() => Ok(f),
                    Ok(f) => Err(format!(
                        "nixos-rebuild failed ({}): {}",
                        f.status,
                        crate::exec::process::stderr_tail(&f.stderr, &[])
                    )),
                    Err(e) => Err(e.to_string()),
                };
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    pinned
        .iter()
        .zip(results)
        .map(|(p, r)| (p.target.clone(), r.unwrap_or_else(|| Err("not run".into()))))
        .collect()
}

/// Human output (the command lines of a dry run) or the cluster-changing JSON shape.
fn print(
    json: bool,
    dry_run: bool,
    commands: &[String],
    output: &str,
    notes: &[String],
) -> miette::Result<u8> {
    if json {
        let v = serde_json::json!({
            "dry_run": dry_run,
            "commands": commands,
            "output": output,
            "notes": notes,
        });
        println!("{}", serde_json::to_string_pretty(&v).into_diagnostic()?);
    } else {
        for c in commands {
            println!("{c}");
        }
        for n in notes {
            crate::cli::ui::note(n);
        }
    }
    Ok(0)
}
