//! The ops runner against `QmProxmox` over the recording fake: what is sent, in which order,
//! and what the user sees on stdout and stderr.

use std::cell::Cell;
use std::time::Duration;

use super::*;
use crate::exec::proxmox::QmProxmox;
use crate::exec::remote::{Recording, RemoteOutput};
use crate::model::{Definitions, Given, Vm, VmKind};
use crate::plan::ops::tests::defs;
use crate::plan::ops::{plan, Request};
use crate::proxmox::RetryPolicy;

/// What a user would see on stdout and stderr.
#[derive(Default)]
struct Captured {
    out: String,
    err: String,
}

impl Output for Captured {
    fn out(&mut self, text: &str) {
        self.out.push_str(text);
    }

    fn err(&mut self, text: &str) {
        self.err.push_str(text);
    }
}

/// One run of `req` against `rec`: its result, what it printed, and whether (and with
/// which `announce`) it connected.
fn run(
    rec: &Recording,
    defs: &Definitions,
    req: Request,
    mode: Mode,
) -> (miette::Result<u8>, Captured, Option<bool>) {
    let plan = plan(req, defs, false).expect("a plan");
    let connected = Cell::new(None);
    let mut out = Captured::default();
    let connect = |fence, announce| {
        connected.set(Some(announce));
        let fast = RetryPolicy {
            retries: 1,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(1),
        };
        Ok(QmProxmox::new(rec, fence, fast))
    };
    let result = execute(&plan, mode, connect, &mut out);
    (result, out, connected.get())
}

const CLUSTER: &str = r#"[
    {"type":"qemu","vmid":104,"name":"doc1","node":"prom","status":"running"},
    {"type":"qemu","vmid":110,"name":"test-automation","node":"prom","status":"stopped","lock":"backup"},
    {"type":"qemu","vmid":9001,"name":"nixos-template","node":"prom","status":"stopped","template":1},
    {"type":"qemu","vmid":300,"name":"\u001b[2Jother","node":"prom","status":"running"}
]"#;

#[test]
fn a_dry_run_prints_the_plan_and_connects_to_nothing() {
    let rec = Recording::new();
    let req = Request::Change(Mutation::Destroy {
        vmid: 110,
        confirm: Some("test-automation".into()),
    });
    let dry = Mode {
        dry_run: true,
        json: false,
    };
    let (result, out, connected) = run(&rec, &defs(), req, dry);
    assert_eq!(result.unwrap(), 0);
    assert_eq!(connected, None);
    assert!(rec.lines().is_empty());
    assert_eq!(out.out, "qm destroy 110 --purge 1\n");
    assert!(
        out.err
            .starts_with("dry run: when run for real, vmctl first reads VM 110"),
        "{}",
        out.err
    );
}

#[test]
fn a_change_is_sent_after_its_live_check_and_announced() {
    let rec = Recording::new()
        .answer("qm config 110", RemoteOutput::ok("name: test-automation\n"))
        .answer("qm destroy", RemoteOutput::ok("purged\n"));
    let req = Request::Change(Mutation::Destroy {
        vmid: 110,
        confirm: Some("test-automation".into()),
    });
    let (result, out, connected) = run(&rec, &defs(), req, Mode::default());
    assert_eq!(result.unwrap(), 0);
    assert_eq!(connected, Some(true));
    assert_eq!(rec.lines(), ["qm config 110", "qm destroy 110 --purge 1"]);
    assert_eq!(out.out, "purged\n");
}

#[test]
fn a_reused_vmid_stops_the_change_before_it_is_sent() {
    let rec = Recording::new().answer("qm config 110", RemoteOutput::ok("name: other\n"));
    let req = Request::Change(Mutation::Template { vmid: 110 });
    let (result, out, _) = run(&rec, &defs(), req, Mode::default());
    let e = result.unwrap_err().to_string();
    assert!(e.contains("refusing to template VM 110"), "{e}");
    assert_eq!(rec.lines(), ["qm config 110"]);
    assert_eq!(out.out, "");
}

#[test]
fn a_clone_onto_a_taken_vmid_is_refused_after_reading_the_cluster() {
    let rec = Recording::new().answer("pvesh get", RemoteOutput::ok(CLUSTER));
    let clone = |vmid| {
        Request::Change(Mutation::Clone(crate::proxmox::argv::CloneSpec {
            source: 9001,
            vmid,
            name: "web".into(),
            full: false,
            storage: None,
            target: None,
            pool: None,
            description: None,
        }))
    };
    let mut defs = defs();
    defs.managed
        .push(Vm::new("taken", VmKind::Managed, Some(300)));
    defs.managed
        .push(Vm::new("free", VmKind::Managed, Some(301)));
    let (result, _, _) = run(&rec, &defs, clone(300), Mode::default());
    let e = result.unwrap_err().to_string();
    assert!(e.contains("VMID 300"), "{e}");
    assert_eq!(rec.lines().len(), 1, "{:?}", rec.lines());
    let (result, _, _) = run(&rec, &defs, clone(301), Mode::default());
    assert_eq!(result.unwrap(), 0);
    assert_eq!(rec.lines().last().unwrap(), "qm clone 9001 301 --name web");
}

#[test]
fn what_a_change_prints_is_scrubbed_of_its_secrets_and_control_sequences() {
    let rec = Recording::new().answer(
        "qm set",
        RemoteOutput::ok("update VM 110: -cipassword hunter2\u{1b}]0;pwned\u{7}\n"),
    );
    let req = Request::Configure {
        vmid: 110,
        cores: 1,
        memory: 512,
        set: vec!["cipassword=hunter2".into()],
    };
    let (result, out, _) = run(&rec, &defs(), req, Mode::default());
    assert_eq!(result.unwrap(), 0);
    assert_eq!(out.out, "update VM 110: -cipassword <redacted>\n");
    assert_eq!(
        rec.lines(),
        ["qm set 110 --cores 1 --memory 512 --cipassword <redacted>"]
    );
}

#[test]
fn list_shows_what_definitions_say_and_which_readonly_vms_lack_protection() {
    let rec = Recording::new()
        .answer("pvesh get", RemoteOutput::ok(CLUSTER))
        .answer("qm config 104", RemoteOutput::ok("name: doc1\n"));
    let req = Request::Read(Read::List);
    let (result, out, connected) = run(&rec, &defs(), req.clone(), Mode::default());
    assert_eq!(result.unwrap(), 0);
    assert_eq!(connected, Some(false), "reads announce nothing");
    // Protection is read for the readonly VM only.
    assert_eq!(rec.lines()[1], "qm config 104");
    assert_eq!(rec.lines().len(), 2);
    let rows: Vec<&str> = out.out.lines().collect();
    assert_eq!(rows.len(), 5, "{}", out.out);
    assert!(rows[0].starts_with("     VMID  NAME"), "{}", rows[0]);
    assert!(
        rows[1].ends_with("imported (readonly, unprotected)"),
        "{}",
        rows[1]
    );
    assert!(rows[2].contains("lock:backup") && rows[2].ends_with(" managed"));
    // The cluster's list comes sorted by VMID.
    assert!(
        rows[3].contains(" other ") && rows[3].ends_with(" -"),
        "{}",
        rows[3]
    );
    assert!(rows[4].contains("template") && rows[4].ends_with(" template"));
    assert!(!out.out.contains('\u{1b}'));
    assert!(
        out.err
            .starts_with("readonly VMs without Proxmox protection: 104;"),
        "{}",
        out.err
    );

    let json = Mode {
        dry_run: false,
        json: true,
    };
    let (result, out, _) = run(&rec, &defs(), req, json);
    assert_eq!(result.unwrap(), 0);
    let rows: serde_json::Value = serde_json::from_str(&out.out).unwrap();
    assert_eq!(rows[0]["vmid"], 104);
    assert_eq!(rows[0]["fleet"], "imported");
    assert_eq!(rows[0]["readonly"], true);
    assert_eq!(rows[0]["protected"], false);
    assert_eq!(rows[1]["fleet"], "managed");
    assert!(rows[1].get("protected").is_none());
    assert!(rows[2]["fleet"].is_null());
    assert_eq!(rows[3]["fleet"], "template");
}

#[test]
fn reads_print_text_or_json() {
    let rec = Recording::new()
        .answer("qm status", RemoteOutput::ok("status: running\u{1b}[2J\n"))
        .answer("qm config", RemoteOutput::ok("name: doc1\ncores: 2\n"));
    let (r, out, _) = run(
        &rec,
        &defs(),
        Request::Read(Read::Status(104)),
        Mode::default(),
    );
    assert_eq!(r.unwrap(), 0);
    assert_eq!(out.out, "status: running\n");
    let json = Mode {
        dry_run: false,
        json: true,
    };
    let (r, out, _) = run(&rec, &defs(), Request::Read(Read::Config(104)), json);
    assert_eq!(r.unwrap(), 0);
    let v: serde_json::Value = serde_json::from_str(&out.out).unwrap();
    assert_eq!(v, serde_json::json!({"name": "doc1", "cores": "2"}));
    let next = Request::NextVmid {
        start: None,
        end: None,
    };
    let rec = Recording::new().answer("pvesh get", RemoteOutput::ok(CLUSTER));
    let (r, out, _) = run(&rec, &defs(), next, Mode::default());
    assert_eq!(r.unwrap(), 0);
    // 110 is on the cluster and in definitions.nix; the managed range starts there.
    assert_eq!(out.out, "111\n");
}

#[test]
fn protect_readonly_vms_skips_absent_and_protected_vms_and_counts_failures() {
    let mut defs = defs();
    let readonly = |name: &str, vmid| {
        let mut v = Vm::new(name, VmKind::Imported, Some(vmid));
        v.readonly = true;
        v.fence.readonly = Given::Known;
        v
    };
    defs.imported.push(readonly("gone", 108));
    defs.imported.push(readonly("kept", 300));
    let rec = Recording::new()
        .answer("pvesh get", RemoteOutput::ok(CLUSTER))
        .answer("qm config 300", RemoteOutput::ok("protection: 1\n"));
    let (result, out, connected) = run(&rec, &defs, Request::ProtectReadonly, Mode::default());
    assert_eq!(result.unwrap(), 0);
    assert_eq!(connected, Some(false));
    assert_eq!(
        rec.lines(),
        [
            "pvesh get /cluster/resources --type vm --output-format json",
            "qm config 104",
            "qm set 104 --protection 1",
            "qm config 300",
        ]
    );
    assert_eq!(
        out.out,
        "VM 104 (doc1): protection on\nVM 300 (kept): already protected\n"
    );
    assert_eq!(out.err, "VM 108 (gone): not on the cluster, skipped\n");

    let rec = Recording::new()
        .answer("pvesh get", RemoteOutput::ok(CLUSTER))
        .answer("qm set 104", RemoteOutput::failed(2, "permission denied\n"));
    let (result, out, _) = run(&rec, &defs, Request::ProtectReadonly, Mode::default());
    let e = result.unwrap_err().to_string();
    assert!(
        e.starts_with("1 readonly VM could not be protected; see above"),
        "{e}"
    );
    // The failure did not stop the next VM.
    assert_eq!(out.out, "VM 300 (kept): protection on\n");
    assert!(out
        .err
        .contains("VM 104 (doc1): `qm set 104 --protection 1` failed"));
}

#[test]
fn nothing_to_protect_is_said_without_connecting() {
    let none = Definitions {
        imported: vec![],
        ..defs()
    };
    let rec = Recording::new();
    let (result, out, connected) = run(&rec, &none, Request::ProtectReadonly, Mode::default());
    assert_eq!(result.unwrap(), 0);
    assert_eq!(connected, None);
    assert_eq!(
        out.err,
        "definitions.nix marks no VM readonly; nothing to protect\n"
    );
    assert_eq!(out.out, "");
}

#[test]
fn an_ops_error_keeps_its_message_and_its_cause() {
    #[derive(Debug, thiserror::Error)]
    #[error("cannot reach the Proxmox host")]
    struct Outer(#[source] std::io::Error);
    let report = err(Outer(std::io::Error::other("connection refused")));
    let chain: Vec<String> = report.chain().map(ToString::to_string).collect();
    assert_eq!(
        chain,
        ["cannot reach the Proxmox host", "connection refused"],
        "the cause is kept for the report to print, not flattened into text"
    );
}
