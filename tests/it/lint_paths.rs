//! Paths lint must not skip silently: a `settings` path that does not exist (and the edit
//! that would have created a second file), a sops configuration in the wrong place, a file
//! whose name vmctl does not know; and the shell commands diagnostics suggest are quoted.

use std::path::Path;

use crate::support::{copy_dir, repo, text, unwrapped};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFNLY7rJsLqxLZ5w6dfAXCSsoRjPUVw/gUqwI0YNmibk new@host";

fn vmlint(args: &[&str], dir: &Path) -> std::process::Output {
    crate::support::vmlint_cmd()
        .args(["--no-nix", "--color", "never"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn demo(dir: &Path) {
    for d in ["vms", "hosts", "hosts-template"] {
        copy_dir(&repo().join(d), &dir.join(d));
    }
    std::fs::copy(repo().join("hosts.nix"), dir.join("hosts.nix")).unwrap();
}

fn add_settings(dir: &Path, settings: &str) {
    let p = dir.join("vms/definitions.nix");
    let text = std::fs::read_to_string(&p).unwrap();
    let at = text.rfind('}').unwrap();
    std::fs::write(
        &p,
        format!("{}  settings = {{ {settings} }};\n}}\n", &text[..at]),
    )
    .unwrap();
}

#[test]
fn a_mistyped_hosts_file_setting_is_an_error_and_no_second_file_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    demo(root);
    add_settings(root, r#"hostsFile = "host.nix";"#);
    let before = std::fs::read(root.join("hosts.nix")).unwrap();

    let out = vmlint(&[], root);
    assert_eq!(out.status.code(), Some(1));
    let shown = unwrapped(&out.stdout);
    assert!(
        shown.contains("[FL003] `settings.hostsFile` names `host.nix`, but there is no such file"),
        "{shown}"
    );

    let add = crate::support::vmctl_cmd()
        .args(["--fleet"])
        .arg(root)
        .args(["hosts", "add", "test-automation", "--key", KEY])
        .env("VMCTL_NO_NIX", "1")
        .output()
        .unwrap();
    assert_ne!(add.status.code(), Some(0), "{}", text(&add.stdout));
    assert!(
        unwrapped(&add.stderr).contains("FL003"),
        "{}",
        text(&add.stderr)
    );
    assert!(!root.join("host.nix").exists(), "no second hosts file");
    assert_eq!(std::fs::read(root.join("hosts.nix")).unwrap(), before);
}

#[test]
fn a_sops_config_where_vmctl_does_not_look_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    demo(root);
    let defs = std::fs::read(root.join("vms/definitions.nix")).unwrap();
    std::fs::create_dir_all(root.join("secrets")).unwrap();
    std::fs::copy(repo().join(".sops.yaml"), root.join("secrets/.sops.yaml")).unwrap();
    let out = vmlint(&[], root);
    let shown = unwrapped(&out.stdout);
    assert!(
        shown.contains("[FL004] the fleet's sops configuration is `secrets/.sops.yaml`, but vmctl reads `.sops.yaml`"),
        "{shown}"
    );
    assert!(shown.contains(r#"settings.sopsConfig = "secrets/.sops.yaml";"#));

    // Following the help makes it go away, and the SP checks run on the file.
    add_settings(root, r#"sopsConfig = "secrets/.sops.yaml";"#);
    let out = vmlint(&["--format", "json"], root);
    let codes = text(&out.stdout);
    assert!(!codes.contains("FL004"), "{codes}");

    // A directory setting that does not exist is a warning at the setting.
    std::fs::write(root.join("vms/definitions.nix"), &defs).unwrap();
    add_settings(
        root,
        r#"sopsConfig = "secrets/.sops.yaml"; templateDir = "templates";"#,
    );
    let out = vmlint(&[], root);
    assert!(
        unwrapped(&out.stdout).contains("[FL004] `settings.templateDir` names `templates`"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_file_vmctl_does_not_know_by_name_says_which_checks_ran() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("my vms.nix"),
        "{ web = { vmid = 110; cores = 0; }; }\n",
    )
    .unwrap();
    let out = vmlint(&["my vms.nix"], tmp.path());
    assert_eq!(out.status.code(), Some(0));
    let shown = unwrapped(&out.stdout);
    assert!(shown.contains("[NX006]"), "{shown}");
    assert!(
        shown.contains("only Nix syntax and evaluation were checked"),
        "{shown}"
    );
    // The suggested commands are quoted for the shell.
    assert!(
        text(&out.stdout).contains("`vmlint --as definitions 'my vms.nix'`"),
        "{}",
        text(&out.stdout)
    );
    // Choosing a role (`--as`) is not noted; `--as definitions` runs the VM checks.
    let out = vmlint(&["--as", "nix", "my vms.nix"], tmp.path());
    assert!(!text(&out.stdout).contains("NX006"));
    let out = vmlint(&["--as", "definitions", "my vms.nix"], tmp.path());
    assert!(text(&out.stdout).contains("DF004"), "{}", text(&out.stdout));
}

#[test]
fn suggested_commands_are_quoted() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    demo(root);
    let p = root.join("vms/definitions.nix");
    let text_before = std::fs::read_to_string(&p).unwrap();
    std::fs::write(
        &p,
        text_before
            .replace("test-automation = {", "\"web; rm -rf ~\" = {")
            .replace("nixosConfig = \"test-automation\";", ""),
    )
    .unwrap();
    let out = vmlint(&[], root);
    assert!(
        text(&out.stdout).contains("run `vmctl scaffold 'web; rm -rf ~'` to create it"),
        "{}",
        text(&out.stdout)
    );
}

/// hosts.nix (the default path, not named in settings) that is a directory or a link to
/// nothing is an error, never silently skipped; adding a host refuses too.
#[test]
fn a_hosts_file_that_is_a_directory_or_a_dangling_link_is_an_error() {
    for how in ["directory", "dangling link"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        demo(dir);
        std::fs::remove_file(dir.join("hosts.nix")).unwrap();
        match how {
            "directory" => std::fs::create_dir(dir.join("hosts.nix")).unwrap(),
            _ => std::os::unix::fs::symlink("gone.nix", dir.join("hosts.nix")).unwrap(),
        }
        let out = vmlint(&[], dir);
        let err = unwrapped(&out.stderr) + &unwrapped(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{how}: {err}");
        assert!(
            err.contains("`hosts.nix` is there but is not a file"),
            "{how}: {err}"
        );
        let add = crate::support::vmctl_cmd()
            .args(["--no-nix", "hosts", "add", "newhost", "--key", KEY])
            .current_dir(dir)
            .output()
            .unwrap();
        let said = unwrapped(&add.stderr);
        assert_eq!(add.status.code(), Some(2), "{how}: {said}");
        assert!(said.contains("cannot read"), "{how}: {said}");
        assert!(said.contains("nothing was written"), "{how}: {said}");
    }
}
