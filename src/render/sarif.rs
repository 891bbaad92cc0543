//! `--format sarif`: SARIF 2.1.0 for GitHub code scanning, with every rule's metadata and help
//! from the registry, and fixes as SARIF `fixes`.
//!
//! Columns count Unicode scalar values, as in the JSON output, so the run says
//! `columnKind: unicodeCodePoints` (SARIF's default is UTF-16 code units).

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::check::{rules, Diagnostic, Severity};
use crate::syntax::{FileId, SourceDb, Span};
use crate::text::LineIndex;

/// SARIF's name of a severity.
fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// A path as a URI reference: relative paths stay relative (to `%SRCROOT%`, the checkout),
/// absolute ones become `file://` URIs; anything outside RFC 3986's unreserved set and `/` is
/// percent-encoded.
fn uri(path: &std::path::Path) -> (String, bool) {
    let s = path.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if path.is_absolute() {
        (format!("file://{out}"), true)
    } else {
        (out, false)
    }
}

fn artifact(db: &SourceDb, file: FileId) -> Value {
    match uri(db.path(file)) {
        (u, true) => json!({ "uri": u }),
        (u, false) => json!({ "uri": u, "uriBaseId": "%SRCROOT%" }),
    }
}

struct Regions<'a> {
    db: &'a SourceDb,
    lines: HashMap<FileId, LineIndex>,
}

impl Regions<'_> {
    fn region(&mut self, file: FileId, start: usize, end: usize) -> Value {
        let text = self.db.text(file);
        let idx = self
            .lines
            .entry(file)
            .or_insert_with(|| LineIndex::new(text));
        let (sl, sc) = idx.line_col(text, start);
        let (el, ec) = idx.line_col(text, end);
        json!({ "startLine": sl, "startColumn": sc, "endLine": el, "endColumn": ec })
    }

    fn location(&mut self, span: Span) -> Value {
        let region = self.region(
            span.file,
            span.range.start().into(),
            span.range.end().into(),
        );
        json!({ "physicalLocation": {
            "artifactLocation": artifact(self.db, span.file),
            "region": region,
        }})
    }
}

/// The SARIF log of one run over `diags`.
pub fn to_sarif(db: &SourceDb, diags: &[Diagnostic]) -> Value {
    let all = rules();
    let index: HashMap<&str, usize> = all.iter().enumerate().map(|(i, r)| (r.code, i)).collect();
    let rule_meta: Vec<Value> = all
        .iter()
        .map(|r| {
            json!({
                "id": r.code,
                "name": r.name,
                "shortDescription": { "text": r.summary },
                "fullDescription": { "text": r.summary },
                "help": { "text": r.explanation.trim_end(), "markdown": r.explanation.trim_end() },
                "defaultConfiguration": { "level": level(r.severity) },
                "properties": { "tags": [&r.code[..2]] },
            })
        })
        .collect();
    let mut regions = Regions {
        db,
        lines: HashMap::new(),
    };
    let results: Vec<Value> = diags
        .iter()
        .map(|d| {
            let mut message = d.message.clone();
            if let Some(help) = &d.help {
                message.push_str(&format!(" (help: {help})"));
            }
            let mut r = json!({
                "ruleId": d.code(),
                "ruleIndex": index[d.code()],
                "level": level(d.severity()),
                "message": { "text": message },
                "locations": [regions.location(d.span)],
            });
            if !d.notes.is_empty() {
                r["relatedLocations"] = d
                    .notes
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        let mut l = regions.location(n.span);
                        l["id"] = json!(i);
                        l["message"] = json!({ "text": n.message });
                        l
                    })
                    .collect();
            }
            if let Some(fix) = &d.fix {
                let replacements: Vec<Value> = fix
                    .edits
                    .iter()
                    .map(|e| {
                        json!({
                            "deletedRegion": regions.region(d.span.file, e.start, e.end),
                            "insertedContent": { "text": e.insert },
                        })
                    })
                    .collect();
                r["fixes"] = json!([{
                    "description": { "text": format!("{} ({})", fix.message, fix.applicability.as_str()) },
                    "artifactChanges": [{
                        "artifactLocation": artifact(db, d.span.file),
                        "replacements": replacements,
                    }],
                }]);
            }
            r
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "vmlint",
                "version": env!("VMCTL_VERSION"),
                "rules": rule_meta,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}

/// The SARIF log `vmlint --format sarif` prints, pretty-printed.
pub fn render(db: &SourceDb, diags: &[Diagnostic]) -> String {
    serde_json::to_string_pretty(&to_sarif(db, diags)).expect("SARIF serializes")
}
