//! Many VMs at once (`vmctl provision NAME... | --all --jobs N`): each VM's plan run by the
//! single-VM runner on a pool of worker threads sharing the one Proxmox connection. Clones are
//! serialized per source template and per target storage (Proxmox locks both; `QmProxmox`
//! retries its lock timeouts with backoff), the key ceremonies and commits one at a time (the
//! fleet-files lock), installs in parallel. A failing VM is undone alone; the others finish.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::fleet_git::{self, CommitOrder, VmCommit};
use super::{
    fleet_rollback, journal, run, Announce, Env, HostFiles, Installer, Options, Outcome,
    ProvisionError, RekeyError, Rekeyer, SshProbe,
};
use crate::exec::apply::FleetLock;
use crate::exec::proxmox::{Proxmox, ProxmoxError};
use crate::model::Definitions;
use crate::plan::provision::ProvisionPlan;
use crate::proxmox::{
    IpLookup, Mutation, Snapshot, StorageStatus, Task, VmConfig, VmId, VmResource, VmStatus,
};

/// What the workers share (each is used from several threads at once).
pub struct FleetEnv<'a, P> {
    pub proxmox: &'a P,
    pub installer: &'a (dyn Installer + Sync),
    pub ssh: &'a (dyn SshProbe + Sync),
    pub rekeyer: &'a (dyn Rekeyer + Sync),
}

/// How a many-VM run behaves.
pub struct ManyOptions<'a> {
    /// Worker threads (`--jobs`), at least 1.
    pub jobs: usize,
    pub keep_on_failure: bool,
    pub commit: bool,
    pub attempts: u32,
    pub interval: Duration,
    /// Hears every line, already prefixed with `NAME: `.
    pub report: &'a (dyn Fn(&str) + Sync),
}

/// How one VM ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmOutcome {
    Provisioned {
        vmid: VmId,
        commit: Option<String>,
    },
    NothingToDo(String),
    /// `rolled_back`: its VM and every trace in the fleet files are gone; else kept
    /// (`--keep-on-failure`, or the undo stopped: the error says why and the journal is kept).
    Failed {
        error: String,
        rolled_back: bool,
    },
    /// Never started (planning refused it: a VMID conflict, a bad definition).
    Refused(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmResult {
    pub name: String,
    pub outcome: VmOutcome,
}

/// The end of a many-VM run: each VM in the order given, and the re-key commits made after a
/// failed VM whose recipient a sibling's commit had taken into the secrets.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub results: Vec<VmResult>,
    pub rekey_commits: Vec<(String, String)>,
}

impl Summary {
    pub fn all_succeeded(&self) -> bool {
        self.results.iter().all(|r| {
            matches!(
                r.outcome,
                VmOutcome::Provisioned { .. } | VmOutcome::NothingToDo(_)
            )
        })
    }
}

/// Runs every plan, `opts.jobs` at a time.
pub fn run_many<P: Proxmox + HostFiles + Sync>(
    env: &FleetEnv<P>,
    opts: &ManyOptions,
    root: &Path,
    defs: &Definitions,
    plans: &[ProvisionPlan],
    lock: &FleetLock,
) -> Summary {
    let gate = Gate {
        inner: env.proxmox,
        locks: Mutex::new(BTreeMap::new()),
    };
    let order = CommitOrder::default();
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, VmResult, Option<String>)>> = Mutex::new(Vec::new());
    let worker = || loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        let Some(plan) = plans.get(i) else { break };
        let (result, recipient) = one(env, opts, root, defs, plan, lock, &gate, &order);
        done.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((i, result, recipient));
    };
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.clamp(1, plans.len().max(1)) {
            s.spawn(worker);
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(|(i, _, _)| *i);
    let mut summary = Summary::default();
    for (_, result, recipient) in done {
        if let (Some(r), true) = (recipient, opts.commit) {
            let _serial = super::fleet_files();
            match rekey_commit(root, defs, &result.name, &r) {
                Ok(Some(hash)) => {
                    (opts.report)(&format!(
                        "{}: a sibling's commit had re-keyed the secrets for it: committed them \
                         re-keyed without it ({hash})",
                        result.name
                    ));
                    summary.rekey_commits.push((result.name.clone(), hash));
                }
                Ok(None) => {}
                Err(e) => (opts.report)(&format!(
                    "{}: the secrets in HEAD still list its recipient and committing them \
                     re-keyed failed: {e}; commit the secrets directory by hand",
                    result.name
                )),
            }
        }
        summary.results.push(result);
    }
    summary
}

/// Settles a VM in the commit order whatever way its run ends.
struct Settle<'a>(&'a CommitOrder, &'a str);

impl Drop for Settle<'_> {
    fn drop(&mut self) {
        self.0.settle(self.1);
    }
}

/// One VM: the single-VM runner (told to keep on failure, so the undo is this module's, aware
/// of siblings). Returns its result and, when it was undone after its ceremony, its recipient.
#[allow(clippy::too_many_arguments)]
fn one<P: Proxmox + HostFiles + Sync>(
    env: &FleetEnv<P>,
    opts: &ManyOptions,
    root: &Path,
    defs: &Definitions,
    plan: &ProvisionPlan,
    lock: &FleetLock,
    gate: &Gate<P>,
    order: &CommitOrder,
) -> (VmResult, Option<String>) {
    let name = plan.name.as_str();
    let _settle = Settle(order, name);
    let report = |l: &str| (opts.report)(&format!("{name}: {l}"));
    let git = VmCommit { name, defs, order };
    let rekeyer = Ordered {
        inner: env.rekeyer,
        name,
        order,
    };
    let e = Env {
        proxmox: gate,
        installer: env.installer,
        ssh: env.ssh,
        git: &git,
        rekeyer: &rekeyer,
    };
    let o = Options {
        keep_on_failure: true,
        commit: opts.commit,
        attempts: opts.attempts,
        interval: opts.interval,
        report: &report,
        only: None,
    };
    let result = |outcome| VmResult {
        name: name.to_string(),
        outcome,
    };
    let failure = match run(&e, &o, root, defs, plan, lock, None) {
        Ok(Outcome::Done { commit }) => {
            return (
                result(VmOutcome::Provisioned {
                    vmid: plan.vmid,
                    commit,
                }),
                None,
            )
        }
        Ok(Outcome::NothingToDo(m)) => return (result(VmOutcome::NothingToDo(m)), None),
        Ok(Outcome::Partial { .. }) => "stopped before its last step".to_string(),
        Err(ProvisionError::Kept { failure, .. }) => failure,
        Err(e) => {
            return (
                result(VmOutcome::Failed {
                    error: e.to_string(),
                    rolled_back: false,
                }),
                None,
            )
        }
    };
    let kept = |why: String| {
        result(VmOutcome::Failed {
            error: format!(
                "{failure}; {why}: the journal is `{}`; undo it with `vmctl provision {name} \
                 --rollback`",
                journal::path(root, name).display()
            ),
            rolled_back: false,
        })
    };
    if opts.keep_on_failure {
        return (kept("everything is kept (--keep-on-failure)".into()), None);
    }
    report(&format!(
        "failed: {failure}; rolling back this VM's work alone"
    ));
    let j = match journal::load(root, name) {
        Ok(Some(j)) => j,
        Ok(None) => return (kept("its journal is gone".into()), None),
        Err(e) => return (kept(format!("its journal cannot be read ({e})")), None),
    };
    match fleet_rollback::undo(gate, root, defs, &j, lock, env.rekeyer, &report) {
        Ok(()) => {
            let _ = journal::remove(root, name);
            let recipient = j.key.as_ref().map(|k| k.age_recipient.clone());
            (
                result(VmOutcome::Failed {
                    error: failure,
                    rolled_back: true,
                }),
                recipient,
            )
        }
        Err(e) => (kept(format!("the rollback stopped: {e}")), None),
    }
}

/// After a failed VM was undone: when HEAD's secrets still list its recipient (a sibling
/// committed them re-keyed while it was in the fleet), commit the working tree's secrets,
/// re-keyed without it, so the repository ends clean.
fn rekey_commit(
    root: &Path,
    defs: &Definitions,
    name: &str,
    recipient: &str,
) -> Result<Option<String>, super::GitError> {
    let dir = root.join(&defs.settings.secrets_dir);
    let mut files = Vec::new();
    for rel in super::files::snapshot(&dir, root).into_keys() {
        let Some(head) = fleet_git::head_blob(root, &rel)? else {
            continue;
        };
        if !String::from_utf8_lossy(&head).contains(recipient) {
            continue;
        }
        if let Ok(now) = std::fs::read(root.join(&rel)) {
            if now != head {
                files.push((rel, now));
            }
        }
    }
    if files.is_empty() {
        return Ok(None);
    }
    let mut msg = format!("chore(secrets): re-key after the failed provision of {name}\n\n");
    for (p, _) in &files {
        msg.push_str(&format!("- {}\n", p.display()));
    }
    fleet_git::commit_contents(root, &files, &msg).map(Some)
}

/// The re-keyer, noting the order in which the ceremonies edited the shared files.
struct Ordered<'a> {
    inner: &'a (dyn Rekeyer + Sync),
    name: &'a str,
    order: &'a CommitOrder,
}

impl Rekeyer for Ordered<'_> {
    fn rekey(&self, root: &Path, lock: &FleetLock) -> Result<(), RekeyError> {
        // Called by the ceremony under the fleet-files lock, right after its edits.
        self.order.entered(self.name);
        self.inner.rekey(root, lock)
    }

    fn rekey_announcing(
        &self,
        root: &Path,
        lock: &FleetLock,
        announce: &mut Announce<'_>,
    ) -> Result<(), RekeyError> {
        self.order.entered(self.name);
        self.inner.rekey_announcing(root, lock, announce)
    }
}

/// The shared Proxmox with clones serialized per source template and per target storage.
struct Gate<'a, P> {
    inner: &'a P,
    locks: Mutex<BTreeMap<String, Arc<Mutex<()>>>>,
}

impl<P> Gate<'_, P> {
    fn lock_of(&self, key: String) -> Arc<Mutex<()>> {
        let mut m = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(key).or_default().clone()
    }
}

impl<P: Proxmox> Proxmox for Gate<'_, P> {
    fn list(&self) -> Result<Vec<VmResource>, ProxmoxError> {
        self.inner.list()
    }
    fn status(&self, vmid: VmId) -> Result<VmStatus, ProxmoxError> {
        self.inner.status(vmid)
    }
    fn config(&self, vmid: VmId) -> Result<VmConfig, ProxmoxError> {
        self.inner.config(vmid)
    }
    fn storage(&self) -> Result<Vec<StorageStatus>, ProxmoxError> {
        self.inner.storage()
    }
    fn snapshots(&self, vmid: VmId) -> Result<Vec<Snapshot>, ProxmoxError> {
        self.inner.snapshots(vmid)
    }
    fn next_vmid(&self, start: VmId, end: VmId) -> Result<VmId, ProxmoxError> {
        self.inner.next_vmid(start, end)
    }
    fn get_ip(&self, vmid: VmId) -> Result<IpLookup, ProxmoxError> {
        self.inner.get_ip(vmid)
    }
    fn active_tasks(&self, node: &str, vmid: VmId) -> Result<Vec<Task>, ProxmoxError> {
        self.inner.active_tasks(node, vmid)
    }
    fn apply(&self, m: &Mutation) -> Result<String, ProxmoxError> {
        let Mutation::Clone(c) = m else {
            return self.inner.apply(m);
        };
        // Always template first, then storage: two clones never wait on each other crosswise.
        let template = self.lock_of(format!("template {}", c.source));
        let storage = self.lock_of(format!(
            "storage {}",
            c.storage.as_deref().unwrap_or("(the template's)")
        ));
        let _t = template.lock().unwrap_or_else(|e| e.into_inner());
        let _s = storage.lock().unwrap_or_else(|e| e.into_inner());
        self.inner.apply(m)
    }
    fn upload(&self, path: &str, contents: &[u8]) -> Result<(), ProxmoxError> {
        self.inner.upload(path, contents)
    }
}

impl<P: HostFiles> HostFiles for Gate<'_, P> {
    fn remove_file(&self, path: &str) -> Result<(), ProxmoxError> {
        self.inner.remove_file(path)
    }
}
