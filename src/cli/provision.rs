//! `vmctl provision NAME`: plan from the definition and the cluster, then clone, configure,
//! start, run the key ceremony, install, verify and commit, journaled, with rollback.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use miette::miette;

mod many;

use super::ops::{connect, Conn};
use super::progress;
use super::Global;
use crate::exec::apply::FleetLock;
use crate::exec::events::{millis, EventSink, Status, Tee, VmResult, VmTracker, ROLLBACK_STEP};
use crate::exec::fleet::{self, LoadedFleet};
use crate::exec::provision::{self as run, files, journal, real, Env, Options, Outcome};
use crate::exec::proxmox::Proxmox;
use crate::plan::provision::render::{self, CeremonyPreview};
use crate::plan::provision::{ceremony, phases, Inputs, Observation, ProvisionPlan};

#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// The managed VM(s) to provision: names under `managed` in vms/definitions.nix. Several
    /// run at once (see --jobs).
    #[arg(
        value_name = "NAME",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub names: Vec<String>,
    /// Every managed VM not yet on the cluster.
    #[arg(long, conflicts_with_all = ["resume", "rollback", "phases"])]
    pub all: bool,
    /// With several VMs: how many run at once (default: up to 4).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=64))]
    pub jobs: Option<u64>,
    /// The one VM of a single-VM run (the first of `names`).
    #[arg(skip)]
    pub name: String,
    /// Print the plan (every command line, every file diff, the commit message) and change
    /// nothing, local or remote.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: plan from the fleet files alone, without connecting to Proxmox.
    #[arg(long, requires = "dry_run")]
    pub offline: bool,
    /// Continue an interrupted run from its journal (.vmctl/journal/NAME.json), after the
    /// last step it completed; the cluster is observed again first.
    #[arg(long, conflicts_with_all = ["rollback", "dry_run"])]
    pub resume: bool,
    /// Undo an interrupted run from its journal: restore the files it changed (only while
    /// they hold what it wrote) and destroy the VM it created (checked by VMID and name).
    #[arg(long, conflicts_with_all = ["resume", "dry_run"])]
    pub rollback: bool,
    /// On failure keep everything (VM, files, journal) for debugging instead of rolling
    /// back; undo later with --rollback.
    #[arg(long)]
    pub keep_on_failure: bool,
    /// Leave the changed files uncommitted (the default commits exactly this run's files).
    #[arg(long)]
    pub no_commit: bool,
    /// Run only these phases or steps, comma-separated: `infra` (clone to wait-ssh), `keys`
    /// (key-ceremony), `install` (install, verify), `integrate` (commit), or step ids. A step
    /// whose earlier steps are neither listed nor done in the journal is refused; a later run
    /// with the remaining phases continues the journal.
    #[arg(long, value_name = "LIST", conflicts_with = "rollback")]
    pub phases: Option<String>,
    /// With --dry-run: print the plan as JSON on stdout. On a real run: print the run's
    /// events as JSON Lines on stdout, one per line, ending with `finished` (docs/events.md);
    /// the progress for people goes to stderr.
    #[arg(long)]
    pub json: bool,
    /// The private key matching an admin key of hosts.nix `_proxmox.adminKeys`, for the
    /// installer's and the verification's SSH to the new VM. Default: ssh's own choice.
    #[arg(long, short = 'i', value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// An age identity (or OpenSSH ed25519 key) that can decrypt the secrets, for
    /// re-keying them for the new host, besides the ones sops would find. Repeatable.
    #[arg(long = "age-identity", value_name = "FILE")]
    pub age_identities: Vec<PathBuf>,
    /// How long to wait for the VM's address and SSH, in seconds (1 to 3600).
    #[arg(long, value_name = "SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub wait: u64,
    #[command(flatten)]
    pub conn: Conn,
}

/// Examples for `--help`.
pub const EXAMPLES: &str = "Examples:
  vmctl provision test-automation --dry-run --offline   # the plan, no connection
  vmctl provision test-automation --dry-run --json      # the plan as data, cluster observed
  vmctl provision test-automation                       # create, install, integrate, commit
  vmctl provision test-automation --json | jq -c 'select(.kind == \"finished\")'   # the result, for scripts
  vmctl provision test-automation --phases infra        # create and boot the VM only
  vmctl provision test-automation --phases keys,install,integrate   # then the rest
  vmctl provision test-automation --resume              # after an interrupted run
  vmctl provision test-automation --rollback            # undo an interrupted run
  vmctl provision web db cache --jobs 3                 # several VMs at once
  vmctl provision --all --dry-run --json                # every VM not yet on the cluster";

/// nixos-anywhere needs a Nix new enough for nixpkgs: a run that installs is refused before
/// any change, rather than failing strangely half-way through an install.
pub(super) fn require_installer_nix(plans: &[ProvisionPlan]) -> miette::Result<()> {
    if plans
        .iter()
        .any(|p| p.step(crate::plan::provision::StepId::Install).is_some())
    {
        crate::exec::nix_version::require("installing NixOS with nixos-anywhere").map_err(err)?;
    }
    Ok(())
}

/// A typed error as a report, its type kept for the exit code (docs/cli.md).
/// The SSH vmctl uses to reach the new VMs (the installer's target, the verification): the
/// user's ssh config and identity, a connect timeout of at most a minute.
fn vm_ssh(a: &ProvisionArgs) -> real::OpenSsh {
    real::OpenSsh {
        port: None,
        config: a.conn.ssh_config.clone(),
        identity: a.identity.clone(),
        timeout: Duration::from_secs(a.wait.min(60)),
    }
}

pub(super) fn err<E: std::error::Error + Send + Sync + 'static>(e: E) -> miette::Report {
    crate::cli::exit::report(e)
}

/// What the run learned that its `finished` event reports even when it fails.
#[derive(Default)]
struct Seen {
    root: Option<PathBuf>,
    vmid: Option<u32>,
    started: Option<Instant>,
}

/// How a run that did not fail ended: the VM's status, the commit, and the line that says so.
struct Ended {
    status: Status,
    commit: Option<String>,
    message: String,
}

pub fn run(mut a: ProvisionArgs, g: &Global) -> miette::Result<u8> {
    if a.all || a.names.len() > 1 {
        return many::run(a, g);
    }
    a.name = a.names.first().cloned().unwrap_or_default();
    if a.dry_run {
        // A dry run prints its plan (as JSON with --json) and emits no events.
        provision(
            &a,
            g,
            &(Arc::new(Tee(Vec::new())) as _),
            &mut Seen::default(),
        )?;
        return Ok(0);
    }
    let sink = progress::sink(a.json);
    let mut seen = Seen::default();
    let started = Instant::now();
    let result = provision(&a, g, &sink, &mut seen);
    let journal = seen
        .root
        .as_deref()
        .filter(|root| matches!(journal::load(root, &a.name), Ok(Some(_))))
        .map(|root| journal::path(root, &a.name).display().to_string());
    let vm_ms = millis(seen.started.map_or(Duration::ZERO, |s| s.elapsed()));
    let (vm_result, outcome) = match result {
        Ok(ended) => (
            VmResult {
                vm: a.name.clone(),
                status: ended.status,
                vmid: seen.vmid,
                commit: ended.commit,
                error: None,
                journal: (ended.status == Status::Partial)
                    .then_some(journal)
                    .flatten(),
                duration_ms: vm_ms,
            },
            Ok(ended.message),
        ),
        Err(report) => (
            VmResult {
                vm: a.name.clone(),
                status: Status::Failed,
                vmid: seen.vmid,
                commit: None,
                error: Some(progress::error_text(&report)),
                journal,
                duration_ms: vm_ms,
            },
            Err(report),
        ),
    };
    let side_note = vm_result.status == Status::NothingToDo;
    progress::finish(
        sink,
        started,
        vec![vm_result],
        a.json,
        outcome.map(|text| progress::LastWords { text, side_note }),
    )
}

/// The command itself; a real run reports through `sink` and records in `seen` what the
/// `finished` event needs. A dry run prints its plan and ends as "nothing to do".
fn provision(
    a: &ProvisionArgs,
    g: &Global,
    sink: &Arc<dyn EventSink>,
    seen: &mut Seen,
) -> miette::Result<Ended> {
    let loaded = fleet::load(g.fleet.as_deref(), &crate::cli::ui::reporter())?;
    let root = loaded.root.clone();
    seen.root = Some(root.clone());
    let defs = &loaded.definitions;
    // Only the dry run goes without the lock: it writes nothing.
    let lock = if a.dry_run {
        None
    } else {
        Some(FleetLock::acquire(&root, &crate::cli::ui::reporter()).map_err(err)?)
    };
    let pending = journal::load(&root, &a.name).map_err(err)?;
    if pending.is_some() && !(a.resume || a.rollback || a.dry_run || a.phases.is_some()) {
        return Err(miette!(
            help = format!(
                "continue it with `vmctl provision {0} --resume`, or undo it with `vmctl \
                 provision {0} --rollback`",
                a.name
            ),
            "an earlier run of `vmctl provision {}` did not finish (its journal is `{}`)",
            a.name,
            journal::path(&root, &a.name).display()
        ));
    }
    if (a.resume || a.rollback) && pending.is_none() {
        return Err(miette!(
            "no journal of an interrupted run for `{}` (`{}`); nothing to {}",
            a.name,
            journal::path(&root, &a.name).display(),
            if a.resume { "resume" } else { "roll back" }
        ));
    }
    let fence = crate::plan::ops::fence(defs, false);
    if a.rollback {
        let j = pending.expect("checked");
        seen.vmid = Some(j.vmid);
        let tracker = Arc::new(VmTracker::new(sink.clone(), &a.name, []));
        let p = progress::announce(connect(defs, &a.conn, fence, true)?, &tracker);
        seen.started = Some(Instant::now());
        tracker.start(ROLLBACK_STEP, "Undo the interrupted run");
        let undone = run::rollback(
            &p,
            &root,
            &j,
            lock.as_ref().expect("not a dry run"),
            &|l: &str| tracker.report(l),
        )
        .map_err(err)
        .and_then(|()| journal::remove(&root, &a.name).map_err(err));
        let why = undone.as_ref().err().map(ToString::to_string);
        tracker.close(why.as_deref().map_or(Ok(()), Err));
        undone?;
        return Ok(Ended {
            status: Status::RolledBack,
            commit: None,
            message: format!("rolled back the interrupted provision of `{}`", a.name),
        });
    }
    let extra = extra_inputs(&loaded, &a.name).map_err(|m| miette!("{m}"))?;
    let proxmox = if a.offline {
        None
    } else {
        Some(connect(defs, &a.conn, fence, !a.dry_run)?)
    };
    let observation = match &proxmox {
        Some(p) => Some(observe(p, defs, pending.as_ref())?),
        None => None,
    };
    let identity = a.identity.as_ref().map(|p| p.display().to_string());
    let plan = crate::plan::provision::plan(&Inputs {
        defs,
        name: &a.name,
        lint_errors: 0,
        admin_keys: &extra.admin_keys,
        linked: extra.linked,
        host_known: extra.host_known,
        observation: observation.as_ref(),
        identity: identity.as_deref(),
    })
    .map_err(err)?;
    seen.vmid = Some(plan.vmid);
    // --phases: refused before anything runs when it skips a step that has not run.
    let only = a
        .phases
        .as_deref()
        .map(phases::parse)
        .transpose()
        .map_err(err)?;
    if let Some(only) = &only {
        let planned: Vec<_> = plan.steps.iter().map(|s| s.id).collect();
        let done = pending
            .as_ref()
            .map(|j| j.completed.clone())
            .unwrap_or_default();
        phases::check(&planned, only, &done).map_err(err)?;
    }
    // The ceremony's edits, tried with a preview key: a refusal stops the run before anything
    // is created.
    let vm = defs
        .managed
        .iter()
        .find(|v| v.name == a.name)
        .expect("planned");
    let preview_files = if plan.nothing_to_do.is_some() {
        Vec::new()
    } else {
        let fleet_files = files::load(&root, defs, vm).map_err(err)?;
        // A resumed run checks with the key it generated before (hosts.nix may hold it).
        let (public, recipient) = match pending.as_ref().and_then(|j| j.key.as_ref()) {
            Some(k) => (k.public.clone(), k.age_recipient.clone()),
            None => {
                let key = ceremony::preview_key(&a.name);
                (key.public_openssh, key.age_recipient)
            }
        };
        ceremony::changes(defs, vm, &fleet_files.view(), &public, &recipient).map_err(err)?
    };
    let rekeyer = real::SecretsRekeyer {
        sops_config: root.join(&defs.settings.sops_config),
        secrets_dir: root.join(&defs.settings.secrets_dir),
        identities: a.age_identities.clone(),
        sops: None,
        out: crate::cli::ui::reporter(),
    };
    if a.dry_run {
        // The secrets the run re-keys, from .sops.yaml as the ceremony leaves it: the same
        // selection and check as the run, so the plan's commit lists what the run's does.
        let sops_path = defs.settings.sops_config.as_path();
        let secrets = match preview_files.iter().find(|f| f.path == sops_path) {
            Some(f) => rekeyer
                .would_rekey(&root, &String::from_utf8_lossy(&f.new))
                .map_err(err)?,
            None => Vec::new(),
        };
        print_dry_run(&plan, &preview_files, &secrets, a.json);
        return Ok(Ended {
            status: Status::NothingToDo,
            commit: None,
            message: String::new(),
        });
    }
    require_installer_nix(std::slice::from_ref(&plan))?;
    let p = proxmox.expect("not offline");
    // The runner's report lines and the installer's output become this VM's events.
    let tracker = Arc::new(VmTracker::new(
        sink.clone(),
        &a.name,
        plan.steps.iter().map(|s| (s.id.as_str(), s.title.as_str())),
    ));
    let p = progress::announce(p, &tracker);
    seen.started = Some(Instant::now());
    let report = |l: &str| tracker.report(l);
    let installer_lines = |l: &str| tracker.installer_line(l);
    let installer = real::NixosAnywhere {
        root: root.clone(),
        lines: Some(&installer_lines),
    };
    let ssh = vm_ssh(a);
    let env = Env {
        proxmox: &p,
        installer: &installer,
        ssh: &ssh,
        git: &real::GitCli,
        rekeyer: &rekeyer,
    };
    let interval = Duration::from_secs(5);
    let opts = Options {
        keep_on_failure: a.keep_on_failure,
        commit: !a.no_commit,
        attempts: (a.wait / interval.as_secs()).max(1) as u32,
        interval,
        report: &report,
        only: only.as_ref(),
    };
    let lock = lock.expect("not a dry run");
    let outcome = run::run(&env, &opts, &root, defs, &plan, &lock, pending);
    match &outcome {
        Ok(_) => tracker.close(Ok(())),
        // A rollback that left nothing behind succeeded, whatever failed before it.
        Err(_)
            if tracker.current_step().as_deref() == Some(ROLLBACK_STEP)
                && matches!(journal::load(&root, &a.name), Ok(None)) =>
        {
            tracker.close(Ok(()))
        }
        Err(e) => tracker.close(Err(e.to_string().as_str())),
    }
    Ok(match outcome.map_err(err)? {
        Outcome::NothingToDo(msg) => Ended {
            status: Status::NothingToDo,
            commit: None,
            message: msg,
        },
        Outcome::Partial { ran, remaining } => {
            let names = |v: &[crate::plan::provision::StepId]| {
                v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
            };
            Ended {
                status: Status::Partial,
                commit: None,
                message: format!(
                    "ran {} of `{}` (VM {}); continue with `vmctl provision {} --phases {}`, \
                     or undo it with `--rollback`",
                    names(&ran),
                    plan.name,
                    plan.vmid,
                    plan.name,
                    names(&remaining)
                ),
            }
        }
        Outcome::Done { commit } => Ended {
            status: Status::Done,
            message: format!(
                "provisioned `{}`: VM {}{}",
                plan.name,
                plan.vmid,
                commit
                    .as_ref()
                    .map(|c| format!(", commit {c}"))
                    .unwrap_or_else(|| ", files left uncommitted (--no-commit)".into())
            ),
            commit,
        },
    })
}

fn print_dry_run(
    plan: &ProvisionPlan,
    files: &[ceremony::PlannedFile],
    secrets: &[String],
    json: bool,
) {
    let (value, human) = dry_run(plan, files, secrets);
    if json {
        println!("{}", serde_json::to_string_pretty(&value).expect("json"));
    } else {
        print!("{human}");
    }
}

/// The dry run's plan as JSON and as text.
pub(super) fn dry_run(
    plan: &ProvisionPlan,
    files: &[ceremony::PlannedFile],
    secrets: &[String],
) -> (serde_json::Value, String) {
    let preview_key = ceremony::preview_key(&plan.name);
    let mut shown: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
    shown.extend(secrets.iter().cloned());
    let msg = ceremony::commit_message(
        &plan.name,
        plan.vmid,
        plan.node.as_deref(),
        &preview_key.fingerprint,
        &preview_key.age_recipient,
        &shown,
    );
    let preview = CeremonyPreview {
        files,
        secrets,
        commit_message: &msg,
    };
    let preview = plan.nothing_to_do.is_none().then_some(&preview);
    (render::json(plan, preview), render::human(plan, preview))
}

/// The cluster as the planner needs it: every VM, the storages, the template's config. On
/// `--resume` the VM the journal says this run created is left out (it is this run's own).
pub(super) fn observe<P: Proxmox>(
    p: &P,
    defs: &crate::model::Definitions,
    pending: Option<&journal::Journal>,
) -> miette::Result<Observation> {
    let mut vms = p.list().map_err(err)?;
    if let Some(j) = pending.filter(|j| j.clone_sent) {
        vms.retain(|r| !(r.vmid == j.vmid && r.name.as_deref() == Some(j.name.as_str())));
    }
    let template_config = match defs.template.as_ref().and_then(|t| t.vmid) {
        Some(t) if vms.iter().any(|r| r.vmid == t) => Some(p.config(t).map_err(err)?),
        _ => None,
    };
    Ok(Observation {
        vms,
        storages: p.storage().map_err(err)?,
        template_config,
    })
}

/// What the typed model does not carry: hosts.nix `_proxmox.adminKeys`, the VM's
/// `full = false`, whether hosts.nix has the host with a key.
pub(super) struct Extra {
    pub admin_keys: Vec<String>,
    pub linked: bool,
    pub host_known: bool,
}

/// Reads them from the fleet's values as loaded, the Nix fallback included, so a key hosts.nix
/// computes (`builtins.readFile ./admin.pub`) is the key Nix gives. Refuses (with the message)
/// when an admin key is still unknown: provisioning without a key the user meant to install
/// would leave a VM they cannot reach.
pub(super) fn extra_inputs(loaded: &LoadedFleet, name: &str) -> Result<Extra, String> {
    let admin_keys = match &loaded.hosts_value {
        Some(v) => admin_keys(v)?,
        None => Vec::new(),
    };
    let linked = loaded
        .definitions_value
        .as_ref()
        .and_then(|v| {
            v.as_attrs()?
                .get("managed")?
                .as_attrs()?
                .get(name)?
                .as_attrs()?
                .get("full")?
                .as_bool()
        })
        .is_some_and(|full| !full);
    let host_known = loaded
        .hosts
        .as_ref()
        .and_then(|h| h.get(name))
        .is_some_and(|h| h.public_key.is_some());
    Ok(Extra {
        admin_keys,
        linked,
        host_known,
    })
}

/// The strings of hosts.nix `_proxmox.adminKeys`; an error when a part of the path or an entry
/// could not be evaluated, or an entry is not a string.
fn admin_keys(hosts: &crate::syntax::Value) -> Result<Vec<String>, String> {
    let unknown = |what: &str| {
        format!(
            "cannot determine {what} of hosts.nix: Nix could not evaluate it (is \
             `nix-instantiate` installed, and does `vmlint` show an evaluation error?); \
             fix it so `vmlint` is clean, or write the keys as strings"
        )
    };
    let Some(top) = hosts.as_attrs() else {
        return Ok(Vec::new());
    };
    let Some(proxmox) = top.get("_proxmox") else {
        return Ok(Vec::new());
    };
    if proxmox.is_unknown() {
        return Err(unknown("`_proxmox`"));
    }
    let Some(keys) = proxmox.as_attrs().and_then(|p| p.get("adminKeys")) else {
        return Ok(Vec::new());
    };
    if keys.is_unknown() {
        return Err(unknown("`_proxmox.adminKeys`"));
    }
    let Some(items) = keys.as_list() else {
        return Ok(Vec::new());
    };
    if items.iter().any(|k| k.is_unknown()) {
        return Err(unknown("an entry of `_proxmox.adminKeys`"));
    }
    // A path or a number is no key line: dropping it would leave out a key the user meant.
    if let Some(other) = items.iter().find(|k| k.as_str().is_none()) {
        return Err(format!(
            "`_proxmox.adminKeys` in hosts.nix holds {}, not a key line; write the public key \
             line itself, or `(builtins.readFile ./admin.pub)` to read it from a file",
            other.type_name()
        ));
    }
    Ok(items
        .iter()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect())
}
