//! A real editor: Debian's Neovim (0.7.2) runs tests/editor/lsp.lua headless against
//! `vmctl lsp` on a copy of the demo fleet with a duplicate VMID injected: the diagnostic
//! arrives at the right line and column with its code, the code action fixes it and the
//! diagnostic clears, and unsaved edits change the other open files' diagnostics: hosts.nix
//! those of .sops.yaml (a stale recipient), .sops.yaml those of definitions.nix (a
//! `sopsRules` naming no rule), and hosts.nix those of definitions.nix (its admin keys deleted:
//! FL005; undone: gone).

use std::process::Command;
use std::time::Duration;

use super::lsp::{fleet, with_duplicate_vmid};
use crate::support;

#[test]
fn neovim_shows_the_diagnostic_applies_the_fix_and_follows_hosts_nix() {
    let found = Command::new("nvim").arg("--version").output();
    let version = found
        .as_ref()
        .map(|o| support::text(&o.stdout))
        .unwrap_or_default();
    assert!(
        version.starts_with("NVIM v"),
        "Neovim is not installed: run `apt-get install -y neovim` (Debian's 0.7.2)"
    );
    let (_dir, root) = fleet();
    let defs = root.join("vms/definitions.nix");
    // test-automation's secrets go by igpu's rule: a rename of that rule in .sops.yaml shows
    // in definitions.nix.
    let text = with_duplicate_vmid(&std::fs::read_to_string(&defs).unwrap()).replacen(
        "      nixosConfig = \"test-automation\";\n",
        "      nixosConfig = \"test-automation\";\n      sopsRules = [ \"secrets/hosts/igpu/.*\" ];\n",
        1,
    );
    assert!(text.contains("sopsRules"), "the demo fleet changed");
    std::fs::write(&defs, &text).unwrap();
    let result = root.join("nvim-result.json");
    let mut child = Command::new("nvim")
        .args(["--headless", "--clean", "-n", "-i", "NONE", "-c"])
        .arg(format!(
            "luafile {}",
            support::repo().join("tests/editor/lsp.lua").display()
        ))
        .env("VMCTL_BIN", env!("CARGO_BIN_EXE_vmctl"))
        .env("VMCTL_FLEET", &root)
        .env("VMCTL_RESULT", &result)
        .env("VMCTL_NO_NIX", "1")
        .current_dir(&root)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The script waits at most 20 s per step; a hung editor must not hang the suite.
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("nvim did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&result)
            .unwrap_or_else(|e| panic!("nvim wrote no result ({status}): {e}")),
    )
    .unwrap();
    assert_eq!(out["ok"], true, "{out:#}");
    assert!(status.success(), "{status}");

    // igpu's `vmid = 104;` (the second one), 0-based as Neovim counts.
    let (line, line_text) = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("vmid = 104;"))
        .nth(1)
        .unwrap();
    let col = line_text.find("104").unwrap();
    assert_eq!(out["vm001"]["lnum"], line, "{out:#}");
    assert_eq!(out["vm001"]["col"], col, "{out:#}");
    assert_eq!(out["vm001"]["end_col"], col + 3, "{out:#}");
    assert_eq!(out["vm001"]["source"], "vmctl");
    assert!(out["action"].as_str().unwrap().contains("VM001"));
    assert_eq!(out["fixed_line"], line_text.replace("104", "100"));
    assert!(!out["cleared"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "VM001"));
    assert!(!out["sops_before"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "FL002"));
    assert!(out["sops_after"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "FL002"));
    assert!(out["hosts_after"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "HS002"));
    // Deleting the admin keys' line of hosts.nix (unsaved) warned at definitions.nix's
    // `managed` (0-based line and column, a warning), and undo took it away.
    let (managed_line, managed_text) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.trim_start().starts_with("managed = {") && !l.contains("start"))
        .unwrap();
    assert_eq!(out["fl005"]["lnum"], managed_line, "{out:#}");
    assert_eq!(
        out["fl005"]["col"],
        managed_text.find("managed").unwrap(),
        "{out:#}"
    );
    assert_eq!(
        out["fl005"]["severity"], 2,
        "vim.diagnostic.severity.WARN: {out:#}"
    );
    assert_eq!(out["hosts_undone"], "    adminKeys = [ admin ];", "{out:#}");
    assert!(!out["defs_undone"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "FL005"));
    // Only the editor's buffers changed: the files on disk are as written before.
    assert_eq!(std::fs::read_to_string(&defs).unwrap(), text);
}
