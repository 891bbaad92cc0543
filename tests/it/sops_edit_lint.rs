//! The cross-file and .sops.yaml lint codes (FL001, FL002, SP001, SP002) on minimal fleets:
//! each fires on its fixture (human rendering snapshotted) and the demo fleet is clean.

use crate::support::read_repo;

use vmctl::check::{check_fleet, Diagnostic};
use vmctl::model::fleet::{Fleet, NixRole};
use vmctl::syntax::NoImports;

const DOC1: &str = "age1u70sdpv5lzljxuja8cjwjhf3l64lm9prqh4wddzh36mqc6ct5cvsuyshd5";
const IGPU: &str = "age1zquh934h6es68kaecpcmzasax84nhzm0qdgq8fy8pr0nx96r0eyqkl42up";
const OTHER: &str = "age17044m9wgakla6pzftf4srtl3h5mcsr85jysgt5fg23zpnta8sfdqhzn452";

/// The demo hosts.nix with `sops` as .sops.yaml.
fn lint(sops: &str) -> (Fleet, Vec<Diagnostic>) {
    let mut fleet = Fleet::default();
    fleet.add_nix(
        "hosts.nix",
        &read_repo("hosts.nix"),
        NixRole::Hosts,
        &NoImports,
    );
    fleet.db.add(".sops.yaml", sops.to_string());
    let d = check_fleet(&fleet);
    (fleet, d)
}

fn codes(d: &[Diagnostic]) -> Vec<&'static str> {
    d.iter().map(|d| d.code()).collect()
}

fn rendered(fleet: &Fleet, d: &[Diagnostic]) -> String {
    vmctl::render::human::render(&fleet.db, d, false)
}

#[test]
fn the_demo_fleet_is_consistent() {
    let (_, d) = lint(&read_repo(".sops.yaml"));
    assert_eq!(codes(&d), Vec::<&str>::new());
}

#[test]
fn fl001_a_host_in_no_rule() {
    let sops = read_repo(".sops.yaml").replace(&format!("          - {IGPU} # igpu\n"), "");
    let (fleet, d) = lint(&sops);
    assert_eq!(codes(&d), ["FL001"]);
    insta::assert_snapshot!("FL001", rendered(&fleet, &d));
}

#[test]
fn fl002_a_stale_recipient_by_anchor_or_comment() {
    let anchored = format!("keys:\n  - &doc1 {OTHER}\n  - &igpu {IGPU}\ncreation_rules:\n  - path_regex: s/.*\n    key_groups:\n    - age:\n      - *doc1\n      - *igpu\n");
    let (fleet, d) = lint(&anchored);
    // doc1's real recipient is then in no rule either (FL001, in hosts.nix).
    assert_eq!(codes(&d), ["FL001", "FL002"]);
    insta::assert_snapshot!("FL002", rendered(&fleet, &d));
    // The unsafe fix writes the derived recipient.
    let fl002 = d.iter().find(|x| x.code() == "FL002").unwrap();
    let fix = fl002.fix.as_ref().unwrap();
    let fixed = vmctl::text::apply(&anchored, &fix.edits).unwrap();
    assert!(fixed.contains(&format!("&doc1 {DOC1}\n")));

    let commented =
        read_repo(".sops.yaml").replacen(&format!("{DOC1} # doc1"), &format!("{OTHER} # doc1"), 1);
    let (_, d) = lint(&commented);
    assert!(codes(&d).contains(&"FL002"), "{:?}", codes(&d));
}

#[test]
fn sp001_a_second_key_group_by_accident() {
    let sops = format!("creation_rules:\n  - path_regex: s/.*\n    key_groups:\n      - age:\n          - {DOC1}\n      - age:\n          - {IGPU}\n");
    let (fleet, d) = lint(&sops);
    assert_eq!(codes(&d), ["SP001"]);
    insta::assert_snapshot!("SP001", rendered(&fleet, &d));
    let intended = sops.replace(
        "    key_groups:",
        "    shamir_threshold: 2\n    key_groups:",
    );
    assert_eq!(codes(&lint(&intended).1), Vec::<&str>::new());
    let alias_item = format!("keys:\n  - &igpu {IGPU}\ncreation_rules:\n  - path_regex: s/.*\n    key_groups:\n      - age:\n          - {DOC1}\n      - *igpu\n");
    // A bare alias is not a key group at all: sops rejects the whole file (SP008 says which
    // rule and group), which is worse than an accidental second group.
    let (_, d) = lint(&alias_item);
    assert_eq!(codes(&d), ["SP008"]);
    assert!(d[0].message.contains("key group 2"), "{}", d[0].message);
}

#[test]
fn sp002_an_anchor_defined_twice() {
    let sops = format!("keys:\n  - &doc1 {DOC1}\n  - &doc1 {IGPU}\ncreation_rules:\n  - path_regex: s/.*\n    age: {DOC1},{IGPU}\n");
    let (fleet, d) = lint(&sops);
    assert!(codes(&d).contains(&"SP002"), "{:?}", codes(&d));
    insta::assert_snapshot!("SP002", rendered(&fleet, &d));
}
