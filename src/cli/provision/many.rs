//! `vmctl provision NAME... | --all [--jobs N]`: several VMs planned over one observation of
//! the cluster, then run at once (exec::provision::fleet_run); a VM whose plan is refused (a
//! VMID two of them declare, one taken on the cluster) stops alone, before any clone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use miette::miette;

use super::super::ops::connect;
use super::super::Global;
use super::{dry_run, err, extra_inputs, observe, ProvisionArgs};
use crate::cli::progress;
use crate::exec::apply::FleetLock;
use crate::exec::events::{self, millis, Status, VmTracker};
use crate::exec::fleet;
use crate::exec::provision::fleet_run::{self, FleetEnv, ManyOptions, VmOutcome, VmResult};
use crate::exec::provision::{files, journal, real, InstallError, Installer};
use crate::exec::proxmox::QmProxmox;
use crate::exec::remote::Remote;
use crate::plan::provision::{batch, ceremony, Inputs, ProvisionPlan};

pub fn run(a: ProvisionArgs, g: &Global) -> miette::Result<u8> {
    for (given, flag) in [(a.resume, "--resume"), (a.rollback, "--rollback")] {
        if given {
            return Err(miette!(
                help = "run `vmctl provision NAME {flag}` for each VM with a journal",
                "{flag} takes one VM at a time"
            ));
        }
    }
    if a.phases.is_some() {
        return Err(miette!(
            help = "provision them together without --phases, or one by one with it",
            "--phases takes one VM at a time"
        ));
    }
    // Loaded as for an edit: a VMID two VMs share (VM001) refuses those two below, not the run;
    // any other error in the fleet files refuses everything, as for one VM.
    let loaded = fleet::load_for_edit(g.fleet.as_deref())?;
    let root = loaded.root.clone();
    let defs = &loaded.definitions;
    let (_, diagnostics) = fleet::lint_with(&root, &[]);
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|d| d.severity() == crate::check::Severity::Error && d.code() != "VM001")
        .map(|d| format!("{}: {}", d.code(), d.message))
        .collect();
    if !errors.is_empty() {
        return Err(miette!(
            help = "fix them first; `vmlint` shows every problem",
            "the fleet files have {} error(s): {}",
            errors.len(),
            errors.join("; ")
        ));
    }
    let lock = if a.dry_run {
        None
    } else {
        Some(FleetLock::acquire(&root, &crate::cli::ui::reporter()).map_err(err)?)
    };
    let fence = crate::plan::ops::fence(defs, false);
    // One connection, one observation, for every VM.
    let proxmox = if a.offline {
        None
    } else {
        Some(connect(defs, &a.conn, fence, !a.dry_run)?)
    };
    let observation = match &proxmox {
        Some(p) => Some(observe(p, defs, None)?),
        None => None,
    };
    let names = batch::select(
        defs,
        &a.names,
        a.all,
        observation.as_ref().map(|o| o.vms.as_slice()),
    );
    if names.is_empty() {
        println!("every managed VM is on the cluster already; nothing to provision");
        return Ok(0);
    }
    let identity = a.identity.as_ref().map(|p| p.display().to_string());
    let mut refused: Vec<VmResult> = Vec::new();
    let mut plans: Vec<(ProvisionPlan, Vec<ceremony::PlannedFile>)> = Vec::new();
    for name in &names {
        let refuse = |why: String| VmResult {
            name: name.clone(),
            outcome: VmOutcome::Refused(why),
        };
        if journal::load(&root, name).map_err(err)?.is_some() {
            refused.push(refuse(format!(
                "an earlier run did not finish (its journal is `{}`); continue it with `vmctl \
                 provision {name} --resume`, or undo it with `--rollback`",
                journal::path(&root, name).display()
            )));
            continue;
        }
        let extra = match extra_inputs(&loaded, name) {
            Ok(extra) => extra,
            Err(why) => {
                refused.push(refuse(why));
                continue;
            }
        };
        let planned = crate::plan::provision::plan(&Inputs {
            defs,
            name,
            lint_errors: 0,
            admin_keys: &extra.admin_keys,
            linked: extra.linked,
            host_known: extra.host_known,
            observation: observation.as_ref(),
            identity: identity.as_deref(),
        });
        let plan = match planned {
            Ok(p) => p,
            Err(e) => {
                refused.push(refuse(e.to_string()));
                continue;
            }
        };
        // The ceremony's edits tried with a preview key, as for one VM.
        let vm = defs
            .managed
            .iter()
            .find(|v| &v.name == name)
            .expect("planned");
        let preview = if plan.nothing_to_do.is_some() {
            Ok(Vec::new())
        } else {
            files::load(&root, defs, vm)
                .map_err(|e| e.to_string())
                .and_then(|f| {
                    let key = ceremony::preview_key(name);
                    ceremony::changes(defs, vm, &f.view(), &key.public_openssh, &key.age_recipient)
                        .map_err(|e| e.to_string())
                })
        };
        match preview {
            Ok(files) => plans.push((plan, files)),
            Err(e) => refused.push(refuse(e)),
        }
    }
    // VMIDs against each other too (planning checked them against the cluster).
    let ids: Vec<(String, u32)> = plans
        .iter()
        .map(|(p, _)| (p.name.clone(), p.vmid))
        .collect();
    let shared = batch::shared_vmids(&ids);
    plans.retain(|(p, _)| match shared.get(&p.name) {
        Some(other) => {
            refused.push(VmResult {
                name: p.name.clone(),
                outcome: VmOutcome::Refused(format!(
                    "VMID {} is also `{other}`'s in this run; give each VM its own vmid",
                    p.vmid
                )),
            });
            false
        }
        None => true,
    });
    let rekeyer = real::SecretsRekeyer {
        sops_config: root.join(&defs.settings.sops_config),
        secrets_dir: root.join(&defs.settings.secrets_dir),
        identities: a.age_identities.clone(),
        sops: None,
        out: crate::cli::ui::reporter(),
    };
    if a.dry_run {
        let mut values = Vec::new();
        for (plan, files) in &plans {
            let sops_path = defs.settings.sops_config.as_path();
            let secrets = match files.iter().find(|f| f.path == sops_path) {
                Some(f) => rekeyer
                    .would_rekey(&root, &String::from_utf8_lossy(&f.new))
                    .map_err(err)?,
                None => Vec::new(),
            };
            let (value, human) = dry_run(plan, files, &secrets);
            if a.json {
                values.push(value);
            } else {
                print!("{human}");
            }
        }
        if a.json {
            println!("{}", serde_json::to_string_pretty(&values).expect("json"));
        }
        // With --json stdout holds the array alone; the refusals go to stderr.
        for r in &refused {
            if a.json {
                eprintln!("{}", summary_text(r));
            } else {
                println!("{}", summary_text(r));
            }
        }
        return Ok(u8::from(!refused.is_empty()));
    }
    let plans: Vec<ProvisionPlan> = plans.into_iter().map(|(p, _)| p).collect();
    super::require_installer_nix(&plans)?;
    let p = proxmox.expect("not offline");
    // Each VM's lines become its events: one live line per VM on a terminal, timestamped lines
    // without one, JSON Lines with --json.
    let sink = progress::sink(a.json);
    let started = Instant::now();
    let trackers: BTreeMap<String, Arc<VmTracker>> = plans
        .iter()
        .map(|plan| {
            let t = VmTracker::new(
                sink.clone(),
                &plan.name,
                plan.steps.iter().map(|s| (s.id.as_str(), s.title.as_str())),
            );
            (plan.name.clone(), Arc::new(t))
        })
        .collect();
    let by_vmid: BTreeMap<u32, Arc<VmTracker>> = plans
        .iter()
        .map(|plan| (plan.vmid, trackers[&plan.name].clone()))
        .collect();
    let p = announce_many(p, by_vmid);
    let installer = PerVmInstaller {
        root: root.clone(),
        configs: plans
            .iter()
            .map(|plan| (plan.config.clone(), trackers[&plan.name].clone()))
            .collect(),
    };
    let ssh = super::vm_ssh(&a);
    let env = FleetEnv {
        proxmox: &p,
        installer: &installer,
        ssh: &ssh,
        rekeyer: &rekeyer,
    };
    let interval = Duration::from_secs(5);
    // fleet_run prefixes every line with `NAME: `; the VM's tracker takes the rest.
    let report = |l: &str| match l
        .split_once(": ")
        .and_then(|(n, rest)| Some((trackers.get(n)?, rest)))
    {
        Some((t, rest)) => t.report(rest),
        None => crate::render::stdio::err(&format!("{l}\n")),
    };
    let opts = ManyOptions {
        jobs: batch::jobs(a.jobs.map(|j| j as usize), plans.len()),
        keep_on_failure: a.keep_on_failure,
        commit: !a.no_commit,
        attempts: (a.wait / interval.as_secs()).max(1) as u32,
        interval,
        report: &report,
    };
    let lock = lock.expect("not a dry run");
    let summary = fleet_run::run_many(&env, &opts, &root, defs, &plans, &lock);
    let ok = summary.all_succeeded() && refused.is_empty();
    // The summary, in the order the VMs were named.
    let mut all: Vec<VmResult> = summary.results;
    all.extend(refused);
    all.sort_by_key(|r| names.iter().position(|n| *n == r.name));
    let mut results = Vec::new();
    for r in &all {
        let tracker = trackers.get(&r.name);
        let error = match &r.outcome {
            VmOutcome::Failed { error, .. } | VmOutcome::Refused(error) => Some(error.clone()),
            _ => None,
        };
        if let Some(t) = tracker {
            t.close(error.as_deref().map_or(Ok(()), Err));
        }
        let (status, commit) = match &r.outcome {
            VmOutcome::Provisioned { commit, .. } => (Status::Done, commit.clone()),
            VmOutcome::NothingToDo(_) => (Status::NothingToDo, None),
            VmOutcome::Failed { .. } | VmOutcome::Refused(_) => (Status::Failed, None),
        };
        let journal = matches!(journal::load(&root, &r.name), Ok(Some(_)))
            .then(|| journal::path(&root, &r.name).display().to_string());
        results.push(events::VmResult {
            vm: r.name.clone(),
            status,
            vmid: plans.iter().find(|p| p.name == r.name).map(|p| p.vmid),
            commit,
            error,
            journal,
            duration_ms: tracker.map_or(0, |t| millis(t.elapsed())),
        });
    }
    let mut lines: Vec<String> = all.iter().map(summary_text).collect();
    for (name, hash) in &summary.rekey_commits {
        lines.push(format!(
            "re-keyed the secrets without `{name}` after its failed provision: commit {hash}"
        ));
    }
    // Everything holding a tracker (and so the sink) goes first: the live view ends with it.
    drop(installer);
    drop(p);
    drop(trackers);
    // The summary goes where a successful run's last words go (stdout, or stderr under
    // --json), failed or not: each VM's line says what happened to it; the exit code, whether
    // all of them made it.
    let words = progress::LastWords {
        text: lines.join("\n"),
        side_note: false,
    };
    let code = progress::finish(sink, started, results, a.json, Ok(words))?;
    Ok(if ok { code } else { 1 })
}

/// The installer for many VMs at once: each run's output becomes the events of the VM whose
/// configuration it installs (`--flake .#CONFIG`).
struct PerVmInstaller {
    root: std::path::PathBuf,
    configs: BTreeMap<String, Arc<VmTracker>>,
}

impl Installer for PerVmInstaller {
    fn install(&self, argv: &[String]) -> Result<(), InstallError> {
        let tracker = argv
            .iter()
            .skip_while(|a| *a != "--flake")
            .nth(1)
            .and_then(|f| f.split_once('#'))
            .and_then(|(_, config)| self.configs.get(config));
        let lines = |l: &str| {
            if let Some(t) = tracker {
                t.installer_line(l)
            }
        };
        real::NixosAnywhere {
            root: self.root.clone(),
            lines: tracker.map(|_| &lines as &(dyn Fn(&str) + Sync)),
        }
        .install(argv)
    }
}

/// The shared connection's announcements (each command line, each lock retry) as the events
/// of the VM the command is about, found by its VMID.
fn announce_many<R: Remote>(
    p: QmProxmox<R>,
    by_vmid: BTreeMap<u32, Arc<VmTracker>>,
) -> QmProxmox<R> {
    let target = p.remote().target();
    let by_vmid = Arc::new(by_vmid);
    let find = |by: &BTreeMap<u32, Arc<VmTracker>>, line: &str| {
        line.split_whitespace()
            .filter_map(|w| w.parse::<u32>().ok())
            .find_map(|id| by.get(&id).cloned())
    };
    let sent = by_vmid.clone();
    p.with_on_send(Box::new(move |line| {
        if let Some(t) = find(&sent, line) {
            t.report(&format!("running on {target}: {line}"))
        }
    }))
    .with_reporter(Box::new(move |m| match find(&by_vmid, m) {
        Some(t) => t.warning(&format!("proxmox lock: {m}")),
        None => crate::render::stdio::err(&format!("proxmox lock: {m}\n")),
    }))
}

fn summary_text(r: &VmResult) -> String {
    let name = &r.name;
    match &r.outcome {
        VmOutcome::Provisioned { vmid, commit } => format!(
            "{name}: provisioned VM {vmid}{}",
            commit
                .as_ref()
                .map(|c| format!(", commit {c}"))
                .unwrap_or_else(|| ", files left uncommitted (--no-commit)".into())
        ),
        VmOutcome::NothingToDo(m) => format!("{name}: nothing to do: {m}"),
        VmOutcome::Failed {
            error,
            rolled_back: true,
        } => format!("{name}: failed, rolled back (VM and fleet files as before): {error}"),
        VmOutcome::Failed {
            error,
            rolled_back: false,
        } => format!("{name}: failed, kept: {error}"),
        VmOutcome::Refused(why) => format!("{name}: refused before anything ran: {why}"),
    }
}
