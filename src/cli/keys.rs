//! `vmctl keys`: ssh-ed25519 ↔ age conversion, fingerprints and host key generation.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use clap::Args;
use miette::{miette, IntoDiagnostic as _};

use super::Global;
use crate::exec::cannot_act::CannotAct;
use crate::exec::process::Process;
use crate::keys::{self, KeyLine, PrivateKey};

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Print the age recipient (`age1…`) of ssh-ed25519 public keys, exactly as ssh-to-age does.
    ///
    /// Reads one key, or a whole authorized_keys / known_hosts / `ssh-keyscan` output, and
    /// prints one recipient per ed25519 key. Keys of other types (ssh-rsa, ecdsa) have no age
    /// form: they are skipped with a note on stderr.
    #[command(after_long_help = "Examples:
  ssh-keyscan doc1 | vmctl keys to-age
  vmctl keys to-age /etc/ssh/ssh_host_ed25519_key.pub
  vmctl keys to-age --private ~/.ssh/id_ed25519 > ~/.config/sops/age/keys.txt")]
    ToAge(ToAgeArgs),
    /// Print SHA256 fingerprints of ssh-ed25519 public keys as `ssh-keygen -lf` does.
    #[command(after_long_help = "Examples:
  vmctl keys fingerprint /etc/ssh/ssh_host_ed25519_key.pub
  ssh-keyscan doc1 | vmctl keys fingerprint --json")]
    Fingerprint(FingerprintArgs),
    /// Generate a new ed25519 SSH host key pair for a VM, before it is installed.
    ///
    /// Writes `DIR/ssh_host_ed25519_key` (mode 0600) and `DIR/ssh_host_ed25519_key.pub` in the
    /// format `ssh-keygen -t ed25519` writes, and prints only the public key, its fingerprint
    /// and its age recipient. Refuses to overwrite existing files, and refuses to put the
    /// private key inside a git work tree unless git ignores that path (so it cannot be
    /// committed by accident).
    #[command(after_long_help = "Examples:
  vmctl keys generate --out ~/.local/share/vmctl/keys/doc2/etc/ssh --comment root@doc2
  echo '/keys/' >> .gitignore && vmctl keys generate --out keys/doc2/etc/ssh")]
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct ToAgeArgs {
    /// A public key line (`ssh-ed25519 AAAA… comment`), a file holding key lines, or `-` for
    /// standard input (the default).
    #[arg(value_name = "KEY|FILE|-")]
    pub key: Option<String>,
    /// Convert this OpenSSH ed25519 private key file (unencrypted) to an `AGE-SECRET-KEY-1…`
    /// identity instead. The identity is a secret: redirect it into a file, not a terminal log.
    #[arg(long, value_name = "FILE", conflicts_with = "key")]
    pub private: Option<PathBuf>,
    /// Print JSON instead of plain lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FingerprintArgs {
    /// A public key line, a file holding key lines, or `-` for standard input (the default).
    #[arg(value_name = "KEY|FILE|-")]
    pub key: Option<String>,
    /// Print JSON instead of plain lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Directory to write `ssh_host_ed25519_key` and `ssh_host_ed25519_key.pub` into
    /// (created when missing, e.g. `~/.local/share/vmctl/keys/NAME/etc/ssh` for nixos-anywhere
    /// --extra-files). Inside a git work tree the path must be git-ignored.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Comment stored in the key (ssh-keygen's `-C`), e.g. `root@NAME`. Default: none.
    #[arg(long)]
    pub comment: Option<String>,
    /// Check that the files could be written (they do not exist; the private key would not
    /// be committed) and write nothing. No key is kept, so none is printed.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON instead of plain lines (docs/json-output.md, "File changes").
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: KeysCommand, g: &Global) -> miette::Result<u8> {
    match args {
        KeysCommand::ToAge(a) => to_age(a),
        KeysCommand::Fingerprint(a) => fingerprint(a),
        KeysCommand::Generate(a) => generate(a, g),
    }
}

/// Reads the key text: a literal key line, a file, or stdin.
fn read_input(key: Option<&str>) -> miette::Result<(String, String)> {
    match key {
        None | Some("-") => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map_err(|e| {
                CannotAct::new(format!("cannot read keys from standard input: {e}"))
            })?;
            Ok(("stdin".into(), s))
        }
        Some(k) if k.split_whitespace().count() > 1 || k.starts_with("ssh-") => {
            Ok(("argument".into(), k.to_string()))
        }
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                CannotAct::new(format!("cannot read {path}: {e}; pass a key line in quotes, a file, or `-` for standard input"))
            })?;
            Ok((path.to_string(), text))
        }
    }
}

struct Found {
    line: usize,
    hosts: Option<String>,
    key: keys::PublicKey,
}

/// Every ed25519 key of `text`; other key types are noted on stderr, broken lines are errors.
fn collect_keys(source: &str, text: &str) -> miette::Result<Vec<Found>> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        match keys::parse_key_line(line) {
            Ok(KeyLine::Empty) => {}
            Ok(KeyLine::Ed25519 { hosts, key }) => found.push(Found {
                line: n,
                hosts,
                key,
            }),
            Ok(KeyLine::Other { hosts, kind }) => {
                let who = hosts.map(|h| format!(" for {h}")).unwrap_or_default();
                super::ui::note(&format!(
                    "{source}:{n}: skipping the {kind} key{who}: only ssh-ed25519 keys have an age form"
                ));
            }
            Err(e) => return Err(miette!("{source}:{n}: {e}")),
        }
    }
    if found.is_empty() {
        return Err(miette!(
            "no ssh-ed25519 key in {source}; get a host's key with `ssh-keyscan -t ed25519 HOST`"
        ));
    }
    Ok(found)
}

fn to_age(a: ToAgeArgs) -> miette::Result<u8> {
    if let Some(path) = a.private {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| CannotAct::new(format!("cannot read {}: {e}", path.display())))?;
        let key =
            PrivateKey::parse_openssh(&text).map_err(|e| miette!("{}: {e}", path.display()))?;
        let identity = key.age_identity();
        if a.json {
            let recipient = key
                .public
                .age_recipient()
                .map_err(|e| miette!("{}: {e}", path.display()))?;
            let v = serde_json::json!({ "identity": identity, "recipient": recipient });
            println!("{v}");
        } else {
            println!("{identity}");
        }
        return Ok(0);
    }
    let (source, text) = read_input(a.key.as_deref())?;
    let found = collect_keys(&source, &text)?;
    let mut out = Vec::new();
    for f in &found {
        let recipient = f
            .key
            .age_recipient()
            .map_err(|e| miette!("{source}:{}: {e}", f.line))?;
        out.push((f, recipient));
    }
    if a.json {
        let v: Vec<_> = out
            .iter()
            .map(|(f, r)| {
                serde_json::json!({
                    "line": f.line,
                    "hosts": f.hosts,
                    "comment": f.key.comment,
                    "fingerprint": f.key.fingerprint(),
                    "recipient": r,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).into_diagnostic()?);
    } else {
        for (_, r) in &out {
            println!("{r}");
        }
    }
    Ok(0)
}

fn fingerprint(a: FingerprintArgs) -> miette::Result<u8> {
    let (source, text) = read_input(a.key.as_deref())?;
    let found = collect_keys(&source, &text)?;
    if a.json {
        let v: Vec<_> = found
            .iter()
            .map(|f| {
                serde_json::json!({
                    "line": f.line,
                    "hosts": f.hosts,
                    "comment": f.key.comment,
                    "fingerprint": f.key.fingerprint(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).into_diagnostic()?);
    } else {
        for f in &found {
            println!("{}", f.key.fingerprint_line());
        }
    }
    Ok(0)
}

pub const HOST_KEY_FILE: &str = "ssh_host_ed25519_key";

fn generate(a: GenerateArgs, g: &Global) -> miette::Result<u8> {
    let private_path = a.out.join(HOST_KEY_FILE);
    let public_path = a.out.join(format!("{HOST_KEY_FILE}.pub"));
    for p in [&private_path, &public_path] {
        if p.exists() {
            return Err(miette!(
                "{} already exists; vmctl never overwrites a host key: move it away or choose another --out",
                p.display()
            ));
        }
    }
    refuse_unignored(&private_path)?;
    // Paths are shown relative to the fleet root when the key goes inside the fleet (JSON
    // paths never name the machine's layout), else as given.
    let root = match &g.fleet {
        Some(f) => Some(std::path::absolute(f).unwrap_or_else(|_| f.clone())),
        None => std::env::current_dir()
            .ok()
            .and_then(|d| crate::exec::root::find_root(&d)),
    };
    let shown = |p: &Path| match (&root, std::path::absolute(p)) {
        (Some(r), Ok(abs)) if abs.starts_with(r) => super::hosts::shown_in(r, &abs),
        _ => p.display().to_string(),
    };
    if !a.dry_run {
        std::fs::create_dir_all(&a.out)
            .map_err(|e| CannotAct::new(format!("cannot create {}: {e}", a.out.display())))?;
    }
    let pair = keys::generate_host_key(&mut rand_core::OsRng, a.comment);
    let set = key_pair_changes(
        (&private_path, shown(&private_path)),
        pair.private_openssh.as_bytes(),
        (&public_path, shown(&public_path)),
        pair.public_openssh.as_bytes(),
    );
    if !a.dry_run {
        use crate::exec::apply::{apply, FleetLock};
        let lock = FleetLock::for_file(&private_path, &super::ui::reporter())?;
        apply(&set, &lock)?;
    }
    // A dry run's key is thrown away: printing it would invite using a key that never exists.
    let kept = |v: serde_json::Value| {
        if a.dry_run {
            serde_json::Value::Null
        } else {
            v
        }
    };
    if a.json {
        let mut v = super::changes::set_json(&set, a.dry_run);
        v["private_key_file"] = serde_json::json!(shown(&private_path));
        v["public_key_file"] = serde_json::json!(shown(&public_path));
        v["public_key"] = kept(serde_json::json!(pair.public.to_openssh()));
        v["fingerprint"] = kept(serde_json::json!(pair.fingerprint));
        v["recipient"] = kept(serde_json::json!(pair.age_recipient));
        println!("{}", serde_json::to_string_pretty(&v).into_diagnostic()?);
    } else if a.dry_run {
        super::changes::print_human(&set, true);
    } else {
        println!("{}", pair.public.to_openssh());
        println!("{}", pair.public.fingerprint_line());
        println!("{}", pair.age_recipient);
    }
    if !a.dry_run {
        super::ui::info(&format!(
            "wrote {} (0600) and {}",
            private_path.display(),
            public_path.display()
        ));
    }
    Ok(0)
}

/// A new key pair as one change set, both files or neither: the applier creates each temp
/// file exclusively with its final mode (0600 for the private key) before its first byte, so
/// the private key is never readable by others, not even for a moment, and an existing file
/// is never replaced.
fn key_pair_changes(
    (private_path, private_shown): (&Path, String),
    private: &[u8],
    (public_path, public_shown): (&Path, String),
    public: &[u8],
) -> crate::exec::apply::ChangeSet {
    use crate::exec::apply::{ChangeSet, FileChange, PRIVATE_MODE};

    let mut set = ChangeSet::one(
        FileChange::create(
            private_path,
            private_shown,
            private,
            "created the private host key",
        )
        .mode(PRIVATE_MODE)
        .secret(),
    );
    set.push(
        FileChange::create(
            public_path,
            public_shown,
            public,
            "created the public host key",
        )
        .mode(0o644),
    );
    set
}

/// Refuses a private key path inside a git work tree that git does not ignore: one `git add .`
/// would commit the host's secret key. Real git decides (`git check-ignore`), so every
/// `.gitignore`, `.git/info/exclude` and `core.excludesFile` counts, and a tracked path is
/// never "ignored". When git cannot answer for a path that has a `.git` above it, vmctl
/// refuses rather than guess.
fn refuse_unignored(private_path: &Path) -> miette::Result<()> {
    let abs = std::path::absolute(private_path)
        .map_err(|e| miette!("cannot resolve {}: {e}", private_path.display()))?;
    // git needs an existing directory to start from: the nearest existing ancestor, with
    // symlinks resolved so the path compares with git's (resolved) top level.
    let mut existing = abs.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut rest = Vec::new();
    while !existing.is_dir() {
        let Some(name) = existing.file_name() else {
            break;
        };
        rest.push(name.to_os_string());
        existing = existing.parent().unwrap_or(Path::new("/")).to_path_buf();
    }
    let mut target = std::fs::canonicalize(&existing).unwrap_or(existing.clone());
    for part in rest.iter().rev() {
        target.push(part);
    }
    target.push(abs.file_name().unwrap_or_default());
    let in_repo_by_layout = existing.ancestors().any(|d| d.join(".git").exists());
    let top = match Process::new("find the git work tree of the key's directory", "git")
        .arg("-C")
        .arg(&existing)
        .args(["rev-parse", "--show-toplevel"])
        .output()
    {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        // Not in a work tree (or inside `.git` itself): nothing can commit the key.
        Ok(_) if !in_repo_by_layout => return Ok(()),
        Ok(_) | Err(_) if in_repo_by_layout => {
            return Err(miette!(
                "{} is below a `.git` directory but git cannot tell whether the path is ignored; install git or write the key outside the repository",
                private_path.display()
            ))
        }
        _ => return Ok(()),
    };
    let status = Process::new("ask git whether the key's path is ignored", "git")
        .arg("-C")
        .arg(&top)
        .args(["check-ignore", "-q", "--"])
        .arg(&target)
        .output()
        .map_err(|e| miette!("{e}; write the key outside the repository"))?
        .status;
    match status.code() {
        Some(0) => Ok(()),
        Some(1) => {
            let rel = target.strip_prefix(&top).unwrap_or(&target);
            // Ignore the key's directory (its public half may stay visible to git only if
            // the user wants: they can narrow the pattern).
            let pattern = match rel.parent().filter(|d| !d.as_os_str().is_empty()) {
                Some(dir) => format!("/{}/", dir.display()),
                None => format!("/{}", rel.display()),
            };
            Err(miette!(
                "refusing to write the private key {}: it is inside the git work tree {} and not git-ignored, so it could be committed; write it outside the repository (e.g. `--out ~/.local/share/vmctl/keys/NAME/etc/ssh`) or ignore the directory first: `echo {} >> {}`",
                private_path.display(),
                top.display(),
                crate::proxmox::quote(&pattern),
                crate::proxmox::quote(&top.join(".gitignore").display().to_string()),
            ))
        }
        _ => Err(miette!(
            "git check-ignore failed for {} ({status}); write the key outside the repository",
            private_path.display()
        )),
    }
}
