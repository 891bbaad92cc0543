//! Runs an ops plan against any `Proxmox` and prints what it returns: `QmProxmox` over SSH in
//! production, `QmProxmox` over the recording fake in the tests below.
//!
//! Output goes through [`Output`], so a test sees exactly what a user would on stdout and
//! stderr.

use std::collections::{BTreeMap, BTreeSet};

use miette::{miette, IntoDiagnostic};
use serde::Serialize;

use crate::exec::proxmox::Proxmox;
use crate::plan::ops::{Plan, Read, Step};
use crate::proxmox::redact::{display_line, scrub, secrets};
use crate::proxmox::{strip_control, Fence, IpSource, Mutation, VmId, VmResource};

/// Where a command's results (stdout) and messages (stderr) go.
pub trait Output {
    fn out(&mut self, text: &str);
    fn err(&mut self, text: &str);
    /// A side message (dry-run notes, what was skipped): on stderr, silent with `--quiet`.
    fn note(&mut self, text: &str) {
        if !crate::cli::ui::is_quiet() {
            self.err(text);
        }
    }
    /// The command line of a mutation the cluster accepted (kept only for `--json`).
    fn sent(&mut self, _line: String) {}
}

/// A remote that shows, with `-v`, every command line it sends (secrets redacted), reads
/// included; mutations are also announced without `-v`, just before they are sent.
pub struct Traced<R>(pub R);

impl<R: crate::exec::remote::Remote> crate::exec::remote::Remote for Traced<R> {
    fn run_with_input(
        &self,
        argv: &[String],
        input: Option<&[u8]>,
    ) -> Result<crate::exec::remote::RemoteOutput, crate::exec::remote::RemoteError> {
        crate::cli::ui::detail(&format!(
            "ssh {}: {}",
            self.0.target(),
            crate::proxmox::redact::display_line(argv)
        ));
        self.0.run_with_input(argv, input)
    }

    fn target(&self) -> String {
        self.0.target()
    }
}

/// The process's stdout and stderr. `print!` on purpose: a closed stdout ends the program
/// quietly (see `render::stdio`), as in every other command.
pub struct Stdio;

impl Output for Stdio {
    fn out(&mut self, text: &str) {
        print!("{text}");
    }

    fn err(&mut self, text: &str) {
        eprint!("{text}");
    }
}

/// How the results are shown.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mode {
    /// Render the plan and connect to nothing.
    pub dry_run: bool,
    /// Print JSON instead of text: a read's data, or one object for a change.
    pub json: bool,
}

/// Runs `plan`. `connect(fence, announce)` opens the Proxmox connection, once and only when a
/// step needs it; `announce` asks it to show each mutation's command line before it is sent.
pub fn execute<P: Proxmox>(
    plan: &Plan,
    mode: Mode,
    connect: impl FnOnce(Fence, bool) -> miette::Result<P>,
    out: &mut impl Output,
) -> miette::Result<u8> {
    let mutates = plan.steps.iter().any(|s| s.mutation().is_some());
    if plan.steps.is_empty() {
        if mode.json {
            let notes: Vec<&str> = plan.nothing_to_do.into_iter().collect();
            return json(&change_json(mode.dry_run, &[], "", &notes), out).map(|_| 0);
        }
        if let Some(why) = plan.nothing_to_do {
            out.note(&format!("{why}\n"));
        }
        return Ok(0);
    }
    if mode.dry_run {
        let d = plan.dry_run();
        if mode.json {
            return json(&change_json(true, &d.commands, "", &d.notes), out).map(|_| 0);
        }
        for line in &d.commands {
            out.out(&format!("{line}\n"));
        }
        for note in &d.notes {
            out.note(&format!("{note}\n"));
        }
        return Ok(0);
    }
    let announce = plan.steps.iter().any(|s| matches!(s, Step::Apply(_)));
    let p = connect(plan.fence.clone(), announce)?;
    if mode.json && mutates {
        // One object at the end: what was sent, what the cluster printed, what was skipped.
        let mut buf = Collected::default();
        let code = steps(plan, &p, mode, &mut buf)?;
        let v = change_json(false, &buf.sent, &buf.out, &buf.notes);
        json(&v, out)?;
        return Ok(code);
    }
    steps(plan, &p, mode, out)
}

/// The JSON of a command that changes the cluster (docs/cli.md): `dry_run`, the `commands`
/// sent (or that would be, quoted as sent, secrets redacted), the cluster's `output` and the
/// `notes` (dry-run caveats, VMs skipped).
fn change_json(
    dry_run: bool,
    commands: &[String],
    output: &str,
    notes: &[impl AsRef<str>],
) -> serde_json::Value {
    serde_json::json!({
        "dry_run": dry_run,
        "commands": commands,
        "output": output,
        "notes": notes.iter().map(|n| n.as_ref().trim_end()).collect::<Vec<_>>(),
    })
}

/// An [`Output`] that keeps everything for one JSON object; `sent` collects the command line
/// of each mutation once it succeeded.
#[derive(Default)]
struct Collected {
    out: String,
    notes: Vec<String>,
    sent: Vec<String>,
}

impl Output for Collected {
    fn out(&mut self, text: &str) {
        self.out.push_str(text);
    }

    fn err(&mut self, text: &str) {
        self.notes.push(text.trim_end().to_string());
    }

    fn note(&mut self, text: &str) {
        self.err(text);
    }

    fn sent(&mut self, line: String) {
        self.sent.push(line);
    }
}

/// The steps of a plan over an open connection.
fn steps<P: Proxmox>(plan: &Plan, p: &P, mode: Mode, out: &mut impl Output) -> miette::Result<u8> {
    let mut on_cluster: Option<BTreeSet<VmId>> = None;
    let mut failed = 0;
    for step in &plan.steps {
        match step {
            Step::Read(r) => read(p, &plan.fence, *r, mode.json, out)?,
            Step::Apply(m) => {
                let printed = p.apply(m).map_err(err)?;
                out.sent(display_line(&m.argv()));
                // What the cluster printed may echo a secret of the command line.
                out.out(&strip_control(&scrub(&printed, &secrets(&m.argv()))));
            }
            Step::EnsureProtected { vmid, name } => {
                if on_cluster.is_none() {
                    on_cluster = Some(p.list().map_err(err)?.iter().map(|r| r.vmid).collect());
                }
                if !on_cluster.as_ref().is_some_and(|c| c.contains(vmid)) {
                    out.note(&format!(
                        "VM {vmid} ({name}): not on the cluster, skipped\n"
                    ));
                    continue;
                }
                // One VM failing (another node's VM, a lock) does not stop the others; the
                // exit code says.
                match ensure_protected(p, *vmid) {
                    Ok(false) => out.out(&format!("VM {vmid} ({name}): already protected\n")),
                    Ok(true) => {
                        let on = Mutation::Protect {
                            vmid: *vmid,
                            on: true,
                        };
                        out.sent(display_line(&on.argv()));
                        out.out(&format!("VM {vmid} ({name}): protection on\n"));
                    }
                    Err(e) => {
                        failed += 1;
                        out.err(&format!("VM {vmid} ({name}): {e}\n"));
                    }
                }
            }
        }
    }
    if failed > 0 {
        return Err(miette!(
            "{failed} readonly VM{} could not be protected; see above, fix the cause and run \
             `vmctl ops protect --readonly-vms` again",
            if failed == 1 { "" } else { "s" }
        ));
    }
    Ok(0)
}

/// Protection on unless it already is; true when it was turned on.
fn ensure_protected<P: Proxmox>(
    p: &P,
    vmid: VmId,
) -> Result<bool, crate::exec::proxmox::ProxmoxError> {
    if p.config(vmid)?.protected() {
        return Ok(false);
    }
    p.apply(&Mutation::Protect { vmid, on: true })?;
    Ok(true)
}

/// An ops error as a report: its message, as every ops error always was, with the error
/// itself (and its `source()` chain) kept inside.
pub(super) fn err<E: std::error::Error + Send + Sync + 'static>(e: E) -> miette::Report {
    crate::cli::exit::report(e)
}

fn json<T: Serialize>(v: &T, out: &mut impl Output) -> miette::Result<()> {
    out.out(&format!(
        "{}\n",
        serde_json::to_string_pretty(v).into_diagnostic()?
    ));
    Ok(())
}

/// Everything the cluster sent is stripped of terminal control sequences before it is shown.
fn read<P: Proxmox>(
    p: &P,
    fence: &Fence,
    read: Read,
    as_json: bool,
    out: &mut impl Output,
) -> miette::Result<()> {
    match read {
        Read::List => list(p, fence, as_json, out)?,
        Read::Status(vmid) => {
            let s = p.status(vmid).map_err(err)?;
            if as_json {
                return json(&s, out);
            }
            out.out(&format!("status: {}\n", strip_control(&s.status)));
        }
        Read::Config(vmid) => {
            let c = p.config(vmid).map_err(err)?;
            if as_json {
                let map: serde_json::Map<String, serde_json::Value> = c
                    .entries
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect();
                return json(&map, out);
            }
            for (k, v) in &c.entries {
                out.out(&format!("{}: {}\n", strip_control(k), strip_control(v)));
            }
        }
        Read::GetIp(vmid) => {
            let ip = p.get_ip(vmid).map_err(err)?;
            if as_json {
                return json(&ip, out);
            }
            out.note(&format!(
                "VM {vmid} (MAC {}): found by the {}\n",
                ip.mac,
                match ip.source {
                    IpSource::GuestAgent => "guest agent",
                    IpSource::NeighbourTable => "Proxmox host's neighbour table",
                }
            ));
            out.out(&format!("{}\n", ip.address));
        }
        Read::Storage => {
            let s = p.storage().map_err(err)?;
            if as_json {
                return json(&s, out);
            }
            out.out(&format!(
                "{:<16} {:<10} {:<8} {:>12} {:>12} {:>7}\n",
                "NAME", "TYPE", "STATUS", "FREE(GiB)", "TOTAL(GiB)", "USED"
            ));
            for st in &s {
                out.out(&format!(
                    "{:<16} {:<10} {:<8} {:>12.1} {:>12.1} {:>6.1}%\n",
                    strip_control(&st.name),
                    strip_control(&st.kind),
                    strip_control(&st.status),
                    st.available as f64 / 1048576.0,
                    st.total as f64 / 1048576.0,
                    st.percent
                ));
            }
        }
        Read::NextVmid(start, end) => {
            let id = p.next_vmid(start, end).map_err(err)?;
            if as_json {
                return json(&serde_json::json!({ "vmid": id }), out);
            }
            out.out(&format!("{id}\n"));
        }
        Read::Snapshots(vmid) => {
            let s = p.snapshots(vmid).map_err(err)?;
            if as_json {
                return json(&s, out);
            }
            for snap in &s {
                out.out(&format!(
                    "{}{:<24} {:<19}  {}\n",
                    "  ".repeat(snap.depth),
                    strip_control(&snap.name),
                    strip_control(snap.time.as_deref().unwrap_or("")),
                    strip_control(&snap.description)
                ));
            }
        }
    }
    Ok(())
}

/// `list`: the cluster's VMs with what definitions.nix says about each.
fn list<P: Proxmox>(
    p: &P,
    fence: &Fence,
    as_json: bool,
    out: &mut impl Output,
) -> miette::Result<()> {
    let list = p.list().map_err(err)?;
    // Protection is not in the cluster list: read it for the readonly VMs only (few), so the
    // list shows which of them the web UI could still change.
    let mut protected = BTreeMap::new();
    for vm in &list {
        if fence.known(vm.vmid).is_some_and(|k| k.readonly) {
            // A read that fails (a VM `qm` cannot see from this node) leaves it unknown
            // rather than failing the whole list.
            protected.insert(vm.vmid, p.config(vm.vmid).ok().map(|c| c.protected()));
        }
    }
    let fleet = |vmid| match (fence.known(vmid), protected.get(&vmid)) {
        (Some(k), Some(Some(false))) => format!("{} (readonly, unprotected)", k.kind.as_str()),
        (Some(k), Some(None)) => format!("{} (readonly, protection unknown)", k.kind.as_str()),
        (Some(k), _) if k.readonly => format!("{} (readonly)", k.kind.as_str()),
        (Some(k), _) => k.kind.as_str().to_string(),
        (None, _) => "-".into(),
    };
    let unprotected: Vec<String> = protected
        .iter()
        .filter(|(_, on)| **on == Some(false))
        .map(|(id, _)| id.to_string())
        .collect();
    if !unprotected.is_empty() {
        out.note(&format!(
            "readonly VMs without Proxmox protection: {}; `vmctl ops protect --readonly-vms` \
             turns it on so other tools respect the fence too\n",
            unprotected.join(", ")
        ));
    }
    if as_json {
        #[derive(Serialize)]
        struct Row<'a> {
            #[serde(flatten)]
            vm: &'a VmResource,
            fleet: Option<&'static str>,
            readonly: bool,
            /// Proxmox protection, read for readonly VMs only.
            #[serde(skip_serializing_if = "Option::is_none")]
            protected: Option<bool>,
        }
        let rows: Vec<Row> = list
            .iter()
            .map(|vm| {
                let d = fence.known(vm.vmid);
                Row {
                    vm,
                    fleet: d.map(|d| d.kind.as_str()),
                    readonly: d.is_some_and(|d| d.readonly),
                    protected: protected.get(&vm.vmid).copied().flatten(),
                }
            })
            .collect();
        return json(&rows, out);
    }
    out.out(&format!(
        "{:>9}  {:<24} {:<8} {:<9} {:<10} FLEET\n",
        "VMID", "NAME", "NODE", "STATUS", "NOTE"
    ));
    for vm in &list {
        let note = match (&vm.lock, vm.template) {
            (Some(l), _) => format!("lock:{l}"),
            (None, true) => "template".into(),
            _ => String::new(),
        };
        out.out(&format!(
            "{:>9}  {:<24} {:<8} {:<9} {:<10} {}\n",
            vm.vmid,
            strip_control(vm.name.as_deref().unwrap_or("")),
            strip_control(&vm.node),
            strip_control(&vm.status),
            strip_control(&note),
            fleet(vm.vmid)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
