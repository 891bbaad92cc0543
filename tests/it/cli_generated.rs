//! Shell completions, man pages and `--version`, checked against the commands `--help` lists
//! and against real bash and real git.

use std::collections::BTreeSet;
use std::process::Command;

use crate::support::{repo, require_tool, text, vmctl_cmd, vmlint_cmd};

/// Runs `vmctl ARGS` and returns its stdout, failing the test on a non-zero exit.
fn vmctl_ok(args: &[&str]) -> String {
    let out = vmctl_cmd().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "vmctl {args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The subcommands `vmctl ARGS --help` lists (without `help`): the names clap prints at the
/// start of a two-space-indented line in the `Commands:` section.
fn listed_subcommands(args: &[&str]) -> Vec<String> {
    let mut argv = args.to_vec();
    argv.push("--help");
    let help = vmctl_ok(&argv);
    let Some(section) = help.split("Commands:\n").nth(1) else {
        return Vec::new();
    };
    section
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Every command path under `prefix`, as `--help` shows them, e.g. `["ops", "stop"]`.
fn command_paths(prefix: &[String], out: &mut Vec<Vec<String>>) {
    let args: Vec<&str> = prefix.iter().map(String::as_str).collect();
    for sub in listed_subcommands(&args) {
        let mut path = prefix.to_vec();
        path.push(sub);
        out.push(path.clone());
        command_paths(&path, out);
    }
}

#[test]
fn help_lists_the_commands_the_tests_walk() {
    // Guards the parser above: if clap's help layout changed, every check below would pass
    // on an empty list.
    let top = listed_subcommands(&[]);
    for name in ["lint", "ops", "secrets", "completions", "man"] {
        assert!(top.iter().any(|c| c == name), "{name} missing from {top:?}");
    }
    assert!(listed_subcommands(&["ops"]).iter().any(|c| c == "stop"));
}

#[test]
fn bash_completion_names_every_command_and_bash_accepts_it() {
    require_tool("bash");
    let script = vmctl_ok(&["completions", "bash"]);
    for name in listed_subcommands(&[]) {
        // The case arm that moves completion into the subcommand.
        assert!(
            script.contains(&format!("vmctl,{name})")),
            "bash completion does not mention `{name}`"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vmctl.bash");
    std::fs::write(&file, &script).unwrap();
    let out = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "bash -n rejects the completion script: {}",
        text(&out.stderr)
    );
    // Sourced, it registers the completion function for `vmctl`.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p vmctl", file.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success() && text(&out.stdout).contains("_vmctl"),
        "sourcing the script registers no completion: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn zsh_and_fish_completions_name_every_command() {
    let commands = listed_subcommands(&[]);
    for shell in ["zsh", "fish"] {
        let script = vmctl_ok(&["completions", shell]);
        assert!(!script.trim().is_empty(), "{shell} completion is empty");
        for name in &commands {
            assert!(
                script.contains(&format!("'{name}:")) || script.contains(&format!("-a \"{name}\"")),
                "{shell} completion does not offer `{name}`"
            );
        }
        assert!(
            !script.contains("teleport"),
            "{shell} offers a command vmctl lacks"
        );
    }
}

#[test]
fn completions_refuse_an_unknown_shell() {
    let out = vmctl_cmd().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("bash, zsh, fish"));
}

#[test]
fn man_writes_one_page_per_command() {
    let mut paths = Vec::new();
    command_paths(&[], &mut paths);
    let mut expected: BTreeSet<String> = paths
        .iter()
        .map(|p| format!("vmctl-{}.1", p.join("-")))
        .collect();
    expected.insert("vmctl.1".to_string());
    assert!(expected.contains("vmctl-ops-stop.1"), "{expected:?}");

    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man1");
    vmctl_ok(&["man", "--out", out_dir.to_str().unwrap()]);
    let written: BTreeSet<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(written, expected);

    for page in &written {
        let body = std::fs::read_to_string(out_dir.join(page)).unwrap();
        let name = page.trim_end_matches(".1");
        // clap_mangen opens with two groff string definitions (`.ie`/`.el`), then the title.
        let first = body
            .lines()
            .find(|l| !l.starts_with(".ie") && !l.starts_with(".el"))
            .unwrap_or_default();
        assert!(
            first.starts_with(&format!(".TH {name} 1 ")),
            "{page} does not open with its .TH title: {first:?}"
        );
        assert!(body.contains(".SH NAME"), "{page} has no NAME section");
        assert!(
            first.contains("vmctl 0.1.0 ("),
            "{page}'s footer: {first:?}"
        );
    }
    let stop = std::fs::read_to_string(out_dir.join("vmctl-ops-stop.1")).unwrap();
    assert!(stop.contains("\\-\\-dry\\-run"), "{stop}");
}

/// The commit `--version` should name: git's short hash of HEAD, when this is a checkout.
fn head_commit() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(repo())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| text(&out.stdout).trim().to_string())
}

#[test]
fn version_names_the_commit_in_both_binaries() {
    require_tool("git");
    let head = head_commit();
    for (bin, mut cmd) in [("vmctl", vmctl_cmd()), ("vmlint", vmlint_cmd())] {
        let out = cmd.arg("--version").output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let line = text(&out.stdout).trim_end().to_string();
        let re = regex::Regex::new(&format!(
            r"^{bin} 0\.1\.0 \(([0-9a-f]{{7,}})(-dirty)?\)$|^{bin} 0\.1\.0 \(unknown\)$"
        ))
        .unwrap();
        let caps = re
            .captures(&line)
            .unwrap_or_else(|| panic!("{bin} --version: {line:?}"));
        match (&head, caps.get(1)) {
            (Some(head), Some(hash)) => assert_eq!(hash.as_str(), head, "{bin}: {line}"),
            (Some(head), None) => panic!("{bin} says unknown inside a checkout at {head}"),
            (None, _) => {}
        }
    }
}
