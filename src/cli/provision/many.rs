//! `vmctl provision NAME... | --all [--jobs N]`: several VMs planned over one observation of
//! the cluster, then run at once (exec::provision::fleet_run); a VM whose plan is refused (a
//! VMID two of them declare, one taken on the cluster) stops alone, before any clone.

use std::time::Duration;

use miette::miette;

use super::super::ops::connect;
use super::super::Global;
use super::{dry_run, err, extra_inputs, observe, ProvisionArgs};
use crate::exec::apply::FleetLock;
use crate::exec::fleet;
use crate::exec::provision::fleet_run::{self, FleetEnv, ManyOptions, VmOutcome, VmResult};
use crate::exec::provision::{files, journal, real};
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
        let extra = extra_inputs(&loaded, name);
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
    let p = proxmox.expect("not offline");
    let installer = real::NixosAnywhere {
        root: root.clone(),
        lines: None,
    };
    let ssh = real::OpenSsh {
        port: None,
        config: a.conn.ssh_config.clone(),
        identity: a.identity.clone(),
        timeout: Duration::from_secs(a.wait.min(60)),
    };
    let env = FleetEnv {
        proxmox: &p,
        installer: &installer,
        ssh: &ssh,
        rekeyer: &rekeyer,
    };
    let interval = Duration::from_secs(5);
    let report = |l: &str| eprintln!("{l}");
    let plans: Vec<ProvisionPlan> = plans.into_iter().map(|(p, _)| p).collect();
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
    for r in &all {
        println!("{}", summary_text(r));
    }
    for (name, hash) in &summary.rekey_commits {
        println!("re-keyed the secrets without `{name}` after its failed provision: commit {hash}");
    }
    Ok(if ok { 0 } else { 1 })
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
