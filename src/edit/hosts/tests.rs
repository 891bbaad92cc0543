//! Unit tests of hosts.nix edits: layout policy, refused shapes, templates and validation.

use super::*;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHxM2a6DvE298UXZdhKYSMrTPvzvceh5+ZJ77tKj9n0D new@host";

fn add(name: &str) -> HostIntent {
    HostIntent::Add(NewHost {
        name: name.into(),
        public_key: KEY.into(),
        hostname: None,
        ssh_alias: None,
        vmid: None,
    })
}

#[track_caller]
fn check(before: &str, intent: HostIntent, after: &str) {
    let out = edit_hosts(before, &intent, None).unwrap();
    assert_eq!(out.text, after);
}

#[test]
fn binding_ranges_end_at_the_semicolon() {
    let doc = locate("{\n  a = { publicKey = \"k\"; }; # c\n}").unwrap();
    let text = "{\n  a = { publicKey = \"k\"; }; # c\n}";
    assert_eq!(
        &text[doc.entries[0].range.clone()],
        "a = { publicKey = \"k\"; };"
    );
}

#[test]
fn adds_after_the_last_host_with_its_indentation() {
    check(
        "{\n    a = {\n      publicKey = \"ssh-ed25519 AAAA\";\n    };\n    # trailing\n}",
        add("b"),
        &format!("{{\n    a = {{\n      publicKey = \"ssh-ed25519 AAAA\";\n    }};\n    b = {{\n      hostname = \"b\";\n      sshAlias = \"b\";\n      publicKey = \"{KEY}\";\n    }};\n    # trailing\n}}"),
    );
}

#[test]
fn adds_into_empty_sets() {
    check(
        "{ }",
        add("b"),
        &format!("{{\n  b = {{\n    hostname = \"b\";\n    sshAlias = \"b\";\n    publicKey = \"{KEY}\";\n  }};\n}}"),
    );
    check(
        "let x = 1; in {\n  # none yet\n}\n",
        add("b"),
        &format!("let x = 1; in {{\n  # none yet\n  b = {{\n    hostname = \"b\";\n    sshAlias = \"b\";\n    publicKey = \"{KEY}\";\n  }};\n}}\n"),
    );
}

#[test]
fn one_line_sets_stay_on_one_line() {
    check(
        "{ a = { publicKey = \"ssh-ed25519 AAAA\"; }; }",
        add("b"),
        &format!("{{ a = {{ publicKey = \"ssh-ed25519 AAAA\"; }}; b = {{ hostname = \"b\"; sshAlias = \"b\"; publicKey = \"{KEY}\"; }}; }}"),
    );
    check(
        "{ a = { publicKey = \"k\"; }; b = { publicKey = \"k\"; }; }",
        HostIntent::Remove { name: "b".into() },
        "{ a = { publicKey = \"k\"; }; }",
    );
    check(
        "{ a = { publicKey = \"k\"; }; b = { publicKey = \"k\"; }; }",
        HostIntent::Remove { name: "a".into() },
        "{ b = { publicKey = \"k\"; }; }",
    );
}

#[test]
fn removal_keeps_comments_above_and_group_separation() {
    let text = "{\n  a = { publicKey = \"k\"; };\n\n  # about b\n  b = { publicKey = \"k\"; }; # trailing\n\n  c = { publicKey = \"k\"; };\n}";
    let out = edit_hosts(text, &HostIntent::Remove { name: "b".into() }, None).unwrap();
    assert_eq!(
        out.text,
        "{\n  a = { publicKey = \"k\"; };\n\n  # about b\n\n  c = { publicKey = \"k\"; };\n}"
    );
    assert_eq!(
        out.change,
        Change::Removed {
            name: "b".into(),
            kept_comment: Some((4, 4))
        }
    );
    check(
        "{\n  a = { publicKey = \"k\"; };\n\n  c = { publicKey = \"k\"; };\n}",
        HostIntent::Remove { name: "c".into() },
        "{\n  a = { publicKey = \"k\"; };\n}",
    );
    check(
        "{\n  a = { publicKey = \"k\"; };\n\n  c = { publicKey = \"k\"; };\n}",
        HostIntent::Remove { name: "a".into() },
        "{\n  c = { publicKey = \"k\"; };\n}",
    );
}

#[test]
fn set_key_replaces_only_the_literal() {
    check(
        "{ a = { publicKey = \"ssh-ed25519 AAAA\"; x = 1; }; }",
        HostIntent::SetKey {
            name: "a".into(),
            public_key: KEY.into(),
        },
        &format!("{{ a = {{ publicKey = \"{KEY}\"; x = 1; }}; }}"),
    );
}

#[test]
fn refuses_shapes_it_cannot_edit() {
    let refuse = |text: &str| edit_hosts(text, &add("z"), None).unwrap_err();
    assert!(matches!(
        refuse("[ ]"),
        HostsEditError::UnsupportedShape { .. }
    ));
    assert!(matches!(
        refuse("{ config, ... }: { }"),
        HostsEditError::UnsupportedShape { .. }
    ));
    assert!(matches!(
        refuse("with x; { }"),
        HostsEditError::UnsupportedShape { .. }
    ));
    assert!(matches!(
        refuse("{ ${x} = { publicKey = \"k\"; }; }"),
        HostsEditError::InterpolatedName { .. }
    ));
    assert!(matches!(
        refuse("{ \"${x}\" = { publicKey = \"k\"; }; }"),
        HostsEditError::InterpolatedName { .. }
    ));
    assert!(matches!(
        refuse("{ a.publicKey = \"k\"; }"),
        HostsEditError::NestedPath { .. }
    ));
    assert!(matches!(
        refuse("{ a = \"k\"; }"),
        HostsEditError::EntryNotAttrset { .. }
    ));
    assert!(matches!(
        refuse("{ a = { x = 1; }; }"),
        HostsEditError::EntryWithoutKey { .. }
    ));
    assert!(matches!(
        refuse("{ inherit a; }"),
        HostsEditError::Inherit { .. }
    ));
    assert!(matches!(
        refuse("{ a = { publicKey = \"k\"; }; a = { publicKey = \"k\"; }; }"),
        HostsEditError::Duplicate { .. }
    ));
    assert!(matches!(
        refuse("{ a = { publicKey = \"k\" }; }"),
        HostsEditError::Syntax { .. }
    ));
}

#[test]
fn existing_names_are_unchanged_or_refused() {
    let text = format!("{{\n  z = {{ publicKey = \"{KEY}\"; }};\n}}");
    let same = edit_hosts(&text, &add("z"), None).unwrap();
    assert!(!same.change.is_change());
    assert_eq!(same.text, text);
    let other = HostIntent::Add(NewHost {
        name: "z".into(),
        public_key: "ssh-ed25519 BBBB".into(),
        hostname: None,
        ssh_alias: None,
        vmid: None,
    });
    let err = edit_hosts(&text, &other, None).unwrap_err();
    assert!(err.to_string().contains("vmctl hosts set-key z"), "{err}");
    let missing = edit_hosts(&text, &HostIntent::Remove { name: "y".into() }, None).unwrap_err();
    assert!(
        missing.to_string().contains("did you mean `z`"),
        "{missing}"
    );
}

#[test]
fn templates_render_inside_strings_and_are_checked() {
    let t = EntryTemplate {
        text: "# doc\n{\n  hostname = \"@hostname@\";\n  publicKey = \"@public_key@\"; # vmid @vmid@\n}\n".into(),
    };
    let out = edit_hosts("{\n}", &add("b"), Some(&t)).unwrap();
    assert_eq!(
        out.text,
        format!(
            "{{\n  b = {{\n    hostname = \"b\";\n    publicKey = \"{KEY}\"; # vmid\n  }};\n}}"
        )
    );
    let bad = EntryTemplate {
        text: "{ publicKey = \"@public_key@\"; x = \"@nope@\"; }".into(),
    };
    assert!(matches!(
        edit_hosts("{ }", &add("b"), Some(&bad)),
        Err(HostsEditError::Template { .. })
    ));
    let no_key = EntryTemplate {
        text: "{ hostname = \"@hostname@\"; }".into(),
    };
    assert!(matches!(
        edit_hosts("{ }", &add("b"), Some(&no_key)),
        Err(HostsEditError::Template { .. })
    ));
}

#[test]
fn names_and_keys_are_validated() {
    assert!(validate_name("test-automation").is_ok());
    assert!(validate_name("_proxmox").is_err());
    assert!(validate_name("a b").is_err());
    assert!(validate_public_key("ssh-ed25519 AAAA x\ny").is_err());
    assert!(validate_public_key("age1xyz").is_err());
    assert_eq!(
        validate_public_key(" ssh-rsa AAAA= c ").unwrap(),
        "ssh-rsa AAAA= c"
    );
}

#[test]
fn a_host_without_a_key_is_a_host_and_set_key_adds_it() {
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO8VKyhzcBQ4yMgYmcX8xILCt0u2lTGGk4vH1uMd4X9T";
    let set_key = HostIntent::SetKey {
        name: "web".into(),
        public_key: key.into(),
    };
    let text = "{\n  web = {\n    hostname = \"web\";\n  };\n}\n";
    let doc = locate(text).unwrap();
    assert!(doc.host("web").is_some_and(|e| e.public_key.is_none()));
    let out = edit_hosts(text, &set_key, None).unwrap();
    assert_eq!(
        out.text,
        format!("{{\n  web = {{\n    hostname = \"web\";\n    publicKey = \"{key}\";\n  }};\n}}\n")
    );
    let one_line = "{ web = { sshAlias = \"w\"; }; }";
    let out = edit_hosts(one_line, &set_key, None).unwrap();
    assert_eq!(
        out.text,
        format!("{{ web = {{ sshAlias = \"w\"; publicKey = \"{key}\"; }}; }}")
    );
    // `hosts add` of it says how to set its key; removing it works.
    let add = HostIntent::Add(NewHost {
        name: "web".into(),
        public_key: key.into(),
        hostname: None,
        ssh_alias: None,
        vmid: None,
    });
    assert!(matches!(
        edit_hosts(text, &add, None),
        Err(HostsEditError::NoKeyYet { .. })
    ));
    let removed = edit_hosts(text, &HostIntent::Remove { name: "web".into() }, None).unwrap();
    assert_eq!(removed.text, "{\n}\n");
}

#[test]
fn lint_and_edit_agree_on_which_entries_are_hosts() {
    use crate::syntax::{evaluate, NoImports, SourceDb};
    let files = [
        include_str!("../../../hosts.nix"),
        "{ _p = 1; a = { hostname = \"a\"; }; b = { publicKey = \"k\"; x = 1; }; }",
        "let k = \"x\"; in rec { _s = { y = 2; }; c = { sshAlias = \"c\"; publicKey = k; }; }",
        "{ a = { ip = \"10.0.0.1\"; }; }",
        "{ a = \"ssh-ed25519 AAAA\"; }",
    ];
    for text in files {
        let mut db = SourceDb::new();
        let f = db.add("/fleet/hosts.nix", text);
        let lint = crate::model::hosts::read_hosts(&evaluate(&mut db, f, &NoImports).value);
        let lint_names: Vec<&str> = lint.hosts.hosts.iter().map(|h| h.name.as_str()).collect();
        match locate(text) {
            Ok(doc) => {
                let edit_names: Vec<&str> = doc.hosts().map(|e| e.name.as_str()).collect();
                assert_eq!(lint_names, edit_names, "{text}");
                assert!(lint.issues.is_empty(), "{text}: {:?}", lint.issues);
            }
            // What edit refuses as "not a host", lint reports as not a host either.
            Err(_) => assert!(
                lint.issues
                    .iter()
                    .any(|i| matches!(i, crate::model::read::Issue::Unsupported { .. })),
                "{text}: edit refused but lint saw {lint_names:?}"
            ),
        }
    }
}
