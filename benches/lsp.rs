//! Benchmark: `vmctl lsp`, from sending `didChange` to receiving `publishDiagnostics`, on a
//! generated definitions.nix of 1,000 and of 10,000 lines (medians), and the server's memory
//! (RSS of the process) after 1,000 edits against after the first.
//!
//! Targets (issue 13): median under 5 ms at 1,000 lines and under 50 ms at 10,000; memory after
//! 1,000 edits within 10% of after the first. The server runs in this process over lsp-server's
//! in-memory connection (no pipe), as the protocol tests run it. `VMCTL_BENCH_QUICK=1` (CI)
//! takes fewer samples.
//!
//!     cargo bench --bench lsp

use std::path::Path;
use std::time::{Duration, Instant};

use lsp_server::{Connection, Message, Notification, Request, RequestId};
use serde_json::json;

/// A fleet whose definitions.nix has about `lines` lines (10 per managed VM).
fn write_fleet(dir: &Path, lines: usize) -> String {
    std::fs::create_dir_all(dir.join("vms")).unwrap();
    std::fs::create_dir_all(dir.join("hosts")).unwrap();
    let mut s = String::from("{\n  proxmox = { host = \"pve.lan\"; node = \"pve\"; };\n  vmidRanges.managed = { start = 10000; end = 99999; };\n  managed = {\n");
    for i in 0..lines / 10 {
        s.push_str(&format!(
            "    vm{i} = {{\n      vmid = {};\n      cores = {};\n      memory = 4096;\n      disk = \"20G\";\n      nixosConfig = \"vm{i}\";\n      purpose = \"generated VM {i}\";\n      tags = [ \"bench\" ];\n      services = [ ];\n    }};\n",
            10_000 + i,
            1 + i % 8
        ));
        std::fs::create_dir_all(dir.join(format!("hosts/vm{i}"))).unwrap();
    }
    s.push_str("  };\n}\n");
    std::fs::write(dir.join("vms/definitions.nix"), &s).unwrap();
    s
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct Session {
    conn: Connection,
    server: std::thread::JoinHandle<()>,
    uri: String,
    version: i32,
    /// Offset of the first `cores = N;` digit's line and column, toggled by every edit.
    line: usize,
    col: usize,
}

impl Session {
    fn start(root: &Path, text: &str) -> Session {
        let (server, conn) = Connection::memory();
        let handle = std::thread::spawn(move || {
            vmctl::lsp::serve(server, vmctl::exec::lint::NixFallback::Off).unwrap()
        });
        conn.sender
            .send(Message::Request(Request::new(
                RequestId::from(1),
                "initialize".into(),
                json!({ "capabilities": {} }),
            )))
            .unwrap();
        loop {
            if let Message::Response(_) = conn.receiver.recv().unwrap() {
                break;
            }
        }
        let notify = |m: &str, p| {
            conn.sender
                .send(Message::Notification(Notification::new(m.into(), p)))
                .unwrap()
        };
        notify("initialized", json!({}));
        let path = root.join("vms/definitions.nix");
        let uri = lsp_types::Url::from_file_path(&path).unwrap().to_string();
        notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": "nix", "version": 1, "text": text } }),
        );
        let (line, l) = text
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains("cores = "))
            .unwrap();
        let col = l.find("cores = ").unwrap() + "cores = ".len();
        let mut s = Session {
            conn,
            server: handle,
            uri,
            version: 1,
            line,
            col,
        };
        s.wait();
        s
    }

    /// Waits for the next publishDiagnostics; returns how many diagnostics it had.
    fn wait(&mut self) -> usize {
        loop {
            match self.conn.receiver.recv().unwrap() {
                Message::Notification(n) if n.method == "textDocument/publishDiagnostics" => {
                    return n.params["diagnostics"].as_array().unwrap().len()
                }
                _ => {}
            }
        }
    }

    /// One edit (the first VM's cores digit, alternately 3 and 1) and the time to its
    /// diagnostics.
    fn edit(&mut self) -> Duration {
        self.version += 1;
        let digit = if self.version % 2 == 0 { "3" } else { "1" };
        let range = json!({ "start": { "line": self.line, "character": self.col }, "end": { "line": self.line, "character": self.col + 1 } });
        let msg = Message::Notification(Notification::new(
            "textDocument/didChange".into(),
            json!({ "textDocument": { "uri": self.uri, "version": self.version }, "contentChanges": [{ "range": range, "text": digit }] }),
        ));
        let start = Instant::now();
        self.conn.sender.send(msg).unwrap();
        let n = self.wait();
        let took = start.elapsed();
        assert_eq!(n, 0, "the generated fleet lints clean");
        took
    }

    fn stop(self) {
        self.conn
            .sender
            .send(Message::Request(Request::new(
                RequestId::from(2),
                "shutdown".into(),
                json!(null),
            )))
            .unwrap();
        self.conn
            .sender
            .send(Message::Notification(Notification::new(
                "exit".into(),
                json!(null),
            )))
            .unwrap();
        self.server.join().unwrap();
    }
}

fn main() {
    let quick = std::env::var_os("VMCTL_BENCH_QUICK").is_some();
    println!("vmctl lsp: didChange -> publishDiagnostics (in-process server, median), and RSS");
    // Memory first, while the process holds nothing else: the 1,000-line file, RSS after the
    // first edit and after 1,000.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let text = write_fleet(&root, 1_000);
    let mut s = Session::start(&root, &text);
    s.edit();
    let first = rss_kib();
    for _ in 1..1_000 {
        s.edit();
    }
    let after = rss_kib();
    let growth = (after as f64 - first as f64) / first as f64 * 100.0;
    println!(
        "  RSS after the first edit {first} KiB, after 1,000 edits {after} KiB ({growth:+.1}%, target within 10%): {}",
        if growth.abs() <= 10.0 { "ok" } else { "MISSED" }
    );
    s.stop();
    for (lines, target_ms, samples) in [
        (1_000, 5.0, if quick { 21 } else { 201 }),
        (10_000, 50.0, if quick { 7 } else { 51 }),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let text = write_fleet(&root, lines);
        let mut s = Session::start(&root, &text);
        // Warm-up.
        for _ in 0..3 {
            s.edit();
        }
        let times: Vec<Duration> = (0..samples).map(|_| s.edit()).collect();
        let m = median(times);
        let ms = m.as_secs_f64() * 1e3;
        println!(
            "  {:>6} lines ({} VMs): median {ms:.2} ms over {samples} edits (target < {target_ms} ms): {}",
            text.lines().count(),
            lines / 10,
            if ms < target_ms { "ok" } else { "MISSED" }
        );
        s.stop();
    }
}
