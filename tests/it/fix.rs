//! `vmlint --fix`, `--unsafe-fixes` and `--diff` on every lint fixture with a fix: the result
//! lints without the fixed code, fixing twice equals fixing once, and every byte outside the
//! fixes' edits is unchanged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support;

/// `vmlint ARGS` in `dir` (the fixture's `.lint-paths` and `.lint-as` honoured), without Nix.
fn vmlint(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut c = support::vmlint_cmd();
    c.current_dir(dir).args(["--no-nix"]).args(args);
    if let Ok(paths) = std::fs::read_to_string(dir.join(".lint-paths")) {
        c.args(paths.lines());
    }
    if let Ok(kind) = std::fs::read_to_string(dir.join(".lint-as")) {
        c.args(["--as", kind.trim()]);
    }
    c.output().expect("vmlint runs")
}

fn json(dir: &Path) -> Vec<serde_json::Value> {
    let out = vmlint(dir, &["--format", "json"]);
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout)
        .unwrap_or_else(|e| panic!("{}: {e}: {}", dir.display(), support::text(&out.stdout)))
}

/// Every file of a directory tree with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                // The lock's directory is vmctl's runtime state, not the fleet.
                if p.file_name().is_some_and(|n| n != ".vmctl") {
                    todo.push(p);
                }
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

/// True when every change from `old` to `new` lies inside one of `edits` (byte ranges of
/// `old`), compared character by character.
fn changes_inside(old: &str, new: &str, edits: &[(usize, usize)]) -> Result<(), String> {
    let char_at = |byte: usize| old[..byte].chars().count();
    let ranges: Vec<(usize, usize)> = edits
        .iter()
        .map(|(s, e)| (char_at(*s), char_at(*e)))
        .collect();
    let diff = similar::TextDiff::from_chars(old, new);
    for op in diff.ops() {
        if matches!(op.tag(), similar::DiffTag::Equal) {
            continue;
        }
        let r = op.old_range();
        if !ranges.iter().any(|(s, e)| *s <= r.start && r.end <= *e) {
            return Err(format!(
                "a change at characters {r:?} outside every fix {ranges:?}"
            ));
        }
    }
    Ok(())
}

#[test]
fn unsafe_fixes_fix_every_fixture_with_a_fix_once_and_touch_nothing_else() {
    let root = support::fixture("lint");
    let mut fixed_codes = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap().flatten() {
        let src = entry.path();
        if !src.is_dir() {
            continue;
        }
        let before = json(&src);
        let fixable: Vec<&serde_json::Value> =
            before.iter().filter(|d| d.get("fix").is_some()).collect();
        if fixable.is_empty() {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        support::copy_dir(&src, tmp.path());
        let dir = tmp.path();
        let original = snapshot(dir);

        // --diff writes nothing and says there is something to fix.
        let diff = vmlint(dir, &["--diff", "--unsafe-fixes"]);
        assert_eq!(
            diff.status.code(),
            Some(1),
            "{}",
            support::text(&diff.stderr)
        );
        assert!(
            support::text(&diff.stdout).contains("+++ b/"),
            "{}",
            support::text(&diff.stdout)
        );
        assert_eq!(snapshot(dir), original, "{}: --diff wrote", src.display());

        let out = vmlint(dir, &["--unsafe-fixes"]);
        assert_ne!(
            out.status.code(),
            Some(2),
            "{}: {}",
            src.display(),
            support::text(&out.stderr)
        );
        let once = snapshot(dir);
        assert_ne!(once, original, "{}: nothing was fixed", src.display());

        // The fixed codes are gone (their fixes applied), and nothing else moved.
        let after = json(dir);
        for d in &fixable {
            let code = d["code"].as_str().unwrap();
            assert!(
                !after
                    .iter()
                    .any(|a| a["code"] == code && a.get("fix").is_some()),
                "{}: {code} still has a fix after --unsafe-fixes: {after:#?}",
                src.display()
            );
            fixed_codes.push(code.to_string());
        }
        let mut edits: BTreeMap<PathBuf, Vec<(usize, usize)>> = BTreeMap::new();
        for d in &fixable {
            for e in d["fix"]["edits"].as_array().unwrap() {
                let range = &e["range"];
                edits
                    .entry(PathBuf::from(e["file"].as_str().unwrap()))
                    .or_default()
                    .push((
                        range["start"]["offset"].as_u64().unwrap() as usize,
                        range["end"]["offset"].as_u64().unwrap() as usize,
                    ));
            }
        }
        for (file, bytes) in &original {
            let now = &once[file];
            if now == bytes {
                continue;
            }
            let Some(ranges) = edits.get(file) else {
                panic!(
                    "{}: {} changed without a fix in it",
                    src.display(),
                    file.display()
                );
            };
            let (old, new) = (
                std::str::from_utf8(bytes).unwrap(),
                std::str::from_utf8(now).unwrap(),
            );
            changes_inside(old, new, ranges)
                .unwrap_or_else(|e| panic!("{}: {}: {e}", src.display(), file.display()));
        }

        // Twice == once.
        let again = vmlint(dir, &["--unsafe-fixes"]);
        assert_ne!(again.status.code(), Some(2));
        assert_eq!(
            snapshot(dir),
            once,
            "{}: a second --unsafe-fixes changed more",
            src.display()
        );
        let diff = vmlint(dir, &["--diff", "--unsafe-fixes"]);
        assert_eq!(
            diff.status.code(),
            Some(0),
            "{}",
            support::text(&diff.stdout)
        );
    }
    // The rules known to compute fixes each had a fixture here.
    for code in ["DF003", "SP004", "FL002", "VM015"] {
        assert!(
            fixed_codes.iter().any(|c| c == code),
            "no fixture fixed {code}: {fixed_codes:?}"
        );
    }
}

/// `--fix` applies only safe fixes: on a fixture whose fixes are all unsafe it writes nothing.
#[test]
fn fix_without_unsafe_leaves_unsafe_fixes_alone() {
    let tmp = tempfile::tempdir().unwrap();
    support::copy_dir(&support::fixture("lint/DF003"), tmp.path());
    let before = snapshot(tmp.path());
    let out = vmlint(tmp.path(), &["--fix"]);
    assert_eq!(out.status.code(), Some(1), "{}", support::text(&out.stderr));
    assert_eq!(snapshot(tmp.path()), before);
    assert!(
        support::text(&out.stderr).contains("applied 0 fixes"),
        "{}",
        support::text(&out.stderr)
    );
}

/// The duplicate VMID's fix gives the later VM the next VMID no VM uses in the range holding
/// its VMID (the demo fleet's managed `web` is given imported `doc1`'s 104: range 100–109).
#[test]
fn a_duplicate_vmid_moves_to_the_next_free_one_in_its_range() {
    let fleet = support::demo_fleet();
    let defs = fleet.path().join("vms/definitions.nix");
    let text = std::fs::read_to_string(&defs).unwrap();
    assert_eq!(
        text.matches("vmid = 110;").count(),
        1,
        "the demo fleet changed"
    );
    let broken = text.replace("vmid = 110;", "vmid = 104;");
    std::fs::write(&defs, &broken).unwrap();
    let used: Vec<u32> = regex::Regex::new(r"vmid = (\d+);")
        .unwrap()
        .captures_iter(&broken)
        .map(|c| c[1].parse().unwrap())
        .collect();
    let next = (100..=109).find(|v| !used.contains(v)).unwrap();
    let out = vmlint(fleet.path(), &["--unsafe-fixes"]);
    assert_ne!(out.status.code(), Some(2), "{}", support::text(&out.stderr));
    let fixed = std::fs::read_to_string(&defs).unwrap();
    assert_eq!(
        fixed,
        text.replace("vmid = 110;", &format!("vmid = {next};"))
    );
    assert!(!json(fleet.path()).iter().any(|d| d["code"] == "VM001"));
}
