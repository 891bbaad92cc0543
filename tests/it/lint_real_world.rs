//! Real-world fleet files from public repositories (tests/fixtures/real-world/): linted
//! without a panic, diagnostics snapshotted, and the upstream-broken file reported where Nix
//! reports it.

use crate::support;

use vmctl::exec::lint::{lint, LintRun, NixFallback};
use vmctl::model::fleet::NixRole;
use vmctl::text::line_col;

fn lint_as(rel: &str, role: NixRole) -> LintRun {
    let dir = support::fixture("real-world");
    lint(&[rel.into()], Some(role), &dir, &NixFallback::Off).expect("fixture readable")
}

fn compact(run: &LintRun) -> String {
    let mut s = String::new();
    for d in &run.diagnostics {
        let text = run.fleet.db.text(d.span.file);
        let (l1, c1) = line_col(text, d.span.range.start().into());
        let (l2, c2) = line_col(text, d.span.range.end().into());
        s.push_str(&format!(
            "{} {}:{}-{}:{} {}\n",
            d.code(),
            l1,
            c1,
            l2,
            c2,
            d.message
        ));
    }
    if s.is_empty() {
        s.push_str("(no diagnostics)\n");
    }
    s
}

#[test]
fn real_world_files_lint_without_panicking() {
    let cases = [("hosts", NixRole::Hosts), ("vms", NixRole::Definitions)];
    let mut n = 0;
    for (dir, role) in cases {
        let mut files: Vec<_> = std::fs::read_dir(support::fixture("real-world").join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        for f in files {
            let run = lint_as(&format!("{dir}/{f}"), role);
            insta::assert_snapshot!(format!("{dir}__{f}"), compact(&run));
            n += 1;
        }
    }
    assert_eq!(n, 9);
}

#[test]
fn the_upstream_broken_inventory_has_its_syntax_error_where_nix_sees_it() {
    // Asked of Nix itself (it says "syntax error, unexpected '}', expecting ';'").
    let rel = "hosts/nebulis-proxmox_nixos_inventory.nix";
    let nix_at =
        crate::support::nix_error_position(&crate::support::fixture(&format!("real-world/{rel}")))
            .unwrap();
    let run = lint_as(rel, NixRole::Hosts);
    let syntax: Vec<_> = run
        .diagnostics
        .iter()
        .filter(|d| d.code() == "NX001")
        .collect();
    assert!(!syntax.is_empty());
    let text = run.fleet.db.text(syntax[0].span.file);
    let (line, col) = line_col(text, syntax[0].span.range.start().into());
    assert_eq!((line, col), nix_at, "{}", syntax[0].message);
    assert!(
        syntax[0].message.contains("expected `;`"),
        "{}",
        syntax[0].message
    );
}
