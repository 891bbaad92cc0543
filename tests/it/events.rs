//! The run events of `vmctl provision --json` (docs/events.md) against their schema
//! (docs/events.schema.json, validated with the `jsonschema` crate): every kind the code can
//! emit, and the whole stdout of real sandbox runs, one that succeeds and one that fails at
//! install and rolls back.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};
use vmctl::exec::events::{Event, Kind, Source, Status, VmResult};

use crate::sandbox::Sandbox;
use crate::support::{read_repo, text};

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&read_repo("docs/events.schema.json"))
        .expect("docs/events.schema.json is JSON");
    jsonschema::draft202012::new(&schema).expect("docs/events.schema.json is a valid schema")
}

/// The schema's complaints about `event`, one string each.
fn errors(v: &jsonschema::Validator, event: &Value) -> Vec<String> {
    v.iter_errors(event).map(|e| e.to_string()).collect()
}

/// A sandbox whose demo VM is `vmid`, at 127.0.0.VMID:22: these tests run beside
/// provision_sandbox's (VM 110) and each other, so each takes an address of its own.
pub(crate) fn sandbox_with_vmid(vmid: u32) -> Sandbox {
    sandbox_with_vmid_env(vmid, &[])
}

/// [`sandbox_with_vmid`] with `env` for `sandbox.sh up` (SANDBOX_TIMING, …).
pub(crate) fn sandbox_with_vmid_env(vmid: u32, env: &[(&str, &str)]) -> Sandbox {
    let mut all = vec![("SANDBOX_VM_PORT", "22")];
    all.extend_from_slice(env);
    let s = Sandbox::up_env(&[], &all);
    let root = s.dir.join("fleet");
    let defs = root.join("vms/definitions.nix");
    let text = std::fs::read_to_string(&defs).unwrap();
    for old in ["vmid = 110;", "ip = \"127.0.0.110/8\";"] {
        assert!(
            text.contains(old),
            "the sandbox's demo fleet has no `{old}`"
        );
    }
    let text = text
        .replace("vmid = 110;", &format!("vmid = {vmid};"))
        .replace(
            "ip = \"127.0.0.110/8\";",
            &format!("ip = \"127.0.0.{vmid}/8\";"),
        );
    std::fs::write(&defs, text).unwrap();
    let out = Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["commit", "-qam", &format!("test: the demo VM is {vmid}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git commit: {}",
        crate::support::text(&out.stderr)
    );
    s
}

/// `vmctl provision test-automation ARGS` in the sandbox's fleet.
pub(crate) fn provision(s: &Sandbox, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let key = s.var("SANDBOX_ADMIN_KEY");
    crate::support::vmctl_cmd()
        .current_dir(s.dir.join("fleet"))
        .envs(s.env.iter().cloned())
        .envs(extra.iter().copied())
        .args(["provision", "test-automation", "--identity", &key])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Every line of stdout as a JSON value valid against the schema; stdout holds nothing else.
pub(crate) fn events(out: &Output) -> Vec<Value> {
    let v = validator();
    let stdout = text(&out.stdout);
    assert!(
        !stdout.is_empty(),
        "no events on stdout: {}",
        text(&out.stderr)
    );
    stdout
        .lines()
        .map(|line| {
            let e: Value = serde_json::from_str(line).unwrap_or_else(|err| {
                panic!("stdout holds a line that is not JSON ({err}): {line}")
            });
            let errs = errors(&v, &e);
            assert!(
                errs.is_empty(),
                "{line}\ndoes not match the schema: {errs:#?}"
            );
            e
        })
        .collect()
}

/// `(kind, step)` of each step event, in order.
fn steps(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["kind"].as_str().is_some_and(|k| k.starts_with("step_")))
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["step"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

const PLAN: [&str; 11] = [
    "clone",
    "configure",
    "resize",
    "cloud-init",
    "start",
    "discover-ip",
    "wait-ssh",
    "key-ceremony",
    "install",
    "verify",
    "commit",
];

#[test]
fn every_kind_vmctl_emits_matches_the_schema_and_the_schema_is_not_vacuous() {
    let v = validator();
    let result = |status, error: Option<&str>| VmResult {
        vm: "web".into(),
        status,
        vmid: Some(110),
        commit: (status == Status::Done).then(|| "0123456789abcdef".into()),
        error: error.map(Into::into),
        journal: None,
        duration_ms: 3,
    };
    let good = [
        Event::new(
            Some("web"),
            Some("clone"),
            Kind::StepStart {
                title: "Clone".into(),
            },
        ),
        Event::new(
            Some("web"),
            Some("clone"),
            Kind::StepFinish {
                success: true,
                duration_ms: 4,
                error: None,
            },
        ),
        Event::new(
            Some("web"),
            Some("install"),
            Kind::StepFinish {
                success: false,
                duration_ms: 4,
                error: Some("it broke".into()),
            },
        ),
        Event::new(
            Some("web"),
            Some("install"),
            Kind::Output {
                source: Source::Installer,
                line: "### Done! ###".into(),
            },
        ),
        Event::new(
            Some("web"),
            None,
            Kind::Output {
                source: Source::Vmctl,
                line: "address 127.0.0.1".into(),
            },
        ),
        Event::new(
            Some("web"),
            Some("clone"),
            Kind::Warning {
                message: "lock".into(),
            },
        ),
        Event::finished(
            Default::default(),
            vec![
                result(Status::Done, None),
                result(Status::NothingToDo, None),
                result(Status::Partial, None),
                result(Status::RolledBack, None),
                result(Status::Failed, Some("it broke")),
            ],
        ),
    ];
    for e in &good {
        let value: Value = serde_json::from_str(&e.to_json_line()).unwrap();
        let errs = errors(&v, &value);
        assert!(errs.is_empty(), "{value}: {errs:#?}");
    }
    // What the schema must refuse: each of these differs from a valid event in one way.
    let start = json!({"version": 1, "time": "2026-11-30T01:02:03.456Z", "vm": "web",
                       "step": "clone", "kind": "step_start", "title": "Clone"});
    assert!(errors(&v, &start).is_empty());
    let with = |k: &str, val: Value| {
        let mut e = start.clone();
        e[k] = val;
        e
    };
    let without = |k: &str| {
        let mut e = start.clone();
        e.as_object_mut().unwrap().remove(k);
        e
    };
    let bad = [
        ("version 2", with("version", json!(2))),
        ("a local time", with("time", json!("2026-11-30T01:02:03"))),
        ("an unknown kind", with("kind", json!("step_begin"))),
        ("an undocumented field", with("extra", json!(1))),
        ("no title", without("title")),
        ("no vm", without("vm")),
        (
            "a failed step without its error",
            json!({"version": 1, "time": "2026-11-30T01:02:03.456Z", "vm": "web",
                   "step": "clone", "kind": "step_finish", "success": false, "duration_ms": 1}),
        ),
        (
            "an output line with an escape sequence",
            json!({"version": 1, "time": "2026-11-30T01:02:03.456Z", "vm": "web",
                   "kind": "output", "source": "installer", "line": "\u{1b}[1mbold"}),
        ),
        (
            "a failed VM without its error",
            json!({"version": 1, "time": "2026-11-30T01:02:03.456Z", "kind": "finished",
                   "success": false, "duration_ms": 1, "results": [{"vm": "web",
                   "status": "failed", "vmid": 110, "commit": null, "error": null,
                   "journal": null, "duration_ms": 1}]}),
        ),
    ];
    for (what, e) in bad {
        assert!(!errors(&v, &e).is_empty(), "the schema accepts {what}: {e}");
    }
}

#[test]
fn provision_json_of_a_real_run_is_events_only_and_matches_the_schema() {
    let s = sandbox_with_vmid(171);
    let out = provision(&s, &["--json"], &[]);
    assert!(
        out.status.success(),
        "provision --json: {}",
        text(&out.stderr)
    );
    let events = events(&out);
    // Every planned step started and finished well, in the plan's order, nothing else.
    let want: Vec<(String, String)> = PLAN
        .iter()
        .flat_map(|s| [("step_start", *s), ("step_finish", *s)])
        .map(|(k, s)| (k.to_string(), s.to_string()))
        .collect();
    assert_eq!(steps(&events), want);
    assert!(events
        .iter()
        .filter(|e| e["kind"] == "step_finish")
        .all(|e| e["success"] == true));
    // The installer's output is folded under its step, as it came.
    let installer: Vec<&Value> = events
        .iter()
        .filter(|e| e["source"] == "installer")
        .collect();
    assert!(
        installer
            .iter()
            .any(|e| e["line"] == "### Installing NixOS ###"),
        "{installer:#?}"
    );
    assert!(
        installer.iter().all(|e| e["step"] == "install"),
        "{installer:#?}"
    );
    assert!(
        events.iter().any(|e| e["kind"] == "output"
            && e["step"] == "clone"
            && e["line"].as_str().unwrap().contains("qm clone 9001 171")),
        "the clone's command line is not under its step"
    );
    // The last event says how it ended, with what the repository now holds.
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "finished", "{last}");
    assert_eq!(last["success"], true);
    let r = &last["results"][0];
    assert_eq!(r["vm"], "test-automation");
    assert_eq!(r["status"], "done");
    assert_eq!(r["vmid"], 171);
    let head = git_head(&s.dir.join("fleet"));
    assert_eq!(r["commit"], head.as_str(), "{r}");
    assert_eq!(r["journal"], Value::Null);
    // People still read the progress and the result on stderr.
    let err = text(&out.stderr);
    assert!(
        err.contains("test-automation install | ### Installing NixOS ###"),
        "{err}"
    );
    assert!(
        err.contains("provisioned `test-automation`: VM 171"),
        "{err}"
    );
}

#[test]
fn provision_json_of_a_failing_run_matches_the_schema_and_ends_with_the_failure() {
    let s = sandbox_with_vmid(172);
    let head = git_head(&s.dir.join("fleet"));
    let out = provision(&s, &["--json"], &[("SANDBOX_INSTALLER_FAULT", "fail")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let events = events(&out);
    // Up to install as planned; install fails; the rollback runs as a step of its own.
    let mut want: Vec<(String, String)> = PLAN[..8]
        .iter()
        .flat_map(|s| [("step_start", *s), ("step_finish", *s)])
        .map(|(k, s)| (k.to_string(), s.to_string()))
        .collect();
    for (k, st) in [
        ("step_start", "install"),
        ("step_finish", "install"),
        ("step_start", "rollback"),
        ("step_finish", "rollback"),
    ] {
        want.push((k.into(), st.into()));
    }
    assert_eq!(steps(&events), want);
    let finish = |step: &str| {
        events
            .iter()
            .find(|e| e["kind"] == "step_finish" && e["step"] == step)
            .unwrap()
    };
    assert_eq!(finish("install")["success"], false);
    assert!(finish("install")["error"]
        .as_str()
        .unwrap()
        .contains("nixos-anywhere"));
    assert_eq!(finish("rollback")["success"], true);
    assert!(
        events.iter().any(|e| e["source"] == "installer"
            && e["line"] == "ERROR: nixos-install failed (sandbox fault)"),
        "the installer's own reason is not among the events"
    );
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "finished", "{last}");
    assert_eq!(last["success"], false);
    let r = &last["results"][0];
    assert_eq!(r["status"], "failed");
    assert_eq!(r["commit"], Value::Null);
    assert_eq!(
        r["journal"],
        Value::Null,
        "rolled back: nothing is left to undo"
    );
    let error = r["error"].as_str().unwrap();
    assert!(error.contains("rolled back"), "{error}");
    // The report is on stderr, stdout kept to events (no error object after them).
    assert!(crate::support::unwrapped(&out.stderr).contains("rolled back"));
    assert_eq!(git_head(&s.dir.join("fleet")), head);
}

fn git_head(root: &Path) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    text(&out.stdout).trim().to_string()
}
