//! `vmctl sops`: lossless .sops.yaml edits (add or remove a host's age recipient, add a
//! per-host creation rule), each verified with a real YAML parser before it is written.

use std::path::{Path, PathBuf};

use clap::Args;
use miette::{miette, IntoDiagnostic as _};

use super::Global;
use crate::edit::sops::{self as sops_edit, SopsEdit};
use crate::exec::cannot_act::CannotAct;
use crate::keys;

#[derive(Debug, clap::Subcommand)]
pub enum SopsCommand {
    /// Add a host's age recipient to the creation rules of .sops.yaml.
    ///
    /// Rules that clearly belong to another host (their path_regex names another host of
    /// hosts.nix or another anchor of the file, like `secrets/hosts/other/`) are left alone.
    /// When exactly one rule remains (the common single `secrets/.*` rule) the host goes
    /// there. When several remain, which secrets the host may read is a choice: pass --rule
    /// (repeatable) or --all, or record it on the VM in definitions.nix as
    /// `sopsRules = [ "secrets/web/.*" ];` so provisioning never has to ask. A host already in
    /// some of them stays exactly there. The chosen rules are printed. The file's style is kept: with a
    /// `keys:` list of anchors it adds `- &NAME age1…` there and `- *NAME` to each rule;
    /// with inline recipients it adds `- &NAME age1… # NAME` to the first rule and `- *NAME`
    /// to the others. Always into the first key group (never a new Shamir group). Adding a
    /// recipient that is already there changes nothing.
    #[command(after_long_help = "Examples:
  vmctl sops add-recipient web            # recipient derived from hosts.nix
  vmctl sops add-recipient web age1…
  vmctl sops add-recipient web \"$(cat keys/ssh_host_ed25519_key.pub)\"
  vmctl sops add-recipient web age1… --rule 'secrets/[^/]+\\.yaml$' --dry-run
  vmctl sops add-recipient web --all")]
    AddRecipient(AddRecipientArgs),
    /// Remove a recipient (by anchor name, or by the `# NAME` comment of inline recipients)
    /// from every rule: only its own lines go, and its anchor when no alias remains.
    #[command(after_long_help = "Examples:
  vmctl sops remove-recipient igpu --dry-run
  vmctl sops remove-recipient igpu --recipient age1…")]
    RemoveRecipient(RemoveRecipientArgs),
    /// Add a creation rule for one host's own secrets (default `secrets/hosts/NAME/.*`)
    /// holding the admin recipients and the host, placed before any rule that would catch
    /// those files first.
    #[command(after_long_help = "Examples:
  vmctl sops add-host-rule doc1 --dry-run    # secrets/hosts/doc1/.*
  vmctl sops add-host-rule doc1 --path-regex 'secrets/doc1/[^/]+\\.yaml$'")]
    AddHostRule(AddHostRuleArgs),
}

#[derive(Debug, Args)]
pub struct FileArgs {
    /// The .sops.yaml to edit. Default: the fleet's `settings.sopsConfig` (`.sops.yaml` at
    /// the fleet root).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print the diff and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON (rules changed, rules left alone, whether the file changed).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AddRecipientArgs {
    /// The host (or person) the recipient belongs to; becomes the YAML anchor `&NAME`.
    pub name: String,
    /// The age recipient (`age1…`), or an ssh-ed25519 public key line to convert.
    /// Default: derived from NAME's publicKey in hosts.nix.
    #[arg(value_name = "AGE_RECIPIENT")]
    pub recipient: Option<String>,
    /// Add only to the rule with exactly this path_regex (repeatable). Default: the VM's
    /// `sopsRules` in definitions.nix; else the one rule that is not clearly another host's.
    /// When several could take the host, one of --rule, --all or `sopsRules` is required.
    #[arg(long = "rule", value_name = "REGEX", conflicts_with = "all")]
    pub rules: Vec<String>,
    /// Add to every rule that is not clearly another host's.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub file: FileArgs,
}

#[derive(Debug, Args)]
pub struct RemoveRecipientArgs {
    /// The anchor name (`&NAME`) or the `# NAME` comment of the recipient.
    pub name: String,
    /// The recipient to remove, when the file has neither an anchor nor a comment for NAME.
    #[arg(long, value_name = "AGE_RECIPIENT")]
    pub recipient: Option<String>,
    #[command(flatten)]
    pub file: FileArgs,
}

#[derive(Debug, Args)]
pub struct AddHostRuleArgs {
    /// The host whose secrets the rule is for.
    pub name: String,
    /// The host's age recipient (`age1…` or an ssh-ed25519 key line). Default: derived from
    /// the host's publicKey in hosts.nix.
    #[arg(long, value_name = "AGE_RECIPIENT")]
    pub recipient: Option<String>,
    /// The rule's path_regex. Default: `secrets/hosts/NAME/.*`.
    #[arg(long, value_name = "REGEX")]
    pub path_regex: Option<String>,
    /// An admin recipient to include (repeatable). Default: the recipients every existing
    /// rule holds that are not hosts.
    #[arg(long = "admin", value_name = "AGE_RECIPIENT")]
    pub admins: Vec<String>,
    #[command(flatten)]
    pub file: FileArgs,
}

/// The command that gives secrets a new data key after a recipient left.
pub const ROTATE: &str = "vmctl secrets rotate";

pub fn run(args: SopsCommand, g: &Global) -> miette::Result<u8> {
    match args {
        SopsCommand::AddRecipient(a) => {
            let ctx = Context::load(g, &a.file)?;
            let recipient = ctx.recipient(
                a.recipient.as_deref(),
                &a.name,
                "pass the age recipient (or the host's ssh-ed25519 key) after NAME",
            )?;
            let text = ctx.read()?;
            // definitions.nix records the choice per VM, so provisioning stays
            // non-interactive; --rule and --all on the command line win.
            let recorded = ctx.sops_rules(&a.name);
            let rules = if a.rules.is_empty() && !a.all && !recorded.is_empty() {
                super::ui::note(&format!(
                    "using `sopsRules` of `{}` in definitions.nix: {}",
                    a.name,
                    recorded.join(", ")
                ));
                recorded
            } else {
                a.rules.clone()
            };
            let edit = sops_edit::add_recipient(
                &text,
                &sops_edit::AddRecipient {
                    name: &a.name,
                    recipient: &recipient,
                    rules: &rules,
                    all: a.all,
                    hosts: &ctx.hosts,
                },
            )
            .map_err(|e| ctx.refused(e, &text))?;
            ctx.refuse_recipient_of_another_host(&a.name, &recipient)?;
            finish(
                &ctx,
                &text,
                &edit,
                &a.file,
                &format!("added {} ({recipient})", a.name),
            )
        }
        SopsCommand::RemoveRecipient(a) => {
            let ctx = Context::load(g, &a.file)?;
            let hint = a.recipient.as_deref().map(to_recipient).transpose()?;
            let hint = hint.or_else(|| ctx.host_recipient(&a.name));
            let text = ctx.read()?;
            let edit = sops_edit::remove_recipient(&text, &a.name, hint.as_deref())
                .map_err(|e| ctx.refused(e, &text))?;
            let code = finish(
                &ctx,
                &text,
                &edit,
                &a.file,
                &format!("removed {} ({})", a.name, edit.recipient),
            )?;
            if !edit.is_noop() && !a.file.json {
                // Taking a host out of the rules does not take the data keys it already
                // unwrapped: only a new data key does.
                super::ui::note(&format!(
                    "{} still holds the old data key of every secret it could decrypt; run `{ROTATE}` to re-key them with a new data key (it also drops {}'s entries)",
                    a.name, a.name
                ));
            }
            Ok(code)
        }
        SopsCommand::AddHostRule(a) => {
            let ctx = Context::load(g, &a.file)?;
            let recipient = ctx.recipient(
                a.recipient.as_deref(),
                &a.name,
                "pass the host's key with --recipient",
            )?;
            let admins = a
                .admins
                .iter()
                .map(|x| to_recipient(x))
                .collect::<miette::Result<Vec<_>>>()?;
            let text = ctx.read()?;
            let edit = sops_edit::add_host_rule(
                &text,
                &sops_edit::AddHostRule {
                    name: &a.name,
                    recipient: &recipient,
                    path_regex: a.path_regex.as_deref(),
                    admins: (!admins.is_empty()).then_some(admins.as_slice()),
                    hosts: &ctx.hosts,
                },
            )
            .map_err(|e| ctx.refused(e, &text))?;
            finish(
                &ctx,
                &text,
                &edit,
                &a.file,
                &format!("added a rule for {}", a.name),
            )
        }
    }
}

/// An `age1…` recipient, or the conversion of an ssh-ed25519 key line.
fn to_recipient(s: &str) -> miette::Result<String> {
    let s = s.trim();
    if s.starts_with("age1") {
        keys::validate_age_recipient(s).into_diagnostic()?;
        return Ok(s.to_string());
    }
    let key = keys::PublicKey::parse(s)
        .map_err(|e| miette!("`{s}` is neither an age recipient nor an ssh-ed25519 key: {e}"))?;
    key.age_recipient().into_diagnostic()
}

/// The file to edit and what the fleet says about hosts.
struct Context {
    path: PathBuf,
    hosts: Vec<String>,
    host_keys: Vec<(String, Option<String>)>,
    /// The fleet root, when the fleet loaded (the lint gate needs it).
    root: Option<PathBuf>,
    /// hosts.nix (path shown, text) and its hosts, to point at another host's key.
    hosts_file: Option<(String, String, Vec<crate::model::Host>)>,
    /// Held from before the file is read until it is written (not for dry runs).
    lock: Option<crate::exec::apply::FleetLock>,
    /// Each VM's `sopsRules` from definitions.nix.
    vm_rules: Vec<(String, Vec<String>)>,
}

impl Context {
    fn load(g: &Global, file: &FileArgs) -> miette::Result<Context> {
        let explicit = file.config.as_deref();
        // Errors in the fleet files do not stop an edit here: the gate in `finish` refuses
        // only errors the edit adds or writes.
        let mut ctx = match super::load_fleet(g, true) {
            Ok(fleet) => {
                let path = explicit
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| fleet.path(&fleet.definitions.settings.sops_config));
                let vm_rules = fleet
                    .definitions
                    .managed
                    .iter()
                    .chain(&fleet.definitions.imported)
                    .map(|vm| (vm.name.clone(), vm.sops_rules.clone()))
                    .collect();
                let hosts_path = fleet.path(&fleet.definitions.settings.hosts_file);
                let hosts = fleet.hosts.map(|h| h.hosts).unwrap_or_default();
                let hosts_file = std::fs::read_to_string(&hosts_path).ok().map(|t| {
                    (
                        crate::cli::hosts::shown_in(&fleet.root, &hosts_path),
                        t,
                        hosts.clone(),
                    )
                });
                Context {
                    path,
                    hosts: hosts.iter().map(|h| h.name.clone()).collect(),
                    host_keys: hosts.into_iter().map(|h| (h.name, h.public_key)).collect(),
                    vm_rules,
                    root: Some(fleet.root),
                    hosts_file,
                    lock: None,
                }
            }
            Err(e) => {
                // Without the fleet, host names are unknown: only the file's anchors decide
                // which rules belong to other hosts.
                let path = match explicit {
                    Some(p) => p.to_path_buf(),
                    None => {
                        let cwd = std::env::current_dir().into_diagnostic()?;
                        let root = g
                            .fleet
                            .clone()
                            .or_else(|| crate::exec::root::find_root(&cwd))
                            .unwrap_or(cwd);
                        root.join(".sops.yaml")
                    }
                };
                super::ui::note(&format!(
                    "the fleet could not be loaded ({}); host names of hosts.nix are unknown, so only the file's anchors decide which rules belong to other hosts",
                    first_line(&format!("{e}"))
                ));
                Context {
                    path,
                    hosts: Vec::new(),
                    host_keys: Vec::new(),
                    vm_rules: Vec::new(),
                    root: None,
                    hosts_file: None,
                    lock: None,
                }
            }
        };
        if !file.dry_run {
            let lock = match &ctx.root {
                Some(root) => crate::exec::apply::FleetLock::acquire(root, &super::ui::reporter()),
                None => crate::exec::apply::FleetLock::for_file(&ctx.path, &super::ui::reporter()),
            };
            ctx.lock = Some(lock?);
        }
        Ok(ctx)
    }

    /// Refuses to give `name` a recipient derived from another host's key in hosts.nix (the
    /// editor itself refuses one under another host's anchor or comment in .sops.yaml). Two
    /// hosts sharing a recipient means one of them got the wrong key, and secrets meant for
    /// one open on both.
    fn refuse_recipient_of_another_host(&self, name: &str, recipient: &str) -> miette::Result<()> {
        if let Some((shown, hosts_text, hosts)) = &self.hosts_file {
            for h in hosts.iter().filter(|h| h.name != name) {
                let derived = h
                    .public_key
                    .as_deref()
                    .and_then(|k| keys::PublicKey::parse(k).ok())
                    .and_then(|k| k.age_recipient().ok());
                if derived.as_deref() == Some(recipient) {
                    let range = h.public_key_range.unwrap_or(h.name_range);
                    return Err(finding(
                        shown,
                        hosts_text,
                        usize::from(range.start())..usize::from(range.end()),
                        &format!("`{}`'s host key", h.name),
                        format!(
                            "{recipient} is the recipient of host `{}` (derived from its publicKey); each host needs its own key",
                            h.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The path as the user sees it: relative to the working directory when inside it.
    /// The path as the user knows it: relative to the fleet root (as every writing command
    /// names fleet files), else to the working directory.
    /// The recipient given on the command line (an `age1…` or an ssh-ed25519 key), else the
    /// one hosts.nix's key for `name` derives; `how` says how to pass one when neither exists.
    fn recipient(&self, given: Option<&str>, name: &str, how: &str) -> miette::Result<String> {
        match given {
            Some(r) => to_recipient(r),
            None => self
                .host_recipient(name)
                .ok_or_else(|| miette!("no publicKey for `{name}` in hosts.nix; {how}")),
        }
    }

    fn shown(&self) -> String {
        let cwd = std::env::current_dir().unwrap_or_default();
        let abs = std::path::absolute(&self.path).unwrap_or_else(|_| self.path.clone());
        self.root
            .as_deref()
            .and_then(|r| abs.strip_prefix(r).ok())
            .or_else(|| self.path.strip_prefix(&cwd).ok())
            .unwrap_or(&self.path)
            .display()
            .to_string()
    }

    fn read(&self) -> miette::Result<String> {
        std::fs::read_to_string(&self.path).map_err(|e| {
            CannotAct::new(format!(
                "cannot read {}: {e}; pass the file with --config",
                self.path.display()
            ))
            .into()
        })
    }

    /// The `sopsRules` definitions.nix records for VM `name` (empty when none).
    fn sops_rules(&self, name: &str) -> Vec<String> {
        self.vm_rules
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    }

    fn host_recipient(&self, name: &str) -> Option<String> {
        let (_, key) = self.host_keys.iter().find(|(n, _)| n == name)?;
        keys::PublicKey::parse(key.as_deref()?)
            .ok()?
            .age_recipient()
            .ok()
    }

    /// A refused edit: pointing into the file when it is about a place (its help says the
    /// file was not changed), else its message after the file's name.
    fn refused(&self, e: sops_edit::SopsEditError, text: &str) -> miette::Report {
        if e.place().is_some() {
            return crate::edit::refusal::refusal(e, &self.shown(), text);
        }
        miette!("{}: {e}; the file was not changed", self.shown())
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// A refusal rendered like a lint finding: the file, the span and a label.
fn finding(
    file: &str,
    text: &str,
    span: std::ops::Range<usize>,
    label: &str,
    message: String,
) -> miette::Report {
    let diag = miette::MietteDiagnostic::new(message)
        .with_labels(vec![miette::LabeledSpan::at(span, label)])
        .with_help("nothing was written; pass the host's own key (`ssh-keyscan -t ed25519 HOST | vmctl keys to-age`)");
    miette::Report::new(diag).with_source_code(miette::NamedSource::new(file, text.to_string()))
}

fn finish(
    ctx: &Context,
    text: &str,
    edit: &SopsEdit,
    file: &FileArgs,
    what: &str,
) -> miette::Result<u8> {
    use crate::exec::apply::{apply, ChangeSet, FileChange};

    let change = FileChange::modify(&ctx.path, ctx.shown(), text, edit.new_text.as_bytes(), what);
    let diff = super::changes::diff(&change).unwrap_or_default();
    let set = ChangeSet::one(change);
    let write = !edit.is_noop() && !file.dry_run;
    if !edit.is_noop() {
        if let Some(root) = &ctx.root {
            let path = std::path::absolute(&ctx.path).unwrap_or_else(|_| ctx.path.clone());
            crate::exec::fleet::gate(
                root,
                &[(path, Some(text.to_string()), edit.new_text.clone())],
                &super::ui::reporter(),
            )?;
        }
    }
    if write {
        let lock = ctx.lock.as_ref().expect("locked unless dry run");
        apply(&set, lock)?;
    }
    if file.json {
        let mut v = super::changes::set_json(&set, file.dry_run);
        v["file"] = serde_json::json!(ctx.shown());
        v["recipient"] = serde_json::json!(edit.recipient);
        v["changed"] = serde_json::json!(!edit.is_noop());
        v["written"] = serde_json::json!(write);
        v["rules"] = serde_json::json!(edit.rules);
        v["skipped"] = serde_json::json!(edit
            .skipped
            .iter()
            .map(|(i, re, why)| serde_json::json!({
                "index": i, "path_regex": re, "reason": why,
            }))
            .collect::<Vec<_>>());
        v["diff"] = serde_json::json!(diff);
        v["rotate"] = serde_json::json!((edit.rules.iter().any(|r| r.action == "removed")
            && !edit.is_noop())
        .then_some(ROTATE));
        println!("{}", serde_json::to_string_pretty(&v).into_diagnostic()?);
        return Ok(0);
    }
    if edit.is_noop() {
        println!(
            "nothing to do: {} is already where it should be in {}",
            edit.recipient,
            ctx.shown()
        );
    } else {
        println!("{what}:");
    }
    for r in &edit.rules {
        let re = r.path_regex.as_deref().unwrap_or("(no path_regex)");
        println!("  {:<16} rule #{} {re}", r.action, r.index + 1);
    }
    for (i, re, why) in &edit.skipped {
        println!(
            "  {:<16} rule #{} {} ({why})",
            "left alone",
            i + 1,
            re.as_deref().unwrap_or("(no path_regex)")
        );
    }
    if file.dry_run && !edit.is_noop() {
        super::changes::print_human(&set, true);
    } else if write {
        super::ui::info(&format!(
            "wrote {}; re-key existing secrets with `vmctl secrets rekey`",
            ctx.shown()
        ));
    }
    Ok(0)
}
