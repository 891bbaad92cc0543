//! Benchmark: re-key N sops files natively (vmctl) versus `sops updatekeys --yes` per file.
//!
//!   cargo bench --bench rekey                     # 5 rounds of 200 files
//!   VMCTL_BENCH_QUICK=1 cargo bench --bench rekey # 3 rounds of 12 files, for CI (indicative)
//!
//! Needs the real sops (scripts/setup-test-tools.sh installs it). Starting files are written
//! by sops itself (YAML, JSON, binary, dotenv), then copied; every copy is re-keyed to add one
//! recipient, once by vmctl and once by sops, and the resulting recipient sets are compared.
//! The three ways run interleaved, in a rotating order, in every round; each figure is the
//! median over the rounds, so one slow moment on a shared machine does not decide it. sops is
//! run as vmctl runs it (exec/sops/binary.rs): the identity in `SOPS_AGE_KEY`, no stdin, the
//! version check off.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use vmctl::exec::sops::{self as xsops, FileStatus, RekeyOptions};
use vmctl::secrets::{Format, Identities, SopsFile};

const ADMIN: &str = "age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw";
const NEWVM: &str = "age17044m9wgakla6pzftf4srtl3h5mcsr85jysgt5fg23zpnta8sfdqhzn452";
// Public test identity of sops-nix (tests/fixtures/sops/sops-nix/age-keys.txt).
const ADMIN_KEY: &str =
    "AGE-SECRET-KEY-1NJT5YCS2LWU4V4QAJQ6R4JNU7LXPDX602DZ9NUFANVU5GDTGUWCQ5T59M6";

fn sops_bin() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("sops"))
            .find(|p| p.is_file())
    });
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin/sops");
    on_path
        .or_else(|| local.is_file().then_some(local))
        .expect("the real sops is needed: run eval \"$(./scripts/setup-test-tools.sh)\" first")
}

/// sops configured as vmctl's own calls configure it.
fn sops(dir: &Path) -> Command {
    let mut c = Command::new(sops_bin());
    c.current_dir(dir)
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .env("SOPS_AGE_KEY", format!("{ADMIN_KEY}\n"))
        .env_remove("SOPS_AGE_KEY_FILE")
        .stdin(std::process::Stdio::null());
    c
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn recipients(p: &Path) -> Vec<String> {
    let f = SopsFile::parse(Format::for_path(p), &std::fs::read_to_string(p).unwrap()).unwrap();
    let mut r = f.metadata.key_groups[0].keys.age.clone();
    r.sort();
    r
}

fn main() {
    let quick = std::env::var_os("VMCTL_BENCH_QUICK").is_some();
    let (n, rounds) = if quick { (12, 3) } else { (200, 5) };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let key_file = root.join("admin.txt");
    std::fs::write(&key_file, format!("{ADMIN_KEY}\n")).unwrap();

    // Templates written by sops itself, one per layout.
    let plain = root.join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let layouts = [
        (
            "yaml",
            "db:\n    password: hunter2\n    port: 5432\nlist:\n    - a\n    - b\n",
        ),
        (
            "json",
            "{\"db\":{\"password\":\"hunter2\",\"port\":5432}}\n",
        ),
        ("bin", "opaque secret blob\n"),
        ("env", "DB_PASSWORD=hunter2\nTOKEN=abc\n"),
    ];
    let mut templates = Vec::new();
    for (ext, text) in layouts {
        let p = plain.join(format!("t.{ext}"));
        std::fs::write(&p, text).unwrap();
        let out = plain.join(format!("t.enc.{ext}"));
        let o = sops(&plain)
            .args(["encrypt", "--age", ADMIN, "--output"])
            .arg(&out)
            .arg(&p)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        templates.push((ext, std::fs::read(&out).unwrap()));
    }
    let rule = format!("creation_rules:\n  - path_regex: ^secrets/\n    age: {ADMIN},{NEWVM}\n");
    let files = |f: &Path| xsops::walk_files(&f.join("secrets")).unwrap();
    let mut ids = Identities::new();
    ids.add_text(&format!("{ADMIN_KEY}\n"), "bench").unwrap();

    let (mut native, mut cli, mut sops_time) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Fresh copies every round: a re-keyed file has nothing left to do.
        let mut fleets = Vec::new();
        for name in ["native", "cli", "sops"] {
            let f = root.join(format!("{name}-{round}"));
            std::fs::create_dir_all(f.join("secrets")).unwrap();
            std::fs::write(f.join(".sops.yaml"), &rule).unwrap();
            for i in 0..n {
                let (ext, bytes) = &templates[i % templates.len()];
                std::fs::write(f.join(format!("secrets/s{i:03}.{ext}")), bytes).unwrap();
            }
            fleets.push(f);
        }
        let config = xsops::load_config(&fleets[0].join(".sops.yaml")).unwrap();
        let opts = RekeyOptions {
            dry_run: false,
            identities: &ids,
            sops: None,
            out: vmctl::exec::report::Reporter::default(),
        };
        for way in (0..3).map(|k| (k + round) % 3) {
            let t = Instant::now();
            match way {
                // 1. Native, in-process (the library the CLI uses).
                0 => {
                    for p in files(&fleets[0]) {
                        let r = xsops::rekey_file(&config, &p, p.display().to_string(), &opts);
                        assert_eq!(r.status, FileStatus::Rekeyed, "{:?}", r.error);
                    }
                    native.push(t.elapsed());
                }
                // 2. Native through the CLI: one `vmctl secrets rekey` process for all files.
                1 => {
                    let o = Command::new(env!("CARGO_BIN_EXE_vmctl"))
                        .current_dir(&fleets[1])
                        .env("SOPS_AGE_KEY_FILE", &key_file)
                        .args(["secrets", "rekey", "--config", ".sops.yaml"])
                        .args(files(&fleets[1]))
                        .output()
                        .unwrap();
                    cli.push(t.elapsed());
                    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                }
                // 3. The real sops, one process per file.
                _ => {
                    for p in files(&fleets[2]) {
                        let o = sops(&fleets[2])
                            .args(["updatekeys", "--yes"])
                            .arg(&p)
                            .output()
                            .unwrap();
                        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                    }
                    sops_time.push(t.elapsed());
                }
            }
        }
        for ((a, b), c) in files(&fleets[0])
            .iter()
            .zip(files(&fleets[1]))
            .zip(files(&fleets[2]))
        {
            let want = recipients(&c);
            assert_eq!(recipients(a), want, "{}", a.display());
            assert_eq!(recipients(&b), want, "{}", b.display());
        }
    }
    println!(
        "rekey benchmark: {n} files (yaml/json/binary/dotenv), adding one age recipient; median of {rounds} interleaved rounds"
    );
    let runs = |v: &[Duration]| {
        v.iter()
            .map(|d| format!("{:.0}", d.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "  runs (ms): native [{}], CLI [{}], sops [{}]",
        runs(&native),
        runs(&cli),
        runs(&sops_time)
    );
    let (native, cli, sops_time) = (median(native), median(cli), median(sops_time));

    let per = |d: Duration| d.as_secs_f64() * 1000.0 / n as f64;
    println!(
        "  vmctl native (library)      {:>9.1} ms total  {:>7.2} ms/file",
        native.as_secs_f64() * 1000.0,
        per(native)
    );
    println!(
        "  vmctl secrets rekey (CLI)   {:>9.1} ms total  {:>7.2} ms/file",
        cli.as_secs_f64() * 1000.0,
        per(cli)
    );
    println!(
        "  sops updatekeys --yes       {:>9.1} ms total  {:>7.2} ms/file",
        sops_time.as_secs_f64() * 1000.0,
        per(sops_time)
    );
    let speedup = sops_time.as_secs_f64() / cli.as_secs_f64();
    let verdict = match (speedup >= 10.0, quick) {
        (true, false) => "met",
        (false, false) => "NOT met",
        (true, true) => "met in quick mode (indicative only: few files; see ./scripts/bench.sh)",
        (false, true) => {
            "not met in quick mode (indicative only: few files on a shared machine; see ./scripts/bench.sh)"
        }
    };
    println!(
        "  speedup (CLI vs sops): {speedup:.1}x (library: {:.1}x); target >= 10x: {verdict}",
        sops_time.as_secs_f64() / native.as_secs_f64(),
    );
}
