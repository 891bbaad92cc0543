//! Unit tests of the text layer: edits, the line index and its agreement with the one-off
//! helpers, newline style.

use super::*;

#[test]
fn applies_in_position_order_whatever_the_input_order() {
    let edits = [
        TextEdit::insert(5, "!"),
        TextEdit::replace(0, 1, "J"),
        TextEdit::delete(2, 3),
    ];
    assert_eq!(apply("hello", &edits).unwrap(), "Jelo!");
}

#[test]
fn no_edits_and_edits_at_both_ends() {
    assert_eq!(apply("abc", &[]).unwrap(), "abc");
    assert_eq!(apply("", &[TextEdit::insert(0, "x")]).unwrap(), "x");
    assert_eq!(
        apply("abc", &[TextEdit::insert(0, "<"), TextEdit::insert(3, ">")]).unwrap(),
        "<abc>"
    );
    // Touching ranges do not overlap: the first ends where the second starts.
    assert_eq!(
        apply(
            "abcd",
            &[TextEdit::replace(2, 4, "Z"), TextEdit::delete(0, 2)]
        )
        .unwrap(),
        "Z"
    );
    // An insertion at the end of a replaced range is not ambiguous either.
    assert_eq!(
        apply(
            "abcd",
            &[TextEdit::replace(0, 2, "X"), TextEdit::insert(2, "-")]
        )
        .unwrap(),
        "X-cd"
    );
}

#[test]
fn refuses_overlaps_and_ambiguous_inserts() {
    assert_eq!(
        apply("hello", &[TextEdit::delete(0, 3), TextEdit::delete(2, 4)]),
        Err(ApplyError::Overlap((0, 3), (2, 4)))
    );
    assert_eq!(
        apply(
            "hello",
            &[TextEdit::insert(1, "a"), TextEdit::insert(1, "b")]
        ),
        Err(ApplyError::Overlap((1, 1), (1, 1)))
    );
    // An insertion strictly inside a replaced range overlaps it.
    assert!(matches!(
        apply("hello", &[TextEdit::insert(2, "a"), TextEdit::delete(1, 4)]),
        Err(ApplyError::Overlap(..))
    ));
}

#[test]
fn refuses_edits_outside_the_text_or_inside_a_character() {
    let out = |e: TextEdit, t: &str| matches!(apply(t, &[e]), Err(ApplyError::OutOfBounds { .. }));
    assert!(out(TextEdit::delete(3, 9), "hello"));
    assert!(out(TextEdit::delete(3, 2), "hello"));
    assert!(out(TextEdit::insert(1, "x"), "é"));
    assert!(out(TextEdit::insert(1, "x"), ""));
}

#[test]
fn line_index_lines_and_columns_are_one_based_and_count_chars() {
    let t = "ab\nçd\n";
    let idx = LineIndex::new(t);
    assert_eq!(idx.line_col(t, 0), (1, 1));
    assert_eq!(idx.line_col(t, 3), (2, 1));
    assert_eq!(idx.line_col(t, 5), (2, 2), "ç is one column");
    assert_eq!(idx.line_col(t, 6), (2, 3));
    assert_eq!(
        idx.line_col(t, 7),
        (3, 1),
        "the end, after the last line break"
    );
    assert_eq!(
        idx.line_col(t, 4),
        (2, 1),
        "inside ç: rounded down to its start"
    );
    assert_eq!(idx.line_col(t, 99), (3, 1), "past the end: the end");
}

#[test]
fn line_index_at_crlf() {
    let t = "a\r\nbc\r\n\r\nd";
    let idx = LineIndex::new(t);
    assert_eq!(idx.line_col(t, 1), (1, 2), "the \\r is the end of line 1");
    assert_eq!(idx.line_col(t, 2), (1, 3), "and so is the \\n");
    assert_eq!(idx.line_col(t, 3), (2, 1));
    assert_eq!(idx.line_col(t, 7), (3, 1), "an empty CRLF line");
    assert_eq!(idx.line_col(t, 9), (4, 1));
    assert_eq!(idx.line_start(1), 3);
    assert_eq!(idx.line_start(3), 9);
    assert_eq!(idx.line_start(4), t.len(), "past the last line");
    let lines: Vec<&str> = idx.lines().map(|r| &t[r]).collect();
    assert_eq!(lines, ["a\r\n", "bc\r\n", "\r\n", "d"]);
    assert_eq!(
        line_end(t, 4),
        6,
        "the \\n; the \\r before it stays on the line"
    );
    assert_eq!(next_line_start(t, 4), 7);
    assert!(is_blank(&t[7..8]), "a lone \\r is blank");
}

#[test]
fn line_index_multibyte() {
    let t = "ü = \"ö\";\n  🦀 x\n";
    let idx = LineIndex::new(t);
    let x = t.find('x').unwrap();
    assert_eq!(idx.line_col(t, x), (2, 5), "the crab is one column");
    let crab = t.find('🦀').unwrap();
    for inside in crab..crab + '🦀'.len_utf8() {
        assert_eq!(idx.line_col(t, inside), (2, 3), "offset {inside}");
        assert_eq!(line_start(t, inside), t.find("  🦀").unwrap());
    }
}

#[test]
fn line_index_at_the_end_of_the_file() {
    for (t, lines) in [
        ("a\nb", vec!["a\n", "b"]),
        ("a\nb\n", vec!["a\n", "b\n"]),
        ("\n", vec!["\n"]),
        ("\n\n", vec!["\n", "\n"]),
    ] {
        let idx = LineIndex::new(t);
        let got: Vec<&str> = idx.lines().map(|r| &t[r]).collect();
        assert_eq!(got, lines, "{t:?}");
        assert_eq!(idx.line(t.len()), t.matches('\n').count(), "{t:?}");
        assert_eq!(line_end(t, t.len()), t.len());
        assert_eq!(next_line_start(t, t.len()), t.len());
    }
}

#[test]
fn line_index_of_an_empty_file() {
    let idx = LineIndex::new("");
    assert_eq!(idx.line(0), 0);
    assert_eq!(idx.line_col("", 0), (1, 1));
    assert_eq!(idx.line_start(0), 0);
    assert_eq!(idx.line_start(1), 0);
    let lines: Vec<_> = idx.lines().collect();
    assert_eq!((lines.len(), &lines[0]), (1, &(0..0)), "one empty line");
    assert_eq!(
        (line_start("", 0), line_end("", 0), line_number("", 0)),
        (0, 0, 1)
    );
    assert_eq!(line_col("", 5), (1, 1));
}

#[test]
fn the_index_and_the_one_off_helpers_agree_at_every_offset() {
    for t in [
        "",
        "x",
        "ab\nçd\n",
        "a\r\nb\r\n",
        "\n\n🦀\n",
        "  one\n\ttwo\r\n  three",
    ] {
        let idx = LineIndex::new(t);
        for o in 0..=t.len() + 1 {
            assert_eq!(idx.line_col(t, o), line_col(t, o), "{t:?} at {o}");
            let line = idx.line(o);
            assert_eq!(line + 1, line_number(t, o), "{t:?} at {o}");
            assert_eq!(idx.line_start(line), line_start(t, o), "{t:?} at {o}");
            assert!(line_start(t, o) <= o.min(t.len()) && o.min(t.len()) <= line_end(t, o));
        }
        // The lines cover the text exactly, in order.
        let joined: String = idx.lines().map(|r| &t[r]).collect();
        assert_eq!(joined, t);
    }
}

#[test]
fn indentation_helpers() {
    let t = "a\n  \tb = 1;\n x y\n";
    let b = t.find('b').unwrap();
    assert_eq!(leading_indent(t, b), Some("  \t"));
    assert_eq!(
        leading_indent(t, t.find('y').unwrap()),
        None,
        "x precedes y"
    );
    assert_eq!(leading_indent(t, 0), Some(""));
    assert_eq!(indent_width("    - age"), 4);
    assert_eq!(indent_width("\t- age"), 0, "YAML indents with spaces only");
    assert!(is_blank("") && is_blank(" \t\r"));
    assert!(!is_blank(" # c"));
}

#[test]
fn newline_style_follows_the_file() {
    assert_eq!(Newline::of("a\nb\n"), Newline::Lf);
    assert_eq!(Newline::of(""), Newline::Lf);
    assert_eq!(
        Newline::of("a\r\nb\n"),
        Newline::Crlf,
        "any CRLF makes it CRLF"
    );
    assert_eq!(Newline::Crlf.as_str(), "\r\n");
    assert_eq!(Newline::Crlf.convert("x\ny\r\nz\n"), "x\r\ny\r\nz\r\n");
    assert_eq!(Newline::Lf.convert("x\r\ny\n"), "x\ny\n");

    let mut edits = [TextEdit::insert(0, "- a\n- b\r\n"), TextEdit::delete(1, 2)];
    Newline::follow("k:\r\n", &mut edits);
    assert_eq!(edits[0].insert, "- a\r\n- b\r\n");
    assert_eq!(edits[1].insert, "");
    let mut edits = [TextEdit::insert(0, "- a\n")];
    Newline::follow("k:\n", &mut edits);
    assert_eq!(edits[0].insert, "- a\n", "an LF file is left as it is");
}

#[test]
fn the_text_layer_imports_nothing_else_of_vmctl() {
    // It is the bottom layer: everything may use it, so it may use nothing.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/text");
    let mut read = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        assert!(
            !source.contains("crate::") && !source.contains("super::super"),
            "{} imports another part of vmctl",
            path.display()
        );
        read += 1;
    }
    assert!(read >= 4, "read {read} files of {}", dir.display());
}
