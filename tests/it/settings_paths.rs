//! The `settings` path overrides (hostsFile, hostsDir, templateDir, docsFile; sopsConfig and
//! secretsDir: secrets_cli.rs and lint_paths.rs) and `--no-nix`: each is used by the command
//! that needs it, with a decoy where the default would look.

use std::path::Path;

use crate::support::{copy_dir, repo, text, vmctl_cmd, vmlint_cmd, write_script};

/// The demo fleet with `settings = { SETTINGS };` added to definitions.nix.
fn fleet(dir: &Path, settings: &str) {
    for d in ["vms", "hosts", "hosts-template", "docs"] {
        copy_dir(&repo().join(d), &dir.join(d));
    }
    std::fs::copy(repo().join("hosts.nix"), dir.join("hosts.nix")).unwrap();
    let p = dir.join("vms/definitions.nix");
    let t = std::fs::read_to_string(&p).unwrap();
    let at = t.rfind('}').unwrap();
    std::fs::write(
        &p,
        format!("{}  settings = {{ {settings} }};\n}}\n", &t[..at]),
    )
    .unwrap();
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn scaffold_reads_template_dir_and_writes_into_hosts_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fleet(
        root,
        r#"hostsDir = "machines"; templateDir = "templates/host";"#,
    );
    std::fs::rename(root.join("hosts"), root.join("machines")).unwrap();
    copy_dir(&root.join("hosts-template"), &root.join("templates/host"));
    // The default template dir stays, with a file of its own: using it would copy that.
    std::fs::write(root.join("hosts-template/decoy.nix"), "{ }\n").unwrap();
    std::fs::create_dir(root.join("hosts")).unwrap();

    let out = vmctl_cmd()
        .arg("--fleet")
        .arg(root)
        .args(["scaffold", "test-automation"])
        .env("VMCTL_NO_NIX", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let made = root.join("machines/test-automation");
    assert!(made.is_dir(), "{}", text(&out.stdout));
    let made = files(&made);
    assert!(!made.contains(&"decoy.nix".to_string()), "{made:?}");
    assert!(made.contains(&"configuration.nix".to_string()), "{made:?}");
    assert_eq!(files(&root.join("hosts")), Vec::<String>::new());
}

#[test]
fn docs_write_the_docs_file_setting_and_leave_the_default_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fleet(root, r#"docsFile = "notes/vms.md";"#);
    std::fs::create_dir(root.join("notes")).unwrap();
    let default = std::fs::read(root.join("docs/machines.md")).unwrap();

    let out = vmctl_cmd()
        .arg("--fleet")
        .arg(root)
        .arg("docs")
        .env("VMCTL_NO_NIX", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(root.join("notes/vms.md")).unwrap();
    assert!(written.contains("vmctl:begin"), "{written}");
    assert!(written.contains("test-automation"), "{written}");
    assert_eq!(
        std::fs::read(root.join("docs/machines.md")).unwrap(),
        default
    );
}

/// A `nix-instantiate` first on PATH that records each call, then runs the real one.
fn recording_nix(dir: &Path) -> (String, std::path::PathBuf) {
    crate::support::require_tool("nix-instantiate");
    let real = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v nix-instantiate"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let calls = dir.join("nix-calls");
    write_script(
        &bin.join("nix-instantiate"),
        &format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\nexec '{}' \"$@\"\n",
            calls.display(),
            real.trim()
        ),
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    (path, calls)
}

#[test]
fn no_nix_keeps_lint_from_running_nix() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("fleet");
    copy_dir(&repo().join("tests/fixtures/lint/NX002"), &root);
    let (path, calls) = recording_nix(tmp.path());
    let lint = |args: &[&str]| {
        vmlint_cmd()
            .args(["--color", "never"])
            .args(args)
            .current_dir(&root)
            .env("PATH", &path)
            .env_remove("VMCTL_NO_NIX")
            .output()
            .unwrap()
    };

    // Without the flag the value only Nix knows is asked of Nix (and found).
    let out = lint(&[]);
    assert!(calls.exists(), "nix was not asked: {}", text(&out.stdout));
    assert!(
        !text(&out.stdout).contains("NX002"),
        "{}",
        text(&out.stdout)
    );
    std::fs::remove_file(&calls).unwrap();

    // With it, Nix is never run and the value stays unknown, said so.
    let out = lint(&["--no-nix"]);
    assert!(!calls.exists(), "--no-nix ran nix-instantiate");
    assert!(
        text(&out.stdout).contains("[NX002] `memory` of managed VM `web` cannot be determined"),
        "{}",
        text(&out.stdout)
    );
    // VMCTL_NO_NIX=1 is the same switch for vmctl's commands.
    let out = vmctl_cmd()
        .arg("--fleet")
        .arg(&root)
        .args(["lint", "--color", "never"])
        .env("PATH", &path)
        .env("VMCTL_NO_NIX", "1")
        .output()
        .unwrap();
    assert!(!calls.exists(), "VMCTL_NO_NIX=1 ran nix-instantiate");
    assert!(
        text(&out.stdout).contains("[NX002]"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn hosts_add_writes_the_hosts_file_setting_and_leaves_the_default_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fleet(root, r#"hostsFile = "fleet-hosts.nix";"#);
    std::fs::copy(root.join("hosts.nix"), root.join("fleet-hosts.nix")).unwrap();
    // hosts.nix stays where the default looks, as a decoy.
    let decoy = std::fs::read(root.join("hosts.nix")).unwrap();
    let key = crate::support::new_public_key(Some("root@test-automation"));

    let out = vmctl_cmd()
        .arg("--fleet")
        .arg(root)
        .args(["hosts", "add", "test-automation", "--key", &key])
        .env("VMCTL_NO_NIX", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(root.join("fleet-hosts.nix")).unwrap();
    assert!(written.contains("test-automation"), "{written}");
    assert!(
        written.contains(key.split(' ').nth(1).unwrap()),
        "{written}"
    );
    assert_eq!(std::fs::read(root.join("hosts.nix")).unwrap(), decoy);
}
