//! Benchmark: `vmctl hosts add` on a generated hosts.nix of 5,000 hosts, against one parse of
//! the same file. The add is the whole library path (parse, locate, render, apply, re-parse
//! and verify); the target is at most three times one parse.
//!
//! `cargo bench --bench hosts_add`; `VMCTL_BENCH_QUICK=1` runs a few iterations only (CI).

use std::hint::black_box;
use std::time::{Duration, Instant};

use vmctl::edit::hosts::{edit_hosts, HostIntent, NewHost};

/// A hosts.nix shaped like the seed's (`let … in`, `_proxmox`, comments, blank lines).
fn generate(hosts: usize) -> String {
    let mut s = String::from(
        "# Fleet identity (generated for the benchmark).\nlet\n  admin = \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHxM2a6DvE298UXZdhKYSMrTPvzvceh5+ZJ77tKj9n0D admin@workstation\";\nin\n{\n  _proxmox = {\n    hostname = \"prom.lan\";\n    adminKeys = [ admin ];\n  };\n",
    );
    for i in 0..hosts {
        if i % 100 == 0 {
            s.push_str(&format!("\n  # rack {}\n", i / 100));
        } else {
            s.push('\n');
        }
        // A distinct, well-formed-looking key per host.
        let blob = format!("AAAAC3NzaC1lZDI1NTE5AAAAI{:0>43}", i);
        s.push_str(&format!(
            "  host{i} = {{\n    hostname = \"host{i}\";\n    sshAlias = \"host{i}\";\n    publicKey = \"ssh-ed25519 {blob}\";\n  }};\n"
        ));
    }
    s.push('}');
    s
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::var_os("VMCTL_BENCH_QUICK").is_some();
    let iterations = if quick { 11 } else { 30 };
    let text = generate(5_000);
    let intent = HostIntent::Add(NewHost {
        name: "newhost".into(),
        public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO8VKyhzcBQ4yMgYmcX8xILCt0u2lTGGk4vH1uMd4X9T root@new".into(),
        hostname: None,
        ssh_alias: None,
        vmid: Some(111),
    });

    // Sanity: the add works and changes the file.
    let out = edit_hosts(&text, &intent, None).expect("the add succeeds");
    assert!(out.change.is_change());

    // Parse and add are measured alternately, so both see the same machine load (CI runners
    // and shared machines are noisy); each figure is the median of its runs.
    let mut parse_runs = Vec::new();
    let mut locate_runs = Vec::new();
    let mut add_runs = Vec::new();
    for i in 0..=iterations {
        let t = Instant::now();
        let p = rnix::Root::parse(black_box(&text));
        black_box(p.errors().len());
        black_box(p.tree());
        drop(p);
        let parse = t.elapsed();
        let t = Instant::now();
        black_box(vmctl::edit::hosts::locate(black_box(&text)).unwrap());
        let locate = t.elapsed();
        let t = Instant::now();
        black_box(edit_hosts(black_box(&text), &intent, None).unwrap());
        let add = t.elapsed();
        // The first round warms caches and the allocator.
        if i > 0 {
            parse_runs.push(parse);
            locate_runs.push(locate);
            add_runs.push(add);
        }
    }
    let min_ratio = add_runs.iter().min().unwrap().as_secs_f64()
        / parse_runs.iter().min().unwrap().as_secs_f64();
    let (parse, locate, add) = (median(parse_runs), median(locate_runs), median(add_runs));
    let ratio = add.as_secs_f64() / parse.as_secs_f64();
    println!(
        "hosts_add: parse + locate (read every entry) {:.2} ms",
        locate.as_secs_f64() * 1e3
    );
    println!(
        "hosts_add: {} hosts, {} KB; median of {iterations}: parse {:.2} ms, full add {:.2} ms, ratio {ratio:.2} (target <= 3.0; fastest runs {min_ratio:.2}){}",
        5_000,
        text.len() / 1024,
        parse.as_secs_f64() * 1e3,
        add.as_secs_f64() * 1e3,
        if quick { " [quick]" } else { "" }
    );
    if ratio > 3.0 {
        let note = if quick {
            " (quick mode: few runs, indicative only; run the full benchmark)"
        } else {
            ""
        };
        eprintln!("hosts_add: ratio {ratio:.2} is above the 3.0 target{note}");
    }
}
