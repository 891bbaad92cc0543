//! scripts/test.sh itself: a setup failure stops it at once, with the setup's message.

use std::process::Command;

use crate::support::{repo, write_script};

/// The real test.sh, next to a setup script that fails: test.sh must stop before running
/// anything (no formatting check, no cargo) and pass the setup's message on.
#[test]
fn a_setup_failure_stops_the_test_script_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let scripts = dir.path().join("scripts");
    std::fs::create_dir(&scripts).unwrap();
    std::fs::copy(repo().join("scripts/test.sh"), scripts.join("test.sh")).unwrap();
    write_script(
        &scripts.join("setup-test-tools.sh"),
        "#!/usr/bin/env bash\necho 'setup: apt-get install failed, see .tools/setup.log' >&2\nexit 1\n",
    );
    // A `cargo` that records being called: reaching it means the script ran on.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let called = dir.path().join("cargo-called");
    write_script(
        &bin.join("cargo"),
        &format!("#!/bin/sh\ntouch '{}'\n", called.display()),
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = Command::new("bash")
        .arg(scripts.join("test.sh"))
        .env("PATH", path)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("setup: apt-get install failed, see .tools/setup.log"),
        "{stderr}"
    );
    assert!(
        stderr.contains("setting up the test tools failed"),
        "{stderr}"
    );
    assert!(
        !stdout.contains("=="),
        "ran on after the failure:\n{stdout}"
    );
    assert!(!called.exists(), "cargo ran after the setup failed");
}
