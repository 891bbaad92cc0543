//! Every command's `--help`: each argument described and at least one example shown
//! (issue 9). Walks the commands the way `--help` lists them, so a new command is covered
//! without touching this file.

use crate::support::{text, vmctl_cmd, vmlint_cmd};

/// `vmctl ARGS --help` (or `vmlint --help` when `vmlint`), failing on a non-zero exit.
fn help_of(vmlint: bool, args: &[&str]) -> String {
    let mut cmd = if vmlint { vmlint_cmd() } else { vmctl_cmd() };
    let out = cmd.args(args).arg("--help").output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} --help failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The lines of the section headed `name:` (up to the next blank-line-then-heading).
fn section<'a>(help: &'a str, name: &str) -> Vec<&'a str> {
    let Some(rest) = help.split(&format!("\n{name}:\n")).nth(1) else {
        return Vec::new();
    };
    rest.lines()
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .collect()
}

/// The subcommands listed under `Commands:` (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    section(help, "Commands")
        .into_iter()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Every command path of vmctl (the root is `[]`), with its help text.
fn all_helps(prefix: &[String], out: &mut Vec<(Vec<String>, String)>) {
    let args: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let help = help_of(false, &args);
    let subs = subcommands(&help);
    out.push((prefix.to_vec(), help));
    for sub in subs {
        let mut path = prefix.to_vec();
        path.push(sub);
        all_helps(&path, out);
    }
}

/// The argument entries of `Options:`/`Arguments:` that have no description: an entry
/// starts at an indent of at most six (`-h, --help`, `      --fleet`, `<VMID>`); its description follows on the same line after two or
/// more spaces, or on the next, deeper-indented line (clap's long layout).
fn undescribed(help: &str) -> Vec<String> {
    let mut missing = Vec::new();
    for name in ["Options", "Arguments"] {
        let lines = section(help, name);
        for (i, line) in lines.iter().enumerate() {
            let entry = line.trim_start();
            let indent = line.len() - entry.len();
            let starts_entry = (2..=6).contains(&indent) && entry.starts_with(['-', '<', '[']);
            if !starts_entry {
                continue;
            }
            let same_line = entry
                .split_once("  ")
                .is_some_and(|(_, text)| !text.trim().is_empty());
            let next_line = lines
                .get(i + 1)
                .is_some_and(|n| n.starts_with("          ") && !n.trim().is_empty());
            if !same_line && !next_line {
                missing.push(entry.to_string());
            }
        }
    }
    missing
}

/// Whether the help has an `Examples:` section with a line running `bin`.
fn has_example(help: &str, bin: &str) -> bool {
    section(help, "Examples")
        .iter()
        .any(|l| l.starts_with(&format!("  {bin} ")))
}

#[test]
fn the_walker_sees_the_commands_and_arguments() {
    // Guards the parsers: with clap's layout changed, the checks below would pass on nothing.
    let mut helps = Vec::new();
    all_helps(&[], &mut helps);
    assert!(helps.len() > 40, "only {} commands walked", helps.len());
    let stop = helps
        .iter()
        .find(|(p, _)| p == &["ops", "stop"])
        .expect("ops stop walked");
    assert!(section(&stop.1, "Options")
        .iter()
        .any(|l| l.contains("--dry-run")));
    assert!(section(&stop.1, "Arguments")
        .iter()
        .any(|l| l.contains("VMID")));
    // A bare entry is caught, described ones are not.
    let fake = "x\n\nOptions:\n      --bare\n  -h, --help  Print help\n";
    assert_eq!(undescribed(fake), vec!["--bare".to_string()]);
    assert!(!has_example(fake, "vmctl"));
    assert!(has_example("x\n\nExamples:\n  vmctl ops list\n", "vmctl"));
}

#[test]
fn every_argument_of_every_command_is_described() {
    let mut helps = Vec::new();
    all_helps(&[], &mut helps);
    let mut bad = Vec::new();
    for (path, help) in &helps {
        for arg in undescribed(help) {
            bad.push(format!("vmctl {}: {arg}", path.join(" ")));
        }
    }
    for arg in undescribed(&help_of(true, &[])) {
        bad.push(format!("vmlint: {arg}"));
    }
    assert!(
        bad.is_empty(),
        "arguments without a description:\n{}",
        bad.join("\n")
    );
}

#[test]
fn every_command_shows_an_example() {
    let mut helps = Vec::new();
    all_helps(&[], &mut helps);
    let mut bad: Vec<String> = helps
        .iter()
        .filter(|(_, help)| !has_example(help, "vmctl"))
        .map(|(path, _)| format!("vmctl {}", path.join(" ")))
        .collect();
    if !has_example(&help_of(true, &[]), "vmlint") {
        bad.push("vmlint".to_string());
    }
    assert!(
        bad.is_empty(),
        "commands without an example:\n{}",
        bad.join("\n")
    );
}
