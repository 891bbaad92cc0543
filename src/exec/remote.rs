//! Running commands on the Proxmox host over one multiplexed SSH connection.
//!
//! `SshRemote` opens one OpenSSH master connection (the `openssh` crate, native mux) and runs
//! every command of a vmctl run through it. Host keys are always verified: `BatchMode=yes`,
//! `StrictHostKeyChecking=yes`, and either the user's known_hosts or the key pinned in
//! definitions.nix. `Recording` is the fake for tests of the layers above.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::AsyncWriteExt;

use crate::exec::process::Process;
use crate::proxmox::quote::command_line;
use crate::proxmox::redact::display_line;
use crate::proxmox::ssh::{self, SshTarget};
use crate::proxmox::strip_control;

/// What a remote command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteOutput {
    /// Exit code; `None` when the remote process was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl RemoteOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    pub fn ok(stdout: impl Into<String>) -> Self {
        RemoteOutput {
            code: Some(0),
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    pub fn failed(code: i32, stderr: impl Into<String>) -> Self {
        RemoteOutput {
            code: Some(code),
            stdout: String::new(),
            stderr: stderr.into(),
        }
    }
}

/// The connection, not the command, failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(
        "the SSH host key of {target} does not match {expected}; no command was run. If the \
         host was reinstalled, check its key on the Proxmox console \
         (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), then pin it: \
         `proxmox.hostKey = \"ssh-ed25519 AAAA…\"` in vms/definitions.nix (the line \
         `ssh-keyscan{port} {host}` prints), or add it to ~/.ssh/known_hosts. ssh said: {detail}"
    )]
    HostKey {
        target: String,
        host: String,
        port: String,
        expected: &'static str,
        detail: String,
    },
    #[error(
        "cannot open an SSH connection to {target}: {detail}; check that the host is up, \
         that `ssh {target}` works non-interactively (BatchMode, keys in ssh-agent or \
         ~/.ssh/config), or point vmctl at another ssh config with --ssh-config"
    )]
    Connect { target: String, detail: String },
    #[error("the SSH connection to {target} failed while running `{command}`: {detail}")]
    Session {
        target: String,
        command: String,
        detail: String,
    },
    // The message quotes the I/O error, so it is not also the source (a report would print
    // it twice).
    #[error("cannot prepare the SSH configuration in {dir}: {error}")]
    Setup { dir: PathBuf, error: std::io::Error },
}

/// Something that runs argv on the Proxmox host.
pub trait Remote {
    /// Runs `argv` remotely (quoted by `quote::command_line`) and returns its output.
    fn run(&self, argv: &[String]) -> Result<RemoteOutput, RemoteError> {
        self.run_with_input(argv, None)
    }

    /// Like `run`, with `input` on the command's stdin (file uploads).
    fn run_with_input(
        &self,
        argv: &[String],
        input: Option<&[u8]>,
    ) -> Result<RemoteOutput, RemoteError>;

    /// `user@host[:port]`, for messages.
    fn target(&self) -> String;
}

/// A borrowed remote is a remote: a test keeps its `Recording` to read the log after the code
/// under test consumed the `QmProxmox` built on it.
impl<R: Remote + ?Sized> Remote for &R {
    fn run_with_input(
        &self,
        argv: &[String],
        input: Option<&[u8]>,
    ) -> Result<RemoteOutput, RemoteError> {
        (**self).run_with_input(argv, input)
    }

    fn target(&self) -> String {
        (**self).target()
    }
}

/// One SSH master connection to the Proxmox host, shared by every command of a run.
pub struct SshRemote {
    rt: tokio::runtime::Runtime,
    session: Option<Session>,
    target: SshTarget,
    /// ssh_config handed to ssh with `-F` (the pinned-key config or `--ssh-config`).
    config_used: Option<PathBuf>,
    /// Holds the pinned-key files for as long as the connection lives.
    _pin_dir: Option<tempfile::TempDir>,
    /// This master's entry in the signal cleanup list.
    cleanup_id: u64,
}

/// How long an orphaned master (its vmctl killed with SIGKILL) lingers before exiting.
const MASTER_IDLE: std::num::NonZeroUsize = match std::num::NonZeroUsize::new(300) {
    Some(n) => n,
    None => unreachable!(),
};

impl SshRemote {
    /// Opens the master connection. Fails before any command runs when the host key is not
    /// the expected one.
    pub fn connect(target: &SshTarget) -> Result<SshRemote, RemoteError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| RemoteError::Setup {
                dir: PathBuf::from("."),
                error,
            })?;
        let (config_used, pin_dir) = match &target.pinned_key {
            Some(key) => {
                let (dir, config) =
                    write_pinned_config(&target.host, key, target.config_file.as_deref())?;
                (Some(config), Some(dir))
            }
            None => (target.config_file.clone(), None),
        };
        // Ctrl-C and SIGTERM end the master too (see `cleanup`), before it is started.
        cleanup::install();
        let mut b = SessionBuilder::default();
        b.known_hosts_check(KnownHosts::Strict)
            .user(target.user.clone())
            .connect_timeout(Duration::from_secs(15))
            .server_alive_interval(Duration::from_secs(30))
            // A master whose vmctl died without closing it (kill -9) exits on its own once
            // idle this long; the longest lock-retry wait (10 x 10 s) stays below it.
            .control_persist(ControlPersist::IdleFor(MASTER_IDLE))
            // The socket path must stay under the 108-byte limit of unix sockets.
            .control_directory(std::env::temp_dir());
        if let Some(port) = target.port {
            b.port(port);
        }
        if let Some(cfg) = &config_used {
            b.config_file(cfg);
        }
        let session = rt
            .block_on(b.connect_mux(&target.host))
            .map_err(|e| connect_error(target, &e))?;
        let socket = session.control_socket().to_path_buf();
        let mut dirs: Vec<PathBuf> = socket.parent().map(Path::to_path_buf).into_iter().collect();
        dirs.extend(pin_dir.as_ref().map(|d| d.path().to_path_buf()));
        let cleanup_id = cleanup::register(socket, dirs);
        Ok(SshRemote {
            rt,
            session: Some(session),
            target: target.clone(),
            config_used,
            _pin_dir: pin_dir,
            cleanup_id,
        })
    }

    /// The master's control socket, for running an interactive `ssh -t` through it.
    pub fn control_socket(&self) -> Option<&Path> {
        self.session.as_ref().map(|s| s.control_socket())
    }

    /// The `ssh -tt` run of `argv` with a terminal (the serial console) through the existing
    /// master connection; the caller runs it with [`Process::interactive`].
    pub fn interactive_command(&self, argv: &[String]) -> Process {
        let mut cmd = Process::new(
            format!("open `{}` on {}", display_line(argv), self.target.display()),
            "ssh",
        );
        if let Some(sock) = self.control_socket() {
            cmd = cmd.arg("-S").arg(sock);
        }
        if let Some(cfg) = &self.config_used {
            cmd = cmd.arg("-F").arg(cfg);
        }
        if let Some(port) = self.target.port {
            cmd = cmd.arg("-p").arg(port.to_string());
        }
        cmd.args([
            "-tt",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
        ])
        .arg("-l")
        .arg(&self.target.user)
        .arg(&self.target.host)
        .arg("--")
        .arg(command_line(argv))
    }
}

impl Remote for SshRemote {
    fn run_with_input(
        &self,
        argv: &[String],
        input: Option<&[u8]>,
    ) -> Result<RemoteOutput, RemoteError> {
        let line = command_line(argv);
        let session = self.session.as_ref().expect("session is open until drop");
        let fail = |detail: String| RemoteError::Session {
            target: self.target.display(),
            command: display_line(argv),
            detail,
        };
        let out = self.rt.block_on(async {
            let mut cmd = session.raw_command(&line);
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            match input {
                None => {
                    cmd.stdin(Stdio::null());
                    cmd.output().await
                }
                Some(bytes) => {
                    cmd.stdin(Stdio::piped());
                    let mut child = cmd.spawn().await?;
                    if let Some(mut stdin) = child.stdin().take() {
                        stdin
                            .write_all(bytes)
                            .await
                            .map_err(openssh::Error::ChildIo)?;
                        stdin.shutdown().await.map_err(openssh::Error::ChildIo)?;
                    }
                    child.wait_with_output().await
                }
            }
        });
        let out = out.map_err(|e| fail(strip_control(&error_chain(&e))))?;
        Ok(RemoteOutput {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    fn target(&self) -> String {
        self.target.display()
    }
}

impl Drop for SshRemote {
    fn drop(&mut self) {
        // After a signal the signal thread owns the teardown and ends the process with the
        // signal's exit code; a command it cut short must not race it to an exit of its own.
        cleanup::wait_if_terminating();
        // Closing asks the master to exit; dropping alone would leave it to notice later.
        if let Some(s) = self.session.take() {
            let _ = self.rt.block_on(s.close());
        }
        cleanup::unregister(self.cleanup_id);
    }
}

fn write_pinned_config(
    host: &str,
    key: &str,
    include: Option<&Path>,
) -> Result<(tempfile::TempDir, PathBuf), RemoteError> {
    let setup = |dir: &Path| {
        let d = dir.to_path_buf();
        move |error| RemoteError::Setup { dir: d, error }
    };
    let dir = tempfile::Builder::new()
        .prefix("vmctl-ssh-")
        .tempdir()
        .map_err(setup(&std::env::temp_dir()))?;
    let known = dir.path().join("known_hosts");
    crate::exec::apply::write_atomic(&known, ssh::pinned_known_hosts(key).as_bytes())
        .map_err(setup(dir.path()))?;
    // Without --ssh-config, keep the user's own settings (identity, proxy) by including them.
    let user_cfg = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".ssh/config"))
        .filter(|p| p.is_file());
    let include = include.map(Path::to_path_buf).or(user_cfg);
    let config = dir.path().join("config");
    crate::exec::apply::write_atomic(
        &config,
        ssh::pinned_config(host, &known, include.as_deref()).as_bytes(),
    )
    .map_err(setup(dir.path()))?;
    Ok((dir, config))
}

/// An openssh error and its causes on one line (ssh's own message is the innermost).
fn error_chain(e: &openssh::Error) -> String {
    crate::exec::process::causes(e).trim().to_string()
}

fn connect_error(target: &SshTarget, e: &openssh::Error) -> RemoteError {
    // ssh's log can carry what the server sent (a banner): no terminal sequences from it.
    let detail = strip_control(&error_chain(e));
    if ssh::is_host_key_failure(&detail) {
        RemoteError::HostKey {
            target: target.display(),
            host: target.host.clone(),
            port: target.port.map(|p| format!(" -p {p}")).unwrap_or_default(),
            expected: if target.pinned_key.is_some() {
                "the key pinned in definitions.nix (`proxmox.hostKey`)"
            } else {
                "a key in your known_hosts"
            },
            detail,
        }
    } else {
        RemoteError::Connect {
            target: target.display(),
            detail,
        }
    }
}

/// Ends every SSH master of this process when it is interrupted (SIGINT, SIGTERM, SIGHUP):
/// the masters run detached (`ssh -f`), so without this a Ctrl-C during a lock-retry wait
/// would leave an ssh process and its control socket behind.
mod cleanup {
    use crate::exec::process::Process;
    use std::path::PathBuf;
    use std::sync::{Mutex, Once};
    use std::time::Duration;

    /// Blocks the calling thread for good once a signal is being handled: the signal thread
    /// closes the masters and exits the process.
    pub fn wait_if_terminating() {
        crate::exec::signals::wait_if_terminating();
    }

    struct Live {
        id: u64,
        socket: PathBuf,
        dirs: Vec<PathBuf>,
    }

    static LIVE: Mutex<Vec<Live>> = Mutex::new(Vec::new());
    static NEXT: Mutex<u64> = Mutex::new(0);

    /// Installs the process-wide signal handler once, with closing the masters as a cleanup.
    pub fn install() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            crate::exec::signals::on_terminate(close_all);
            crate::exec::signals::install();
        });
    }

    pub fn register(socket: PathBuf, dirs: Vec<PathBuf>) -> u64 {
        let mut next = NEXT.lock().unwrap_or_else(|e| e.into_inner());
        *next += 1;
        let id = *next;
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Live { id, socket, dirs });
        id
    }

    pub fn unregister(id: u64) {
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|l| l.id != id);
    }

    /// Asks each master to exit (`ssh -O exit` on its socket, bounded to a few seconds) and
    /// removes its control and pinned-key directories.
    fn close_all() {
        let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
        for l in live {
            // Best effort while vmctl exits: a master that does not answer is left to its
            // ControlPersist timeout.
            let _ = Process::new("close the SSH master connection", "ssh")
                .arg("-S")
                .arg(&l.socket)
                .args(["-O", "exit", "vmctl-master"])
                .timeout(Duration::from_secs(3))
                .output();
            for d in &l.dirs {
                let _ = std::fs::remove_dir_all(d);
            }
        }
    }
}

/// A `Remote` that runs nothing: it records every argv and answers from a script.
#[derive(Default)]
pub struct Recording {
    pub log: Mutex<Vec<Vec<String>>>,
    /// `(argv prefix, answer)`: the first entry whose prefix matches answers; the default is
    /// success with empty output.
    pub answers: Mutex<Vec<(Vec<String>, RemoteOutput)>>,
}

impl Recording {
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers commands starting with `prefix` (space-separated words) with `out`.
    pub fn answer(self, prefix: &str, out: RemoteOutput) -> Self {
        self.answers
            .lock()
            .unwrap()
            .push((prefix.split_whitespace().map(str::to_string).collect(), out));
        self
    }

    /// Every command run so far, each as its quoted command line as vmctl prints it (secrets
    /// as `<redacted>`; `log` keeps the real argv).
    pub fn lines(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|a| display_line(a))
            .collect()
    }
}

impl Remote for Recording {
    fn run_with_input(
        &self,
        argv: &[String],
        _input: Option<&[u8]>,
    ) -> Result<RemoteOutput, RemoteError> {
        self.log.lock().unwrap().push(argv.to_vec());
        let answers = self.answers.lock().unwrap();
        Ok(answers
            .iter()
            .find(|(prefix, _)| argv.starts_with(prefix))
            .map(|(_, out)| out.clone())
            .unwrap_or_else(|| RemoteOutput::ok("")))
    }

    fn target(&self) -> String {
        "recording".into()
    }
}

/// Why `wait_for_ssh` gave up.
#[derive(Debug, thiserror::Error)]
#[error(
    "no SSH server answered on {addr} within {}s (last error: {last}); check that the VM \
     booted and its firewall allows SSH, or raise the timeout",
    timeout.as_secs()
)]
pub struct WaitSshError {
    pub addr: std::net::SocketAddr,
    pub timeout: Duration,
    pub last: String,
}

/// Waits until an SSH server greets on `addr` (its `SSH-2.0-…` banner), polling every `poll`.
/// No login is attempted, so no host key has to be trusted yet.
pub fn wait_for_ssh(
    addr: std::net::SocketAddr,
    timeout: Duration,
    poll: Duration,
) -> Result<Duration, WaitSshError> {
    use std::io::Read;
    let start = Instant::now();
    let mut last;
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        let attempt = std::net::TcpStream::connect_timeout(
            &addr,
            left.clamp(Duration::from_millis(100), Duration::from_secs(5)),
        )
        .and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf)?;
            Ok(buf[..n].to_vec())
        });
        match attempt {
            Ok(b) if b.starts_with(b"SSH-") => return Ok(start.elapsed()),
            Ok(b) => last = format!("not an SSH banner: {:?}", String::from_utf8_lossy(&b)),
            Err(e) => last = e.to_string(),
        }
        if start.elapsed() + poll > timeout {
            return Err(WaitSshError {
                addr,
                timeout,
                last,
            });
        }
        std::thread::sleep(poll);
    }
}
