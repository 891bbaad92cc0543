//! The `Proxmox` trait and its implementation: `qm`/`pvesh`/`pvesm` over a `Remote`.
//!
//! Every mutation passes the fences (`proxmox::Fence`) before anything is sent, and a command
//! that hits a Proxmox lock is retried on the bounded schedule of `RetryPolicy`. A VM on another
//! node of the cluster is reached through that node's API path (`proxmox::route`, `routed.rs`).

mod routed;

pub use routed::wait_for_task;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use crate::proxmox::error::tail;
use crate::proxmox::parse::{self, ParseError};
use crate::proxmox::route::{self, RouteError};
use crate::proxmox::{
    argv, classify, display_line, next_free_vmid, redact, strip_control, Failure, Fence,
    FenceError, IpLookup, IpSource, Mutation, RetryPolicy, Snapshot, StorageStatus, Task, VmConfig,
    VmId, VmResource, VmStatus,
};

use super::remote::{Remote, RemoteError, RemoteOutput};

/// Why a Proxmox operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ProxmoxError {
    #[error(transparent)]
    Fence(#[from] FenceError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("`{command}` failed on the Proxmox host ({}): {stderr}", exit(.code))]
    Command {
        command: String,
        code: Option<i32>,
        stderr: String,
    },
    #[error(
        "`{command}` still hit a Proxmox lock after {attempts} attempts over {}s: {stderr}; \
         another task holds the lock (see the task log in the Proxmox UI); retry when it ends \
         or allow more retries with --lock-retries",
        waited.as_secs_f32().round()
    )]
    Locked {
        command: String,
        attempts: u32,
        waited: Duration,
        stderr: String,
    },
    #[error(
        "VMID {vmid} was taken while vmctl was cloning (Proxmox: config file already exists); \
         nothing was created; pick a free VMID with `vmctl ops next-vmid` and run it again"
    )]
    VmidTaken { vmid: VmId },
    #[error("VM {vmid} does not exist on the cluster; `vmctl ops list` shows the VMs that do")]
    NoSuchVm { vmid: VmId },
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(
        "VM {vmid} has no MAC address on net0; get-ip finds the guest by net0's MAC, so give \
         the VM a network device (`qm set {vmid} --net0 virtio,bridge=vmbr0`)"
    )]
    NoMac { vmid: VmId },
    #[error(
        "no address found for VM {vmid} (net0 MAC {mac}): {reason}; wait for the VM to boot and \
         get a lease, then retry"
    )]
    NoIp {
        vmid: VmId,
        mac: String,
        reason: String,
    },
    #[error(
        "no free VMID between {start} and {end}: the cluster and definitions.nix use them all; \
         widen the range"
    )]
    NoFreeVmid { start: VmId, end: VmId },
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error(
        "`{command}` started Proxmox task {upid}, which failed: {exitstatus}{}; see the task \
         log in the Proxmox UI (node {node}), fix the cause and run it again",
        if log.is_empty() { String::new() } else { format!(" (log: {log})") }
    )]
    TaskFailed {
        command: String,
        node: String,
        upid: String,
        exitstatus: String,
        log: String,
    },
    #[error(
        "`{command}` started Proxmox task {upid}, still running after {}s; vmctl stopped \
         waiting: watch it in the Proxmox UI (node {node}) and check the VM before running \
         it again",
        waited.as_secs()
    )]
    TaskTimeout {
        command: String,
        node: String,
        upid: String,
        waited: Duration,
    },
    #[error(
        "VM {vmid} is on node {node}, and vmctl is connected to {local}: `qm terminal` reaches \
         only the VMs of the node it runs on and the API cannot carry a serial console; run \
         `ssh -t root@{node} qm terminal {vmid}` or use the console in the Proxmox UI"
    )]
    ConsoleElsewhere {
        vmid: VmId,
        node: String,
        local: String,
    },
}

fn exit(code: &Option<i32>) -> String {
    match code {
        Some(c) => format!("exit {c}"),
        None => "killed by a signal".into(),
    }
}

/// Everything vmctl asks of Proxmox.
pub trait Proxmox {
    /// Every VM of the cluster (all nodes).
    fn list(&self) -> Result<Vec<VmResource>, ProxmoxError>;
    fn status(&self, vmid: VmId) -> Result<VmStatus, ProxmoxError>;
    fn config(&self, vmid: VmId) -> Result<VmConfig, ProxmoxError>;
    fn storage(&self) -> Result<Vec<StorageStatus>, ProxmoxError>;
    fn snapshots(&self, vmid: VmId) -> Result<Vec<Snapshot>, ProxmoxError>;
    /// The lowest VMID in `start..=end` that neither the cluster nor definitions.nix uses.
    fn next_vmid(&self, start: VmId, end: VmId) -> Result<VmId, ProxmoxError>;
    /// The VM's address: the guest agent's on net0's MAC, else the host's neighbour table.
    fn get_ip(&self, vmid: VmId) -> Result<IpLookup, ProxmoxError>;
    /// The tasks running on `node` for `vmid`: what holds a VM's lock, if anything still does.
    fn active_tasks(&self, node: &str, vmid: VmId) -> Result<Vec<Task>, ProxmoxError>;
    /// Runs a mutation after the fences allow it; returns what the command printed.
    fn apply(&self, m: &Mutation) -> Result<String, ProxmoxError>;
    /// Writes `contents` to `path` on the Proxmox host (mode 0600), e.g. the SSH keys that
    /// `qm set --sshkeys PATH` reads.
    fn upload(&self, path: &str, contents: &[u8]) -> Result<(), ProxmoxError>;
}

/// How long vmctl waits for a Proxmox task by default: a day, as a backup or a migration of
/// large disks takes hours.
pub const TASK_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Hears about retries, so a long wait on a lock is visible on stderr.
pub type RetryReporter = Box<dyn Fn(&str) + Send + Sync>;

/// `Proxmox` through `qm`, `pvesh` and `pvesm` on a `Remote`.
pub struct QmProxmox<R: Remote> {
    remote: R,
    fence: Fence,
    retry: RetryPolicy,
    reporter: Option<RetryReporter>,
    /// Hears each mutation's command line (secrets redacted) once every check passed, just
    /// before it is sent.
    on_send: Option<RetryReporter>,
    /// The node this connection reaches, read once (`pvesh get /cluster/status`).
    local_node: Mutex<Option<String>>,
    /// What `upload` wrote, by path: `qm set --sshkeys PATH` reads the file on the connected
    /// node, the API of another node takes the keys themselves.
    uploads: Mutex<BTreeMap<String, Vec<u8>>>,
    /// How long to wait for a task the API started (pvesh runs it in its foreground, so this
    /// is a bound, not a schedule); `TASK_TIMEOUT` unless `with_task_timeout` says otherwise.
    task_timeout: Duration,
}

impl<R: Remote> QmProxmox<R> {
    pub fn new(remote: R, fence: Fence, retry: RetryPolicy) -> Self {
        QmProxmox {
            remote,
            fence,
            retry,
            reporter: None,
            on_send: None,
            local_node: Mutex::new(None),
            uploads: Mutex::new(BTreeMap::new()),
            task_timeout: TASK_TIMEOUT,
        }
    }

    /// Bounds the wait for a task an API call started (default two hours).
    pub fn with_task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = timeout;
        self
    }

    /// Announces each mutation once its fences and live checks passed (`vmctl` prints
    /// "running on HOST: LINE" on stderr).
    pub fn with_on_send(mut self, on_send: RetryReporter) -> Self {
        self.on_send = Some(on_send);
        self
    }

    /// Reports each retry (`vmctl` prints them on stderr).
    pub fn with_reporter(mut self, reporter: RetryReporter) -> Self {
        self.reporter = Some(reporter);
        self
    }

    pub fn remote(&self) -> &R {
        &self.remote
    }

    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// Runs `argv`, retrying lock contention, and returns stdout or a classified error.
    fn run(&self, argv: &[String], vmid: Option<VmId>) -> Result<String, ProxmoxError> {
        let delays = self.retry.delays();
        let mut waited = Duration::ZERO;
        let mut attempt = 0usize;
        // What the remote prints reaches the user only scrubbed of the command's secrets and
        // of terminal control sequences.
        let secrets = redact::secrets(argv);
        let shown = |text: &str| strip_control(&redact::scrub(text, &secrets));
        loop {
            let out = self.remote.run(argv)?;
            if out.success() {
                return Ok(out.stdout);
            }
            let failure = classify(&out.stderr);
            if failure.is_retryable() && attempt < delays.len() {
                let d = delays[attempt];
                if let Some(r) = &self.reporter {
                    r(&format!(
                        "{}; retry {}/{} in {:.1}s",
                        shown(&tail(&out.stderr, 1)),
                        attempt + 1,
                        delays.len(),
                        d.as_secs_f32()
                    ));
                }
                std::thread::sleep(d);
                waited += d;
                attempt += 1;
                continue;
            }
            let command = display_line(argv);
            let stderr = shown(&tail(&out.stderr, 3));
            return Err(match failure {
                Failure::LockTimeout { .. } | Failure::VmLocked { .. } => ProxmoxError::Locked {
                    command,
                    attempts: attempt as u32 + 1,
                    waited,
                    stderr,
                },
                Failure::VmidTaken { vmid: id } => ProxmoxError::VmidTaken {
                    vmid: id.or(vmid).unwrap_or_default(),
                },
                Failure::NoSuchVm { vmid: Some(id) } => ProxmoxError::NoSuchVm { vmid: id },
                _ => ProxmoxError::Command {
                    command,
                    code: out.code,
                    stderr,
                },
            });
        }
    }

    /// The cluster's VMIDs and names, for the clone/restore target check.
    fn existing(&self) -> Result<BTreeMap<VmId, Option<String>>, ProxmoxError> {
        Ok(self.list()?.into_iter().map(|r| (r.vmid, r.name)).collect())
    }
}

impl<R: Remote> Proxmox for QmProxmox<R> {
    fn list(&self) -> Result<Vec<VmResource>, ProxmoxError> {
        Ok(parse::cluster_resources(&self.run(&argv::list(), None)?)?)
    }

    fn status(&self, vmid: VmId) -> Result<VmStatus, ProxmoxError> {
        self.per_vm(
            vmid,
            || {
                Ok(parse::status(
                    vmid,
                    &self.run(&argv::status(vmid), Some(vmid))?,
                )?)
            },
            |node| {
                let out = self.run(&route::status(node, vmid), Some(vmid))?;
                Ok(route::parse_status(vmid, &out)?)
            },
        )
    }

    fn config(&self, vmid: VmId) -> Result<VmConfig, ProxmoxError> {
        self.per_vm(
            vmid,
            || Ok(parse::config(&self.run(&argv::config(vmid), Some(vmid))?)?),
            |node| {
                let out = self.run(&route::config(node, vmid), Some(vmid))?;
                Ok(route::parse_config(&out)?)
            },
        )
    }

    fn storage(&self) -> Result<Vec<StorageStatus>, ProxmoxError> {
        Ok(parse::storage_status(&self.run(&argv::storage(), None)?)?)
    }

    fn snapshots(&self, vmid: VmId) -> Result<Vec<Snapshot>, ProxmoxError> {
        self.per_vm(
            vmid,
            || {
                let out = self.run(&argv::list_snapshots(vmid), Some(vmid))?;
                Ok(parse::snapshots(&out)?)
            },
            |node| {
                let out = self.run(&route::snapshots(node, vmid), Some(vmid))?;
                Ok(route::parse_snapshots(&out)?)
            },
        )
    }

    fn next_vmid(&self, start: VmId, end: VmId) -> Result<VmId, ProxmoxError> {
        let mut used: BTreeSet<VmId> = self.list()?.into_iter().map(|r| r.vmid).collect();
        used.extend(self.fence.reserved());
        next_free_vmid(&used, start, end).ok_or(ProxmoxError::NoFreeVmid { start, end })
    }

    fn get_ip(&self, vmid: VmId) -> Result<IpLookup, ProxmoxError> {
        let mac = self
            .config(vmid)?
            .net0_mac()
            .ok_or(ProxmoxError::NoMac { vmid })?;
        let found = |address, source| IpLookup {
            vmid,
            mac: mac.clone(),
            address,
            source,
        };
        let agent = self.per_vm(
            vmid,
            || self.run(&argv::guest_interfaces(vmid), Some(vmid)),
            |node| self.run(&route::guest_interfaces(node, vmid), Some(vmid)),
        );
        let agent_reason = match agent {
            Ok(json) => {
                let ifs = parse::guest_interfaces(&json)?;
                match parse::select_guest_ip(&ifs, &mac) {
                    Some(ip) => return Ok(found(ip, IpSource::GuestAgent)),
                    None => "the guest agent reports no global address on that MAC".to_string(),
                }
            }
            Err(ProxmoxError::Command { stderr, .. }) => stderr,
            Err(e) => return Err(e),
        };
        let neigh = parse::neighbours(&self.run(&argv::neighbours(), None)?);
        match parse::select_neighbour_ip(&neigh, &mac) {
            Some(ip) => Ok(found(ip, IpSource::NeighbourTable)),
            None => Err(ProxmoxError::NoIp {
                vmid,
                mac: mac.clone(),
                reason: format!(
                    "guest agent: {agent_reason}; the Proxmox host's neighbour table has no \
                     usable entry for the MAC"
                ),
            }),
        }
    }

    fn active_tasks(&self, node: &str, vmid: VmId) -> Result<Vec<Task>, ProxmoxError> {
        let all = parse::tasks(&self.run(&argv::active_tasks(node, vmid), Some(vmid))?)?;
        Ok(all.into_iter().filter(|t| t.running).collect())
    }

    fn apply(&self, m: &Mutation) -> Result<String, ProxmoxError> {
        self.fence.check(m)?;
        // A migration is sent to the node that holds the VM now (one cluster read): the node
        // definitions.nix gives may be stale, and Proxmox refuses a migration sent to the
        // node it targets ("target is local node") before it looks for the VM.
        let placed;
        let m = match m {
            Mutation::Migrate {
                node,
                vmid,
                target,
                online,
                with_local_disks,
            } => {
                let now = self.node_of(*vmid)?;
                if &now == node {
                    m
                } else {
                    placed = Mutation::Migrate {
                        node: now,
                        vmid: *vmid,
                        target: target.clone(),
                        online: *online,
                        with_local_disks: *with_local_disks,
                    };
                    &placed
                }
            }
            _ => m,
        };
        if Fence::needs_cluster_check(m) {
            self.fence.check_target_free(m, &self.existing()?)?;
        }
        if Fence::needs_live_check(m) {
            // A reused VMID must never lose the VM that now holds it.
            let live = self.config(m.vmid())?;
            self.fence.check_live(m, &live)?;
        }
        let argv = m.argv();
        if let Some(f) = &self.on_send {
            f(&display_line(&argv));
        }
        // `qm` refuses a VM of another node before it does anything (it loads the VM's config
        // first): that refusal is when vmctl looks the VM up and goes through its node's API.
        let holder = route::holder(m);
        match self.run(&argv, Some(m.vmid())) {
            Err(ProxmoxError::NoSuchVm { vmid }) if vmid == holder => {
                let node = self.holder_node(holder)?;
                self.apply_on(&node, m)
            }
            // A mutation that is an API call already (it names its node) may start a task:
            // it too counts only once the task ended well.
            Ok(out) if argv[0] == "pvesh" => {
                if let Some(upid) = route::upid_in(&out) {
                    self.wait_task(&argv, &upid)?;
                }
                Ok(out)
            }
            other => other,
        }
    }

    fn upload(&self, path: &str, contents: &[u8]) -> Result<(), ProxmoxError> {
        let argv = argv::upload(path);
        let out = self.remote.run_with_input(&argv, Some(contents))?;
        succeeded(&argv, out)?;
        self.uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_string(), contents.to_vec());
        Ok(())
    }
}

/// `Ok` when a plain remote command (not a `qm` mutation) succeeded; otherwise its error, with
/// the remote's stderr cut to its tail and stripped of control characters (a hostile host must
/// not drive the user's terminal).
pub(crate) fn succeeded(argv: &[String], out: RemoteOutput) -> Result<(), ProxmoxError> {
    if out.success() {
        Ok(())
    } else {
        Err(ProxmoxError::Command {
            command: display_line(argv),
            code: out.code,
            stderr: strip_control(&tail(&out.stderr, 3)),
        })
    }
}

#[cfg(test)]
mod tests;
