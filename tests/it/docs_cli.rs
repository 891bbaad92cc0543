//! `vmctl docs` on a copy of the demo fleet: the generated file is snapshotted, text around
//! the markers survives byte for byte, `--check` reports staleness, broken markers are refused
//! with the file untouched.

use std::path::Path;

use crate::support::{demo_fleet, repo, text, vmctl};

fn docs(root: &Path) -> String {
    std::fs::read_to_string(root.join("docs/machines.md")).unwrap()
}

/// The parts of a machines.md outside the generated sections (marker lines excluded).
fn outside_markers(s: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut inside = false;
    for line in s.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with("<!-- vmctl:begin ") {
            inside = true;
        } else if t.starts_with("<!-- vmctl:end ") {
            inside = false;
            parts.push(String::new());
        } else if !inside {
            parts.last_mut().unwrap().push_str(line);
        }
    }
    parts
}

#[test]
fn demo_fleet_docs_are_generated_then_stable() {
    let fleet = demo_fleet();
    let root = fleet.path();
    let out = vmctl(root, &["docs"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "docs/machines.md: created\n");
    let first = docs(root);
    insta::assert_snapshot!("demo_machines_md", first);

    let again = vmctl(root, &["docs"]);
    assert_eq!(text(&again.stdout), "docs/machines.md is up to date\n");
    assert_eq!(docs(root), first, "same inputs, same bytes");
    assert_eq!(vmctl(root, &["docs", "--check"]).status.code(), Some(0));

    let stdout = vmctl(root, &["docs", "--stdout"]);
    assert_eq!(text(&stdout.stdout), first);
}

const HAND_WRITTEN: &str = "# Our machines\r\n\
\r\n\
Written by hand: the NAS lives in the closet.  \r\n\
\r\n\
<!-- vmctl:begin inventory -->\r\n\
old table\r\n\
<!-- vmctl:end inventory -->\r\n\
\r\n\
## Between sections\r\n\
Trailing spaces and CRLF stay.   \r\n\
<!-- vmctl:begin vm-test-automation -->\r\n\
stale\r\n\
<!-- vmctl:end vm-test-automation -->\r\n\
<!-- vmctl:begin vm-retired -->\r\n\
a VM that left definitions.nix\r\n\
<!-- vmctl:end vm-retired -->\r\n\
Final words without a newline";

#[test]
fn hand_written_text_survives_regeneration_byte_for_byte() {
    let fleet = demo_fleet();
    let root = fleet.path();
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::write(root.join("docs/machines.md"), HAND_WRITTEN).unwrap();

    let check = vmctl(root, &["docs", "--check"]);
    assert_eq!(check.status.code(), Some(1));
    assert!(
        text(&check.stderr).contains("run `vmctl docs`"),
        "{}",
        text(&check.stderr)
    );
    assert_eq!(docs(root), HAND_WRITTEN, "--check writes nothing");

    let out = vmctl(root, &["docs"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    insta::assert_snapshot!("hand_written_stdout", text(&out.stdout));
    let after = docs(root);
    insta::assert_snapshot!("hand_written_machines_md", after.replace('\r', "␍"));

    // Every byte outside the markers is the original's; new sections only come after it.
    let old_parts = outside_markers(HAND_WRITTEN);
    let new_parts = outside_markers(&after);
    assert!(after
        .starts_with("# Our machines\r\n\r\nWritten by hand: the NAS lives in the closet.  \r\n"));
    assert_eq!(new_parts[..2], old_parts[..2]);
    assert!(after
        .contains("<!-- vmctl:end vm-test-automation -->\r\nFinal words without a newline\r\n"));
    assert!(
        !after.contains("vm-retired") && !after.contains("stale") && !after.contains("old table")
    );
    assert_eq!(
        after.matches('\n').count(),
        after.matches("\r\n").count(),
        "CRLF kept"
    );

    assert_eq!(vmctl(root, &["docs", "--check"]).status.code(), Some(0));
    let again = vmctl(root, &["docs"]);
    assert_eq!(text(&again.stdout), "docs/machines.md is up to date\n");
    assert_eq!(docs(root), after);
}

#[test]
fn broken_markers_are_refused_and_the_file_is_untouched() {
    let fleet = demo_fleet();
    let root = fleet.path();
    std::fs::create_dir_all(root.join("docs")).unwrap();
    for broken in [
        "intro\n<!-- vmctl:begin inventory -->\nno end\n",
        "<!-- vmctl:end inventory -->\n",
        "<!-- vmctl:begin template -->\n<!-- vmctl:end template -->\n<!-- vmctl:begin template -->\n<!-- vmctl:end template -->\n",
    ] {
        std::fs::write(root.join("docs/machines.md"), broken).unwrap();
        let out = vmctl(root, &["docs"]);
        assert_eq!(out.status.code(), Some(1), "{broken}");
        assert!(text(&out.stderr).contains("line "), "{}", text(&out.stderr));
        assert_eq!(docs(root), broken);
    }
}

#[test]
fn a_new_vm_makes_the_docs_stale_and_gets_its_section_in_vmid_order() {
    let fleet = demo_fleet();
    let root = fleet.path();
    assert_eq!(vmctl(root, &["docs"]).status.code(), Some(0));
    let defs_path = root.join("vms/definitions.nix");
    let defs = std::fs::read_to_string(&defs_path).unwrap();
    let defs = defs.replacen(
        "  managed = {\n",
        "  managed = {\n    web = {\n      vmid = 112;\n      cores = 1;\n      memory = 1024;\n      disk = \"10G\";\n      purpose = \"Web | proxy\";\n    };\n\n",
        1,
    );
    std::fs::write(&defs_path, defs).unwrap();
    let check = vmctl(root, &["docs", "--check"]);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check.stderr));
    let out = vmctl(root, &["docs"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "docs/machines.md: regenerated; added vm-web\n"
    );
    let after = docs(root);
    assert!(after.contains("| 112 | web | Web \\| proxy | 1 | 1 GiB | 10G | prom | managed |"));
    assert!(after.contains("| managed | 110–199 | 2 | 111 |"));
    let ta = after.find("vmctl:end vm-test-automation").unwrap();
    let web = after.find("vmctl:begin vm-web").unwrap();
    assert!(ta < web);
}

/// The repository's own docs/machines.md is the generated one for the demo fleet.
#[test]
fn the_committed_demo_docs_are_up_to_date() {
    let out = vmctl(repo(), &["docs", "--check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "docs/machines.md is stale: run `cargo run -- docs`\n{}",
        text(&out.stderr)
    );
}
