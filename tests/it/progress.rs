//! The terminal view of `vmctl provision` (docs/events.md) in a real pseudo-terminal: util-linux
//! `script` (Debian's bsdutils, an essential package) runs it on a pty of 100 columns in the
//! sandbox, and the bytes the terminal received show the live lines drawn and erased, the
//! installer's output folded under its step, and the summary printed after the last erase.

use std::process::{Command, Stdio};

use crate::events::sandbox_with_vmid;
use crate::support::{require_tool, text};

/// Erases the line the cursor is on (what indicatif sends before redrawing a line).
const ERASE_LINE: &str = "\x1b[2K";

/// `vmctl provision test-automation` on a pty; what the terminal showed, and the exit code.
fn on_a_terminal(s: &crate::sandbox::Sandbox, extra: &[(&str, &str)]) -> (String, Option<i32>) {
    require_tool("script");
    let key = s.var("SANDBOX_ADMIN_KEY");
    // Paths from the test's own temp directory and the build: no quote in them.
    let line = format!(
        "stty cols 100 rows 40; exec '{}' provision test-automation --identity '{key}'",
        env!("CARGO_BIN_EXE_vmctl")
    );
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .current_dir(s.dir.join("fleet"))
        .env_remove("VMCTL_FLEET")
        .envs(s.env.iter().cloned())
        .envs(extra.iter().copied())
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (text(&out.stdout), out.status.code())
}

#[test]
fn a_terminal_sees_live_lines_drawn_and_cleared_then_the_summary() {
    let s = sandbox_with_vmid(173);
    let (shown, code) = on_a_terminal(&s, &[]);
    assert_eq!(code, Some(0), "{shown}");
    // The live line of the VM, redrawn in place for each step.
    for step in ["clone:", "key-ceremony:", "install:", "commit:"] {
        assert!(
            shown.contains(&format!("test-automation  {step}")),
            "no live line for {step}: {shown:?}"
        );
    }
    assert!(
        shown.matches(ERASE_LINE).count() > 10,
        "the live lines are not erased and redrawn: {shown:?}"
    );
    // The installer's output, folded under the install step while it runs.
    assert!(
        shown.contains("│ ### Installing NixOS ###"),
        "the installer's output is not folded under its step: {shown:?}"
    );
    // Then everything live is cleared and the summary stays: nothing is drawn after it.
    let summary = shown
        .rfind("VM               RESULT")
        .unwrap_or_else(|| panic!("no summary table: {shown:?}"));
    let last_erase = shown.rfind(ERASE_LINE).unwrap();
    assert!(
        last_erase < summary,
        "a live line was drawn over the summary: {shown:?}"
    );
    let after = &shown[summary..];
    assert!(
        !after.contains('\x1b'),
        "escape sequences after the summary: {after:?}"
    );
    assert!(after.contains("test-automation  done"), "{after:?}");
    assert!(after.contains("1 VM, 0 failed"), "{after:?}");
    assert!(
        after.contains("provisioned `test-automation`: VM 173"),
        "{after:?}"
    );
    // A step that succeeded leaves no output behind: the fold was cleared with it.
    // (A failed step's lines are printed as `VM STEP │ LINE`, see the next test.)
    assert!(
        !shown.contains("test-automation install │"),
        "the successful install's output stayed on screen: {shown:?}"
    );
}

#[test]
fn on_a_terminal_a_failed_steps_output_stays_on_screen() {
    let s = sandbox_with_vmid(174);
    let (shown, code) = on_a_terminal(&s, &[("SANDBOX_INSTALLER_FAULT", "fail")]);
    assert_eq!(code, Some(1), "{shown}");
    // Printed above the live lines, so it scrolls with the terminal and stays.
    assert!(
        shown.contains("  test-automation install │ ERROR: nixos-install failed (sandbox fault)"),
        "the failed install's output is not kept: {shown:?}"
    );
    assert!(
        shown.contains("✗ test-automation install failed after"),
        "{shown:?}"
    );
    let summary = shown
        .rfind("VM               RESULT")
        .expect("a summary table");
    assert!(
        shown[summary..].contains("test-automation  failed"),
        "{shown:?}"
    );
}
