//! The Nix fallback (real `nix-instantiate`) is restricted to the fleet directory and stopped
//! after its timeout: an import outside the fleet is refused, a loop ends with a diagnostic,
//! and no evaluator is left running.

use crate::support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::text;

fn fleet(dir: &Path, memory: &str) {
    std::fs::create_dir_all(dir.join("vms")).unwrap();
    std::fs::create_dir_all(dir.join("hosts/web")).unwrap();
    std::fs::write(dir.join("hosts/web/configuration.nix"), "{ }\n").unwrap();
    std::fs::write(
        dir.join("vms/definitions.nix"),
        format!(
            "{{\n  proxmox = {{ host = \"pve.lan\"; }};\n  managed.web = {{ vmid = 110; cores = 2; memory = {memory}; disk = \"20G\"; }};\n}}\n"
        ),
    )
    .unwrap();
}

/// Runs `vmlint --format json` on `dir` with the given Nix timeout; fails the test (instead of
/// hanging) if vmlint itself does not end within a minute.
fn vmlint(dir: &Path, timeout_secs: &str) -> (Option<i32>, Vec<serde_json::Value>) {
    let mut child = crate::support::vmlint_cmd()
        .args(["--format", "json"])
        .arg(dir)
        .env("VMCTL_NIX_TIMEOUT", timeout_secs)
        .env_remove("VMCTL_NO_NIX")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vmlint hung on {}", dir.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let diags: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stderr)));
    (out.status.code(), diags.as_array().unwrap().clone())
}

fn messages(diags: &[serde_json::Value], code: &str) -> Vec<String> {
    diags
        .iter()
        .filter(|d| d["code"] == code)
        .map(|d| d["message"].as_str().unwrap().to_string())
        .collect()
}

/// Processes whose command line mentions `needle` (a unique temp path).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) && cmd.contains("nix-instantiate") {
                found.push(cmd);
            }
        }
    }
    found
}

#[test]
fn an_import_outside_the_fleet_is_refused() {
    support::require_tool("nix-instantiate");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("outside.nix"), "4\n").unwrap();
    let root = tmp.path().join("fleet");
    // Dynamic for the static evaluator, so Nix is asked; Nix must not read outside.nix.
    fleet(&root, "builtins.mul 1024 (import ../../outside.nix)");
    let (code, diags) = vmlint(&root, "30");
    let nx005 = messages(&diags, "NX005");
    assert_eq!(nx005.len(), 1, "{diags:?}");
    assert!(
        nx005[0].contains("forbidden in restricted mode"),
        "{nx005:?}"
    );
    assert_eq!(
        messages(&diags, "NX002").len(),
        1,
        "the value stays unknown"
    );
    assert_eq!(code, Some(0), "warnings only");

    // The same import inside the fleet is evaluated.
    std::fs::write(root.join("inside.nix"), "4\n").unwrap();
    fleet(&root, "builtins.mul 1024 (import ../inside.nix)");
    let (_, diags) = vmlint(&root, "30");
    assert_eq!(messages(&diags, "NX005"), Vec::<String>::new());
    assert_eq!(messages(&diags, "NX002"), Vec::<String>::new());
}

#[test]
fn a_loop_is_stopped_with_a_diagnostic() {
    support::require_tool("nix-instantiate");
    let tmp = tempfile::tempdir().unwrap();
    // Nix finds this one itself.
    let rec = tmp.path().join("recursion");
    fleet(&rec, "builtins.mul 1 (let x = x + 1; in x)");
    let (_, diags) = vmlint(&rec, "30");
    let nx005 = messages(&diags, "NX005");
    assert!(
        nx005.len() == 1 && nx005[0].contains("infinite recursion"),
        "{diags:?}"
    );

    // This one runs for hours in constant memory: only the timeout ends it.
    let slow = tmp.path().join("exponential");
    fleet(
        &slow,
        "builtins.mul 1 (let fib = n: if n < 2 then n else fib (n - 1) + fib (n - 2); in fib 60)",
    );
    let (code, diags) = vmlint(&slow, "1");
    let nx005 = messages(&diags, "NX005");
    assert!(
        nx005.len() == 1 && nx005[0].contains("did not finish") && nx005[0].contains("stopped"),
        "{diags:?}"
    );
    assert_eq!(code, Some(0));
    let left = processes_mentioning(&slow.display().to_string());
    assert!(left.is_empty(), "evaluator still running: {left:?}");
}

#[test]
fn the_static_evaluator_does_not_read_outside_the_fleet_either() {
    use vmctl::exec::lint::{lint, NixFallback};
    // Paths are shown (and imports resolved) relative to the process's working directory
    // when under `cwd`; a `cwd` above nothing keeps them absolute here.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("outside.nix"), "4096\n").unwrap();
    let root = tmp.path().join("fleet");
    fleet(&root, "import ../../outside.nix");
    // A symlink inside the fleet to a file outside it is outside too.
    std::os::unix::fs::symlink(tmp.path().join("outside.nix"), root.join("link.nix")).unwrap();
    let run = lint(
        std::slice::from_ref(&root),
        None,
        Path::new("/nonexistent"),
        &NixFallback::Off,
    )
    .unwrap();
    let nx002: Vec<_> = run
        .diagnostics
        .iter()
        .filter(|d| d.code() == "NX002")
        .map(|d| d.message.clone())
        .collect();
    assert_eq!(nx002.len(), 1, "{:?}", run.diagnostics);
    assert!(
        nx002[0].contains("imports a file outside the fleet directory"),
        "{nx002:?}"
    );
    assert!(
        run.fleet.db.find(&tmp.path().join("outside.nix")).is_none(),
        "never read"
    );
    let (_, defs) = run.fleet.definitions_file().unwrap();
    assert_eq!(
        defs.vm_by_name("web").unwrap().memory,
        None,
        "unknown, not guessed"
    );

    fleet(&root, "import ../link.nix");
    let run = lint(
        std::slice::from_ref(&root),
        None,
        Path::new("/nonexistent"),
        &NixFallback::Off,
    )
    .unwrap();
    assert!(
        run.diagnostics
            .iter()
            .any(|d| d.code() == "NX002" && d.message.contains("outside the fleet")),
        "{:?}",
        run.diagnostics
    );
    // Inside the fleet, imports are read.
    std::fs::write(root.join("inside.nix"), "4096\n").unwrap();
    fleet(&root, "import ../inside.nix");
    let run = lint(
        std::slice::from_ref(&root),
        None,
        Path::new("/nonexistent"),
        &NixFallback::Off,
    )
    .unwrap();
    let (_, defs) = run.fleet.definitions_file().unwrap();
    assert_eq!(defs.vm_by_name("web").unwrap().memory, Some(4096));
}

#[test]
fn without_nix_installed_values_stay_unknown_without_a_second_warning() {
    use vmctl::exec::lint::{lint, NixFallback};
    let dir = support::fixture("lint/NX002");
    let run = lint(
        &[],
        None,
        &dir,
        &NixFallback::Use("/nonexistent/nix-instantiate".into()),
    )
    .unwrap();
    let codes: Vec<_> = run.diagnostics.iter().map(|d| d.code()).collect();
    assert!(codes.contains(&"NX002"), "{codes:?}");
    assert!(!codes.contains(&"NX005"), "{codes:?}");
}
