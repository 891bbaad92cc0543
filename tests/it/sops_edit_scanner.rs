//! The lossless scanner against a real YAML parser: on every fixture (and on generated
//! `.sops.yaml` shapes) the tree it reads means what a real YAML parser (libyaml, behind
//! `vmctl::yaml::value`) reads.

use proptest::prelude::*;
use vmctl::edit::sops::{add_recipient, remove_recipient, AddRecipient};
use vmctl::secrets::SopsConfig;
use vmctl::yaml::scan::{Doc, NodeId, NodeKind, ScalarStyle};
use vmctl::yaml::value::{self, Mapping, Value};

/// Our tree as the parser's value (aliases expanded, merge keys left as `<<` entries).
fn to_value(doc: &Doc, id: NodeId) -> Value {
    let node = doc.node(id);
    match &node.kind {
        NodeKind::Null => Value::Null,
        NodeKind::Alias(_) => to_value(doc, doc.resolve(id).expect("alias resolves")),
        NodeKind::Scalar(s) => match s.style {
            // Typing plain scalars (true, 3, ~) is not what this test is about: let the parser do it.
            // A plain `---` or `...` would read as a document marker on its own: it is a string.
            ScalarStyle::Plain if is_marker(&s.value) => Value::String(s.value.clone()),
            ScalarStyle::Plain => {
                value::load_raw(&s.value).unwrap_or(Value::String(s.value.clone()))
            }
            _ => Value::String(s.value.clone()),
        },
        NodeKind::Seq(s) => {
            Value::Sequence(s.items.iter().map(|i| to_value(doc, i.node)).collect())
        }
        NodeKind::Map(m) => {
            let mut out = Mapping::new();
            for e in &m.entries {
                out.push(Value::String(e.key.clone()), to_value(doc, e.value));
            }
            Value::Mapping(out)
        }
        NodeKind::Opaque => value::load_raw(&doc.text[node.span.clone()]).unwrap(),
    }
}

fn is_marker(v: &str) -> bool {
    ["---", "..."].iter().any(|m| {
        v.strip_prefix(m)
            .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t']))
    })
}

fn same_meaning(text: &str) {
    let doc = Doc::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let ours = doc.root.map(|r| to_value(&doc, r)).unwrap_or(Value::Null);
    let theirs: Value = value::load_raw(text).unwrap();
    assert_eq!(ours, theirs, "{text}");
}

#[test]
fn every_fixture_reads_as_the_yaml_parser_reads_it() {
    let root = crate::support::repo();
    let mut files = vec![root.join(".sops.yaml")];
    for e in std::fs::read_dir(root.join("tests/fixtures/real-world/sops")).unwrap() {
        files.push(e.unwrap().path());
    }
    let mut n = 0;
    for f in files
        .iter()
        .filter(|f| f.to_string_lossy().ends_with(".yaml"))
    {
        same_meaning(&std::fs::read_to_string(f).unwrap());
        n += 1;
    }
    assert_eq!(n, 11);
}

/// A block scalar that ends the file with no final newline has no line break to clip or keep
/// (found by the fuzz below: the scanner used to add one that libyaml does not see).
#[test]
fn a_block_scalar_at_the_end_of_a_file_without_newline_reads_as_the_parser_reads_it() {
    for header in [">", "|", ">-", "|+", ">#-", "|2"] {
        for end in ["", "\n", "\r\n", " "] {
            same_meaning(&format!(
                "creation_rules:\n  - age: {header}\n      age1abc,\n      age1def{end}"
            ));
        }
    }
}

#[test]
fn crlf_files_stay_crlf() {
    let text = "creation_rules:\r\n  - path_regex: s/.*\r\n    key_groups:\r\n    - age:\r\n      - age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs\r\n";
    same_meaning(text);
    let edit = add_recipient(
        text,
        &AddRecipient {
            name: "n",
            recipient: R[0],
            rules: &[],
            all: true,
            hosts: &[],
        },
    )
    .unwrap();
    assert!(
        !edit.new_text.replace("\r\n", "").contains('\n'),
        "{:?}",
        edit.new_text
    );
}

const R: [&str; 4] = [
    "age17044m9wgakla6pzftf4srtl3h5mcsr85jysgt5fg23zpnta8sfdqhzn452",
    "age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs",
    "age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw",
    "age1lzd99uklcjnc0e7d860axevet2cz99ce9pq6tzuzd05l5nr28ams36nvun",
];

/// How one generated file is written.
#[derive(Debug, Clone)]
struct Shape {
    /// Spaces per level (2 or 4).
    indent: usize,
    /// Sequences indented under their key, or at the key's column.
    indented_seqs: bool,
    /// A `keys:` list of anchors and aliases in rules, or inline recipients with comments.
    anchors: bool,
    /// Per rule: how many of R[1..] it holds (1..=3) and its list style (0 block, 1 flow,
    /// 2 comma string).
    rules: Vec<(usize, u8)>,
    comments: bool,
    blank_lines: bool,
    final_newline: bool,
}

fn render(s: &Shape) -> String {
    let i = " ".repeat(s.indent);
    let seq = if s.indented_seqs {
        i.clone()
    } else {
        String::new()
    };
    let mut out = String::new();
    if s.comments {
        out.push_str("# generated\n");
    }
    if s.anchors {
        out.push_str("keys:\n");
        for (n, r) in R[1..].iter().enumerate() {
            out.push_str(&format!("{seq}- &k{n} {r}\n"));
        }
        if s.blank_lines {
            out.push('\n');
        }
    }
    out.push_str("creation_rules:\n");
    for (idx, (count, style)) in s.rules.iter().enumerate() {
        let rc = seq.clone();
        let kc = format!("{rc}  ");
        if s.comments {
            out.push_str(&format!("{rc}# rule {idx}\n"));
        }
        out.push_str(&format!("{rc}- path_regex: secrets/r{idx}/.*\n"));
        let names: Vec<String> = (0..*count)
            .map(|n| {
                if s.anchors {
                    format!("*k{n}")
                } else {
                    R[1 + n].to_string()
                }
            })
            .collect();
        match style {
            2 if !s.anchors => out.push_str(&format!("{kc}age: {}\n", names.join(","))),
            1 => out.push_str(&format!(
                "{kc}key_groups:\n{kc}{seq}- age: [{}]\n",
                names.join(", ")
            )),
            _ => {
                out.push_str(&format!("{kc}key_groups:\n{kc}{seq}- age:\n"));
                let ac = format!("{kc}{seq}  {seq}");
                for (n, name) in names.iter().enumerate() {
                    let c = if s.comments && !s.anchors {
                        format!(" # h{n}")
                    } else {
                        String::new()
                    };
                    out.push_str(&format!("{ac}- {name}{c}\n"));
                }
            }
        }
        if s.blank_lines {
            out.push('\n');
        }
    }
    if !s.final_newline {
        while out.ends_with('\n') {
            out.pop();
        }
    }
    out
}

fn shapes() -> impl Strategy<Value = Shape> {
    (
        prop_oneof![Just(2usize), Just(4usize)],
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec((1usize..=3, 0u8..3), 1..5),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(indent, indented_seqs, anchors, rules, comments, blank_lines, final_newline)| Shape {
                indent,
                indented_seqs,
                anchors,
                rules,
                comments,
                blank_lines,
                final_newline,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every generated shape: read like the YAML parser reads it; add-recipient succeeds, puts the
    /// recipient in every rule's first group and nothing else, is idempotent, and
    /// remove-recipient gives the original back byte for byte.
    #[test]
    fn generated_files_round_trip(shape in shapes()) {
        let text = render(&shape);
        same_meaning(&text);
        let edit = add_recipient(&text, &AddRecipient { name: "newvm", recipient: R[0], rules: &[], all: true, hosts: &[] })
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        // Read back by the one reader sops's rules go through (checks and re-keying use it).
        let new = SopsConfig::parse(&edit.new_text).unwrap();
        let old = SopsConfig::parse(&text).unwrap();
        prop_assert_eq!(old.rules.len(), new.rules.len());
        for (a, b) in old.rules.iter().zip(&new.rules) {
            let mut want = a.key_groups[0].age.clone();
            if !want.iter().any(|r| r == R[0]) {
                want.push(R[0].to_string());
            }
            prop_assert_eq!(b.key_groups[0].age.clone(), want);
        }
        let again = add_recipient(&edit.new_text, &AddRecipient { name: "newvm", recipient: R[0], rules: &[], all: true, hosts: &[] }).unwrap();
        prop_assert!(again.is_noop());
        let removed = remove_recipient(&edit.new_text, "newvm", Some(R[0])).unwrap();
        prop_assert_eq!(removed.new_text, text);
    }
}

const PIECES: &[&str] = &[
    " ", "  ", "-", "- ", ":", ": ", "#", " #", "\n", "\t", "&a ", "*a", "[", "]", ",", "'", "\"",
    "|", ">-", "<<: ", "{", "}", "\\", "\r\n", "é", "---\n",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    /// Mutated fixtures never make the scanner or the edits panic; when both parsers accept
    /// the text they agree on its meaning, and every edit that succeeds is checked from
    /// outside (re-read, recipients compared with the parser's reading).
    #[test]
    fn mutated_files_never_panic(file in 0usize..11, edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..PIECES.len(), 0usize..3), 1..4)) {
        let root = crate::support::repo();
        let mut files: Vec<_> = std::fs::read_dir(root.join("tests/fixtures/real-world/sops")).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        files.push(root.join(".sops.yaml"));
        let mut text = std::fs::read_to_string(&files[file % files.len()]).unwrap();
        for (at, piece, del) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) { i -= 1; }
            let mut j = (i + del).min(text.len());
            while !text.is_char_boundary(j) { j += 1; }
            text.replace_range(i..j, PIECES[piece]);
        }
        let ours = Doc::parse(&text);
        let theirs = value::load_raw(&text);
        if let (Ok(doc), Ok(v)) = (&ours, &theirs) {
            let mine = doc.root.map(|r| to_value(doc, r)).unwrap_or(Value::Null);
            prop_assert_eq!(&mine, v, "{}", text);
        }
        if let Ok(edit) = add_recipient(&text, &AddRecipient { name: "newvm", recipient: R[0], rules: &[], all: true, hosts: &[] }) {
            verify_added(&text, &edit);
        }
        if let Ok(edit) = remove_recipient(&text, "atlas", None) {
            verify_removed(&text, &edit);
        }
    }
}

/// The groups of every rule as sops reads them, `recipient` taken out.
fn groups_without(config: &SopsConfig, recipient: &str) -> Vec<Vec<Vec<String>>> {
    config
        .rules
        .iter()
        .map(|r| {
            r.key_groups
                .iter()
                .map(|g| g.age.iter().filter(|a| *a != recipient).cloned().collect())
                .collect()
        })
        .collect()
}

/// An add that succeeded, checked from outside: the result loads as YAML and as sops's
/// rules, means the same once the recipient is taken out, and every rule it says it added
/// to now lists the recipient.
fn verify_added(text: &str, edit: &vmctl::edit::sops::SopsEdit) {
    let (old, new) = (
        value::load(text).unwrap(),
        value::load(&edit.new_text).unwrap_or_else(|e| panic!("{e}\n{}", edit.new_text)),
    );
    assert_eq!(
        value::strip(&old, R[0]),
        value::strip(&new, R[0]),
        "{}",
        edit.new_text
    );
    let (co, cn) = (
        SopsConfig::parse(text).unwrap(),
        SopsConfig::parse(&edit.new_text).unwrap(),
    );
    assert_eq!(
        groups_without(&co, R[0]),
        groups_without(&cn, R[0]),
        "{}",
        edit.new_text
    );
    for change in edit.rules.iter().filter(|c| c.action == "added") {
        let rule = &cn.rules[change.index];
        assert!(
            rule.key_groups
                .iter()
                .any(|g| g.age.iter().any(|a| a == R[0])),
            "rule {} lacks the recipient:\n{}",
            change.index,
            edit.new_text
        );
    }
    if !edit.is_noop() {
        assert!(
            value::count(&new, R[0]) > value::count(&old, R[0]),
            "{}",
            edit.new_text
        );
    }
}

/// A removal that succeeded, checked from outside: no rule sops reads lists the recipient,
/// and nothing else changed.
fn verify_removed(text: &str, edit: &vmctl::edit::sops::SopsEdit) {
    let r = edit.recipient.as_str();
    let (old, new) = (
        value::load(text).unwrap(),
        value::load(&edit.new_text).unwrap_or_else(|e| panic!("{e}\n{}", edit.new_text)),
    );
    assert_eq!(
        value::strip(&old, r),
        value::strip(&new, r),
        "{}",
        edit.new_text
    );
    let cn = SopsConfig::parse(&edit.new_text).unwrap();
    assert!(
        cn.rules.iter().all(|rule| rule
            .key_groups
            .iter()
            .all(|g| !g.age.iter().any(|a| a == r))),
        "{}",
        edit.new_text
    );
    assert_eq!(
        groups_without(&SopsConfig::parse(text).unwrap(), r),
        groups_without(&cn, r)
    );
}

/// Found by the fuzz test above: a `---` inside a sequence entry is a plain string, not a
/// document marker.
#[test]
fn a_dash_marker_inside_a_sequence_is_a_string() {
    same_meaning("creation_rules:\n  - ---\nage: x\n");
}
