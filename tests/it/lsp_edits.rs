//! 1,000 seeded random edit sequences sent to `vmctl lsp` as incremental changes (UTF-16
//! ranges, multi-byte text, broken syntax on the way): the server never panics and its final
//! diagnostics equal vmlint's on the final text written to disk.

use serde_json::{json, Value};

use super::lsp::{fleet, Client};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Written independently of the server's conversion: the protocol position of a char
/// boundary `offset` (0-based line, UTF-16 units since the line's start).
fn position(text: &str, offset: usize) -> Value {
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    json!({ "line": line, "character": text[start..offset].encode_utf16().count() })
}

/// A random char boundary of `text`.
fn boundary(rng: &mut Rng, text: &str) -> usize {
    let mut o = rng.below(text.len() + 1);
    while !text.is_char_boundary(o) {
        o -= 1;
    }
    o
}

const PIECES: &[&str] = &[
    "vmid = 104;",
    "vmid = 109;",
    "cores = 2;",
    "memroy = 4096;",
    "{",
    "}",
    ";",
    " = ",
    "\"",
    "\n",
    "é",
    "😀",
    "managed.x = { vmid = 150; cores = 1; memory = 2048; disk = \"20G\"; };",
    "# ü\n",
    "publicKey = \"ssh-ed25519 AAAA\";",
    "readonly = true;",
    "let a = 1; in",
    "''",
    "\r\n",
    "",
];

/// vmlint's diagnostics (of a run over the fleet on disk) in `file`, as the protocol shows them.
fn vmlint_view(
    run: &vmctl::exec::lint::LintRun,
    file: &str,
) -> Vec<(String, Value, Value, String)> {
    let mut out = Vec::new();
    for d in &run.diagnostics {
        if run.fleet.db.path(d.span.file) != std::path::Path::new(file) {
            continue;
        }
        let text = run.fleet.db.text(d.span.file);
        let mut message = d.message.clone();
        if let Some(h) = &d.help {
            message.push_str(&format!("\nhelp: {h}"));
        }
        out.push((
            d.code().to_string(),
            position(text, d.span.range.start().into()),
            position(text, d.span.range.end().into()),
            message,
        ));
    }
    out
}

fn lsp_view(diags: &[Value]) -> Vec<(String, Value, Value, String)> {
    diags
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_string(),
                d["range"]["start"].clone(),
                d["range"]["end"].clone(),
                d["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_thousand_random_edit_sequences_end_where_vmlint_does() {
    let (_dir, root) = fleet();
    let files = ["vms/definitions.nix", "hosts.nix"];
    let base: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(root.join(f)).unwrap())
        .collect();
    let mut c = Client::start();
    let uris: Vec<String> = files
        .iter()
        .zip(&base)
        .map(|(f, t)| c.open(&root.join(f), t))
        .collect();
    let mut texts = base.clone();
    let mut version = 1;
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for seq in 0..1000 {
        // Each sequence starts from the demo fleet and makes 1 to 6 edits, mostly in
        // definitions.nix: every fourth as one didChange per edit, the others as one didChange
        // carrying them all (applied in order, as the protocol says).
        let mut changes: [Vec<Value>; 2] = [Vec::new(), Vec::new()];
        for i in 0..2 {
            if texts[i] != base[i] {
                changes[i].push(json!({ "text": base[i] }));
                texts[i] = base[i].clone();
            }
        }
        let one_by_one = seq % 4 == 0;
        for _ in 0..1 + rng.below(6) {
            let i = usize::from(rng.below(5) == 0);
            let text = &texts[i];
            let a = boundary(&mut rng, text);
            let b = if rng.below(3) == 0 {
                a
            } else {
                boundary(&mut rng, text)
            };
            let s = a.min(b);
            let mut e = a.max(b).min(s + 40);
            while !text.is_char_boundary(e) {
                e -= 1;
            }
            let piece = PIECES[rng.below(PIECES.len())];
            changes[i].push(json!({ "range": { "start": position(text, s), "end": position(text, e) }, "text": piece }));
            texts[i].replace_range(s..e, piece);
            if one_by_one {
                version += 1;
                let batch = std::mem::take(&mut changes[i]);
                c.notify(
                    "textDocument/didChange",
                    json!({ "textDocument": { "uri": uris[i], "version": version }, "contentChanges": batch }),
                );
            }
        }
        for i in 0..2 {
            if !changes[i].is_empty() {
                version += 1;
                let batch = std::mem::take(&mut changes[i]);
                c.notify(
                    "textDocument/didChange",
                    json!({ "textDocument": { "uri": uris[i], "version": version }, "contentChanges": batch }),
                );
            }
        }
        // The final text on disk, linted as vmlint does, against what the server published.
        for (i, f) in files.iter().enumerate() {
            std::fs::write(root.join(f), &texts[i]).unwrap();
        }
        let run = vmctl::exec::lint::lint(
            std::slice::from_ref(&root),
            None,
            &root,
            &vmctl::exec::lint::NixFallback::Off,
        )
        .unwrap();
        for (i, f) in files.iter().enumerate() {
            let got = lsp_view(&c.diagnostics(&uris[i]));
            let want = vmlint_view(&run, f);
            assert_eq!(got, want, "sequence {seq}, {f}:\n{}", texts[i]);
        }
    }
    for (i, f) in files.iter().enumerate() {
        std::fs::write(root.join(f), &base[i]).unwrap();
    }
    // The server is still serving.
    let s = c.request(
        "textDocument/documentSymbol",
        json!({ "textDocument": { "uri": uris[0] } }),
    );
    assert!(s.error.is_none(), "{s:?}");
    c.shutdown();
}
