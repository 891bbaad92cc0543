//! One spelling per setting (issue 9): the `settings.*` names of definitions.nix agree between
//! the code (`SETTINGS_FIELDS`), the docs, README, `--help` and the messages in `src/`, and any
//! other spelling is refused with a did-you-mean.

use std::collections::BTreeSet;

use clap::CommandFactory;
use regex::Regex;
use vmctl::model::definitions::SETTINGS_FIELDS;

use crate::support::{read_repo, repo, text, vmlint_cmd};

/// Every `settings.NAME` in `text` (not a file name such as `cli_settings.rs`).
fn mentioned(text: &str) -> Vec<String> {
    let re = Regex::new(r"(?:^|[^A-Za-z0-9_/])settings\.([A-Za-z_][A-Za-z0-9_]*)").unwrap();
    re.captures_iter(text)
        .map(|c| c[1].to_string())
        .filter(|n| n != "rs")
        .collect()
}

/// The long help of every command of vmctl.
fn all_help(cmd: &mut clap::Command, out: &mut String) {
    out.push_str(&cmd.render_long_help().to_string());
    for sub in cmd.get_subcommands_mut() {
        all_help(sub, out);
    }
}

/// The string literals of the Rust sources under `src/` (comments name Rust fields such as
/// `settings.hosts_file`, which users never see).
fn source_strings(dir: &std::path::Path, lit: &Regex, out: &mut Vec<(String, String)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            source_strings(&p, lit, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(&p).unwrap();
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for m in lit.find_iter(line) {
                    out.push((p.display().to_string(), m.as_str().to_string()));
                }
            }
        }
    }
}

#[test]
fn every_setting_is_documented_and_every_documented_setting_exists() {
    let known: BTreeSet<&str> = SETTINGS_FIELDS.iter().copied().collect();
    let cli_md = read_repo("docs/cli.md");
    let documented: BTreeSet<String> = mentioned(&cli_md).into_iter().collect();
    for f in &known {
        assert!(
            documented.contains(*f),
            "settings.{f} is read by vmctl but docs/cli.md does not document it"
        );
    }
    let readme = read_repo("README.md");
    for f in &known {
        assert!(readme.contains(f), "README's settings line lacks {f}");
    }
    let mut help = String::new();
    all_help(&mut vmctl::cli::Cli::command(), &mut help);
    let mut places: Vec<(String, String)> = vec![("--help".into(), help)];
    for doc in std::fs::read_dir(repo().join("docs")).unwrap() {
        let p = doc.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            places.push((
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            ));
        }
    }
    places.push(("README.md".into(), readme));
    let literal = Regex::new(r#""(?:[^"\\]|\\.)*""#).unwrap();
    source_strings(&repo().join("src"), &literal, &mut places);
    let mut checked = 0;
    for (place, text) in &places {
        for name in mentioned(text) {
            assert!(
                known.contains(name.as_str()),
                "{place} spells a setting `settings.{name}`, which vmctl does not read; the names are {known:?}"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 20,
        "only {checked} mentions found: the scan is broken"
    );
}

#[test]
fn another_spelling_of_a_setting_is_refused_with_a_did_you_mean() {
    for field in SETTINGS_FIELDS {
        // hostsFile -> hosts_file, the spelling a Python or Rust user reaches for.
        let snake: String = field
            .chars()
            .flat_map(|c| {
                if c.is_ascii_uppercase() {
                    vec!['_', c.to_ascii_lowercase()]
                } else {
                    vec![c]
                }
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("vms")).unwrap();
        std::fs::write(
            dir.path().join("vms/definitions.nix"),
            format!(
                "{{\n  proxmox = {{ host = \"pve.lan\"; }};\n  settings.{snake} = \"x\";\n}}\n"
            ),
        )
        .unwrap();
        let out = vmlint_cmd()
            .args(["--no-nix", "--format", "json"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let diags: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let d = diags
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["code"] == "DF003")
            .unwrap_or_else(|| panic!("settings.{snake} is not refused: {diags}"));
        assert_eq!(
            d["help"],
            format!("did you mean `{field}`?"),
            "settings.{snake}: {d}"
        );
    }
}
