//! Injection: random hostile strings as VM names, descriptions and other arguments travel
//! through the argv builders, the one quoting helper, SSH and the remote shell, and the
//! simulator records exactly the argv that was meant.

use crate::support::pve;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use pve::{demo_definitions, Pve};
use vmctl::exec::proxmox::Proxmox;
use vmctl::exec::remote::Remote;
use vmctl::proxmox::argv::CloneSpec;
use vmctl::proxmox::Mutation;

/// Strings made of what shells treat specially, plus letters and unicode.
fn hostile() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("$(".to_string()),
        Just("`".to_string()),
        Just("$HOME".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("\t".to_string()),
        Just("*".to_string()),
        Just("?".to_string()),
        Just("[a-z]".to_string()),
        Just("~".to_string()),
        Just("{a,b}".to_string()),
        Just(";".to_string()),
        Just("&&".to_string()),
        Just("|".to_string()),
        Just(">".to_string()),
        Just("<".to_string()),
        Just("\\".to_string()),
        Just("!".to_string()),
        Just("#".to_string()),
        Just("=".to_string()),
        Just("%".to_string()),
        Just(" ".to_string()),
        Just("--".to_string()),
        Just("é".to_string()),
        Just("😀".to_string()),
        Just("中文".to_string()),
        Just("\u{202e}".to_string()),
        "[a-z0-9]{1,4}",
        "\\PC{1,3}",
    ];
    proptest::collection::vec(pieces, 0..8).prop_map(|v| v.concat())
}

#[test]
fn the_simulator_records_exactly_the_argv_that_was_meant() {
    let pve = Pve::start();
    let p = pve.proxmox(&demo_definitions());
    p.apply(&Mutation::Clone(CloneSpec {
        source: 9001,
        vmid: 110,
        name: "test-automation".into(),
        full: true,
        storage: Some("nvmeprom".into()),
        target: None,
        pool: None,
        description: None,
    }))
    .unwrap();
    let remote = p.remote();
    let seen = std::cell::Cell::new(pve.argv_log().len());
    let strings = std::cell::Cell::new(0usize);
    let case = std::cell::Cell::new(0usize);
    let mut runner = TestRunner::new(Config {
        cases: 215,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(hostile(), 14), |s| {
            // 14 strings in 2 commands per case (every 4th case adds a snapshot) keeps the
            // round trips, the cost of this test, down.
            let mut mutations = vec![
                Mutation::Configure {
                    vmid: 110,
                    options: vec![
                        ("description".into(), s[0].clone()),
                        ("name".into(), s[1].clone()),
                        ("tags".into(), s[2].clone()),
                        ("ciuser".into(), s[3].clone()),
                        ("nameserver".into(), s[4].clone()),
                        ("searchdomain".into(), s[5].clone()),
                        ("args".into(), s[6].clone()),
                        ("cipassword".into(), s[7].clone()),
                        ("hookscript".into(), s[8].clone()),
                    ],
                },
                Mutation::Clone(CloneSpec {
                    source: 9001,
                    vmid: 111,
                    name: s[9].clone(),
                    full: true,
                    storage: Some(s[10].clone()),
                    target: Some(s[11].clone()),
                    pool: Some(s[12].clone()),
                    description: Some(s[13].clone()),
                }),
            ];
            if case.get().is_multiple_of(4) {
                mutations.push(Mutation::SnapshotCreate {
                    vmid: 110,
                    name: s[1].clone(),
                    description: Some(s[0].clone()),
                    vmstate: false,
                });
            }
            case.set(case.get() + 1);
            for m in &mutations {
                // Success or a Proxmox error: either way the argv must arrive intact.
                remote.run(&m.argv()).expect("the connection holds");
            }
            let log = pve.argv_log();
            let got = &log[seen.get()..];
            let want: Vec<Vec<String>> = mutations.iter().map(|m| m.argv()).collect();
            prop_assert_eq!(got, &want[..]);
            seen.set(log.len());
            strings.set(strings.get() + s.len());
            Ok(())
        })
        .unwrap();
    let strings = strings.get();
    assert!(strings >= 3000, "{strings} strings sent");
    // The hostile values never ran anything: 110 is still the VM it was, with its disk.
    let c = p.config(110).unwrap();
    assert!(c
        .get("scsi0")
        .unwrap()
        .starts_with("nvmeprom:vm-110-disk-0"));
    assert_eq!(pve.sshd.accepted_connections(), 1);
}
