//! `vmctl destroy NAME --confirm NAME`: retire a managed VM: stop it, destroy it with its
//! disks, remove it from hosts.nix, .sops.yaml, the secrets' recipients, the docs and (unless
//! `--keep-definition`) definitions.nix and `hosts/CONFIG/`, and commit; journaled, resumable.

use std::path::{Path, PathBuf};

use clap::Args;
use miette::miette;

use super::ops::{connect, Conn};
use super::Global;
use crate::exec::apply::FleetLock;
use crate::exec::cannot_act::CannotAct;
use crate::exec::destroy::{self as run, journal, rotate::SecretsRotator, Env, Options};
use crate::exec::fleet;
use crate::exec::provision::real;
use crate::exec::proxmox::Proxmox;
use crate::plan::destroy::{self, render, DestroyPlan, FleetTexts, Inputs, PlanError, StepId};

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// The managed VM to destroy: its name under `managed` in vms/definitions.nix.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The VM's name again, typed out: nothing is destroyed unless it equals NAME.
    #[arg(long, value_name = "NAME", required = true)]
    pub confirm: String,
    /// Leave the VM's definition in vms/definitions.nix and its `hosts/CONFIG/` directory
    /// (the default removes both, so the repository no longer describes the VM).
    #[arg(long)]
    pub keep_definition: bool,
    /// Also give the secrets the VM could read new data keys, so its identity cannot decrypt
    /// their current values even from a copy of the old files' keys.
    #[arg(long)]
    pub rotate: bool,
    /// Print the plan (every command line, every file diff, the secrets re-keyed, the commit
    /// message) and change nothing, local or remote.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: plan from the fleet files alone, without connecting to Proxmox.
    #[arg(long, requires = "dry_run")]
    pub offline: bool,
    /// Print JSON on stdout: the plan with --dry-run, else the result.
    #[arg(long)]
    pub json: bool,
    /// Continue an interrupted destroy from its journal (.vmctl/journal/destroy/NAME.json).
    #[arg(long, conflicts_with_all = ["rollback", "dry_run"])]
    pub resume: bool,
    /// Undo an interrupted destroy's file changes from its journal (only files that still
    /// hold what it wrote); a VM it stopped but did not destroy is started again. A destroyed
    /// VM cannot come back.
    #[arg(long, conflicts_with_all = ["resume", "dry_run"])]
    pub rollback: bool,
    /// Leave the changed files uncommitted (the default commits exactly this run's files).
    #[arg(long)]
    pub no_commit: bool,
    /// An age identity (or OpenSSH ed25519 key) that can decrypt the secrets, for re-keying
    /// and rotating them, besides the ones sops would find. Repeatable.
    #[arg(long = "age-identity", value_name = "FILE")]
    pub age_identities: Vec<PathBuf>,
    #[command(flatten)]
    pub conn: Conn,
}

/// Examples for `--help`.
pub const EXAMPLES: &str = "Examples:
  vmctl destroy web --confirm web --dry-run --offline   # the plan, no connection
  vmctl destroy web --confirm web --dry-run             # the plan, the cluster observed
  vmctl destroy web --confirm web --rotate              # destroy, re-key and rotate, commit
  vmctl destroy web --confirm web --keep-definition     # keep it in definitions.nix
  vmctl destroy web --confirm web --resume              # after an interrupted run";

fn err<E: std::error::Error + Send + Sync + 'static>(e: E) -> miette::Report {
    crate::cli::exit::report(e)
}

/// A planning refusal as a report: not a managed VM is one vmctl cannot act on (exit 2).
fn refusal(e: PlanError) -> miette::Report {
    if e.is_cannot_act() {
        miette::Report::new(
            CannotAct::new(e.to_string())
                .help("`vmctl ops list` shows which VMs are managed; destroy only those"),
        )
    } else {
        err(e)
    }
}

pub fn run(a: DestroyArgs, g: &Global) -> miette::Result<u8> {
    let loaded = fleet::load(g.fleet.as_deref(), &crate::cli::ui::reporter())?;
    let root = loaded.root.clone();
    let defs = &loaded.definitions;
    if a.confirm != a.name && (a.resume || a.rollback) {
        return Err(refusal(PlanError::ConfirmMismatch {
            name: a.name.clone(),
            given: a.confirm.clone(),
        }));
    }
    let lock = if a.dry_run {
        None
    } else {
        Some(FleetLock::acquire(&root, &crate::cli::ui::reporter()).map_err(err)?)
    };
    let pending = journal::load(&root, &a.name).map_err(err)?;
    if pending.is_some() && !(a.resume || a.rollback || a.dry_run) {
        return Err(miette!(
            help = format!(
                "continue it with `vmctl destroy {0} --confirm {0} --resume`, or undo its file \
                 changes with `--rollback`",
                a.name
            ),
            "an earlier run of `vmctl destroy {}` did not finish (its journal is `{}`)",
            a.name,
            journal::path(&root, &a.name).display()
        ));
    }
    if (a.resume || a.rollback) && pending.is_none() {
        return Err(miette!(
            "no journal of an interrupted destroy of `{}` (`{}`); nothing to {}",
            a.name,
            journal::path(&root, &a.name).display(),
            if a.resume { "resume" } else { "roll back" }
        ));
    }
    let fence = crate::plan::ops::fence(defs, false);
    let report = |l: &str| eprintln!("{l}");
    if a.rollback {
        let j = pending.expect("checked");
        let p = connect(defs, &a.conn, fence, true)?;
        let lock = lock.as_ref().expect("not a dry run");
        run::rollback(&p, &root, &j, lock, &report).map_err(err)?;
        journal::remove(&root, &a.name).map_err(err)?;
        println!("rolled back the interrupted destroy of `{}`", a.name);
        return Ok(0);
    }
    let texts = read_texts(&root, defs, &a.name, a.keep_definition)?;
    let inputs = |observation| Inputs {
        defs,
        name: &a.name,
        confirm: &a.confirm,
        keep_definition: a.keep_definition,
        rotate: a.rotate,
        commit: !a.no_commit,
        observation,
        files: texts.view(),
    };
    // Refusals that need no cluster come before any connection.
    let offline_plan = match &pending {
        Some(j) => j.plan.clone(),
        None => destroy::plan(&inputs(None)).map_err(refusal)?,
    };
    let proxmox = if a.offline {
        None
    } else {
        Some(connect(defs, &a.conn, fence, !a.dry_run)?)
    };
    let plan = match (&proxmox, &pending) {
        (_, Some(j)) => j.plan.clone(),
        (None, None) => offline_plan,
        (Some(p), None) => {
            let vms = p.list().map_err(err)?;
            let plan = destroy::plan(&inputs(Some(&vms))).map_err(refusal)?;
            // The live check `qm destroy` gets anyway (name, template, protection), made
            // before the VM is stopped: a protected VM is refused with nothing changed.
            if let Some(m) = plan
                .mutation(StepId::Destroy)
                .filter(|_| plan.has(StepId::Destroy))
            {
                let live = p.config(plan.vmid).map_err(err)?;
                p.fence().check_live(&m, &live).map_err(err)?;
            }
            plan
        }
    };
    if let Some(j) = &pending {
        if j.plan.keep_definition != a.keep_definition || j.plan.rotate != a.rotate {
            crate::cli::ui::note(&format!(
                "the interrupted run's plan is followed as it was made: --keep-definition {}, \
                 --rotate {}",
                if j.plan.keep_definition { "on" } else { "off" },
                if j.plan.rotate { "on" } else { "off" }
            ));
        }
    }
    if pending.is_none() {
        gate(&root, &plan)?;
    }
    let rekeyer = real::SecretsRekeyer {
        sops_config: root.join(&defs.settings.sops_config),
        secrets_dir: root.join(&defs.settings.secrets_dir),
        identities: a.age_identities.clone(),
        sops: None,
        out: crate::cli::ui::reporter(),
    };
    if a.dry_run {
        let sops_path = defs.settings.sops_config.as_path();
        let secrets = match plan.files.iter().find(|f| f.path == sops_path) {
            Some(f) if plan.has(StepId::Rekey) => rekeyer
                .would_rekey(
                    &root,
                    &String::from_utf8_lossy(f.new.as_deref().unwrap_or_default()),
                )
                .map_err(err)?,
            _ => Vec::new(),
        };
        let mut shown: Vec<String> = plan
            .files
            .iter()
            .map(|f| f.path.display().to_string())
            .collect();
        shown.extend(secrets.iter().cloned());
        let msg = destroy::commit_message(&plan, &shown);
        let preview = render::Preview {
            secrets: &secrets,
            commit_message: &msg,
        };
        if a.json {
            let v = render::json(&plan, &preview);
            println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        } else {
            print!("{}", render::human(&plan, &preview));
        }
        return Ok(0);
    }
    let p = proxmox.expect("not offline");
    let rotator = SecretsRotator {
        sops_config: root.join(&defs.settings.sops_config),
        identities: a.age_identities.clone(),
        sops: None,
    };
    let env = Env {
        proxmox: &p,
        git: &real::GitCli,
        rekeyer: &rekeyer,
        rotator: &rotator,
    };
    let lock = lock.expect("not a dry run");
    let notes = plan.notes.clone();
    let (name, vmid) = (plan.name.clone(), plan.vmid);
    let out = run::run(
        &env,
        &Options { report: &report },
        &root,
        &lock,
        plan,
        pending,
    )
    .map_err(err)?;
    for n in &notes {
        crate::cli::ui::note(n);
    }
    if a.json {
        let v = serde_json::json!({
            "dry_run": false,
            "name": name,
            "vmid": vmid,
            "destroyed": out.destroyed,
            "commit": out.commit,
            "secrets": out.secrets.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "notes": notes,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        println!(
            "destroyed `{name}`: VM {vmid}{}",
            out.commit
                .map(|c| format!(", commit {c}"))
                .unwrap_or_else(|| ", files left uncommitted (--no-commit)".into())
        );
    }
    Ok(0)
}

/// The fleet files the plan reads, owned.
struct Texts {
    definitions: String,
    hosts: String,
    sops: Option<String>,
    docs: Option<String>,
    host_dir: Vec<(PathBuf, Vec<u8>)>,
}

impl Texts {
    fn view(&self) -> FleetTexts<'_> {
        FleetTexts {
            definitions: &self.definitions,
            hosts: &self.hosts,
            sops: self.sops.as_deref(),
            docs: self.docs.as_deref(),
            host_dir: &self.host_dir,
        }
    }
}

fn read_texts(
    root: &Path,
    defs: &crate::model::Definitions,
    name: &str,
    keep_definition: bool,
) -> miette::Result<Texts> {
    let s = &defs.settings;
    let read = |rel: &Path| {
        std::fs::read_to_string(root.join(rel)).map_err(|e| {
            miette::Report::new(CannotAct::new(format!(
                "cannot read `{}`: {e}; check that it exists and is readable",
                rel.display()
            )))
        })
    };
    let optional = |rel: &Path| std::fs::read_to_string(root.join(rel)).ok();
    let config = defs
        .managed
        .iter()
        .find(|v| v.name == name)
        .map(|v| v.config_name().to_string());
    let mut host_dir = Vec::new();
    if let Some(config) = config.filter(|_| !keep_definition) {
        let rel = s.hosts_dir.join(config);
        if root.join(&rel).exists() {
            host_dir = tracked_files(root, &rel)?;
        }
    }
    Ok(Texts {
        definitions: read(Path::new("vms/definitions.nix"))?,
        hosts: read(&s.hosts_file)?,
        sops: optional(&s.sops_config),
        docs: optional(&s.docs_file),
        host_dir,
    })
}

/// The files below `rel` (fleet-relative) that git tracks, with their bytes: what removing
/// `hosts/CONFIG/` deletes, recoverable from git. A file with uncommitted changes is refused
/// (they would be lost); untracked files stay where they are, and vmctl says so.
fn tracked_files(root: &Path, rel: &Path) -> miette::Result<Vec<(PathBuf, Vec<u8>)>> {
    let git = |args: &[&str]| {
        crate::exec::process::Process::new("list the files git tracks in the host directory", "git")
            .arg("-C")
            .arg(root)
            .args(args)
            .arg("--")
            .arg(rel)
            .output()
            .ok()
            .filter(|f| f.status.success())
            .map(|f| {
                f.stdout
                    .split(|b| *b == 0)
                    .filter(|p| !p.is_empty())
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect::<Vec<String>>()
            })
    };
    let (Some(tracked), Some(status)) = (
        git(&["ls-files", "-z"]),
        git(&["status", "--porcelain=v1", "-z", "--untracked-files=all"]),
    ) else {
        crate::cli::ui::note(&format!(
            "`{}` stays: git cannot say which of its files it tracks (is the fleet a git \
             repository?), and vmctl deletes only files git can bring back",
            rel.display()
        ));
        return Ok(Vec::new());
    };
    let mut untracked = Vec::new();
    for entry in &status {
        let (code, path) = entry.split_at(3.min(entry.len()));
        if code.starts_with("??") {
            untracked.push(path.to_string());
        } else {
            return Err(miette!(
                help = "commit or stash them first, or keep the directory with --keep-definition",
                "`{path}` has uncommitted changes, which removing `{}` would lose",
                rel.display()
            ));
        }
    }
    if !untracked.is_empty() {
        crate::cli::ui::note(&format!(
            "files git does not track stay in `{}`: {}",
            rel.display(),
            untracked.join(", ")
        ));
    }
    let mut out = Vec::new();
    for path in tracked {
        let bytes = std::fs::read(root.join(&path)).map_err(|e| {
            miette::Report::new(CannotAct::new(format!("cannot read `{path}`: {e}")))
        })?;
        out.push((PathBuf::from(path), bytes));
    }
    out.sort();
    Ok(out)
}

/// The lint gate: the text edits must not add or write an error `vmlint` would report.
fn gate(root: &Path, plan: &DestroyPlan) -> miette::Result<()> {
    let edits: Vec<(PathBuf, Option<String>, String)> = plan
        .files
        .iter()
        .filter(|f| {
            f.path
                .extension()
                .is_some_and(|e| e == "nix" || e == "yaml")
        })
        .filter_map(|f| {
            let new = String::from_utf8(f.new.clone()?).ok()?;
            Some((
                root.join(&f.path),
                Some(String::from_utf8_lossy(&f.old).into_owned()),
                new,
            ))
        })
        .collect();
    fleet::gate(root, &edits, &crate::cli::ui::reporter())
}
