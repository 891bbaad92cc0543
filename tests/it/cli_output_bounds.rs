//! Output that stays bounded and ends quietly: a reader closing stdout or stderr early never
//! makes either binary panic, and pathological files (10,000 levels of nesting, a 5 MB line,
//! 20,000 broken lines) give a bounded number of diagnostics and bounded output, without a
//! stack overflow or quadratic time.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::text;

/// A definitions.nix with `n` managed VMs that each have two errors (lots of output).
fn noisy_fleet(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir.join("vms")).unwrap();
    let mut s = String::from("{\n  proxmox = { host = \"pve.lan\"; };\n  managed = {\n");
    for i in 0..n {
        s.push_str(&format!(
            "    vm{i} = {{ vmid = {}; cores = 0; memory = 4; disk = \"20G\"; }};\n",
            1000 + i
        ));
    }
    s.push_str("  };\n}\n");
    std::fs::write(dir.join("vms/definitions.nix"), s).unwrap();
}

/// A fleet of `n` valid imported VMs (a long `vmctl docs --stdout`).
fn big_clean_fleet(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir.join("vms")).unwrap();
    let mut s = String::from("{\n  proxmox = { host = \"pve.lan\"; };\n  imported = {\n");
    for i in 0..n {
        s.push_str(&format!(
            "    vm{i} = {{ vmid = {}; readonly = true; purpose = \"a VM with a purpose that takes some room in the docs\"; }};\n",
            1000 + i
        ));
    }
    s.push_str("  };\n}\n");
    std::fs::write(dir.join("vms/definitions.nix"), s).unwrap();
}

/// Runs `bin args` with stdout (or stderr) read for one byte and then closed; returns the exit
/// status code and what the other stream said.
fn close_early(bin: &str, args: &[&str], dir: &Path, close_stderr: bool) -> (Option<i32>, String) {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("VMCTL_FLEET")
        .env("VMCTL_NO_NIX", "1")
        .stdin(Stdio::null());
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let out: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
    let err: Box<dyn Read + Send> = Box::new(child.stderr.take().unwrap());
    let (mut closed, mut kept) = if close_stderr { (err, out) } else { (out, err) };
    // The kept stream is drained on its own thread so the child never blocks on it.
    let other = std::thread::spawn(move || {
        let mut other = Vec::new();
        kept.read_to_end(&mut other).unwrap();
        other
    });
    let mut one = [0u8; 1];
    let _ = closed.read(&mut one);
    drop(closed);
    let other = other.join().unwrap();
    let status = child.wait().unwrap();
    (status.code(), text(&other))
}

fn assert_quiet(what: &str, (code, other): (Option<i32>, String)) {
    assert_ne!(code, Some(101), "{what}: panicked: {other}");
    assert!(code.is_some(), "{what}: killed by a signal");
    assert!(!other.contains("panicked"), "{what}: {other}");
}

#[test]
fn a_closed_stdout_or_stderr_ends_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let noisy = tmp.path().join("noisy");
    noisy_fleet(&noisy, 2000);
    let big = tmp.path().join("big");
    big_clean_fleet(&big, 2000);
    let vmlint = env!("CARGO_BIN_EXE_vmlint");
    let vmctl = env!("CARGO_BIN_EXE_vmctl");

    // Several hundred KB of diagnostics into a reader that takes one byte.
    let r = close_early(vmlint, &["--color", "never"], &noisy, false);
    assert_eq!(r.0, Some(1), "the lint result still decides the status");
    assert_quiet("vmlint | head -c1", r);
    assert_quiet(
        "vmlint --format json | head -c1",
        close_early(vmlint, &["--format", "json"], &noisy, false),
    );
    assert_quiet(
        "vmctl lint | head -c1",
        close_early(vmctl, &["lint", "--color", "never"], &noisy, false),
    );
    // vmctl's other commands print with `println!`.
    let (code, stderr) = close_early(vmctl, &["docs", "--stdout"], &big, false);
    assert_eq!(code, Some(141), "{stderr}");
    assert_quiet("vmctl docs --stdout | head -c1", (code, stderr));
    // A command that fails prints every error diagnostic to stderr.
    assert_quiet(
        "vmctl hosts add 2>&1 | head -c1",
        close_early(
            vmctl,
            &["hosts", "add", "vm1", "--key", "ssh-ed25519 AAAA"],
            &noisy,
            true,
        ),
    );
    assert_quiet(
        "vmlint 2>| head -c1",
        close_early(vmlint, &["--color", "never"], &noisy, true),
    );
}

/// Lints `file` with the binary; returns (status, stdout bytes, number of JSON diagnostics).
fn lint_file(file: &Path) -> (Option<i32>, usize, usize, String) {
    let human = crate::support::vmlint_cmd()
        .args(["--no-nix", "--color", "never"])
        .arg(file)
        .output()
        .unwrap();
    let json = crate::support::vmlint_cmd()
        .args(["--no-nix", "--format", "json"])
        .arg(file)
        .output()
        .unwrap();
    let diags: serde_json::Value = serde_json::from_slice(&json.stdout)
        .unwrap_or_else(|e| panic!("{}: {e}: {}", file.display(), text(&json.stderr)));
    (
        human.status.code(),
        human.stdout.len() + human.stderr.len(),
        diags.as_array().unwrap().len(),
        text(&human.stderr),
    )
}

#[test]
fn pathological_files_give_bounded_output() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 10_000;
    let cases: Vec<(&str, String)> = vec![
        ("lists", "[".repeat(n) + &"]".repeat(n)),
        ("sets", "{a=".repeat(n) + "1" + &";}".repeat(n)),
        ("parens", "(".repeat(n) + "1" + &")".repeat(n)),
        ("unclosed", "[".repeat(n)),
        ("lets", "let a = 1; in ".repeat(n) + "1"),
        ("lambdas", "x: ".repeat(n) + "1"),
        (
            "interpolations",
            "\"${\"".repeat(n / 2) + &"\"}".repeat(n / 2) + "\"",
        ),
        (
            "deep-in-definitions",
            "{ proxmox = { host = \"x\"; }; managed = ".to_string()
                + &"{a=".repeat(n)
                + "1"
                + &";}".repeat(n)
                + "; }",
        ),
        (
            "huge-line",
            format!("{{ a = \"{}\"; b = ; }}", "x".repeat(5 << 20)),
        ),
        (
            "broken-lines",
            "{\n".to_string() + &"a = = ; ]\n".repeat(20_000) + "}",
        ),
        (
            "hundred-thousand",
            "[".repeat(100_000) + &"]".repeat(100_000),
        ),
    ];
    for (name, src) in cases {
        let file = tmp.path().join(format!("{name}.nix"));
        std::fs::write(&file, &src).unwrap();
        let (code, bytes, diags, stderr) = lint_file(&file);
        assert!(
            matches!(code, Some(0) | Some(1)),
            "{name}: status {code:?}: {stderr}"
        );
        assert!(bytes < 16 << 10, "{name}: {bytes} bytes of output");
        assert!(diags <= 25, "{name}: {diags} diagnostics");
    }
}
