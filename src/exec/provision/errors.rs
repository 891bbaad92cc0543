//! The typed errors of the provision traits: what failed, and what the user can do next.

use std::path::PathBuf;

use crate::exec::proxmox::ProxmoxError;

/// A step of a run (provision's, destroy's) that failed on the Proxmox host or for a reason
/// of its own: the part of every run's error that names the step.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("step {step}: {source}")]
    Proxmox {
        step: &'static str,
        source: Box<ProxmoxError>,
    },
    #[error("step {step}: {reason}")]
    Failed { step: &'static str, reason: String },
}

/// A run's step identifier, as its messages name it.
pub trait StepName: Copy {
    fn name(self) -> &'static str;
}

impl StepName for crate::plan::provision::StepId {
    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl StepName for crate::plan::destroy::StepId {
    fn name(self) -> &'static str {
        self.as_str()
    }
}

/// The constructors every run's error shares: a step that failed, a step's Proxmox error.
pub trait StepErrors: From<StepError> {
    type Id: StepName;

    fn step(id: Self::Id, reason: impl Into<String>) -> Self {
        StepError::Failed {
            step: id.name(),
            reason: reason.into(),
        }
        .into()
    }

    /// For `map_err`: the Proxmox error of step `id`.
    fn proxmox(id: Self::Id) -> impl FnOnce(ProxmoxError) -> Self {
        move |source| {
            StepError::Proxmox {
                step: id.name(),
                source: Box::new(source),
            }
            .into()
        }
    }
}

/// Why the installer did not install.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot run `{}`: {source}; install nixos-anywhere (`nix profile install nixpkgs#nixos-anywhere`) or set VMCTL_NIXOS_ANYWHERE", program.display())]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "`{command}` failed ({status}); its output is above: fix the cause, then provision again"
    )]
    Failed { command: String, status: String },
}

/// Why the new VM's SSH did not answer as it must.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The VM presented another host key: a hard failure, never retried.
    #[error("{0}")]
    HostKey(String),
    /// The VM answered with the pinned key but is not NixOS (no `nixos-version`): a hard
    /// failure, never retried.
    #[error("{0}")]
    NotNixos(String),
    /// Not reachable (yet): the VM may still be rebooting.
    #[error("{0}")]
    Unreachable(String),
}

/// Why the commit was not made.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{0}; install git and make sure it is on PATH")]
    Spawn(#[source] crate::exec::process::ProcessError),
    #[error("{what} failed ({status}): {stderr}; fix the repository (see `git status`), then provision again")]
    Failed {
        what: &'static str,
        status: String,
        stderr: String,
    },
}

/// Why the secrets were not re-keyed for the new host.
#[derive(Debug, thiserror::Error)]
pub enum RekeyError {
    #[error(
        "cannot read the sops configuration: {0}; fix it (`vmctl lint`), then provision again"
    )]
    Config(String),
    #[error("cannot find the secrets to re-key: {0}")]
    Select(String),
    #[error("no identity that can decrypt the secrets: {0}; pass one with --age-identity FILE")]
    Identities(String),
    #[error("`{path}`: {reason}; check that an identity given with --age-identity can decrypt it")]
    File { path: String, reason: String },
}

/// A fleet file the key ceremony reads could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read `{}`: {source}; check that it exists and is readable", path.display())]
pub struct FleetFileError {
    pub path: PathBuf,
    pub source: std::io::Error,
}
