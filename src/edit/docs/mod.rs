//! docs/machines.md: generated sections between `<!-- vmctl:begin NAME -->` and
//! `<!-- vmctl:end NAME -->` markers, regenerated from definitions.nix; everything outside the
//! markers is the user's and is kept byte for byte.
//!
//! Sections: `inventory`, `template`, `vmid-ranges` and one `vm-NAME` per VM. A section that
//! is missing is added: `vm-NAME` after the section of the VM before it in VMID order (or
//! before the first VM section after it), the others at the end of the file. A `vm-NAME`
//! section whose VM left definitions.nix is removed with its markers; sections with other
//! names vmctl does not know are left alone and reported. Broken markers (a begin without its
//! end, an end without its begin, a name twice, nesting) are an error and nothing changes.

mod markers;
mod sections;

use crate::model::{Definitions, VmKind};
use crate::text::{apply, ApplyError, Newline, TextEdit};
#[cfg(test)]
use markers::marker;
use markers::{begin_marker, end_marker, scan, Block};
use sections::safe_name;

pub use sections::{next_free_vmid, sections};

/// The title of a machines.md vmctl creates.
const NEW_FILE_HEADER: &str = "# Machines\n\n\
Everything between `vmctl:begin` and `vmctl:end` markers is generated from\n\
`vms/definitions.nix` by `vmctl docs`; write your own notes outside them.\n";

/// A heading written once, above the first VM section vmctl adds to a file without any.
const VMS_HEADING: &str = "## Virtual machines\n";

/// Why machines.md cannot be regenerated. The file is not written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocsError {
    #[error("line {line}: `vmctl:begin {name}` has no matching `<!-- vmctl:end {name} -->`; add it (or delete the begin marker) and run `vmctl docs` again")]
    Unclosed { name: String, line: usize },
    #[error("line {line}: `vmctl:end {name}` has no `vmctl:begin {name}` before it; fix or delete the marker and run `vmctl docs` again")]
    UnexpectedEnd { name: String, line: usize },
    #[error("line {line}: `vmctl:begin {inner}` inside section `{outer}`; sections cannot nest, close `{outer}` first")]
    Nested {
        outer: String,
        inner: String,
        line: usize,
    },
    #[error(
        "line {line}: section `{name}` appears twice (first at line {first}); delete one of them"
    )]
    Duplicate {
        name: String,
        line: usize,
        first: usize,
    },
    #[error("VM `{name}`: its name cannot be a section marker of machines.md (`<!-- vmctl:begin vm-{name} -->`); use letters, digits, `.`, `_` and `-` in VM names")]
    UnsafeName { name: String },
    /// The generated edits overlap: a bug in vmctl, refused rather than written.
    #[error("internal error: the edits of machines.md overlap ({0}); the file was not changed, please report this")]
    Overlap(#[from] ApplyError),
}

/// One generated section: its marker name and its body (ending with a newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub body: String,
}

/// The regenerated file and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocsUpdate {
    pub text: String,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Sections with names vmctl does not generate, left as they are.
    pub unknown: Vec<String>,
}

/// machines.md regenerated from `defs`: `existing` is the current file, `None` when there is
/// none. Pure and deterministic.
pub fn update(existing: Option<&str>, defs: &Definitions) -> Result<DocsUpdate, DocsError> {
    if let Some(vm) = defs
        .all_vms()
        .find(|v| v.kind != VmKind::Template && !safe_name(&v.name))
    {
        return Err(DocsError::UnsafeName {
            name: vm.name.clone(),
        });
    }
    let text = existing.unwrap_or(NEW_FILE_HEADER);
    let newline = Newline::of(text);
    let nl = newline.as_str();
    let blocks = scan(text)?;
    let wanted = sections(defs);
    let body_of = |name: &str| wanted.iter().find(|s| s.name == name).map(|s| &s.body);
    let crlf = |s: &str| newline.convert(s);
    let render_block = |s: &Section| {
        crlf(&format!(
            "{}\n{}{}\n",
            begin_marker(&s.name),
            s.body,
            end_marker(&s.name)
        ))
    };

    let mut edits: Vec<TextEdit> = Vec::new();
    let mut removed = Vec::new();
    let mut unknown = Vec::new();
    for b in &blocks {
        match body_of(&b.name) {
            Some(body) => edits.push(TextEdit::replace(b.body.start, b.body.end, crlf(body))),
            None if b.name.starts_with("vm-") => {
                // The VM left definitions.nix: its generated section goes, with one blank line
                // that separated it from what came before.
                let mut start = b.begin_line.start;
                let before = &text[..start];
                if before.ends_with("\n\n") || before.ends_with("\r\n\r\n") {
                    start -= nl.len();
                }
                edits.push(TextEdit::delete(start, b.end_line.end));
                removed.push(b.name.clone());
            }
            None => unknown.push(b.name.clone()),
        }
    }

    // Missing sections.
    let present = |name: &str| blocks.iter().any(|b| b.name == name);
    let mut added = Vec::new();
    let mut at_end = String::new();
    let mut inserts: Vec<(usize, String)> = Vec::new();
    let vm_blocks: Vec<&Block> = blocks
        .iter()
        .filter(|b| b.name.starts_with("vm-") && body_of(&b.name).is_some())
        .collect();
    let order: Vec<&str> = wanted.iter().map(|s| s.name.as_str()).collect();
    let rank = |name: &str| order.iter().position(|n| *n == name);
    let mut new_vm_heading = vm_blocks.is_empty();
    for s in &wanted {
        if present(&s.name) {
            continue;
        }
        added.push(s.name.clone());
        let block = render_block(s);
        if s.name.starts_with("vm-") {
            let me = rank(&s.name);
            let after = vm_blocks
                .iter()
                .filter(|b| rank(&b.name) < me)
                .max_by_key(|b| rank(&b.name));
            let before = vm_blocks
                .iter()
                .filter(|b| rank(&b.name) > me)
                .min_by_key(|b| rank(&b.name));
            match (after, before) {
                (Some(a), _) => inserts.push((a.end_line.end, format!("{nl}{block}"))),
                (None, Some(b)) => inserts.push((b.begin_line.start, format!("{block}{nl}"))),
                (None, None) => {
                    if new_vm_heading {
                        at_end.push_str(nl);
                        at_end.push_str(&crlf(VMS_HEADING));
                        new_vm_heading = false;
                    }
                    at_end.push_str(nl);
                    at_end.push_str(&block);
                }
            }
        } else {
            at_end.push_str(nl);
            at_end.push_str(&block);
        }
    }
    // Several insertions may share a position (two new VMs after the same section): they
    // become one insertion, in their canonical order.
    for (pos, s) in inserts {
        match edits.iter_mut().find(|e| e.start == pos && e.end == pos) {
            Some(e) => e.insert.push_str(&s),
            None => edits.push(TextEdit::insert(pos, s)),
        }
    }
    if !at_end.is_empty() {
        let mut tail = String::new();
        if !text.is_empty() && !text.ends_with('\n') {
            tail.push_str(nl);
        }
        tail.push_str(&at_end);
        match edits
            .iter_mut()
            .find(|e| e.start == text.len() && e.end == text.len())
        {
            Some(e) => e.insert.push_str(&tail),
            None => edits.push(TextEdit::insert(text.len(), tail)),
        }
    }
    let out = apply(text, &edits)?;
    Ok(DocsUpdate {
        text: out,
        added,
        removed,
        unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Vm;
    use crate::model::{TextRange, VmidRange};

    fn vm(name: &str, kind: VmKind, vmid: u32) -> Vm {
        Vm {
            readonly: kind == VmKind::Imported,
            cores: Some(2),
            memory: Some(4096),
            disk: Some("20G".into()),
            purpose: Some(format!("{name} | purpose")),
            ..Vm::new(name, kind, Some(vmid))
        }
    }

    fn defs(managed: &[(&str, u32)]) -> Definitions {
        Definitions {
            template: Some(vm("tmpl", VmKind::Template, 9001)),
            imported: vec![vm("old", VmKind::Imported, 104)],
            managed: managed
                .iter()
                .map(|(n, id)| vm(n, VmKind::Managed, *id))
                .collect(),
            vmid_ranges: vec![VmidRange {
                name: "managed".into(),
                start: 110,
                end: 112,
                description: None,
                range: TextRange::default(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn next_free_considers_every_vm() {
        let d = defs(&[("a", 110), ("b", 112)]);
        assert_eq!(next_free_vmid(&d, 110, 112), Some(111));
        let d = defs(&[("a", 110), ("b", 111), ("c", 112)]);
        assert_eq!(next_free_vmid(&d, 110, 112), None);
        assert!(update(None, &d)
            .unwrap()
            .text
            .contains("| managed | 110–112 | 3 | full |"));
    }

    #[test]
    fn first_run_creates_everything_and_second_run_is_identical() {
        let d = defs(&[("web", 110)]);
        let first = update(None, &d).unwrap();
        assert!(first.text.starts_with("# Machines\n"));
        assert_eq!(
            first.added,
            ["inventory", "template", "vmid-ranges", "vm-old", "vm-web"]
        );
        assert!(first.text.contains("| 104 | old | old \\| purpose |"));
        let second = update(Some(&first.text), &d).unwrap();
        assert_eq!(second.text, first.text);
        assert!(second.added.is_empty());
    }

    #[test]
    fn new_vms_go_in_vmid_order_and_removed_vms_leave() {
        let d = defs(&[("web", 110)]);
        let text = update(None, &d).unwrap().text;
        let more = defs(&[("web", 110), ("db", 111)]);
        let grown = update(Some(&text), &more).unwrap();
        let web = grown.text.find("vmctl:begin vm-web").unwrap();
        let db = grown.text.find("vmctl:begin vm-db").unwrap();
        assert!(web < db);
        assert_eq!(grown.text, update(None, &more).unwrap().text);
        let shrunk = update(Some(&grown.text), &d).unwrap();
        assert_eq!(shrunk.removed, ["vm-db"]);
        assert_eq!(shrunk.text, text);
    }

    #[test]
    fn hand_written_text_survives_and_broken_markers_are_refused() {
        let d = defs(&[("web", 110)]);
        let text = format!(
            "# Mine\r\n\r\nintro\r\n{}\r\nstale\r\n{}\r\noutro, no newline",
            begin_marker("inventory"),
            end_marker("inventory")
        );
        let out = update(Some(&text), &d).unwrap();
        assert!(out.text.starts_with(
            "# Mine\r\n\r\nintro\r\n<!-- vmctl:begin inventory -->\r\n## Inventory\r\n"
        ));
        assert!(out.text.contains("<!-- vmctl:end inventory -->\r\noutro, no newline\r\n\r\n<!-- vmctl:begin template -->"));
        assert!(!out.text.contains("stale"));
        assert_eq!(
            out.text.matches('\n').count(),
            out.text.matches("\r\n").count()
        );

        let err = |t: &str| update(Some(t), &d).unwrap_err();
        assert!(matches!(
            err("<!-- vmctl:begin inventory -->\n"),
            DocsError::Unclosed { .. }
        ));
        assert!(matches!(
            err("<!-- vmctl:end inventory -->\n"),
            DocsError::UnexpectedEnd { .. }
        ));
        assert!(matches!(
            err("<!-- vmctl:begin a -->\n<!-- vmctl:begin b -->\n"),
            DocsError::Nested { .. }
        ));
        assert!(matches!(
            err("<!-- vmctl:begin a -->\n<!-- vmctl:end a -->\n<!-- vmctl:begin a -->\n<!-- vmctl:end a -->\n"),
            DocsError::Duplicate { .. }
        ));
        let unknown = update(
            Some("<!-- vmctl:begin mine -->\nx\n<!-- vmctl:end mine -->\n"),
            &d,
        )
        .unwrap();
        assert_eq!(unknown.unknown, ["mine"]);
        assert!(unknown
            .text
            .starts_with("<!-- vmctl:begin mine -->\nx\n<!-- vmctl:end mine -->\n"));
    }

    #[test]
    fn values_cannot_break_markers_or_headings() {
        let mut d = defs(&[("a", 110)]);
        d.managed[0].purpose =
            Some("web\n<!-- vmctl:end vm-a -->\n## Owned\n<!-- vmctl:begin x -->".into());
        d.managed[0].status = Some("up\r\n# heading".into());
        d.template.as_mut().unwrap().purpose =
            Some("base image\n## not a heading\n<!-- vmctl:end template -->".into());
        let out = update(None, &d).unwrap();
        // Exactly the markers vmctl writes, each on its own line; no heading from a value.
        let markers: Vec<&str> = out.text.lines().filter(|l| marker(l).is_some()).collect();
        assert_eq!(markers.len(), 2 * sections(&d).len(), "{}", out.text);
        assert!(
            !out.text.lines().any(|l| l.starts_with("## Owned")
                || l.starts_with("# heading")
                || l.starts_with("## not a heading")),
            "{}",
            out.text
        );
        assert!(out
            .text
            .contains("- **Purpose**: web &lt;!-- vmctl:end vm-a --> ## Owned"));
        // Regenerating the result is stable (the escaping does not compound).
        assert_eq!(update(Some(&out.text), &d).unwrap().text, out.text);
        // A VM name that cannot be a marker is refused.
        let mut d = defs(&[("a", 110)]);
        d.managed[0].name = "a -->".into();
        assert!(matches!(
            update(None, &d),
            Err(DocsError::UnsafeName { .. })
        ));
    }
}
