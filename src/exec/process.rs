//! The one way vmctl runs a local program: a builder that names the run's purpose, and a typed
//! error that says which purpose failed, how the program ended and what it last printed.
//!
//! Every local process (sops, nix-instantiate, git, ssh) goes through [`Process`], so every
//! failure reads the same way ("cannot PURPOSE: `PROGRAM` exited with status N: TAIL") and no
//! caller forgets to drain a pipe, bound a wait or hide a secret from the message.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How many of stderr's last non-empty lines an error shows.
pub const TAIL_LINES: usize = 4;
/// How many characters of one stderr line an error shows (a minified JSON blob or a base64
/// dump should not fill the terminal).
pub const TAIL_LINE_CHARS: usize = 200;

/// A local program to run, with the purpose its errors name.
#[derive(Debug, Clone)]
pub struct Process {
    purpose: String,
    program: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    timeout: Option<Duration>,
    interruptible: bool,
    secrets: Vec<String>,
}

/// What a finished program left: its status and both outputs.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// How a program ended when it did not succeed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ended {
    /// It exited with this non-zero code.
    Status(i32),
    /// A signal killed it.
    Signal(i32),
    /// It ran past its timeout (in seconds) and vmctl stopped it.
    TimedOut(f64),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Status(code) => write!(f, "exited with status {code}"),
            Ended::Signal(sig) => match signal_name(*sig) {
                Some(name) => write!(f, "was killed by signal {sig} ({name})"),
                None => write!(f, "was killed by signal {sig}"),
            },
            Ended::TimedOut(secs) => {
                write!(f, "did not finish within {secs} s and was stopped")
            }
        }
    }
}

/// Why a program run failed. Each message is whole (it quotes the I/O error or stderr it
/// stems from), so a report that prints only the message loses nothing.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program could not be started (not installed, not executable).
    #[error("cannot {purpose}: cannot run `{program}`: {}", lower(error))]
    Spawn {
        purpose: String,
        program: String,
        error: std::io::Error,
    },
    /// It ran and did not succeed.
    #[error("cannot {purpose}: `{program}` {ended}{}", tail_suffix(stderr_tail))]
    Failed {
        purpose: String,
        program: String,
        ended: Ended,
        /// The last lines of stderr, bounded and with secrets hidden.
        stderr_tail: String,
    },
    /// vmctl received SIGINT/SIGTERM/SIGHUP while it ran; the program was killed.
    #[error("cannot {purpose}: `{program}` was stopped because vmctl received signal {signal}")]
    Interrupted {
        purpose: String,
        program: String,
        signal: i32,
    },
    /// Feeding its stdin or waiting for it failed.
    #[error("cannot {purpose}: cannot wait for `{program}`: {}", lower(error))]
    Wait {
        purpose: String,
        program: String,
        error: std::io::Error,
    },
}

impl ProcessError {
    /// True when the program is not installed (the caller may have a fallback for that).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ProcessError::Spawn { error, .. } if error.kind() == std::io::ErrorKind::NotFound)
    }

    /// How the program ended, when it ran and failed.
    pub fn ended(&self) -> Option<Ended> {
        match self {
            ProcessError::Failed { ended, .. } => Some(*ended),
            _ => None,
        }
    }

    /// The bounded, redacted tail of stderr, when the program ran and failed.
    pub fn stderr_tail(&self) -> Option<&str> {
        match self {
            ProcessError::Failed { stderr_tail, .. } => Some(stderr_tail),
            _ => None,
        }
    }
}

fn lower(e: &std::io::Error) -> String {
    e.to_string().to_lowercase()
}

fn tail_suffix(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!(": {}", tail.lines().collect::<Vec<_>>().join(" | "))
    }
}

fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        _ => return None,
    })
}

/// The last [`TAIL_LINES`] non-empty lines of `stderr`, each cut at [`TAIL_LINE_CHARS`]
/// characters, with terminal control sequences removed and every secret replaced.
pub fn stderr_tail(stderr: &[u8], secrets: &[String]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = crate::proxmox::terminal::strip_control(&text);
    let text = crate::proxmox::redact::scrub(&text, secrets);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..]
        .iter()
        .map(|l| {
            let l = l.trim_end();
            match l.char_indices().nth(TAIL_LINE_CHARS) {
                Some((cut, _)) => format!("{}…", &l[..cut]),
                None => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl Process {
    /// A run of `program` for `purpose`, a phrase that completes "cannot …" ("decrypt
    /// secrets/a.yaml with sops"). stdin is empty unless [`Process::stdin`] gives bytes.
    pub fn new(purpose: impl Into<String>, program: impl AsRef<OsStr>) -> Self {
        Process {
            purpose: purpose.into(),
            program: PathBuf::from(program.as_ref()),
            args: Vec::new(),
            envs: Vec::new(),
            cwd: None,
            stdin: None,
            timeout: None,
            interruptible: false,
            secrets: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Bytes written to the program's stdin (then closed).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Kills the program after `timeout` and reports [`Ended::TimedOut`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Kills the program when vmctl receives SIGINT/SIGTERM/SIGHUP and reports
    /// [`ProcessError::Interrupted`]; the caller holds an [`crate::exec::signals::guard`] so it
    /// can undo its work before vmctl exits.
    pub fn interruptible(mut self) -> Self {
        self.interruptible = true;
        self
    }

    /// A value never shown in an error (stderr that echoes it shows `<redacted>`).
    pub fn secret(mut self, value: impl Into<String>) -> Self {
        let value = value.into();
        if !value.is_empty() {
            self.secrets.push(value);
        }
        self
    }

    /// The purpose, as errors name it.
    pub fn purpose(&self) -> &str {
        &self.purpose
    }

    /// The program as errors name it: its file name, not the whole path.
    fn program_name(&self) -> String {
        self.program
            .file_name()
            .unwrap_or(self.program.as_os_str())
            .to_string_lossy()
            .into_owned()
    }

    /// The configured `std::process::Command` (stdin null or piped, stdout and stderr piped),
    /// for callers that must own the child (spawn variant).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        cmd
    }

    /// Starts the program with the given stdio and returns it: for a child that runs beside
    /// vmctl (an interactive console, a background helper). Its end is the caller's to watch.
    pub fn spawn_with(
        &self,
        stdin: Stdio,
        stdout: Stdio,
        stderr: Stdio,
    ) -> Result<Child, ProcessError> {
        let mut cmd = self.command();
        cmd.stdin(stdin).stdout(stdout).stderr(stderr);
        cmd.spawn().map_err(|source| self.spawn_error(source))
    }

    /// Runs the program on vmctl's own terminal (stdin, stdout and stderr inherited) and
    /// returns its status: for interactive sessions, whose output is the user's to read.
    pub fn interactive(&self) -> Result<ExitStatus, ProcessError> {
        let mut child = self.spawn_with(Stdio::inherit(), Stdio::inherit(), Stdio::inherit())?;
        child.wait().map_err(|e| self.wait_error(e))
    }

    fn spawn_error(&self, error: std::io::Error) -> ProcessError {
        ProcessError::Spawn {
            purpose: self.purpose.clone(),
            program: self.program_name(),
            error,
        }
    }

    fn wait_error(&self, error: std::io::Error) -> ProcessError {
        ProcessError::Wait {
            purpose: self.purpose.clone(),
            program: self.program_name(),
            error,
        }
    }

    /// Runs the program to its end and returns what it left, whatever its status (for
    /// programs whose exit code is an answer, like `git check-ignore`). Timeouts and signals
    /// are still errors.
    pub fn output(&self) -> Result<Finished, ProcessError> {
        let mut child = self
            .command()
            .spawn()
            .map_err(|source| self.spawn_error(source))?;
        // Both pipes are drained on their own threads so a chatty child never blocks on them.
        let drain = |r: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_end(&mut buf);
                }
                buf
            })
        };
        let stdout = drain(child.stdout.take().map(|r| Box::new(r) as _));
        let stderr = drain(child.stderr.take().map(|r| Box::new(r) as _));
        let feed = match (child.stdin.take(), self.stdin.clone()) {
            (Some(mut pipe), Some(bytes)) => Some(std::thread::spawn(move || {
                // A program that exits without reading all of its input is not an error here:
                // its status says what happened.
                let r = pipe.write_all(&bytes);
                drop(pipe);
                r
            })),
            _ => None,
        };
        let deadline = self.timeout.map(|t| Instant::now() + t);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => {
                    stop(&mut child);
                    return Err(self.wait_error(e));
                }
            }
            if self.interruptible {
                if let Some(signal) = crate::exec::signals::received() {
                    stop(&mut child);
                    return Err(ProcessError::Interrupted {
                        purpose: self.purpose.clone(),
                        program: self.program_name(),
                        signal,
                    });
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                stop(&mut child);
                let stderr = stderr.join().unwrap_or_default();
                return Err(self.failed(
                    Ended::TimedOut(self.timeout.unwrap_or_default().as_secs_f64()),
                    &stderr,
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if let Some(feed) = feed {
            let _ = feed.join();
        }
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        // A signal that arrived as the child ended still belongs to the caller.
        if self.interruptible {
            if let Some(signal) = crate::exec::signals::received() {
                return Err(ProcessError::Interrupted {
                    purpose: self.purpose.clone(),
                    program: self.program_name(),
                    signal,
                });
            }
        }
        Ok(Finished {
            status,
            stdout,
            stderr,
        })
    }

    /// Runs the program and fails unless it exits with status 0.
    pub fn run(&self) -> Result<Finished, ProcessError> {
        let done = self.output()?;
        match ended(done.status) {
            None => Ok(done),
            Some(how) => Err(self.failed(how, &done.stderr)),
        }
    }

    /// The error for a run that ended `how`, with stderr's tail.
    pub fn failed(&self, how: Ended, stderr: &[u8]) -> ProcessError {
        ProcessError::Failed {
            purpose: self.purpose.clone(),
            program: self.program_name(),
            ended: how,
            stderr_tail: stderr_tail(stderr, &self.secrets),
        }
    }
}

/// An error and its causes as one line, each `source()` after a colon ("sops failed (the
/// original file was restored): cannot run `sops updatekeys` on …: `sops` exited with status
/// 1: …"), for reports that print text rather than a rendered diagnostic.
pub fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

/// How `status` ended, or `None` for success.
pub fn ended(status: ExitStatus) -> Option<Ended> {
    use std::os::unix::process::ExitStatusExt as _;
    if status.success() {
        None
    } else if let Some(code) = status.code() {
        Some(Ended::Status(code))
    } else {
        Some(Ended::Signal(status.signal().unwrap_or(0)))
    }
}

/// Kills a child this run started (its own PID only) and reaps it.
fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(purpose: &str, script: &str) -> Process {
        Process::new(purpose, "/bin/sh").args(["-c", script])
    }

    #[test]
    fn success_returns_both_outputs_and_feeds_stdin() {
        let done = sh("echo", "cat; echo err >&2")
            .stdin(b"hello".to_vec())
            .run()
            .unwrap();
        assert_eq!(done.stdout, b"hello");
        assert_eq!(done.stderr, b"err\n");
    }

    #[test]
    fn an_exit_status_names_the_purpose_the_status_and_the_stderr_tail() {
        let e = sh(
            "decrypt secrets/a.yaml with sops",
            "echo first >&2; echo 'Error: no key could decrypt' >&2; exit 3",
        )
        .run()
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot decrypt secrets/a.yaml with sops: `sh` exited with status 3: first | Error: no key could decrypt"
        );
        assert_eq!(e.ended(), Some(Ended::Status(3)));
    }

    #[test]
    fn a_signal_is_named() {
        let e = sh(
            "evaluate vms/definitions.nix with nix-instantiate",
            "kill -9 $$",
        )
        .run()
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot evaluate vms/definitions.nix with nix-instantiate: `sh` was killed by signal 9 (SIGKILL)"
        );
    }

    #[test]
    fn a_timeout_stops_the_program_and_says_so() {
        let e = sh("wait for nothing", "echo started >&2; exec sleep 30")
            .timeout(Duration::from_millis(300))
            .run()
            .unwrap_err();
        assert_eq!(e.ended(), Some(Ended::TimedOut(0.3)));
        assert_eq!(
            e.to_string(),
            "cannot wait for nothing: `sh` did not finish within 0.3 s and was stopped: started"
        );
    }

    #[test]
    fn the_stderr_tail_is_bounded_in_lines_and_width() {
        let long = "x".repeat(TAIL_LINE_CHARS + 50);
        let script =
            format!("for i in 1 2 3 4 5 6; do echo line$i >&2; done; echo {long} >&2; exit 1");
        let e = sh("say a lot", &script).run().unwrap_err();
        let tail = e.stderr_tail().unwrap();
        assert_eq!(
            tail,
            format!("line4\nline5\nline6\n{}…", "x".repeat(TAIL_LINE_CHARS))
        );
    }

    #[test]
    fn secrets_and_terminal_escapes_never_reach_the_message() {
        let e = sh(
            "set a password",
            "echo \"bad value hunter2\\033]52;c;AAAA\\007\" >&2; exit 1",
        )
        .secret("hunter2")
        .run()
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot set a password: `sh` exited with status 1: bad value <redacted>"
        );
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let e = Process::new("run nothing", "/nonexistent/vmctl-no-such-program")
            .run()
            .unwrap_err();
        assert!(e.is_not_found());
        assert_eq!(
            e.to_string(),
            "cannot run nothing: cannot run `vmctl-no-such-program`: no such file or directory (os error 2)"
        );
    }

    #[test]
    fn causes_joins_the_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("sops failed")]
        struct Outer(#[source] ProcessError);
        let inner = sh("re-key a.yaml", "echo 'no key' >&2; exit 1")
            .run()
            .unwrap_err();
        assert_eq!(
            causes(&Outer(inner)),
            "sops failed: cannot re-key a.yaml: `sh` exited with status 1: no key"
        );
    }

    #[test]
    fn output_returns_a_failing_status_as_an_answer() {
        let done = sh("ask", "exit 1").output().unwrap();
        assert_eq!(done.status.code(), Some(1));
    }
}
