//! Runs a `vmctl template create` plan over the one SSH connection, journaled in
//! `.vmctl/journal/template@VMID.json` after every step so an interrupted run continues where it
//! stopped when run again. Every mutation goes through `QmProxmox` and so through the fences:
//! a restore onto a VMID that exists is refused, and `qm template` runs only on the VM that
//! carries the template's declared name.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::apply::STATE_DIR;
use super::nix_version::{self, NixVersionError};
use super::process::{Process, ProcessError};
use super::proxmox::{Proxmox, ProxmoxError, QmProxmox};
use super::remote::{Remote, RemoteError};
use crate::plan::template::{vma_ending, Step, TemplatePlan};
use crate::proxmox::VmId;

/// Bumped when the format changes; a journal of another version is refused.
pub const JOURNAL_VERSION: u32 = 1;

/// What one run has done so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateJournal {
    pub version: u32,
    pub vmid: VmId,
    pub name: String,
    /// Steps finished, in order.
    pub completed: Vec<String>,
    /// The image this run uploads (given, or built).
    pub image: Option<PathBuf>,
    /// The upload on the Proxmox host, until it is removed.
    pub uploaded: Option<String>,
    /// `qmrestore` was sent: the VM may exist even if the run died before hearing back.
    pub restore_sent: bool,
}

/// What the run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The template was made (or finished, continuing a journal).
    Created { resumed: bool },
    /// The VMID already holds a template of the declared name: nothing to do.
    AlreadyTemplate,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateRunError {
    #[error("VMID {vmid} is already used by {} on the cluster and is not the template `{name}`: give the template a free VMID in vms/definitions.nix, or remove that VM yourself", existing.as_deref().map_or("a VM without a name".to_string(), |n| format!("`{n}`")))]
    VmidTaken {
        vmid: VmId,
        name: String,
        existing: Option<String>,
    },
    #[error("the journal `{}` says VM {vmid} was restored, but the cluster has no VM {vmid}: check the cluster, then remove the journal and run `vmctl template create` again", journal.display())]
    Vanished { vmid: VmId, journal: PathBuf },
    #[error(transparent)]
    Proxmox(#[from] ProxmoxError),
    #[error("cannot remove the upload `{path}` on the Proxmox host: {reason}; remove it by hand")]
    Cleanup { path: String, reason: String },
    #[error(transparent)]
    Nix(#[from] NixVersionError),
    #[error("cannot build the template image: {0}; `nix build .#proxmox-template` in the fleet shows the whole error, or pass a VMA file with --image")]
    Build(ProcessError),
    #[error(
        "`nix build` printed no VMA archive vmctl can find ({0}): pass the image with --image"
    )]
    BuildOutput(String),
    #[error("cannot read the image `{}`: {source}", path.display())]
    Image { path: PathBuf, source: io::Error },
    #[error("cannot {what} the journal `{}`: {reason}; remove it to start over", path.display())]
    Journal {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
}

impl From<RemoteError> for TemplateRunError {
    fn from(e: RemoteError) -> Self {
        TemplateRunError::Proxmox(e.into())
    }
}

/// `ROOT/.vmctl/journal/template@VMID.json` (`@` is in no VM name, so no provision journal
/// has this name).
pub fn journal_path(root: &Path, vmid: VmId) -> PathBuf {
    root.join(STATE_DIR)
        .join("journal")
        .join(format!("template@{vmid}.json"))
}

fn journal_err<'a>(what: &'static str, path: &'a Path) -> impl Fn(String) -> TemplateRunError + 'a {
    move |reason| TemplateRunError::Journal {
        what,
        path: path.to_path_buf(),
        reason,
    }
}

/// The journal an interrupted run left, if any.
pub fn load(root: &Path, vmid: VmId) -> Result<Option<TemplateJournal>, TemplateRunError> {
    let p = journal_path(root, vmid);
    let bytes = match fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(journal_err("read", &p)(e.to_string())),
    };
    let j: TemplateJournal =
        serde_json::from_slice(&bytes).map_err(|e| journal_err("read", &p)(e.to_string()))?;
    if j.version != JOURNAL_VERSION || j.vmid != vmid {
        return Err(journal_err("use", &p)(format!(
            "version {} for VMID {}",
            j.version, j.vmid
        )));
    }
    Ok(Some(j))
}

fn save(root: &Path, j: &TemplateJournal) -> Result<(), TemplateRunError> {
    let p = journal_path(root, j.vmid);
    let text = serde_json::to_vec_pretty(j).expect("a journal serialises");
    crate::exec::apply::write_state_file(root, &p, &text, true)
        .map_err(|e| journal_err("write", &p)(e.to_string()))
}

/// Builds the image with Nix (2.18 or later) in the fleet and returns the VMA file.
fn build(root: &Path, argv: &[String]) -> Result<PathBuf, TemplateRunError> {
    nix_version::require("building the template image")?;
    let program = std::env::var_os("VMCTL_NIX").unwrap_or_else(|| argv[0].clone().into());
    let out = Process::new("build the template image with nix", program)
        .args(&argv[1..])
        .current_dir(root)
        .timeout(Duration::from_secs(4 * 3600))
        .interruptible()
        .output()
        .map_err(TemplateRunError::Build)?;
    let built: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| TemplateRunError::BuildOutput(format!("not JSON: {e}")))?;
    let path = built
        .get(0)
        .and_then(|b| b["outputs"]["out"].as_str())
        .ok_or_else(|| TemplateRunError::BuildOutput("no `outputs.out`".into()))?;
    let path = PathBuf::from(path);
    if path.is_file() {
        return Ok(path);
    }
    let mut found: Vec<PathBuf> = fs::read_dir(&path)
        .map_err(|e| TemplateRunError::BuildOutput(format!("{}: {e}", path.display())))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| vma_ending(f).is_some())
        })
        .collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        n => Err(TemplateRunError::BuildOutput(format!(
            "{n} VMA files in {}",
            path.display()
        ))),
    }
}

/// Runs `plan` (fresh, or continuing `journal`); `image` is the file `--image` named.
pub fn run<R: Remote>(
    p: &QmProxmox<R>,
    root: &Path,
    plan: &TemplatePlan,
    journal: Option<TemplateJournal>,
    report: &dyn Fn(&str),
) -> Result<Outcome, TemplateRunError> {
    let resumed = journal.is_some();
    let mut j = journal.unwrap_or_else(|| TemplateJournal {
        version: JOURNAL_VERSION,
        vmid: plan.vmid,
        name: plan.name.clone(),
        completed: Vec::new(),
        image: None,
        uploaded: None,
        restore_sent: false,
    });
    // Observe first: the VMID must be free, unless this run's journal restored it.
    let existing = p.list()?.into_iter().find(|v| v.vmid == plan.vmid);
    match (&existing, j.restore_sent) {
        (Some(vm), false) => {
            if vm.template && vm.name.as_deref() == Some(plan.name.as_str()) {
                return Ok(Outcome::AlreadyTemplate);
            }
            return Err(TemplateRunError::VmidTaken {
                vmid: plan.vmid,
                name: plan.name.clone(),
                existing: vm.name.clone(),
            });
        }
        (None, true) if j.completed.iter().any(|s| s == "restore") => {
            return Err(TemplateRunError::Vanished {
                vmid: plan.vmid,
                journal: journal_path(root, plan.vmid),
            });
        }
        _ => {}
    }
    for step in &plan.steps {
        let id = step.id();
        if j.completed.iter().any(|s| s == id) {
            continue;
        }
        report(&format!("{id}: {}", step.line()));
        match step {
            Step::Build { argv } => j.image = Some(build(root, argv)?),
            Step::Upload { local, remote } => {
                let path = local
                    .clone()
                    .or_else(|| j.image.clone())
                    .expect("the build step names the image");
                j.image = Some(path.clone());
                let bytes = fs::read(&path).map_err(|source| TemplateRunError::Image {
                    path: path.clone(),
                    source,
                })?;
                // Recorded before it is sent: a run killed mid-upload still removes it.
                j.uploaded = Some(remote.clone());
                save(root, &j)?;
                p.upload(remote, &bytes)?;
            }
            Step::Restore(m) => {
                // A restore whose answer was lost may have made the VM: observed above.
                if !(j.restore_sent && existing.is_some()) {
                    j.restore_sent = true;
                    save(root, &j)?;
                    p.apply(m)?;
                }
            }
            Step::Configure(m) | Step::Template(m) => {
                p.apply(m)?;
            }
            Step::Cleanup { argv } => {
                let out = p.remote().run(argv)?;
                if !out.success() {
                    return Err(TemplateRunError::Cleanup {
                        path: j.uploaded.clone().unwrap_or_default(),
                        reason: out.stderr.trim().to_string(),
                    });
                }
                j.uploaded = None;
            }
        }
        j.completed.push(id.to_string());
        save(root, &j)?;
    }
    let p = journal_path(root, plan.vmid);
    match fs::remove_file(&p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(journal_err("remove", &p)(e.to_string()))
        }
        _ => {}
    }
    Ok(Outcome::Created { resumed })
}
