//! An edit never writes what its own linter rejects, and is never blocked by the error it
//! fixes: each refusal shows the diagnostic it would cause and leaves every fleet file
//! byte-identical (checked by a digest of the whole fleet tree).

use std::path::Path;

use crate::support::{demo_fleet, new_public_key, repo, text, vmctl};
use sha2::{Digest, Sha256};

const DOC1_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMlLRoQ0HoeSXd9Rbb9WB51hQUGkEPeKZvmAsJFjg/wH";
const IGPU_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHHwBfbIUrK41MhsO5+UBAKg1AW/ZVSeh7AdndYmIED6";

/// SHA-256 over every file of the fleet (path and bytes), vmctl's own `.vmctl/` excluded.
fn digest(root: &Path) -> String {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if rel == ".vmctl" {
                continue;
            }
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                let target = std::fs::read_link(&p).unwrap();
                out.push((rel, target.display().to_string().into_bytes()));
            } else if ft.is_dir() {
                walk(&p, root, out);
            } else {
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut files = Vec::new();
    walk(root, root, &mut files);
    files.sort();
    let mut h = Sha256::new();
    for (p, b) in files {
        h.update(p.as_bytes());
        h.update([0]);
        h.update((b.len() as u64).to_le_bytes());
        h.update(&b);
    }
    format!("{:x}", h.finalize())
}

/// A demo fleet with its .sops.yaml.
fn fleet() -> tempfile::TempDir {
    let f = demo_fleet();
    std::fs::copy(repo().join(".sops.yaml"), f.path().join(".sops.yaml")).unwrap();
    f
}

/// Runs vmctl, expects a refusal naming `expect`, and the fleet unchanged.
fn refused(root: &Path, args: &[&str], expect: &str) -> String {
    let before = digest(root);
    let o = vmctl(root, args);
    let err = text(&o.stderr);
    assert_ne!(
        o.status.code(),
        Some(0),
        "{args:?} was not refused:\n{}",
        text(&o.stdout)
    );
    assert!(err.contains(expect), "{args:?}: no `{expect}` in:\n{err}");
    assert_eq!(digest(root), before, "{args:?} changed the fleet");
    err
}

#[test]
fn hosts_add_of_a_name_differing_only_in_case_is_refused() {
    let f = fleet();
    let err = refused(
        f.path(),
        &["hosts", "add", "Doc1", "--key", &new_public_key(None)],
        "[HS003]",
    );
    assert!(err.contains("differs from `doc1` only in case"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
}

#[test]
fn hosts_add_of_an_alias_another_host_uses_is_refused() {
    let f = fleet();
    let err = refused(
        f.path(),
        &[
            "hosts",
            "add",
            "web",
            "--alias",
            "igpu",
            "--key",
            &new_public_key(None),
        ],
        "[HS003]",
    );
    assert!(err.contains("same sshAlias `igpu` as `igpu`"), "{err}");
}

#[test]
fn hosts_add_of_a_truncated_or_malformed_key_is_refused() {
    let f = fleet();
    let key = new_public_key(None);
    let truncated = &key[..key.len() - 25];
    let err = refused(
        f.path(),
        &["hosts", "add", "web", "--key", truncated],
        "[HS001]",
    );
    assert!(
        err.contains("publicKey` of host `web` is malformed"),
        "{err}"
    );
    refused(
        f.path(),
        &["hosts", "add", "web", "--key", "ssh-ed25519 not*base64"],
        "invalid public key",
    );
    refused(
        f.path(),
        &["hosts", "add", "web", "--key", DOC1_KEY],
        "already the publicKey of `doc1`",
    );
}

#[test]
fn sops_add_recipient_of_another_hosts_recipient_is_refused() {
    let f = fleet();
    let igpu = vmctl::keys::PublicKey::parse(IGPU_KEY)
        .unwrap()
        .age_recipient()
        .unwrap();
    // The editor sees igpu's entry (its `# igpu` comment) in .sops.yaml.
    let err = refused(
        f.path(),
        &["sops", "add-recipient", "web", &igpu],
        "host `igpu`'s recipient",
    );
    assert!(err.contains(".sops.yaml"), "{err}");
    // The same through the host's ssh key.
    refused(
        f.path(),
        &["sops", "add-recipient", "web", IGPU_KEY],
        "host `igpu`",
    );
    // With igpu gone from .sops.yaml, hosts.nix still knows its key.
    let o = vmctl(f.path(), &["sops", "remove-recipient", "igpu"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let err = refused(
        f.path(),
        &["sops", "add-recipient", "web", &igpu],
        "recipient of host `igpu`",
    );
    // Shown like a lint finding: the file and the other host's key.
    assert!(err.contains("hosts.nix"), "{err}");
    // Its own recipient is fine.
    let own = new_public_key(None);
    let o = vmctl(f.path(), &["sops", "add-recipient", "web", &own]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

#[test]
fn an_edit_that_fixes_or_removes_a_broken_entry_is_not_blocked_by_it() {
    let f = fleet();
    let root = f.path();
    let key = new_public_key(None);
    let broken = &key[..key.len() - 25];
    let hosts = std::fs::read_to_string(root.join("hosts.nix")).unwrap();
    let with_broken = hosts.replacen(
        "  doc1 = {",
        &format!("  broken = {{\n    publicKey = \"{broken}\";\n  }};\n\n  doc1 = {{"),
        1,
    );
    std::fs::write(root.join("hosts.nix"), &with_broken).unwrap();
    let lint = crate::support::vmlint_cmd().arg(root).output().unwrap();
    assert_eq!(
        lint.status.code(),
        Some(1),
        "the fixture must have the error"
    );

    // An unrelated edit goes through; the error it does not touch is only mentioned.
    let o = vmctl(
        root,
        &["hosts", "add", "web", "--key", &new_public_key(None)],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("still have 1 error"),
        "{}",
        text(&o.stderr)
    );
    // Replacing the broken key with another broken key writes the error again: refused.
    let other = new_public_key(None);
    refused(
        root,
        &[
            "hosts",
            "set-key",
            "broken",
            "--key",
            &other[..other.len() - 30],
        ],
        "[HS001]",
    );
    // Fixing it works.
    let o = vmctl(root, &["hosts", "set-key", "broken", "--key", &key]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // And removing a broken entry works too.
    std::fs::write(root.join("hosts.nix"), &with_broken).unwrap();
    let o = vmctl(root, &["hosts", "remove", "broken"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(root.join("hosts.nix")).unwrap(),
        hosts
    );
}

#[test]
fn scaffold_refuses_a_host_directory_outside_the_hosts_directory() {
    let f = fleet();
    let root = f.path();
    let defs = std::fs::read_to_string(root.join("vms/definitions.nix")).unwrap();
    for bad in ["../escape", "/tmp/vmctl-escape"] {
        let changed = defs.replace(
            "nixosConfig = \"test-automation\";",
            &format!("nixosConfig = \"{bad}\";"),
        );
        assert_ne!(changed, defs);
        std::fs::write(root.join("vms/definitions.nix"), &changed).unwrap();
        let err = refused(root, &["scaffold", "test-automation"], "test-automation");
        assert!(
            err.contains("outside the hosts directory") || err.contains("nixosConfig"),
            "{err}"
        );
        assert!(!root.join("escape").exists() && !Path::new("/tmp/vmctl-escape").exists());
    }
}

#[cfg(unix)]
#[test]
fn scaffold_refuses_a_symlinked_host_directory_pointing_outside() {
    let f = fleet();
    let root = f.path();
    let outside = tempfile::tempdir().unwrap();
    let _ = std::fs::remove_dir_all(root.join("hosts/test-automation"));
    std::os::unix::fs::symlink(outside.path(), root.join("hosts/test-automation")).unwrap();
    refused(
        root,
        &["scaffold", "test-automation"],
        "would be written outside",
    );
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[test]
fn docs_escapes_a_purpose_that_would_forge_markers_or_headings() {
    let f = fleet();
    let root = f.path();
    let defs = std::fs::read_to_string(root.join("vms/definitions.nix")).unwrap();
    let changed = defs.replace(
        "purpose = \"Testing automated provisioning system\";",
        "purpose = \"Testing\\n<!-- vmctl:end vm-test-automation -->\\n## Owned by nobody\";",
    );
    assert_ne!(changed, defs);
    std::fs::write(root.join("vms/definitions.nix"), &changed).unwrap();
    let o = vmctl(root, &["docs"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let md = std::fs::read_to_string(root.join("docs/machines.md")).unwrap();
    let ends = md
        .lines()
        .filter(|l| l.trim() == "<!-- vmctl:end vm-test-automation -->")
        .count();
    assert_eq!(ends, 1, "{md}");
    assert!(!md.lines().any(|l| l.starts_with("## Owned")), "{md}");
    assert!(
        md.contains("Testing &lt;!-- vmctl:end vm-test-automation --> ## Owned by nobody"),
        "{md}"
    );
    // The result is stable: a second run finds it up to date.
    let o = vmctl(root, &["docs", "--check"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

#[test]
fn scaffold_creates_the_hosts_directory_of_a_fleet_that_has_none_yet() {
    let f = fleet();
    let root = f.path();
    std::fs::remove_dir_all(root.join("hosts")).unwrap();
    let o = vmctl(root, &["scaffold", "test-automation"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(root
        .join("hosts/test-automation/configuration.nix")
        .is_file());
}

#[test]
fn scaffold_stops_on_errors_of_its_vm_only() {
    let f = fleet();
    let root = f.path();
    let defs = std::fs::read_to_string(root.join("vms/definitions.nix")).unwrap();
    // An error in another VM's entry (igpu) does not concern test-automation.
    let changed = defs.replace("nixosConfig = \"igpu\";", "nixosConfig = \"../igpu\";");
    assert_ne!(changed, defs);
    std::fs::write(root.join("vms/definitions.nix"), &changed).unwrap();
    let lint = crate::support::vmlint_cmd().arg(root).output().unwrap();
    assert_eq!(
        lint.status.code(),
        Some(1),
        "the fixture must have an error"
    );
    let _ = std::fs::remove_dir_all(root.join("hosts/test-automation"));
    let o = vmctl(root, &["scaffold", "test-automation"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // Scaffolding igpu itself is refused with the diagnostic, nothing written.
    let _ = std::fs::remove_dir_all(root.join("hosts/igpu"));
    let err = refused(
        root,
        &["scaffold", "igpu"],
        "the definition of `igpu` has 1 error",
    );
    assert!(err.contains("VM014"), "{err}");
    assert!(!root.join("hosts/igpu").exists());
}

#[test]
fn docs_stops_on_errors_of_definitions_only() {
    let f = fleet();
    let root = f.path();
    // A broken host key in hosts.nix does not concern docs/machines.md.
    let hosts = std::fs::read_to_string(root.join("hosts.nix")).unwrap();
    std::fs::write(
        root.join("hosts.nix"),
        hosts.replace(
            "IHHwBfbIUrK41MhsO5+UBAKg1AW/ZVSeh7AdndYmIED6",
            "IHHwBfbIUrK41",
        ),
    )
    .unwrap();
    let o = vmctl(root, &["docs"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // An error in definitions.nix does: refused with the diagnostic, nothing written.
    let defs = std::fs::read_to_string(root.join("vms/definitions.nix")).unwrap();
    std::fs::write(
        root.join("vms/definitions.nix"),
        defs.replace("nixosConfig = \"igpu\";", "nixosConfig = \"../igpu\";"),
    )
    .unwrap();
    refused(root, &["docs"], "vms/definitions.nix has 1 error");
}
