//! Shared test helpers: the real sops as an oracle for `.sops.yaml` edits.

use std::process::Command;

use regex_syntax::hir::{Class, Hir, HirKind};

/// The real sops, as `secrets::sops_bin` finds it.
pub fn sops() -> Command {
    let mut c = Command::new(super::secrets::sops_bin());
    c.env("SOPS_DISABLE_VERSION_CHECK", "1");
    c
}

fn pick_char(ranges: impl Iterator<Item = (u32, u32)>) -> char {
    let ranges: Vec<(u32, u32)> = ranges.collect();
    for want in ['a', 'x', '0', '_'] {
        let w = want as u32;
        if ranges.iter().any(|(s, e)| *s <= w && w <= *e) {
            return want;
        }
    }
    let (s, _) = ranges[0];
    char::from_u32(s).unwrap_or('a')
}

fn gen(h: &Hir, branch: &mut Vec<usize>, depth: &mut usize, out: &mut String) {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(l) => out.push_str(std::str::from_utf8(&l.0).unwrap()),
        HirKind::Class(Class::Unicode(c)) => out.push(pick_char(
            c.ranges()
                .iter()
                .map(|r| (r.start() as u32, r.end() as u32)),
        )),
        HirKind::Class(Class::Bytes(c)) => out.push(pick_char(
            c.ranges()
                .iter()
                .map(|r| (r.start() as u32, r.end() as u32)),
        )),
        HirKind::Repetition(r) => {
            for _ in 0..r.min.max(1) {
                gen(&r.sub, branch, depth, out);
            }
        }
        HirKind::Capture(c) => gen(&c.sub, branch, depth, out),
        HirKind::Concat(v) => v.iter().for_each(|x| gen(x, branch, depth, out)),
        HirKind::Alternation(v) => {
            let i = branch.get(*depth).copied().unwrap_or(0) % v.len();
            *depth += 1;
            gen(&v[i], branch, depth, out)
        }
    }
}

/// A path that `rules[target]` matches and no earlier rule does (sops takes the first match);
/// `None` for a rule without path_regex, which matches anything.
pub fn sample_path(rules: &[Option<String>], target: usize) -> String {
    let matches = |re: &Option<String>, p: &str| match re {
        Some(r) => regex::Regex::new(r).unwrap().is_match(p),
        None => true,
    };
    let Some(re) = &rules[target] else {
        assert!(
            rules[..target].iter().all(|r| r.is_some()),
            "an earlier catch-all shadows rule {target}"
        );
        return "secret.yaml".into();
    };
    let hir = regex_syntax::parse(re).unwrap();
    for variant in 0..64usize {
        let branch: Vec<usize> = (0..6).map(|i| (variant >> i) & 1).collect();
        let mut out = String::new();
        gen(&hir, &mut branch.clone(), &mut 0, &mut out);
        let out = out.trim_start_matches('/').to_string();
        for candidate in [out.clone(), format!("x/{out}")] {
            if matches(&rules[target], &candidate)
                && !rules[..target].iter().any(|r| matches(r, &candidate))
            {
                return candidate;
            }
        }
    }
    panic!("no sample path reaches rule {target} (`{re}`) first");
}

/// The creation rules' path_regex values, read with the YAML parser.
pub fn rule_regexes(config: &str) -> Vec<Option<String>> {
    let v = vmctl::yaml::value::load_raw(config).unwrap();
    v["creation_rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| {
            r.get("path_regex")
                .and_then(|p| p.as_str())
                .map(String::from)
        })
        .collect()
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Which age recipients sops gives the first key group of a new file at `path` under
/// `config`, asked two ways: `sops encrypt` (when no rule needs PGP keys we do not have),
/// and `sops updatekeys` on a file first encrypted to `identity`'s recipient (sops prints the
/// groups the rule yields before asking to confirm; we answer no).
pub fn sops_first_group(config: &str, path: &str, recipient: &str, identity: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let gnupg = dir.path().join(".gnupg");
    std::fs::create_dir(&gnupg).unwrap();
    std::fs::write(dir.path().join(".sops.yaml"), config).unwrap();
    let file = dir.path().join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "{\"data\": \"hello\"}\n").unwrap();
    let mut cmd = sops();
    cmd.current_dir(dir.path())
        .env("GNUPGHOME", &gnupg)
        .env_remove("SOPS_AGE_KEY_FILE")
        .args([
            "--config",
            ".sops.yaml",
            "encrypt",
            "--input-type",
            "json",
            "--output-type",
            "json",
        ]);
    let via_encrypt = if config.contains("pgp") {
        None
    } else {
        let out = run_ok(cmd.arg(path));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let sops = &v["sops"];
        let group: Vec<String> = match sops.get("key_groups") {
            Some(groups) => groups[0]["age"].as_array().cloned().unwrap_or_default(),
            None => sops["age"].as_array().cloned().unwrap_or_default(),
        }
        .iter()
        .map(|a| a["recipient"].as_str().unwrap().to_string())
        .collect();
        Some(group)
    };

    // updatekeys: encrypt to `recipient` only, then let sops show the rule's groups.
    let enc = run_ok(
        sops()
            .current_dir(dir.path())
            .env("GNUPGHOME", &gnupg)
            .args([
                "encrypt",
                "--input-type",
                "json",
                "--output-type",
                "json",
                "--age",
                recipient,
            ])
            .arg(path),
    );
    std::fs::write(&file, enc).unwrap();
    let mut child = sops()
        .current_dir(dir.path())
        .env("GNUPGHOME", &gnupg)
        .env("SOPS_AGE_KEY", identity)
        .args([
            "--config",
            ".sops.yaml",
            "updatekeys",
            "--input-type",
            "json",
        ])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let mut group = Vec::new();
    if stdout.contains("Group 1") {
        let mut in_first = false;
        for line in stdout.lines() {
            if line.starts_with("Group ") {
                in_first = line.trim() == "Group 1";
                continue;
            }
            if !in_first {
                continue;
            }
            if let Some(k) = line.strip_prefix("    ") {
                group.push(k.trim().to_string());
            } else if let Some(k) = line.strip_prefix("+++ ") {
                group.push(k.trim().to_string());
            }
            // `--- KEY` lines are keys the rule does not list.
        }
    } else if stderr.contains("already up to date") {
        group.push(recipient.to_string());
    } else {
        panic!("unexpected `sops updatekeys` output:\n{stdout}\n{stderr}");
    }
    let group: Vec<String> = group
        .into_iter()
        .filter(|k| k.starts_with("age1"))
        .collect();
    if let Some(enc) = via_encrypt {
        let (mut a, mut b) = (enc.clone(), group.clone());
        a.sort();
        b.sort();
        assert_eq!(a, b, "sops encrypt and sops updatekeys agree on the group");
    }
    group
}
