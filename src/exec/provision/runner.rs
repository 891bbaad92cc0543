//! The step runner: each step of the plan in order, the journal saved after each (and before
//! any change a crash could leave half-done), rollback on failure unless told to keep.

use std::path::{Path, PathBuf};

use super::journal::{self, Journal, JournalKey};
use super::keydir::KeyDir;
use super::StepErrors;
use super::{files, rollback, Env, HostFiles, Options, ProbeError, ProvisionError};
use crate::exec::apply::{apply, ChangeSet, FileChange, FleetLock};
use crate::exec::proxmox::{Proxmox, ProxmoxError};
use crate::model::Definitions;
use crate::plan::provision::ceremony::{self};
use crate::plan::provision::{Action, ProvisionPlan, Step, StepId};
use crate::proxmox::{FenceError, Mutation};

/// How a run ended well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every step ran; the commit's hash when one was made.
    Done {
        commit: Option<String>,
    },
    NothingToDo(String),
    /// `--phases` ran the steps it selected; the journal is kept for the rest.
    Partial {
        ran: Vec<StepId>,
        remaining: Vec<StepId>,
    },
}

/// Runs `plan` (continuing `resume`'s journal when given) and, on failure, rolls this run's
/// work back unless `opts.keep_on_failure`.
pub fn run<P: Proxmox + HostFiles>(
    env: &Env<P>,
    opts: &Options,
    root: &Path,
    defs: &Definitions,
    plan: &ProvisionPlan,
    lock: &FleetLock,
    resume: Option<Journal>,
) -> Result<Outcome, ProvisionError> {
    if let Some(msg) = &plan.nothing_to_do {
        return Ok(Outcome::NothingToDo(msg.clone()));
    }
    let mut j = match resume {
        Some(j) => {
            reobserve(env.proxmox, &j)?;
            j
        }
        None => Journal::new(&plan.name, plan.vmid, plan.node.clone()),
    };
    journal::checkpoint(root, &j)?;
    let mut key: Option<KeyDir> = j.key.as_ref().and_then(|k| KeyDir::reopen(&k.dir));
    let mut r = Runner {
        env,
        opts,
        root,
        defs,
        plan,
        lock,
        key: &mut key,
    };
    let result = r.steps(&mut j);
    // The private key never outlives the run, whatever happened.
    drop(key);
    match result {
        Ok(()) => {
            let remaining: Vec<StepId> = plan
                .steps
                .iter()
                .map(|s| s.id)
                .filter(|id| !j.is_done(*id))
                .collect();
            if remaining.is_empty() {
                journal::remove(root, &plan.name)?;
                return Ok(Outcome::Done {
                    commit: j.commit.clone(),
                });
            }
            journal::save(root, &j)?;
            Ok(Outcome::Partial {
                ran: opts
                    .only
                    .map(|o| o.iter().copied().filter(|id| j.is_done(*id)).collect())
                    .unwrap_or_default(),
                remaining,
            })
        }
        Err(failure) if opts.keep_on_failure => {
            journal::save(root, &j)?;
            Err(ProvisionError::Kept {
                failure: failure.to_string(),
                name: plan.name.clone(),
                journal: journal::path(root, &plan.name),
            })
        }
        Err(failure) => {
            (opts.report)(&format!("failed: {failure}; rolling back this run's work"));
            journal::save(root, &j)?;
            match rollback(env.proxmox, root, &j, lock, opts.report) {
                Ok(()) => {
                    journal::remove(root, &plan.name)?;
                    Err(ProvisionError::RolledBack {
                        failure: failure.to_string(),
                        rollback: "rolled back: the cluster and the fleet files are as before"
                            .into(),
                    })
                }
                Err(e) => Err(ProvisionError::RolledBack {
                    failure: failure.to_string(),
                    rollback: format!(
                        "the rollback stopped: {e} (the journal `{}` is kept)",
                        journal::path(root, &plan.name).display()
                    ),
                }),
            }
        }
    }
}

/// Before resuming: the VM the journal says this run created must still be it.
fn reobserve<P: Proxmox>(p: &P, j: &Journal) -> Result<(), ProvisionError> {
    if !j.clone_sent {
        return Ok(());
    }
    let found = p
        .list()
        .map_err(|e| ProvisionError::Resume(e.to_string()))?
        .into_iter()
        .find(|r| r.vmid == j.vmid);
    match found {
        Some(r) if r.name.as_deref() == Some(&j.name) => Ok(()),
        Some(r) => Err(ProvisionError::NotOurVm {
            vmid: j.vmid,
            name: j.name.clone(),
            found: format!("`{}`", r.name.unwrap_or_default()),
        }),
        None if j.vm_created => Err(ProvisionError::Resume(format!(
            "VM {} that this run created is gone from the cluster; run `vmctl provision {} \
             --rollback` to undo the rest, then provision again",
            j.vmid, j.name
        ))),
        None => Ok(()),
    }
}

struct Runner<'a, 'k, P> {
    env: &'a Env<'a, P>,
    opts: &'a Options<'a>,
    root: &'a Path,
    defs: &'a Definitions,
    plan: &'a ProvisionPlan,
    lock: &'a FleetLock,
    key: &'k mut Option<KeyDir>,
}

impl<P: Proxmox + HostFiles> Runner<'_, '_, P> {
    fn steps(&mut self, j: &mut Journal) -> Result<(), ProvisionError> {
        if j.clone_sent && !j.vm_created && !j.is_done(StepId::Clone) {
            // Died while cloning: the VM is there (re-observed as ours) or it is not.
            let there = self
                .env
                .proxmox
                .list()
                .map_err(ProvisionError::proxmox(StepId::Clone))?
                .into_iter()
                .find(|r| r.vmid == j.vmid);
            if let Some(vm) = there {
                // A clone killed mid-way leaves its lock: the disk may be half-copied.
                rollback::refuse_locked(self.env.proxmox, &vm, "cannot resume", &j.name)?;
                j.vm_created = true;
                j.completed.push(StepId::Clone);
                journal::save(self.root, j)?;
            }
        }
        for step in &self.plan.steps {
            if j.is_done(step.id) {
                continue;
            }
            if self.opts.only.is_some_and(|only| !only.contains(&step.id)) {
                // --phases: the checked selection ends here; the journal keeps the rest.
                break;
            }
            (self.opts.report)(&format!("== {} {}", step.id.as_str(), step.title));
            self.step(step, j)?;
            j.completed.push(step.id);
            journal::checkpoint(self.root, j)?;
        }
        Ok(())
    }

    fn step(&mut self, step: &Step, j: &mut Journal) -> Result<(), ProvisionError> {
        let id = step.id;
        let p = self.env.proxmox;
        match &step.action {
            Action::Mutations { mutations } => {
                for m in mutations {
                    if let Mutation::Clone(_) = m {
                        j.clone_sent = true;
                        journal::save(self.root, j)?;
                        match p.apply(m) {
                            Ok(_) => j.vm_created = true,
                            Err(
                                e @ (ProxmoxError::VmidTaken { .. }
                                | ProxmoxError::Fence(FenceError::VmidExists { .. })),
                            ) => {
                                // Someone else's VM holds the VMID now: never ours to undo.
                                j.clone_sent = false;
                                return Err(ProvisionError::proxmox(id)(e));
                            }
                            Err(e) => return Err(ProvisionError::proxmox(id)(e)),
                        }
                    } else if let Mutation::Start { vmid } = m {
                        if j.start_sent && self.running(*vmid, id)? {
                            // The interrupted run's start went through: one start is enough.
                            (self.opts.report)(
                                "   already running (started before the interruption)",
                            );
                            continue;
                        }
                        j.start_sent = true;
                        // Lost to a power cut, a resumed run would try the start again and be
                        // told the VM runs: no harm, so no wait for the disk.
                        journal::checkpoint(self.root, j)?;
                        p.apply(m).map_err(ProvisionError::proxmox(id))?;
                    } else {
                        p.apply(m).map_err(ProvisionError::proxmox(id))?;
                    }
                }
            }
            Action::CloudInit {
                upload,
                keys,
                mutations,
                remove: _,
            } => {
                j.uploaded = Some(upload.clone());
                journal::save(self.root, j)?;
                let mut text = keys.join("\n");
                text.push('\n');
                p.upload(upload, text.as_bytes())
                    .map_err(ProvisionError::proxmox(id))?;
                for m in mutations {
                    p.apply(m).map_err(ProvisionError::proxmox(id))?;
                }
                p.remove_file(upload).map_err(ProvisionError::proxmox(id))?;
                j.uploaded = None;
            }
            Action::DiscoverIp { vmid, static_ip } => {
                let ip = match static_ip {
                    Some(ip) => ip.clone(),
                    None => self.retry(id, || {
                        p.get_ip(*vmid)
                            .map(|l| l.address.to_string())
                            .map_err(|e| ProbeError::Unreachable(e.to_string()))
                    })?,
                };
                (self.opts.report)(&format!("   address {ip}"));
                j.ip = Some(ip);
            }
            Action::WaitSsh { .. } => {
                let ip = self.ip(j, id)?;
                self.retry(id, || self.env.ssh.wait_ssh(&ip))?;
            }
            Action::KeyCeremony { .. } => self.ceremony(j)?,
            Action::Install { argv } => {
                let ip = self.ip(j, id)?;
                let dir = self.key_dir(id)?;
                let argv: Vec<String> = argv
                    .iter()
                    .map(|a| {
                        a.replace("<DIR>", &dir)
                            .replace("<IP>", &ip)
                            .replace("<PORT>", &self.env.ssh.port(&ip).to_string())
                    })
                    .collect();
                self.env.installer.install(&argv)?;
            }
            Action::Verify { hostname } => {
                let ip = self.ip(j, id)?;
                // The installer rebooted the VM: its port answers again once it has booted
                // (polled finely), rather than a refused connection costing a whole interval.
                self.retry(id, || self.env.ssh.wait_ssh(&ip))?;
                let public = j.key.as_ref().map(|k| k.public.clone()).unwrap_or_default();
                let dir = self
                    .key
                    .as_ref()
                    .map(|k| k.path().to_path_buf())
                    .ok_or_else(|| ProvisionError::step(id, "the host key is gone"))?;
                let got = self.retry(id, || self.env.ssh.verify(&ip, &public, &dir))?;
                if got.hostname.trim() != hostname {
                    return Err(ProvisionError::step(
                        id,
                        format!(
                            "the VM says its hostname is `{}`, not `{hostname}`: the install \
                             did not take this host's configuration; check `hosts/` and the \
                             installer's output above",
                            got.hostname.trim()
                        ),
                    ));
                }
                if got.nixos_version.trim().is_empty() {
                    return Err(ProvisionError::step(
                        id,
                        "`nixos-version` printed nothing: the VM is not a NixOS this run \
                         installed; check the installer's output above",
                    ));
                }
                (self.opts.report)(&format!("   NixOS {}", got.nixos_version.trim()));
            }
            Action::Commit { .. } => {
                if !self.opts.commit {
                    (self.opts.report)("   --no-commit: the files stay changed, uncommitted");
                    return Ok(());
                }
                let changed = changed_files(self.root, j);
                let k = j.key.as_ref().expect("the ceremony ran");
                let shown: Vec<String> = changed.iter().map(|p| p.display().to_string()).collect();
                let msg = ceremony::commit_message(
                    &self.plan.name,
                    self.plan.vmid,
                    self.plan.node.as_deref(),
                    &k.fingerprint,
                    &k.age_recipient,
                    &shown,
                );
                let hash = self.env.git.commit(self.root, &changed, &msg)?;
                j.commit = Some(hash);
            }
        }
        Ok(())
    }

    /// The key ceremony: the key pair into a private temp dir, the fleet edits journaled
    /// before they are applied, then the secrets re-keyed (their before-state journaled too).
    fn ceremony(&mut self, j: &mut Journal) -> Result<(), ProvisionError> {
        let id = StepId::KeyCeremony;
        // Siblings of a many-VM run read and edit the same files: one ceremony at a time.
        let _serial = super::fleet_files();
        if j.key.is_none() {
            let pair = crate::keys::generate_host_key(
                &mut rand_core::OsRng,
                Some(format!("root@{}", self.plan.hostname)),
            );
            let dir = KeyDir::create(&pair)
                .map_err(|e| ProvisionError::step(id, format!("cannot write the host key: {e}")))?;
            j.key = Some(JournalKey {
                public: pair.public_openssh.trim_end().to_string(),
                fingerprint: pair.fingerprint.clone(),
                age_recipient: pair.age_recipient.clone(),
                dir: dir.path().to_path_buf(),
            });
            *self.key = Some(dir);
            // The key directory is temporary: nothing outside vmctl depends on this record yet.
            journal::checkpoint(self.root, j)?;
        }
        self.key_dir(id)?;
        let k = j.key.clone().expect("set above");
        let vm = self
            .defs
            .managed
            .iter()
            .find(|v| v.name == self.plan.name)
            .ok_or_else(|| ProvisionError::step(id, "the VM left definitions.nix"))?;
        let loaded = files::load(self.root, self.defs, vm)?;
        let planned =
            ceremony::changes(self.defs, vm, &loaded.view(), &k.public, &k.age_recipient)?;
        let mut set = ChangeSet::new();
        for f in &planned {
            j.record_file(f.path.clone(), f.old.as_deref(), &f.new);
            let abs = self.root.join(&f.path);
            let shown = f.path.display().to_string();
            set.push(match &f.old {
                Some(old) => FileChange::modify(abs, shown, old.clone(), f.new.clone(), &f.summary),
                None => FileChange::create(abs, shown, f.new.clone(), &f.summary),
            });
        }
        // Re-keying follows: every secret's bytes journaled now too, in the same durable save
        // as the fleet files, so a crash at any point after it can be undone.
        let secrets = self.root.join(&self.defs.settings.secrets_dir);
        let before = files::snapshot(&secrets, self.root);
        for (rel, bytes) in &before {
            j.record_file(rel.clone(), Some(bytes), bytes);
        }
        journal::save(self.root, j)?;
        if let Some(parent) = planned
            .iter()
            .filter(|f| f.old.is_none())
            .filter_map(|f| self.root.join(&f.path).parent().map(Path::to_path_buf))
            .next()
        {
            std::fs::create_dir_all(&parent).map_err(|e| {
                ProvisionError::step(id, format!("cannot create `{}`: {e}", parent.display()))
            })?;
        }
        apply(&set, self.lock)?;
        Ok(files::rekey_journaled(
            self.env.rekeyer,
            self.root,
            self.lock,
            j,
            &before,
            &secrets,
        )?)
    }

    fn running(&self, vmid: crate::proxmox::VmId, id: StepId) -> Result<bool, ProvisionError> {
        let st = self
            .env
            .proxmox
            .status(vmid)
            .map_err(ProvisionError::proxmox(id))?;
        Ok(st.status == "running")
    }

    fn ip(&self, j: &Journal, id: StepId) -> Result<String, ProvisionError> {
        j.ip.clone()
            .ok_or_else(|| ProvisionError::step(id, "the VM's address is not known"))
    }

    fn key_dir(&self, id: StepId) -> Result<String, ProvisionError> {
        self.key
            .as_ref()
            .map(|k| k.path().display().to_string())
            .ok_or_else(|| {
                ProvisionError::Resume(format!(
                    "step {}: the host key generated earlier is gone (it never outlives a run); \
                     run `vmctl provision {} --rollback`, then provision again",
                    id.as_str(),
                    self.plan.name
                ))
            })
    }

    /// Calls `f` up to `attempts` times, `interval` apart.
    fn retry<T>(
        &self,
        id: StepId,
        mut f: impl FnMut() -> Result<T, ProbeError>,
    ) -> Result<T, ProvisionError> {
        let mut last = String::new();
        for attempt in 0..self.opts.attempts.max(1) {
            if attempt > 0 {
                std::thread::sleep(self.opts.interval);
            }
            match f() {
                Ok(v) => return Ok(v),
                Err(ProbeError::HostKey(e) | ProbeError::NotNixos(e)) => {
                    return Err(ProvisionError::step(id, e))
                }
                Err(ProbeError::Unreachable(e)) => last = e,
            }
        }
        Err(ProvisionError::step(
            id,
            format!(
                "gave up after {} attempts: {last}",
                self.opts.attempts.max(1)
            ),
        ))
    }
}

/// The journaled files whose content differs from their before-state: what the commit takes.
fn changed_files(root: &Path, j: &Journal) -> Vec<PathBuf> {
    journal::changed(root, &j.files)
}
