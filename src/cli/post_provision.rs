//! `vmctl post-provision NAME IP VMID`: adopt a managed VM installed some other way. The
//! cluster must show VMID under NAME; the VM's host key is fetched and its fingerprint shown,
//! and only a key accepted by `--accept-fingerprint` (or a "yes" at a terminal) is integrated
//! as provision integrates a new host: hosts.nix, .sops.yaml, re-keyed secrets, scaffold,
//! docs, one commit.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use miette::miette;

use super::ops::{connect, Conn};
use super::Global;
use crate::exec::apply::{ChangeSet, FileChange, FleetLock};
use crate::exec::cannot_act::CannotAct;
use crate::exec::fleet;
use crate::exec::post_provision::{self as run, FetchError, Integrated, Integration};
use crate::exec::provision::{journal, real};
use crate::exec::proxmox::Proxmox as _;
use crate::keys::PublicKey;
use crate::plan::post_provision::{self as plan, Acceptance, Consent, PostProvisionError};
use crate::plan::provision::ceremony::PlannedFile;
use crate::proxmox::validate as valid;
use crate::proxmox::VmId;

#[derive(Debug, Args)]
pub struct PostProvisionArgs {
    /// The managed VM to integrate: its name under `managed` in vms/definitions.nix.
    #[arg(value_name = "NAME", value_parser = valid::vm_name)]
    pub name: String,
    /// The VM's address: an IPv4 address (`192.168.1.50`) or an IPv6 one; no host name, so
    /// the key fetched is this address's.
    #[arg(value_name = "IP", value_parser = plan::ip)]
    pub ip: String,
    /// The VM's VMID: its definition and the cluster must both give it to NAME.
    #[arg(value_name = "VMID", value_parser = valid::vmid)]
    pub vmid: VmId,
    /// Integrate only when the VM's ed25519 host key has exactly this fingerprint
    /// (`SHA256:…`, as `ssh-keygen -lf` prints it). Compare it with the VM's console first;
    /// another key is refused and nothing changes.
    #[arg(long, value_name = "SHA256:…", value_parser = plan::fingerprint)]
    pub accept_fingerprint: Option<String>,
    /// The port the VM's sshd listens on.
    #[arg(long, value_name = "N", default_value_t = 22, value_parser = valid::port)]
    pub port: u16,
    /// Fetch the key and show its fingerprint, every file diff, the secrets that would be
    /// re-keyed and the commit message; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object on stdout (docs/post-provision.md): the file changes, the key's
    /// fingerprint and age recipient, the secrets re-keyed and the commit.
    #[arg(long)]
    pub json: bool,
    /// Leave the changed files uncommitted (the default commits exactly this run's files).
    #[arg(long)]
    pub no_commit: bool,
    /// An age identity (or OpenSSH ed25519 key) that can decrypt the secrets, for re-keying
    /// them for the host, besides the ones sops would find. Repeatable.
    #[arg(long = "age-identity", value_name = "FILE")]
    pub age_identities: Vec<PathBuf>,
    /// How long to wait for the VM's SSH to answer, in seconds (1 to 300).
    #[arg(long, value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub timeout: u64,
    #[command(flatten)]
    pub conn: Conn,
}

/// Examples for `--help`.
pub const EXAMPLES: &str = "Examples:
  vmctl post-provision web 192.168.1.50 120 --dry-run      # fetch the key, show what changes
  vmctl post-provision web 192.168.1.50 120                # at a terminal: asks before trusting
  vmctl post-provision web 192.168.1.50 120 \\
      --accept-fingerprint SHA256:AbC…                     # in a script: the checked key only";

/// A typed error as a report, its type kept for the exit code (docs/cli.md).
fn err<E: std::error::Error + Send + Sync + 'static>(e: E) -> miette::Report {
    crate::cli::exit::report(e)
}

pub fn run(a: PostProvisionArgs, g: &Global) -> miette::Result<u8> {
    let loaded = fleet::load(g.fleet.as_deref(), &crate::cli::ui::reporter())?;
    let root = loaded.root.clone();
    let defs = &loaded.definitions;
    // NAME and VMID against the definitions before any connection.
    let vm = plan::definition(defs, &a.name, a.vmid).map_err(err)?;
    // Only the dry run goes without the lock: it writes nothing.
    let lock = if a.dry_run {
        None
    } else {
        Some(FleetLock::acquire(&root, &crate::cli::ui::reporter()).map_err(err)?)
    };
    if !a.dry_run && journal::load(&root, &a.name).map_err(err)?.is_some() {
        return Err(miette!(
            help = format!(
                "undo it with `vmctl provision {0} --rollback` (or finish it with `vmctl \
                 provision {0} --resume`), then run post-provision again",
                a.name
            ),
            "an earlier run for `{}` did not finish (its journal is `{}`)",
            a.name,
            journal::path(&root, &a.name).display()
        ));
    }
    // The cluster, over the one connection: VMID must be NAME there.
    let p = connect(defs, &a.conn, crate::plan::ops::fence(defs, false), false)?;
    let cluster = p.list().map_err(err)?;
    let target = plan::target(vm, a.vmid, &cluster).map_err(err)?;
    let from = plan::addr(&a.ip, a.port);
    let key =
        run::fetch_host_key(&a.ip, a.port, Duration::from_secs(a.timeout)).map_err(
            |e| match e {
                FetchError::Process(e) => err(e),
                FetchError::Scan(e) => err(e),
            },
        )?;
    let fingerprint = key.fingerprint();
    crate::cli::ui::info(&format!(
        "the VM at {from} presents the ed25519 host key {fingerprint}"
    ));
    // The edits, tried with the fetched key: a refusal comes before any question.
    let planned = run::planned(&root, defs, vm, &key).map_err(err)?;
    let rekeyer = real::SecretsRekeyer {
        sops_config: root.join(&defs.settings.sops_config),
        secrets_dir: root.join(&defs.settings.secrets_dir),
        identities: a.age_identities.clone(),
        sops: None,
        out: crate::cli::ui::reporter(),
    };
    let shown = Shown {
        a: &a,
        root: &root,
        key: &key,
        from: &from,
    };
    // hosts.nix already pins this very key: nothing to trust, nothing to change.
    let nothing = planned.is_empty().then(|| {
        format!(
            "`{}` is already integrated with this host key (hosts.nix, .sops.yaml and the docs \
             have it): nothing to do",
            a.name
        )
    });
    if let Some(msg) = &nothing {
        shown.print(&[], &[], None, Some(msg), a.dry_run);
        return Ok(0);
    }
    if a.dry_run {
        let sops_path = defs.settings.sops_config.as_path();
        let secrets = match planned.iter().find(|f| f.path == sops_path) {
            Some(f) => rekeyer
                .would_rekey(&root, &String::from_utf8_lossy(&f.new))
                .map_err(err)?,
            None => Vec::new(),
        };
        let mut files: Vec<String> = planned
            .iter()
            .map(|f| f.path.display().to_string())
            .collect();
        files.extend(secrets.iter().cloned());
        // How the real run would accept the key: the flag when given, else the question.
        let how = match a.accept_fingerprint {
            Some(_) => Acceptance::Flag,
            None => Acceptance::Terminal,
        };
        let message = plan::commit_message(&a.name, a.vmid, target.node, &key, &from, how, &files);
        shown.print(&planned, &secrets, Some(&message), None, true);
        return Ok(0);
    }
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let accepted = match plan::consent(a.accept_fingerprint.as_deref(), &fingerprint, interactive) {
        Consent::Accepted => Acceptance::Flag,
        Consent::Mismatch { given } => {
            return Err(err(PostProvisionError::FingerprintMismatch {
                addr: from,
                given,
                actual: fingerprint,
            }))
        }
        Consent::Ask => {
            if !ask(&a.name, &from, &key) {
                return Err(err(PostProvisionError::NotAccepted {
                    addr: from,
                    actual: fingerprint,
                }));
            }
            Acceptance::Terminal
        }
        Consent::NeedFlag => {
            // Reported as itself (not through `err`), so its help is shown; exit 2.
            return Err(miette::Report::new(
                CannotAct::new(format!(
                    "the VM at {from} presents the ed25519 host key {fingerprint}; vmctl never \
                 trusts a host key on first use and there is no terminal to ask: nothing was \
                 changed"
                ))
                .help(format!(
                    "compare it with the VM's console (`ssh-keygen -lf \
                 /etc/ssh/ssh_host_ed25519_key.pub` there), then run again with \
                 `--accept-fingerprint {fingerprint}`"
                )),
            ));
        }
    };
    let report = |l: &str| crate::cli::ui::info(l);
    let it = Integration {
        root: &root,
        defs,
        vm,
        vmid: a.vmid,
        node: target.node,
        key: &key,
        from: &from,
        accepted,
        commit: !a.no_commit,
    };
    let lock = lock.expect("not a dry run");
    match run::integrate(&p, &rekeyer, &real::GitCli, &lock, &it, &report).map_err(err)? {
        Integrated::NothingToDo(msg) => shown.print(&[], &[], None, Some(&msg), false),
        Integrated::Done {
            files,
            secrets,
            commit,
        } => {
            shown.print(&files, &secrets, None, None, false);
            let said = format!(
                "integrated `{}` (VM {}, host key {fingerprint}){}",
                a.name,
                a.vmid,
                commit
                    .as_ref()
                    .map(|c| format!(", commit {c}"))
                    .unwrap_or_else(|| ", files left uncommitted (--no-commit)".into())
            );
            if a.json {
                shown.json(&files, &secrets, None, None, commit.as_deref(), false);
            } else {
                println!("{said}");
            }
        }
    }
    Ok(0)
}

/// Asks at the terminal (stderr, stdin) whether to trust `key`; only `yes` is a yes.
fn ask(name: &str, from: &str, key: &PublicKey) -> bool {
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "The VM at {from} presents this ed25519 host key:\n  {}\n  {}\n\
         vmctl will pin it in hosts.nix as `{name}` and re-key the secrets for it.\n\
         Compare it with the VM's console (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`).\n\
         Type `yes` to integrate it: ",
        key.fingerprint(),
        key.to_openssh()
    );
    let _ = err.flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).is_ok() && line.trim() == "yes"
}

/// What the command prints, for a dry run and for a run.
struct Shown<'a> {
    a: &'a PostProvisionArgs,
    root: &'a std::path::Path,
    key: &'a PublicKey,
    from: &'a str,
}

impl Shown<'_> {
    fn change_set(&self, files: &[PlannedFile]) -> ChangeSet {
        let mut set = ChangeSet::new();
        for f in files {
            let abs = self.root.join(&f.path);
            let shown = f.path.display().to_string();
            set.push(match &f.old {
                Some(old) => FileChange::modify(abs, shown, old.clone(), f.new.clone(), &f.summary),
                None => FileChange::create(abs, shown, f.new.clone(), &f.summary),
            });
        }
        set
    }

    /// Human text on stdout (JSON with `--json`): the file changes, the secrets, and in a dry
    /// run the commit message.
    fn print(
        &self,
        files: &[PlannedFile],
        secrets: &[String],
        message: Option<&str>,
        nothing: Option<&str>,
        dry_run: bool,
    ) {
        if self.a.json {
            // A run prints its JSON once it knows the commit (in `run`).
            if dry_run || nothing.is_some() {
                self.json(files, secrets, message, nothing, None, dry_run);
            }
            return;
        }
        if let Some(msg) = nothing {
            println!("{msg}");
            return;
        }
        crate::cli::changes::print_human(&self.change_set(files), dry_run);
        for s in secrets {
            if dry_run {
                println!(
                    "dry run: {s} not re-keyed; would be re-keyed for `{}`",
                    self.a.name
                );
            } else {
                println!("{s}: re-keyed for `{}`", self.a.name);
            }
        }
        if let Some(m) = message {
            println!("dry run: no commit made; would commit:\n");
            for l in m.lines() {
                println!("    {l}");
            }
        }
    }

    fn json(
        &self,
        files: &[PlannedFile],
        secrets: &[String],
        message: Option<&str>,
        nothing: Option<&str>,
        commit: Option<&str>,
        dry_run: bool,
    ) {
        let mut v = crate::cli::changes::set_json(&self.change_set(files), dry_run);
        v["name"] = self.a.name.clone().into();
        v["vmid"] = self.a.vmid.into();
        v["address"] = self.from.into();
        v["host_key"] = self.key.to_openssh().into();
        v["fingerprint"] = self.key.fingerprint().into();
        v["age_recipient"] = self.key.age_recipient().unwrap_or_default().into();
        v["secrets"] = secrets.into();
        v["commit"] = commit.into();
        v["commit_message"] = message.into();
        v["nothing_to_do"] = nothing.into();
        println!("{v}");
    }
}
