//! Running a program whose output is shown line by line as it comes (the installer's, folded
//! under its step), instead of straight on vmctl's terminal.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long output may keep coming after the program exited: a background process it left
/// holding the pipe must not hold the run.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// Runs `cmd` with stdout and stderr merged into one pipe and hands each line to `on_line`
/// on this thread, as it comes: without its line end, only what follows a carriage return
/// (what a terminal would show of a progress line), terminal control sequences removed.
/// Returns the program's exit status.
pub fn run_lines(mut cmd: Command, on_line: &dyn Fn(&str)) -> std::io::Result<ExitStatus> {
    let (reader, writer) = std::io::pipe()?;
    cmd.stdout(writer.try_clone()?).stderr(writer);
    let mut child = cmd.spawn()?;
    // The Command keeps the pipe's write ends: the reader sees the end of the output only
    // once they are closed.
    drop(cmd);
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut r = BufReader::new(reader);
        loop {
            let mut buf = Vec::new();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send(buf).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let show = |raw: Vec<u8>| {
        let text = String::from_utf8_lossy(&raw);
        let text = text.trim_end_matches(['\n', '\r']);
        let shown = text.rsplit('\r').next().unwrap_or_default();
        on_line(&crate::proxmox::terminal::strip_control(shown));
    };
    let status = loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => show(line),
            Err(RecvTimeoutError::Timeout) => {
                if let Some(status) = child.try_wait()? {
                    break status;
                }
            }
            Err(RecvTimeoutError::Disconnected) => break child.wait()?,
        }
    };
    let deadline = Instant::now() + DRAIN_AFTER_EXIT;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => show(line),
            Err(_) => break,
        }
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn lines_of(script: &str) -> (Vec<String>, ExitStatus) {
        let got = Mutex::new(Vec::new());
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        let status = run_lines(cmd, &|l| got.lock().unwrap().push(l.to_string())).unwrap();
        (got.into_inner().unwrap(), status)
    }

    #[test]
    fn both_streams_in_order_with_the_status() {
        let (lines, status) =
            lines_of("echo one; echo two >&2; printf 'three'; sleep 0.1; echo; exit 3");
        assert_eq!(lines, ["one", "two", "three"]);
        assert_eq!(status.code(), Some(3));
    }

    #[test]
    fn a_carriage_return_keeps_what_a_terminal_shows_and_escapes_go() {
        let (lines, _) = lines_of(r"printf '10%%\r50%%\r100%%\r\n\033[1mbold\033[0m\n'");
        assert_eq!(lines, ["100%", "bold"]);
    }

    #[test]
    fn a_background_child_holding_the_pipe_does_not_hold_the_run() {
        let started = Instant::now();
        let (lines, status) = lines_of("echo before; (sleep 30 &) ; exit 0");
        assert!(status.success());
        assert_eq!(lines, ["before"]);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "waited for the background child"
        );
    }
}
