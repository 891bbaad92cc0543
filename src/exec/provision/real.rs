//! The real implementations of the provision traits: `rm` on the Proxmox host over the run's
//! one SSH connection, nixos-anywhere, OpenSSH with a pinned known_hosts, git, and the native
//! re-keyer (sops as its fallback).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::keydir::write_known_hosts;
use super::{
    Announce, Git, GitError, HostFiles, Identity, InstallError, Installer, ProbeError, RekeyError,
    Rekeyer, SshProbe,
};
use crate::exec::apply::FleetLock;
use crate::exec::process::Process;
use crate::exec::proxmox::{ProxmoxError, QmProxmox};
use crate::exec::remote::{wait_for_ssh, Remote};
use crate::exec::sops as xsops;
use crate::proxmox::display_line;

impl<R: Remote> HostFiles for QmProxmox<R> {
    fn remove_file(&self, path: &str) -> Result<(), ProxmoxError> {
        let argv: Vec<String> = ["rm", "-f", "--", path].map(String::from).to_vec();
        crate::exec::proxmox::succeeded(&argv, self.remote().run(&argv)?)
    }
}

/// What the process runner returned, in std's shape (the helpers below read that).
fn output(f: crate::exec::process::Finished) -> std::process::Output {
    std::process::Output {
        status: f.status,
        stdout: f.stdout,
        stderr: f.stderr,
    }
}

/// The last lines of a process's stderr, joined: the part that says why it failed.
fn stderr_tail(out: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = err.lines().rev().take(3).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
}

fn failed(what: &str, out: &std::process::Output) -> String {
    format!("{what} failed ({}): {}", out.status, stderr_tail(out))
}

/// nixos-anywhere (or `VMCTL_NIXOS_ANYWHERE`), run in the fleet root with its output on
/// stderr, under the step heading, or line by line to `lines` when given.
pub struct NixosAnywhere<'a> {
    pub root: PathBuf,
    /// Hears each line of the installer's output (stdout and stderr merged) instead of the
    /// terminal: the progress view folds it under the install step.
    pub lines: Option<&'a (dyn Fn(&str) + Sync)>,
}

impl Installer for NixosAnywhere<'_> {
    fn install(&self, argv: &[String]) -> Result<(), InstallError> {
        let program = std::env::var_os("VMCTL_NIXOS_ANYWHERE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(&argv[0]));
        // Built by the one process runner; its output streams to stderr under the step heading.
        let mut cmd = Process::new("install NixOS on the new VM", &program)
            .args(&argv[1..])
            .current_dir(&self.root)
            .command();
        let status = match self.lines {
            Some(lines) => crate::exec::events::run_lines(cmd, lines),
            None => cmd
                .stdout(Stdio::from(std::io::stderr()))
                .stderr(Stdio::inherit())
                .status(),
        }
        .map_err(|source| InstallError::Spawn {
            program: program.clone(),
            source,
        })?;
        if status.success() {
            Ok(())
        } else {
            Err(InstallError::Failed {
                command: display_line(argv),
                status: status.to_string(),
            })
        }
    }
}

/// OpenSSH to the new VM as root. Host keys are always checked against the given
/// known_hosts only; waiting for the port needs no trust (it reads the banner, sends nothing).
pub struct OpenSsh {
    /// The VM's SSH port; `None`: what ssh itself would use for the address (`ssh -G`, reading
    /// `config`, else ~/.ssh/config; 22 when neither says otherwise).
    pub port: Option<u16>,
    /// The ssh_config the user named (`--ssh-config`, VMCTL_SSH_CONFIG).
    pub config: Option<PathBuf>,
    /// `-i` for the admin key cloud-init installed, when not the user's default.
    pub identity: Option<PathBuf>,
    pub timeout: Duration,
}

impl OpenSsh {
    fn port_of(&self, ip: &str) -> u16 {
        self.port
            .unwrap_or_else(|| configured_port(ip, self.config.as_deref()))
    }
}

/// The port `ssh` would connect to for `host`: `ssh -G` prints the configuration it resolved
/// (no connection is made). 22 when ssh cannot tell.
pub fn configured_port(host: &str, config: Option<&Path>) -> u16 {
    let mut cmd = Process::new("read the ssh configuration", "ssh").arg("-G");
    if let Some(c) = config {
        cmd = cmd.arg("-F").arg(c);
    }
    cmd.args(["--", host])
        .timeout(Duration::from_secs(5))
        .output()
        .ok()
        .map(output)
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("port ").and_then(|p| p.trim().parse().ok()))
        })
        .unwrap_or(22)
}

impl SshProbe for OpenSsh {
    fn port(&self, ip: &str) -> u16 {
        self.port_of(ip)
    }

    fn wait_ssh(&self, ip: &str) -> Result<(), ProbeError> {
        let port = self.port_of(ip);
        let addr: SocketAddr = format!("{ip}:{port}")
            .parse()
            .or_else(|_| format!("[{ip}]:{port}").parse())
            .map_err(|_| ProbeError::Unreachable(format!("`{ip}` is not an IP address")))?;
        wait_for_ssh(addr, self.timeout, Duration::from_millis(500))
            .map(|_| ())
            .map_err(|e| ProbeError::Unreachable(e.to_string()))
    }

    fn verify(&self, ip: &str, host_key: &str, dir: &Path) -> Result<Identity, ProbeError> {
        let port = self.port_of(ip);
        let host = if port == 22 {
            ip.to_string()
        } else {
            format!("[{ip}]:{port}")
        };
        let known_hosts = write_known_hosts(dir, &host, host_key).map_err(|e| {
            ProbeError::Unreachable(format!("cannot write the pinned known_hosts: {e}"))
        })?;
        let mut cmd = Process::new("verify the new VM with its host key pinned", "ssh")
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
            .args(["-o", "GlobalKnownHostsFile=/dev/null"])
            .args(["-o", "HostKeyAlgorithms=ssh-ed25519"])
            .args(["-o", "ConnectTimeout=10"])
            .args(["-p", &port.to_string()]);
        if let Some(i) = &self.identity {
            cmd = cmd.arg("-i").arg(i);
        }
        // One fixed remote command (no user input in it): the hostname, then `nixos-version`,
        // whose absence (the shell's 127) says the install left no NixOS behind.
        let out = output(
            cmd.args(["-l", "root", "--", ip, "hostname && nixos-version"])
                .output()
                .map_err(|e| ProbeError::Unreachable(e.to_string()))?,
        );
        if out.status.success() {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let mut lines = stdout.lines().map(str::trim);
            let hostname = lines.next().unwrap_or_default().to_string();
            let nixos_version = lines.next().unwrap_or_default().to_string();
            return Ok(Identity {
                hostname,
                nixos_version,
            });
        }
        if out.status.code() == Some(127) {
            return Err(ProbeError::NotNixos(format!(
                "the VM answered with the pinned host key but has no `nixos-version` ({}): \
                 the install did not leave NixOS behind; look at the installer's output above",
                stderr_tail(&out)
            )));
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let msg = failed(
            "ssh with the generated host key pinned (a different host key fails here)",
            &out,
        );
        // ssh's words for a key that is not the pinned one; anything else may be a reboot.
        if stderr.contains("Host key verification failed")
            || stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        {
            Err(ProbeError::HostKey(format!(
                "{msg}; the VM does not present the host key vmctl generated and installed: \
                 something else answers at that address, or the install did not take"
            )))
        } else {
            Err(ProbeError::Unreachable(msg))
        }
    }
}

/// The git binary in the fleet repository.
pub struct GitCli;

impl Git for GitCli {
    fn commit(&self, root: &Path, files: &[PathBuf], message: &str) -> Result<String, GitError> {
        let git = |args: &[&std::ffi::OsStr]| {
            Process::new("commit the run's files with git", "git")
                .arg("-C")
                .arg(root)
                .args(args)
                .output()
                .map(output)
                .map_err(GitError::Spawn)
        };
        let failed = |what: &'static str, out: &std::process::Output| GitError::Failed {
            what,
            status: out.status.to_string(),
            stderr: stderr_tail(out),
        };
        let mut add: Vec<&std::ffi::OsStr> = vec!["add".as_ref(), "--".as_ref()];
        add.extend(files.iter().map(|f| f.as_os_str()));
        let out = git(&add)?;
        if !out.status.success() {
            return Err(failed("git add", &out));
        }
        // `--only` with paths: exactly these files, whatever else the user has staged.
        let mut commit: Vec<&std::ffi::OsStr> = vec![
            "commit".as_ref(),
            "-q".as_ref(),
            "--only".as_ref(),
            "-m".as_ref(),
            message.as_ref(),
            "--".as_ref(),
        ];
        commit.extend(files.iter().map(|f| f.as_os_str()));
        let out = git(&commit)?;
        if !out.status.success() {
            return Err(failed("git commit", &out));
        }
        let out = git(&["rev-parse".as_ref(), "HEAD".as_ref()])?;
        if !out.status.success() {
            return Err(failed("git rev-parse", &out));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

/// The fleet's secrets re-keyed natively (sops as the fallback), as `vmctl secrets rekey`.
pub struct SecretsRekeyer {
    pub sops_config: PathBuf,
    pub secrets_dir: PathBuf,
    pub identities: Vec<PathBuf>,
    pub sops: Option<PathBuf>,
    /// Notes and progress of the re-keying (follows `-q` and `--color`).
    pub out: crate::exec::report::Reporter,
}

impl SecretsRekeyer {
    /// The secrets files the re-keying selects: every file below the secrets directory that a
    /// rule of `config` matches (as `vmctl secrets rekey`).
    fn select(&self, config: &xsops::LoadedConfig) -> Result<xsops::FileSet, RekeyError> {
        // The sops helpers report with miette (their CLI's type): their text is kept whole.
        xsops::select_files(config, &[], Some(&self.secrets_dir), &self.out)
            .map_err(|e| RekeyError::Select(e.to_string()))
    }

    /// For the dry run: the secrets files (relative to `root`) the run's re-keying would
    /// change once `.sops.yaml` reads `sops_text` (the ceremony's edit), found by the same
    /// selection and the same recipients check as [`Rekeyer::rekey`], without decrypting or
    /// writing anything. Sorted, as the run's commit lists them.
    pub fn would_rekey(&self, root: &Path, sops_text: &str) -> Result<Vec<String>, RekeyError> {
        let path = std::path::absolute(&self.sops_config)
            .map_err(|e| RekeyError::Config(e.to_string()))?;
        let config = xsops::LoadedConfig {
            dir: path.parent().unwrap_or(Path::new("/")).to_path_buf(),
            config: crate::secrets::config::SopsConfig::parse(sops_text)
                .map_err(|e| RekeyError::Config(format!("{}: {e}", path.display())))?,
            path,
        };
        let files = self.select(&config)?;
        let none = crate::secrets::identity::Identities::new();
        let opts = xsops::RekeyOptions {
            dry_run: true,
            identities: &none,
            sops: None,
            out: self.out,
        };
        let mut out = Vec::new();
        for (file, display) in &files.files {
            let r = xsops::rekey_file(&config, file, display.clone(), &opts);
            match r.status {
                xsops::FileStatus::UpToDate => {}
                xsops::FileStatus::WouldRekey | xsops::FileStatus::Rekeyed => {
                    let abs = std::path::absolute(file).unwrap_or_else(|_| file.clone());
                    let rel = abs.strip_prefix(root).unwrap_or(&abs);
                    out.push(rel.display().to_string());
                }
                xsops::FileStatus::Failed => {
                    return Err(RekeyError::File {
                        path: r.path,
                        reason: r.error.unwrap_or_else(|| "failed".into()),
                    })
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

impl Rekeyer for SecretsRekeyer {
    fn rekey(&self, root: &Path, lock: &FleetLock) -> Result<(), RekeyError> {
        self.rekey_announcing(root, lock, &mut |_, _| Ok(()))
    }

    fn rekey_announcing(
        &self,
        _root: &Path,
        lock: &FleetLock,
        announce: &mut Announce<'_>,
    ) -> Result<(), RekeyError> {
        let config =
            xsops::load_config(&self.sops_config).map_err(|e| RekeyError::Config(e.to_string()))?;
        let files = self.select(&config)?;
        let found =
            xsops::discover_identities(&xsops::IdentityEnv::from_process(), &self.identities)
                .map_err(|e| RekeyError::Identities(e.to_string()))?;
        let sops = xsops::find_sops(self.sops.as_deref());
        let opts = xsops::RekeyOptions {
            dry_run: false,
            identities: &found.identities,
            sops: sops.as_deref(),
            out: self.out,
        };
        for (path, display) in &files.files {
            let r = xsops::rekey_file_locked(
                &config,
                path,
                display.clone(),
                &opts,
                lock,
                Some(&mut *announce),
            );
            if r.status == xsops::FileStatus::Failed {
                return Err(RekeyError::File {
                    path: r.path,
                    reason: r.error.unwrap_or_else(|| "failed".into()),
                });
            }
        }
        Ok(())
    }
}
