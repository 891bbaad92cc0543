//! Tests of the lossless removal of a managed VM from definitions.nix.

use super::*;

fn removed(text: &str, name: &str) -> String {
    let edit = remove_managed(text, name).unwrap_or_else(|e| panic!("{e}"));
    assert!(rnix::Root::parse(&edit.text).errors().is_empty());
    edit.text
}

const THREE: &str = "{
  proxmox = { host = \"prom.lan\"; };

  managed = {
    # web tier
    web = {
      vmid = 110;
      cores = 2;
    };

    db = { vmid = 111; }; # the database

    cache = {
      vmid = 112;
    };
  };
}
";

#[test]
fn a_middle_binding_goes_with_its_trailing_comment_and_one_blank_line() {
    let out = removed(THREE, "db");
    assert_eq!(
        out,
        "{
  proxmox = { host = \"prom.lan\"; };

  managed = {
    # web tier
    web = {
      vmid = 110;
      cores = 2;
    };

    cache = {
      vmid = 112;
    };
  };
}
"
    );
}

#[test]
fn a_comment_above_is_kept_and_reported() {
    let edit = remove_managed(THREE, "web").unwrap();
    assert_eq!(edit.kept_comment, Some((5, 5)));
    // The comment stays where it was, and so does the blank line that separated the removed
    // binding from the next (it was not blank on both sides).
    assert!(edit
        .summary("web")
        .contains("kept the comment above it (line 5)"));
    assert_eq!(
        edit.text,
        "{
  proxmox = { host = \"prom.lan\"; };

  managed = {
    # web tier

    db = { vmid = 111; }; # the database

    cache = {
      vmid = 112;
    };
  };
}
"
    );
}

#[test]
fn the_last_binding_takes_the_blank_line_before_it() {
    let out = removed(THREE, "cache");
    assert!(out.contains("# the database\n  };\n"), "{out}");
}

#[test]
fn the_demo_fleet_loses_only_its_one_managed_vm() {
    let demo = include_str!("../../vms/definitions.nix");
    let out = removed(demo, "test-automation");
    // Every line outside the binding is kept, byte for byte.
    let start = demo.find("    test-automation = {").unwrap();
    let end = demo[start..].find("\n    };\n").unwrap() + start + "\n    };\n".len();
    assert_eq!(out, format!("{}{}", &demo[..start], &demo[end..]));
    assert!(out.contains("  managed = {\n  };\n"), "{out}");
    // Removing again finds nothing.
    assert_eq!(
        remove_managed(&out, "test-automation"),
        Err(DefinitionsEditError::NotFound {
            name: "test-automation".into()
        })
    );
}

#[test]
fn one_line_sets_and_crlf_keep_their_neighbours() {
    assert_eq!(
        removed(
            "{ managed = { a = { vmid = 1; }; b = { vmid = 2; }; }; }",
            "a"
        ),
        "{ managed = { b = { vmid = 2; }; }; }"
    );
    assert_eq!(
        removed(
            "{ managed = { a = { vmid = 1; }; b = { vmid = 2; }; }; }",
            "b"
        ),
        "{ managed = { a = { vmid = 1; }; }; }"
    );
    let crlf =
        "{\r\n  managed = {\r\n    a = { vmid = 1; };\r\n    b = { vmid = 2; };\r\n  };\r\n}\r\n";
    assert_eq!(
        removed(crlf, "a"),
        "{\r\n  managed = {\r\n    b = { vmid = 2; };\r\n  };\r\n}\r\n"
    );
}

#[test]
fn let_in_rec_and_quoted_names_are_found() {
    let text = "let\n  base = { cores = 2; };\nin rec {\n  managed = {\n    \"web-1\" = base // { vmid = 110; };\n    other = base // { vmid = 111; };\n  };\n}\n";
    let out = removed(text, "web-1");
    assert_eq!(
        out,
        "let\n  base = { cores = 2; };\nin rec {\n  managed = {\n    other = base // { vmid = 111; };\n  };\n}\n"
    );
}

#[test]
fn shapes_vmctl_cannot_edit_safely_are_refused() {
    let refuse = |text: &str| remove_managed(text, "web").unwrap_err();
    assert!(matches!(
        refuse("{ managed = { web = { vmid = 1; }; "),
        DefinitionsEditError::Syntax { .. }
    ));
    assert!(matches!(
        refuse("[ ]"),
        DefinitionsEditError::UnsupportedShape { .. }
    ));
    assert!(matches!(
        refuse("{ imported = { }; }"),
        DefinitionsEditError::NoManaged { .. }
    ));
    assert!(matches!(
        refuse("{ managed = import ./managed.nix; }"),
        DefinitionsEditError::ManagedNotLiteral { .. }
    ));
    assert!(matches!(
        refuse("{ managed = { }; managed.web = { vmid = 1; }; }"),
        DefinitionsEditError::ManagedSplit { .. }
    ));
    assert!(matches!(
        refuse("{ managed.web = { vmid = 1; }; }"),
        DefinitionsEditError::ManagedSplit { .. }
    ));
    assert!(matches!(
        refuse("{ managed = { web.vmid = 1; web.cores = 2; }; }"),
        DefinitionsEditError::VmSplit { .. }
    ));
    assert!(matches!(
        refuse("let web = { }; in { managed = { inherit web; }; }"),
        DefinitionsEditError::VmSplit { .. }
    ));
    assert!(matches!(
        refuse("{ managed = { other = { vmid = 1; }; }; }"),
        DefinitionsEditError::NotFound { .. }
    ));
    // An imported VM of that name is not a managed one.
    assert!(matches!(
        refuse("{ imported = { web = { vmid = 1; }; }; managed = { }; }"),
        DefinitionsEditError::NotFound { .. }
    ));
}

#[test]
fn applying_the_edit_twice_equals_once_and_the_tree_round_trips() {
    let edit = remove_managed(THREE, "db").unwrap();
    assert_eq!(
        rnix::Root::parse(&edit.text).syntax().to_string(),
        edit.text
    );
    assert!(remove_managed(&edit.text, "db").is_err());
    let again = remove_managed(&edit.text, "web").unwrap();
    assert!(!again.text.contains("web ="));
    assert!(again.text.contains("cache = {"));
}

/// The lint rules' errors on a fleet of only definitions.nix `text`.
fn lint_errors(text: &str) -> Vec<String> {
    use crate::model::fleet::{Fleet, NixRole};
    let mut fleet = Fleet::default();
    fleet.add_nix(
        "vms/definitions.nix",
        text,
        NixRole::Definitions,
        &crate::syntax::NoImports,
    );
    crate::check::check_fleet(&fleet)
        .into_iter()
        .filter(|d| d.severity() == crate::check::Severity::Error)
        .map(|d| format!("{d:?}"))
        .collect()
}

#[test]
fn the_result_lints_as_clean_as_the_input() {
    let demo = include_str!("../../vms/definitions.nix");
    assert_eq!(lint_errors(demo), Vec::<String>::new());
    let out = removed(demo, "test-automation");
    assert_eq!(lint_errors(&out), Vec::<String>::new());
    let two = demo.replace(
        "  managed = {\n",
        "  managed = {\n    web = { vmid = 111; cores = 1; memory = 1024; disk = \"10G\"; };\n\n",
    );
    assert_eq!(lint_errors(&two), Vec::<String>::new());
    // Removing what was inserted gives the file back, byte for byte.
    assert_eq!(removed(&two, "web"), demo);
    assert_eq!(
        lint_errors(&removed(&two, "test-automation")),
        Vec::<String>::new()
    );
}
