//! `vmctl lsp` over an in-memory connection: every request it serves, with malformed
//! parameters, unknown methods, positions outside the document and files outside any fleet
//! (each an error response, never a crash), and the diagnostics it pushes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lsp_server::{Connection, Message, Notification, Request, RequestId, Response};
use serde_json::{json, Value};

use crate::support;

/// The client side of a running server.
pub(crate) struct Client {
    conn: Connection,
    server: Option<std::thread::JoinHandle<Result<(), vmctl::lsp::LspError>>>,
    next: i32,
    /// Notifications received while waiting for something else.
    pub pending: Vec<Notification>,
}

impl Client {
    pub fn start() -> Client {
        let (server, conn) = Connection::memory();
        let handle = std::thread::spawn(move || {
            vmctl::lsp::serve(server, vmctl::exec::lint::NixFallback::Off)
        });
        let mut c = Client {
            conn,
            server: Some(handle),
            next: 0,
            pending: Vec::new(),
        };
        let init = c.request(
            "initialize",
            json!({ "capabilities": {}, "processId": null, "rootUri": null }),
        );
        assert!(init.error.is_none(), "{init:?}");
        let caps = &init.result.unwrap()["capabilities"];
        for cap in [
            "hoverProvider",
            "definitionProvider",
            "completionProvider",
            "documentSymbolProvider",
            "codeActionProvider",
        ] {
            assert!(!caps[cap].is_null(), "{cap} missing: {caps}");
        }
        c.notify("initialized", json!({}));
        c
    }

    fn recv(&self) -> Message {
        self.conn
            .receiver
            .recv_timeout(Duration::from_secs(60))
            .expect("the server answers within a minute")
    }

    pub fn request(&mut self, method: &str, params: Value) -> Response {
        self.next += 1;
        let id = RequestId::from(self.next);
        self.conn
            .sender
            .send(Message::Request(Request::new(
                id.clone(),
                method.into(),
                params,
            )))
            .unwrap();
        loop {
            match self.recv() {
                Message::Response(r) if r.id == id => return r,
                Message::Notification(n) => self.pending.push(n),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    pub fn notify(&self, method: &str, params: Value) {
        self.conn
            .sender
            .send(Message::Notification(Notification::new(
                method.into(),
                params,
            )))
            .unwrap();
    }

    /// The diagnostics last published for `uri` once the server has handled everything sent
    /// so far (a request is the barrier: the server handles messages in order).
    pub fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        let barrier = self.request("$/vmctl/barrier", Value::Null);
        assert!(barrier.error.is_some());
        let last = self
            .pending
            .iter()
            .rposition(|n| is_for(n, uri))
            .unwrap_or_else(|| panic!("no diagnostics published for {uri}: {:?}", self.pending));
        let n = self.pending.remove(last);
        self.pending.retain(|n| !is_for(n, uri));
        n.params["diagnostics"].as_array().unwrap().clone()
    }

    pub fn open(&self, path: &Path, text: &str) -> String {
        let uri = uri(path);
        let language = if path.extension().is_some_and(|e| e == "yaml") {
            "yaml"
        } else {
            "nix"
        };
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": language, "version": 1, "text": text } }),
        );
        uri
    }

    pub fn change_all(&self, uri: &str, version: i32, text: &str) {
        self.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [{ "text": text }] }),
        );
    }

    pub fn shutdown(mut self) {
        let r = self.request("shutdown", Value::Null);
        assert!(r.error.is_none());
        self.notify("exit", Value::Null);
        let result = self
            .server
            .take()
            .unwrap()
            .join()
            .expect("the server did not panic");
        assert!(result.is_ok(), "{result:?}");
    }
}

fn is_for(n: &Notification, uri: &str) -> bool {
    n.method == "textDocument/publishDiagnostics" && n.params["uri"] == uri
}

pub(crate) fn uri(path: &Path) -> String {
    lsp_types::Url::from_file_path(path).unwrap().to_string()
}

/// A copy of the demo fleet with its .sops.yaml, at a canonical path (URIs name real paths).
pub(crate) fn fleet() -> (tempfile::TempDir, PathBuf) {
    let dir = support::demo_fleet();
    std::fs::copy(
        support::repo().join(".sops.yaml"),
        dir.path().join(".sops.yaml"),
    )
    .unwrap();
    let root = dir.path().canonicalize().unwrap();
    (dir, root)
}

/// The demo fleet's definitions.nix with `igpu` given `doc1`'s VMID 104.
pub(crate) fn with_duplicate_vmid(text: &str) -> String {
    assert_eq!(
        text.matches("vmid = 109;").count(),
        1,
        "the demo fleet changed"
    );
    text.replace("vmid = 109;", "vmid = 104;")
}

/// Applies a WorkspaceEdit's edits of one file (LSP ranges, UTF-16 columns) to `text`.
pub(crate) fn apply_lsp_edits(text: &str, edits: &[Value]) -> String {
    let lines = vmctl::lsp::Lines::new(text);
    let mut es: Vec<(usize, usize, String)> = edits
        .iter()
        .map(|e| {
            let pos = |p: &Value| serde_json::from_value::<lsp_types::Position>(p.clone()).unwrap();
            (
                lines.offset(pos(&e["range"]["start"])).unwrap(),
                lines.offset(pos(&e["range"]["end"])).unwrap(),
                e["newText"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    es.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = text.to_string();
    for (s, e, t) in es {
        out.replace_range(s..e, &t);
    }
    out
}

fn codes(diags: &[Value]) -> Vec<String> {
    diags
        .iter()
        .map(|d| d["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_duplicate_vmid_is_reported_where_it_is_and_its_fix_clears_it() {
    let (_dir, root) = fleet();
    let defs = root.join("vms/definitions.nix");
    let text = with_duplicate_vmid(&std::fs::read_to_string(&defs).unwrap());
    let mut c = Client::start();
    let uri = c.open(&defs, &text);
    let diags = c.diagnostics(&uri);
    let vm001: Vec<&Value> = diags.iter().filter(|d| d["code"] == "VM001").collect();
    assert_eq!(vm001.len(), 1, "{diags:#?}");
    let d = vm001[0];
    // igpu's `vmid = 104;` line, the `104` after `vmid = `.
    let (line, line_text) = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("vmid = 104;"))
        .nth(1)
        .unwrap();
    let col = line_text.find("104").unwrap();
    assert_eq!(
        d["range"]["start"],
        json!({ "line": line, "character": col })
    );
    assert_eq!(
        d["range"]["end"],
        json!({ "line": line, "character": col + 3 })
    );
    assert_eq!(d["severity"], 1);
    assert_eq!(d["source"], "vmctl");
    assert!(
        d["relatedInformation"][0]["location"]["uri"] == uri.as_str(),
        "{d}"
    );

    let actions = c.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": uri }, "range": d["range"], "context": { "diagnostics": [d] } }),
    );
    let actions = actions.result.unwrap();
    let action = actions
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["title"].as_str().unwrap().contains("VM001"))
        .unwrap();
    assert!(
        action["title"].as_str().unwrap().contains("unsafe"),
        "{action}"
    );
    let edits = action["edit"]["changes"][uri.as_str()].as_array().unwrap();
    let fixed = apply_lsp_edits(&text, edits);
    // 100 is the first VMID of the `imported` range no VM uses.
    assert_eq!(
        fixed,
        text.replacen(
            "vmid = 104;\n      readonly = true;\n      hostname = \"igpu\"",
            "vmid = 100;\n      readonly = true;\n      hostname = \"igpu\"",
            1
        )
    );
    c.change_all(&uri, 2, &fixed);
    assert!(!codes(&c.diagnostics(&uri)).contains(&"VM001".to_string()));
    // The server never wrote the file.
    assert_eq!(
        std::fs::read_to_string(&defs).unwrap(),
        std::fs::read_to_string(support::repo().join("vms/definitions.nix")).unwrap()
    );
    c.shutdown();
}

/// A change in hosts.nix refreshes the other open files of the fleet: doc1 given igpu's key
/// makes `.sops.yaml`'s doc1 recipient stale (FL002); putting it back clears it. Closing a
/// file clears its diagnostics.
#[test]
fn a_change_in_one_file_refreshes_the_others_and_close_clears() {
    let (_dir, root) = fleet();
    let hosts_text = std::fs::read_to_string(root.join("hosts.nix")).unwrap();
    let sops_text = std::fs::read_to_string(root.join(".sops.yaml")).unwrap();
    let mut c = Client::start();
    let sops = c.open(&root.join(".sops.yaml"), &sops_text);
    assert_eq!(codes(&c.diagnostics(&sops)), Vec::<String>::new());
    let hosts = c.open(&root.join("hosts.nix"), &hosts_text);
    assert_eq!(codes(&c.diagnostics(&hosts)), Vec::<String>::new());
    let doc1 = "AAAAC3NzaC1lZDI1NTE5AAAAIMlLRoQ0HoeSXd9Rbb9WB51hQUGkEPeKZvmAsJFjg/wH";
    let igpu = "AAAAC3NzaC1lZDI1NTE5AAAAIHHwBfbIUrK41MhsO5+UBAKg1AW/ZVSeh7AdndYmIED6";
    let changed = hosts_text.replacen(doc1, igpu, 1);
    c.change_all(&hosts, 2, &changed);
    assert!(codes(&c.diagnostics(&sops)).contains(&"FL002".to_string()));
    c.change_all(&hosts, 3, &hosts_text);
    assert!(!codes(&c.diagnostics(&sops)).contains(&"FL002".to_string()));
    c.notify(
        "textDocument/didClose",
        json!({ "textDocument": { "uri": sops } }),
    );
    assert_eq!(c.diagnostics(&sops), Vec::<Value>::new());
    c.shutdown();
}

/// An unsaved hosts.nix edit changes a definitions.nix diagnostic: without admin keys in the
/// hosts.nix buffer, FL005 appears at definitions.nix's `managed`, its related location in
/// hosts.nix; with them back, it goes. The files on disk never change.
#[test]
fn removing_the_admin_keys_in_hosts_nix_warns_in_definitions_nix() {
    let (_dir, root) = fleet();
    let defs_text = std::fs::read_to_string(root.join("vms/definitions.nix")).unwrap();
    let hosts_text = std::fs::read_to_string(root.join("hosts.nix")).unwrap();
    let mut c = Client::start();
    let defs = c.open(&root.join("vms/definitions.nix"), &defs_text);
    assert_eq!(codes(&c.diagnostics(&defs)), Vec::<String>::new());
    let hosts = c.open(&root.join("hosts.nix"), &hosts_text);
    assert_eq!(codes(&c.diagnostics(&hosts)), Vec::<String>::new());

    let without = hosts_text.replacen("    adminKeys = [ admin ];\n", "", 1);
    assert_ne!(without, hosts_text, "the demo hosts.nix changed");
    c.change_all(&hosts, 2, &without);
    let diags = c.diagnostics(&defs);
    let fl005: Vec<&Value> = diags.iter().filter(|d| d["code"] == "FL005").collect();
    assert_eq!(fl005.len(), 1, "{diags:#?}");
    let d = fl005[0];
    let managed = defs_text.find("\n  managed = {").unwrap() + 3;
    let lines = vmctl::lsp::Lines::new(&defs_text);
    assert_eq!(
        d["range"]["start"],
        serde_json::to_value(lines.position(managed)).unwrap()
    );
    assert_eq!(d["severity"], 2, "a warning: {d}");
    let related = &d["relatedInformation"][0]["location"];
    assert_eq!(related["uri"], hosts.as_str(), "{d}");
    let hl = vmctl::lsp::Lines::new(&without);
    assert_eq!(
        related["range"]["start"],
        serde_json::to_value(hl.position(without.find("_proxmox").unwrap())).unwrap()
    );
    // hosts.nix itself has nothing to say: the finding is about definitions.nix's VMs.
    assert_eq!(codes(&c.diagnostics(&hosts)), Vec::<String>::new());

    c.change_all(&hosts, 3, &hosts_text);
    assert_eq!(codes(&c.diagnostics(&defs)), Vec::<String>::new());
    for (file, text) in [
        ("hosts.nix", &hosts_text),
        ("vms/definitions.nix", &defs_text),
    ] {
        assert_eq!(&std::fs::read_to_string(root.join(file)).unwrap(), text);
    }
    c.shutdown();
}

/// After `node = `, the nodes the fleet already names complete: `proxmox.node` first, then the
/// VMs' own, each once; a name Proxmox would refuse (an imported VM's `"old box"`, which is
/// documentation) is not offered.
#[test]
fn node_values_complete_from_the_nodes_the_fleet_names() {
    let (_dir, root) = fleet();
    let defs = root.join("vms/definitions.nix");
    let text = std::fs::read_to_string(&defs)
        .unwrap()
        .replacen(
            "      storage = \"nvmeprom\";\n",
            "      storage = \"nvmeprom\";\n      node = \"pve2\";\n",
            1,
        )
        .replacen(
            "      readonly = true;\n",
            "      readonly = true;\n      node = \"old box\";\n",
            1,
        );
    assert_eq!(text.matches("node = ").count(), 3, "the demo fleet changed");
    let mut c = Client::start();
    let uri = c.open(&defs, &text);
    assert_eq!(codes(&c.diagnostics(&uri)), Vec::<String>::new());
    let at = text.find("node = \"pve2\"").unwrap() + "node = ".len();
    let pos = vmctl::lsp::Lines::new(&text).position(at);
    let items = c
        .request(
            "textDocument/completion",
            json!({ "textDocument": { "uri": uri }, "position": pos }),
        )
        .result
        .unwrap();
    let labels: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["\"prom\"", "\"pve2\""]);
    c.shutdown();
}

#[test]
fn hover_definition_completion_and_symbols() {
    let (_dir, root) = fleet();
    let defs = root.join("vms/definitions.nix");
    let text = std::fs::read_to_string(&defs).unwrap();
    let mut c = Client::start();
    let uri = c.open(&defs, &text);
    c.diagnostics(&uri);
    let at = |needle: &str, nth: usize| {
        let offset = text.match_indices(needle).nth(nth).unwrap().0;
        let l = vmctl::lsp::Lines::new(&text);
        serde_json::to_value(l.position(offset)).unwrap()
    };
    let pos = |p: Value| json!({ "textDocument": { "uri": uri }, "position": p });

    // Hover on doc1: VMID, range, resources, key fingerprint, recipient and rules.
    let h = c
        .request("textDocument/hover", pos(at("doc1 = {", 0)))
        .result
        .unwrap();
    let md = h["contents"]["value"].as_str().unwrap();
    for want in [
        "**doc1**",
        "| VMID | 104 |",
        "`imported` (100–109)",
        "SHA256:",
        "age1u70sdpv5lzljxuja8cjwjhf3l64lm9prqh4wddzh36mqc6ct5cvsuyshd5",
        "`secrets/hosts/doc1/.*`",
    ] {
        assert!(md.contains(want), "{want} not in {md}");
    }
    // Inside the VM's set, on another field, the hover is the same VM's.
    let h2 = c
        .request("textDocument/hover", pos(at("Paperless", 0)))
        .result
        .unwrap();
    assert!(h2["contents"]["value"]
        .as_str()
        .unwrap()
        .contains("**doc1**"));
    // Outside every VM: nothing.
    let none = c.request("textDocument/hover", pos(at("proxmox = {", 0)));
    assert_eq!(none.result, Some(Value::Null), "{none:?}");

    // Definition: hosts.nix entry, .sops.yaml recipients, hosts/proxmox-vm/.
    let d = c
        .request("textDocument/definition", pos(at("doc1 = {", 0)))
        .result
        .unwrap();
    let targets: Vec<String> = d
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["uri"].as_str().unwrap().to_string())
        .collect();
    assert!(
        targets.contains(&uri_of(&root.join("hosts.nix"))),
        "{targets:?}"
    );
    assert_eq!(
        targets.iter().filter(|t| t.ends_with(".sops.yaml")).count(),
        2,
        "{targets:?}"
    );
    assert!(
        targets.iter().any(|t| t.contains("/hosts/proxmox-vm")),
        "{targets:?}"
    );
    // And back, from hosts.nix.
    let hosts_text = std::fs::read_to_string(root.join("hosts.nix")).unwrap();
    let hosts = c.open(&root.join("hosts.nix"), &hosts_text);
    c.diagnostics(&hosts);
    let hl = vmctl::lsp::Lines::new(&hosts_text);
    let back = c.request(
        "textDocument/definition",
        json!({ "textDocument": { "uri": hosts }, "position": hl.position(hosts_text.find("igpu = {").unwrap()) }),
    );
    let back = back.result.unwrap();
    assert_eq!(back[0]["uri"], uri.as_str());
    assert_eq!(back[0]["range"]["start"], at("igpu = {", 0));

    // And from a .sops.yaml recipient.
    let sops_text = std::fs::read_to_string(root.join(".sops.yaml")).unwrap();
    let sops = c.open(&root.join(".sops.yaml"), &sops_text);
    c.diagnostics(&sops);
    let sl = vmctl::lsp::Lines::new(&sops_text);
    let igpu_age = sops_text
        .find("age1zquh934h6es68kaecpcmzasax84nhzm0qdgq8fy8pr0nx96r0eyqkl42up")
        .unwrap();
    let from_sops = c.request(
        "textDocument/definition",
        json!({ "textDocument": { "uri": sops }, "position": sl.position(igpu_age + 10) }),
    );
    let from_sops = from_sops.result.unwrap();
    assert_eq!(
        from_sops[0]["range"]["start"],
        at("igpu = {", 0),
        "{from_sops}"
    );

    // Completion: managed VM fields inside a managed VM, values after `readonly = `.
    let inside = at("cores = 2;", 0);
    let items = c
        .request("textDocument/completion", pos(inside))
        .result
        .unwrap();
    let labels: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    assert!(
        labels.contains(&"nixosConfig") && labels.contains(&"sopsRules"),
        "{labels:?}"
    );
    let top = c
        .request(
            "textDocument/completion",
            pos(json!({ "line": 8, "character": 0 })),
        )
        .result
        .unwrap();
    let labels: Vec<&str> = top
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    // Every top-level field the schema knows, in its order (the model's list, so a new field
    // is offered the day it is read).
    assert_eq!(labels, vmctl::model::definitions::TOP_FIELDS);
    assert!(labels.starts_with(&["proxmox", "template", "imported", "managed"]));
    let after = at("true;", 0);
    let after = json!({ "line": after["line"], "character": after["character"] });
    let vals = c
        .request("textDocument/completion", pos(after))
        .result
        .unwrap();
    let labels: Vec<&str> = vals
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["true", "false"]);

    // Symbols: every VM, the template first.
    let s = c
        .request(
            "textDocument/documentSymbol",
            json!({ "textDocument": { "uri": uri } }),
        )
        .result
        .unwrap();
    let names: Vec<&str> = s
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["NixosServerBlank", "doc1", "igpu", "test-automation"]
    );
    c.shutdown();
}

fn uri_of(p: &Path) -> String {
    uri(p)
}

/// Malformed parameters, unknown methods, positions past the end and files outside any fleet
/// are answered with errors; the server goes on serving.
#[test]
fn bad_requests_get_errors_and_the_server_goes_on() {
    let (_dir, root) = fleet();
    let defs = root.join("vms/definitions.nix");
    let text = std::fs::read_to_string(&defs).unwrap();
    let outside = tempfile::tempdir().unwrap();
    let stray = outside.path().canonicalize().unwrap().join("stray.nix");
    std::fs::write(&stray, "{ }").unwrap();
    let mut c = Client::start();
    let uri = c.open(&defs, &text);
    c.diagnostics(&uri);
    let stray_uri = c.open(&stray, "{ }");
    assert_eq!(c.diagnostics(&stray_uri), Vec::<Value>::new());

    let err = |r: Response| {
        r.error
            .unwrap_or_else(|| panic!("no error: {:?}", r.result))
    };
    for method in [
        "textDocument/hover",
        "textDocument/definition",
        "textDocument/completion",
        "textDocument/documentSymbol",
        "textDocument/codeAction",
    ] {
        let e = err(c.request(method, json!({ "textDocument": 5 })));
        assert_eq!(e.code, -32602, "{method}: {e:?}");
        let e = err(c.request(method, Value::Null));
        assert_eq!(e.code, -32602, "{method}: {e:?}");
    }
    let e = err(c.request("textDocument/formatting", json!({})));
    assert_eq!(e.code, -32601);
    assert!(e.message.contains("textDocument/formatting"));
    let e = err(c.request("$/vmctl/unknown", json!({})));
    assert_eq!(e.code, -32601);

    let far =
        json!({ "textDocument": { "uri": uri }, "position": { "line": 100000, "character": 0 } });
    for method in [
        "textDocument/hover",
        "textDocument/definition",
        "textDocument/completion",
    ] {
        let e = err(c.request(method, far.clone()));
        assert_eq!(e.code, -32602, "{method}");
        assert!(e.message.contains("outside the document"), "{}", e.message);
    }
    let e = err(c.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": uri }, "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 99999, "character": 0 } }, "context": { "diagnostics": [] } }),
    ));
    assert_eq!(e.code, -32602);
    // Far past a line's end is that line's end, as the protocol says: no error.
    let eol = c.request(
        "textDocument/hover",
        json!({ "textDocument": { "uri": uri }, "position": { "line": 0, "character": 9999 } }),
    );
    assert!(eol.error.is_none(), "{eol:?}");

    for (u, why) in [
        (stray_uri.as_str(), "in no fleet"),
        ("untitled:Untitled-1", "not a file"),
    ] {
        let p = json!({ "textDocument": { "uri": u }, "position": { "line": 0, "character": 0 } });
        let e = err(c.request("textDocument/hover", p));
        assert_eq!(e.code, -32803);
        assert!(e.message.contains(why), "{}", e.message);
    }
    // A fleet file that is not one of the three (hosts/…/default.nix) is no fleet file.
    let other = root.join("hosts/test-automation/default.nix");
    if other.exists() {
        let e = err(c.request(
            "textDocument/documentSymbol",
            json!({ "textDocument": { "uri": uri_of(&other) } }),
        ));
        assert!(
            e.message.contains("not one of the fleet's files"),
            "{}",
            e.message
        );
    }
    // Malformed notifications and a change to a file never opened: a log message, no crash.
    c.notify("textDocument/didChange", json!({ "nonsense": true }));
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri_of(&root.join("hosts.nix")), "version": 2 }, "contentChanges": [{ "text": "{" }] }),
    );
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{ "range": { "start": { "line": 9999, "character": 0 }, "end": { "line": 9999, "character": 1 } }, "text": "x" }] }),
    );
    // Still serving, and the bad change left the buffer as it was.
    let s = c.request(
        "textDocument/documentSymbol",
        json!({ "textDocument": { "uri": uri } }),
    );
    assert_eq!(s.result.unwrap().as_array().unwrap().len(), 4);
    let logs = c
        .pending
        .iter()
        .filter(|n| n.method == "window/logMessage")
        .count();
    assert!(logs >= 3, "{:?}", c.pending);
    c.shutdown();
}

/// The actions that edit `.sops.yaml` from another file's diagnostic: a new host in hosts.nix
/// that no creation rule lists (FL001) gets its recipient added; a stale recipient (FL002) can
/// be removed. Each, applied, clears its diagnostic.
#[test]
fn sops_actions_add_a_missing_recipient_and_remove_a_stale_one() {
    let (_dir, root) = fleet();
    let hosts_path = root.join("hosts.nix");
    let sops_path = root.join(".sops.yaml");
    let hosts_text = std::fs::read_to_string(&hosts_path).unwrap();
    let sops_text = std::fs::read_to_string(&sops_path).unwrap();
    let key = support::new_public_key(None);
    let with_web = hosts_text.replacen(
        "\n  doc1 = {",
        &format!(
            "\n  web = {{\n    publicKey = \"{}\";\n  }};\n\n  doc1 = {{",
            key.trim()
        ),
        1,
    );
    let mut c = Client::start();
    let sops = c.open(&sops_path, &sops_text);
    let hosts = c.open(&hosts_path, &with_web);
    let diags = c.diagnostics(&hosts);
    let fl001 = diags
        .iter()
        .find(|d| d["code"] == "FL001")
        .unwrap_or_else(|| panic!("{diags:#?}"));
    let actions = c.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": hosts }, "range": fl001["range"], "context": { "diagnostics": [] } }),
    );
    let actions = actions.result.unwrap();
    let add = actions
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["title"].as_str().unwrap().contains("add `web`"))
        .unwrap_or_else(|| panic!("{actions:#}"));
    // Or a rule of its own, `secrets/hosts/web/`.
    let own = actions
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["title"].as_str().unwrap().contains("secrets/hosts/web/"))
        .unwrap_or_else(|| panic!("{actions:#}"));
    let with_rule = apply_lsp_edits(
        &sops_text,
        own["edit"]["changes"][sops.as_str()].as_array().unwrap(),
    );
    assert!(
        with_rule.contains("path_regex: secrets/hosts/web/.*"),
        "{with_rule}"
    );
    c.change_all(&sops, 2, &with_rule);
    assert!(!codes(&c.diagnostics(&hosts)).contains(&"FL001".to_string()));
    c.change_all(&sops, 3, &sops_text);
    assert!(codes(&c.diagnostics(&hosts)).contains(&"FL001".to_string()));

    let edits = add["edit"]["changes"][sops.as_str()].as_array().unwrap();
    let added = apply_lsp_edits(&sops_text, edits);
    assert!(added.contains("# web"), "{added}");
    c.change_all(&sops, 4, &added);
    assert!(!codes(&c.diagnostics(&hosts)).contains(&"FL001".to_string()));

    // doc1 given igpu's key: its recipient in .sops.yaml is stale; remove it.
    let doc1 = "AAAAC3NzaC1lZDI1NTE5AAAAIMlLRoQ0HoeSXd9Rbb9WB51hQUGkEPeKZvmAsJFjg/wH";
    let igpu = "AAAAC3NzaC1lZDI1NTE5AAAAIHHwBfbIUrK41MhsO5+UBAKg1AW/ZVSeh7AdndYmIED6";
    c.change_all(&hosts, 5, &with_web.replacen(doc1, igpu, 1));
    let diags = c.diagnostics(&sops);
    let fl002 = diags
        .iter()
        .find(|d| d["code"] == "FL002")
        .unwrap_or_else(|| panic!("{diags:#?}"));
    let actions = c.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": sops }, "range": fl002["range"], "context": { "diagnostics": [] } }),
    );
    let actions = actions.result.unwrap();
    let titles: Vec<&str> = actions
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert!(
        titles.iter().any(|t| t.starts_with("use age1")),
        "{titles:?}"
    );
    let remove = actions
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["title"].as_str().unwrap().contains("remove `doc1`"))
        .unwrap_or_else(|| panic!("{titles:?}"));
    let removed = apply_lsp_edits(
        &added,
        remove["edit"]["changes"][sops.as_str()].as_array().unwrap(),
    );
    assert!(
        !removed.contains("age1u70sdpv5lzljxuja8cjwjhf3l64lm9prqh4wddzh36mqc6ct5cvsuyshd5"),
        "{removed}"
    );
    c.change_all(&sops, 6, &removed);
    assert!(!codes(&c.diagnostics(&sops)).contains(&"FL002".to_string()));
    c.shutdown();
}

/// `exit` without `shutdown` stops the server with an error (the protocol's exit code 1), and
/// a client that just goes away stops it too.
#[test]
fn exit_without_shutdown_and_a_vanished_client_stop_the_server() {
    let mut c = Client::start();
    c.notify("exit", Value::Null);
    let r = c.server.take().unwrap().join().unwrap();
    assert!(matches!(r, Err(vmctl::lsp::LspError::NoShutdown)), "{r:?}");

    let mut c = Client::start();
    let server = c.server.take().unwrap();
    drop(c);
    let r = server.join().unwrap();
    assert!(
        r.is_ok() || matches!(r, Err(vmctl::lsp::LspError::Closed)),
        "{r:?}"
    );
}
