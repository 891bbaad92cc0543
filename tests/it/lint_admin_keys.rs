//! FL005 against the operation it speaks for: on the demo fleet with hosts.nix's
//! `_proxmox.adminKeys` written each way users write it (and each way they get it wrong),
//! `vmlint` warns FL005 exactly when `vmctl provision --dry-run --offline` refuses the keys.
//! Both binaries run for real, with real Nix where hosts.nix needs it.

use std::path::Path;

use crate::support;

const ADMIN: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHxM2a6DvE298UXZdhKYSMrTPvzvceh5+ZJ77tKj9n0D admin@workstation";

/// The demo hosts.nix with its `_proxmox` block replaced by `block`.
fn hosts_with(block: &str) -> String {
    let text = support::read_repo("hosts.nix");
    let old = "  _proxmox = {\n    hostname = \"prom.lan\";\n    adminKeys = [ admin ];\n  };\n";
    assert!(text.contains(old), "the demo hosts.nix changed");
    text.replace(old, block)
}

/// Whether vmlint reports FL005 on the fleet at `root`.
fn lint_fires(root: &Path, nix: bool) -> bool {
    let mut cmd = support::vmlint_cmd();
    cmd.current_dir(root).args(["--format", "json"]);
    if !nix {
        cmd.env("VMCTL_NO_NIX", "1");
    }
    let out = cmd.output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", support::text(&out.stderr)));
    json.as_array()
        .unwrap()
        .iter()
        .any(|d| d["code"] == "FL005")
}

/// Whether provision refuses the admin keys (any other refusal fails the test: the case
/// would not be about the keys).
fn provision_refuses(root: &Path, nix: bool) -> bool {
    let mut cmd = support::vmctl_cmd();
    cmd.current_dir(root)
        .args(["provision", "test-automation", "--dry-run", "--offline"]);
    if !nix {
        cmd.env("VMCTL_NO_NIX", "1");
    }
    let out = cmd.output().unwrap();
    let stderr = support::unwrapped(&out.stderr);
    if out.status.success() {
        return false;
    }
    assert!(
        stderr.contains("admin SSH keys")
            || stderr.contains("invalid admin key")
            || stderr.contains("of hosts.nix: Nix could not evaluate")
            || stderr.contains("not a key line"),
        "provision refused for another reason: {stderr}"
    );
    true
}

#[test]
fn fl005_fires_exactly_when_provision_refuses_the_admin_keys() {
    let block = |keys: &str| {
        format!("  _proxmox = {{\n    hostname = \"prom.lan\";\n    adminKeys = {keys};\n  }};\n")
    };
    // (case, hosts.nix's _proxmox block, whether provision refuses, with Nix on PATH)
    let cases: Vec<(&str, String, bool, bool)> = vec![
        ("the demo's", block("[ admin ]"), false, false),
        ("inline", block(&format!("[ \"{ADMIN}\" ]")), false, false),
        (
            "padded",
            block(&format!("[ \"  {ADMIN}\\n\" ]")),
            false,
            false,
        ),
        (
            "with authorized_keys options",
            block(&format!("[ \"no-agent-forwarding {ADMIN}\" ]")),
            false,
            false,
        ),
        (
            "a non-string beside a key",
            block("[ admin 42 ]"),
            true,
            false,
        ),
        (
            "a path beside a key",
            block("[ admin ./admin.pub ]"),
            true,
            false,
        ),
        // Both read hosts.nix with what Nix computes filled in: a key Nix reads from a file
        // is a key.
        (
            "read from a file by Nix",
            block("[ (builtins.readFile ./admin.pub) ]"),
            false,
            true,
        ),
        (
            "a key beside one read by Nix",
            block("[ admin (builtins.readFile ./admin.pub) ]"),
            false,
            true,
        ),
        // Without Nix neither can know the keys: provision refuses rather than install only
        // some of them.
        (
            "read from a file, Nix off",
            block("[ (builtins.readFile ./admin.pub) ]"),
            true,
            false,
        ),
        (
            "a key beside one read by Nix, Nix off",
            block("[ admin (builtins.readFile ./admin.pub) ]"),
            true,
            false,
        ),
        ("empty", block("[ ]"), true, false),
        (
            "no adminKeys",
            "  _proxmox = { hostname = \"prom.lan\"; };\n".into(),
            true,
            false,
        ),
        ("no _proxmox", String::new(), true, false),
        ("a string, not a list", block("admin"), true, false),
        ("only non-strings", block("[ 42 ./admin.pub ]"), true, false),
        ("an empty string", block("[ \"\" ]"), true, false),
        (
            "a key and a typo",
            block("[ admin \"sh-ed25519 AAAA\" ]"),
            true,
            false,
        ),
        (
            "an RSA key",
            block("[ \"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 rsa@host\" ]"),
            true,
            false,
        ),
        (
            "a truncated key",
            block("[ \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHxM2a6 admin\" ]"),
            true,
            false,
        ),
        (
            "_proxmox not a set",
            "  _proxmox = \"prom.lan\";\n".into(),
            true,
            false,
        ),
    ];
    for (case, block, refuses, nix) in cases {
        if nix {
            support::require_tool("nix-instantiate");
        }
        let dir = support::demo_fleet();
        let root = dir.path();
        // Provision re-keys the secrets for the new VM: it reads the fleet's sops config.
        std::fs::copy(support::repo().join(".sops.yaml"), root.join(".sops.yaml")).unwrap();
        support::copy_dir(&support::repo().join("secrets"), &root.join("secrets"));
        std::fs::write(root.join("hosts.nix"), hosts_with(&block)).unwrap();
        std::fs::write(root.join("admin.pub"), format!("{ADMIN}\n")).unwrap();
        assert_eq!(
            provision_refuses(root, nix),
            refuses,
            "{case}: provision {}",
            if refuses { "took the keys" } else { "refused" }
        );
        assert_eq!(
            lint_fires(root, nix),
            refuses,
            "{case}: FL005 disagrees with provision"
        );
    }
}

/// The hosts.nix shapes of the editing fixtures (the seed's, CRLF, no final newline, `rec` with
/// comments, tabs, quoted names, empty) as the demo fleet's hosts.nix: FL005 and provision agree
/// on each, and it is the files without `adminKeys` that they refuse.
#[test]
fn hosts_nix_shapes_of_the_fixtures_agree_with_provision() {
    let (mut seen, mut refused) = (0, 0);
    for e in std::fs::read_dir(support::fixture("hosts")).unwrap() {
        let path = e.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let dir = support::demo_fleet();
        let root = dir.path();
        std::fs::copy(support::repo().join(".sops.yaml"), root.join(".sops.yaml")).unwrap();
        support::copy_dir(&support::repo().join("secrets"), &root.join("secrets"));
        std::fs::write(root.join("hosts.nix"), &text).unwrap();
        let refuses = provision_refuses(root, false);
        assert_eq!(refuses, !text.contains("adminKeys"), "{}", path.display());
        assert_eq!(lint_fires(root, false), refuses, "{}", path.display());
        seen += 1;
        refused += usize::from(refuses);
    }
    assert!(seen >= 7, "only {seen} hosts.nix fixtures");
    assert!(0 < refused && refused < seen, "{refused} of {seen} refused");
}
