//! Text edits of a sops file's age entries, in the layout sops wrote, touching nothing else.
//!
//! Each format finds the byte ranges of the existing entries in the flat `sops.age` list,
//! keeps the entries that stay byte for byte, and builds new entries from the first existing
//! one as a template (same indentation, quoting and line breaks). The caller re-parses and
//! verifies the result; a layout this module does not recognise is
//! [`SecretsError::UnsupportedLayout`], which sends the file to sops instead.

use crate::text::{indent_width, LineIndex, TextEdit};

use super::document::{AgeStanza, Format, SopsFile};
use super::json::{self, JKind};
use super::SecretsError;

fn unsupported(why: impl Into<String>) -> SecretsError {
    SecretsError::UnsupportedLayout(why.into())
}

/// The file's text with its age entries replaced by the existing entries at `keep` (in that
/// order) followed by `added`.
pub fn replace_age_entries(
    file: &SopsFile,
    keep: &[usize],
    added: &[AgeStanza],
) -> Result<String, SecretsError> {
    let expected = file.metadata.key_groups.first().map_or(0, |g| g.age.len());
    let edits = match file.format {
        Format::Yaml => yaml_edits(&file.text, expected, keep, added)?,
        Format::Json | Format::Binary => json_edits(&file.text, expected, keep, added)?,
        Format::Dotenv => dotenv_edits(&file.text, expected, keep, added)?,
        Format::Ini => return Err(unsupported("INI files are re-keyed by sops")),
    };
    crate::text::apply(&file.text, &edits).map_err(|e| unsupported(format!("edit failed: {e}")))
}

// ---------- YAML ----------

/// Lines of `text` as (start, end including the newline).
fn lines(text: &str) -> Vec<(usize, usize)> {
    LineIndex::new(text)
        .lines()
        .map(|r| (r.start, r.end))
        .collect()
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

fn yaml_edits(
    text: &str,
    expected: usize,
    keep: &[usize],
    added: &[AgeStanza],
) -> Result<Vec<TextEdit>, SecretsError> {
    let ls = lines(text);
    let line = |i: usize| text[ls[i].0..ls[i].1].trim_end_matches('\n');
    let sops_line = (0..ls.len())
        .find(|&i| {
            let l = line(i);
            l.strip_prefix("sops:")
                .is_some_and(|rest| rest.trim().is_empty() || rest.trim_start().starts_with('#'))
        })
        .ok_or_else(|| unsupported("no top-level `sops:` block"))?;
    // The metadata block: following lines until the next top-level content line.
    let block_end = (sops_line + 1..ls.len())
        .find(|&i| !is_blank_or_comment(line(i)) && indent_width(line(i)) == 0)
        .unwrap_or(ls.len());
    let child_indent = (sops_line + 1..block_end)
        .map(line)
        .find(|l| !is_blank_or_comment(l))
        .map(indent_width)
        .ok_or_else(|| unsupported("the `sops:` block is empty"))?;
    let age_line = (sops_line + 1..block_end)
        .find(|&i| {
            let l = line(i);
            indent_width(l) == child_indent && l.trim_start().starts_with("age:")
        })
        .ok_or_else(|| unsupported("no `age:` list in the sops metadata"))?;
    let after = line(age_line).trim_start()["age:".len()..].trim();
    if !after.is_empty() && !after.starts_with('#') {
        return Err(unsupported("the `age:` list is not a block sequence"));
    }
    // Items: `-` lines at one indentation, each running until the next item or dedent.
    let first_item = (age_line + 1..block_end)
        .find(|&i| !is_blank_or_comment(line(i)))
        .filter(|&i| {
            let l = line(i);
            indent_width(l) >= child_indent && l.trim_start().starts_with("- ")
        })
        .ok_or_else(|| unsupported("the `age:` list has no entries"))?;
    let item_indent = indent_width(line(first_item));
    let mut items: Vec<(usize, usize)> = Vec::new(); // line ranges [start, end)
    let mut i = first_item;
    let mut cur_start = first_item;
    let mut last_content = first_item;
    i += 1;
    loop {
        let at_end = i >= block_end;
        let l = if at_end { "" } else { line(i) };
        let content = !at_end && !is_blank_or_comment(l);
        let new_item =
            content && indent_width(l) == item_indent && l.trim_start().starts_with("- ");
        let dedent = content && !new_item && indent_width(l) <= item_indent;
        if at_end || new_item || dedent {
            items.push((cur_start, last_content + 1));
            if !new_item {
                break;
            }
            cur_start = i;
        }
        if content {
            last_content = i;
        }
        i += 1;
    }
    if items.len() != expected {
        return Err(unsupported(
            "the `age:` list does not have the shape sops writes",
        ));
    }
    let item_text = |(a, b): (usize, usize)| &text[ls[a].0..ls[b - 1].1];
    let template = item_text(items[0]);
    let mut new_block = String::new();
    for &k in keep {
        let it = *items
            .get(k)
            .ok_or_else(|| unsupported("entry index out of range"))?;
        let mut t = item_text(it).to_string();
        if !t.ends_with('\n') {
            t.push('\n');
        }
        new_block.push_str(&t);
    }
    for a in added {
        new_block.push_str(&yaml_item_from_template(template, a)?);
    }
    let start = ls[items[0].0].0;
    let last = items[items.len() - 1];
    let end = ls[last.1 - 1].1;
    let mut replaced = new_block;
    if !text[start..end].ends_with('\n') {
        // The last entry ended the file without a newline: keep it that way.
        replaced.pop();
    }
    Ok(vec![TextEdit::replace(start, end, replaced)])
}

/// A new YAML age entry shaped like `template` (an existing entry, full lines).
fn yaml_item_from_template(template: &str, stanza: &AgeStanza) -> Result<String, SecretsError> {
    let tl: Vec<&str> = template.split_inclusive('\n').collect();
    let mut out = String::new();
    let mut i = 0;
    let mut saw_recipient = false;
    let mut saw_enc = false;
    while i < tl.len() {
        let l = tl[i];
        let body = l.trim_end_matches('\n');
        let key_part = body.trim_start().trim_start_matches("- ").trim_start();
        if let Some(rest) = key_part.strip_prefix("recipient:") {
            let value_start = body.len() - rest.len();
            let value = rest.trim();
            if value.starts_with('"') || value.starts_with('\'') {
                return Err(unsupported("quoted recipients in the age list"));
            }
            out.push_str(&body[..value_start]);
            out.push(' ');
            out.push_str(&stanza.recipient);
            out.push('\n');
            saw_recipient = true;
            i += 1;
        } else if let Some(rest) = key_part.strip_prefix("enc:") {
            if rest.trim() != "|" {
                return Err(unsupported("the age `enc` value is not a literal block"));
            }
            let enc_indent = indent_width(body) + (body.trim_start().len() - key_part.len());
            out.push_str(l);
            if !l.ends_with('\n') {
                out.push('\n');
            }
            i += 1;
            // The block's lines: more indented than the `enc:` key.
            let first = tl
                .get(i)
                .filter(|x| indent_width(x) > enc_indent && !x.trim().is_empty())
                .ok_or_else(|| unsupported("empty `enc` block"))?;
            let pad = " ".repeat(indent_width(first));
            while i < tl.len() && (tl[i].trim().is_empty() || indent_width(tl[i]) > enc_indent) {
                i += 1;
            }
            for armor_line in stanza.enc.lines() {
                out.push_str(&pad);
                out.push_str(armor_line);
                out.push('\n');
            }
            saw_enc = true;
        } else {
            return Err(unsupported("unexpected field in an age entry"));
        }
    }
    if !(saw_recipient && saw_enc) {
        return Err(unsupported("an age entry lacks `recipient` or `enc`"));
    }
    Ok(out)
}

// ---------- JSON ----------

fn json_edits(
    text: &str,
    expected: usize,
    keep: &[usize],
    added: &[AgeStanza],
) -> Result<Vec<TextEdit>, SecretsError> {
    let root = json::parse(text).map_err(|e| unsupported(format!("JSON: {e}")))?;
    let age = root
        .get("sops")
        .and_then(|s| s.get("age"))
        .ok_or_else(|| unsupported("no `sops.age` list"))?;
    let JKind::Array(items) = &age.kind else {
        return Err(unsupported("`sops.age` is not a list"));
    };
    if items.is_empty() || items.len() != expected {
        return Err(unsupported(
            "the `sops.age` list does not match the metadata",
        ));
    }
    let sep = if items.len() >= 2 {
        text[items[0].end..items[1].start].to_string()
    } else {
        format!(",{}", &text[age.start + 1..items[0].start])
    };
    let t = &items[0];
    let rec = t
        .get("recipient")
        .ok_or_else(|| unsupported("age entry without recipient"))?;
    let enc = t
        .get("enc")
        .ok_or_else(|| unsupported("age entry without enc"))?;
    let mut parts: Vec<String> = Vec::new();
    for &k in keep {
        let it = items
            .get(k)
            .ok_or_else(|| unsupported("entry index out of range"))?;
        parts.push(text[it.start..it.end].to_string());
    }
    for a in added {
        let mut spans = [
            (rec.start, rec.end, json_string(&a.recipient)),
            (enc.start, enc.end, json_string(&a.enc)),
        ];
        spans.sort_by_key(|s| s.0);
        let mut s = String::new();
        let mut pos = t.start;
        for (a, b, v) in spans {
            s.push_str(&text[pos..a]);
            s.push_str(&v);
            pos = b;
        }
        s.push_str(&text[pos..t.end]);
        parts.push(s);
    }
    let start = items[0].start;
    let end = items[items.len() - 1].end;
    Ok(vec![TextEdit::replace(start, end, parts.join(&sep))])
}

/// A JSON string literal as Go's encoder writes it (`<`, `>`, `&` escaped).
fn json_string(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

// ---------- dotenv ----------

fn dotenv_edits(
    text: &str,
    expected: usize,
    keep: &[usize],
    added: &[AgeStanza],
) -> Result<Vec<TextEdit>, SecretsError> {
    const PREFIX: &str = "sops_age__list_";
    let ls = lines(text);
    let mut old: Vec<(usize, String)> = Vec::new(); // (index, recipient)
    let mut enc_by_index: std::collections::BTreeMap<usize, String> = Default::default();
    let mut age_lines = Vec::new();
    for (n, &(a, b)) in ls.iter().enumerate() {
        let l = text[a..b].trim_end_matches('\n');
        let Some(rest) = l.strip_prefix(PREFIX) else {
            continue;
        };
        let (idx, field) = rest
            .split_once("__map_")
            .ok_or_else(|| unsupported("unexpected age metadata key"))?;
        let idx: usize = idx.parse().map_err(|_| unsupported("bad age list index"))?;
        let (field, value) = field
            .split_once('=')
            .ok_or_else(|| unsupported("age metadata line without ="))?;
        match field {
            "recipient" => old.push((idx, value.to_string())),
            "enc" => {
                enc_by_index.insert(idx, value.replace("\\n", "\n"));
            }
            _ => return Err(unsupported("unexpected age metadata field")),
        }
        age_lines.push(n);
    }
    if age_lines.is_empty() || old.len() != expected {
        return Err(unsupported(
            "the sops_age__ metadata lines do not match the metadata",
        ));
    }
    old.sort_by_key(|(i, _)| *i);
    let mut stanzas: Vec<AgeStanza> = Vec::new();
    for &k in keep {
        let (idx, recipient) = old
            .get(k)
            .ok_or_else(|| unsupported("entry index out of range"))?;
        let enc = enc_by_index
            .get(idx)
            .ok_or_else(|| unsupported("age entry without enc"))?;
        stanzas.push(AgeStanza {
            recipient: recipient.clone(),
            enc: enc.clone(),
        });
    }
    stanzas.extend(added.iter().cloned());
    // sops emits metadata keys sorted as strings; the age keys sort together.
    let mut new_lines: Vec<String> = Vec::new();
    for (i, s) in stanzas.iter().enumerate() {
        new_lines.push(format!(
            "{PREFIX}{i}__map_enc={}\n",
            s.enc.replace('\n', "\\n")
        ));
        new_lines.push(format!("{PREFIX}{i}__map_recipient={}\n", s.recipient));
    }
    new_lines.sort();
    let mut edits = Vec::new();
    for (j, &n) in age_lines.iter().enumerate() {
        let (a, b) = ls[n];
        if !text[a..b].ends_with('\n') {
            return Err(unsupported("the file does not end with a newline"));
        }
        let insert = if j == 0 {
            new_lines.concat()
        } else {
            String::new()
        };
        edits.push(TextEdit::replace(a, b, insert));
    }
    Ok(edits)
}
