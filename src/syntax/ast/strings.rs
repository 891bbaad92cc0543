//! String literals: unescaping and the indentation stripping of `''` strings, as rnix does.

use super::{Ast, Opt, Part, Slice};

/// Interprets the escapes of one literal part of a string, as rnix's `normalized_parts` does.
pub fn unescape(input: &str, multiline: bool, out: &mut String) {
    let mut it = input.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '"' if !multiline => break,
            '\\' if !multiline => match it.next() {
                None => break,
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some(c) => out.push(c),
            },
            '\'' if multiline => match it.next() {
                None => out.push('\''),
                Some('\'') => match it.peek() {
                    Some('\'') => {
                        it.next();
                        out.push_str("''");
                    }
                    Some('$') => {
                        it.next();
                        out.push('$');
                    }
                    Some('\\') => {
                        it.next();
                        match it.next() {
                            None => break,
                            Some('n') => out.push('\n'),
                            Some('r') => out.push('\r'),
                            Some('t') => out.push('\t'),
                            Some(c) => out.push(c),
                        }
                    }
                    _ => break,
                },
                Some(c) => {
                    out.push('\'');
                    out.push(c);
                }
            },
            c => out.push(c),
        }
    }
}

/// A raw part of a string as the tokenizer splits it: literal source text or an interpolation.
#[derive(Debug, Clone, Copy)]
pub enum RawPart<'s> {
    Lit(&'s str),
    Interp(Opt),
}

/// Turns raw string parts into [`Part`]s the way rnix's `normalized_parts` does (indentation
/// stripping for `''` strings, then unescaping), appending them to `ast.parts`.
pub fn normalize_parts(ast: &mut Ast, raw: &[RawPart<'_>], multiline: bool) -> Slice {
    let start = ast.parts.len() as u32;
    if !multiline {
        for p in raw {
            let part = match *p {
                RawPart::Lit(t) => {
                    let s = ast.strbuf.len() as u32;
                    // Without a backslash there is nothing to unescape (a content part never
                    // holds an unescaped `"`).
                    if t.as_bytes().contains(&b'\\') {
                        unescape(t, false, &mut ast.strbuf);
                    } else {
                        ast.strbuf.push_str(t);
                    }
                    Part::Lit {
                        start: s,
                        end: ast.strbuf.len() as u32,
                    }
                }
                RawPart::Interp(e) => Part::Interp(e),
            };
            ast.parts.push(part);
        }
        return Slice {
            start,
            len: ast.parts.len() as u32 - start,
        };
    }
    // First pass: the smallest indentation of any line that has content.
    let mut at_start_of_line = true;
    let mut min_indent = 1_000_000usize;
    let mut cur_indent = 0usize;
    let n = raw.len();
    let first_is_literal = matches!(raw.first(), Some(RawPart::Lit(_)));
    for (idx, p) in raw.iter().enumerate() {
        match *p {
            RawPart::Interp(_) => {
                if at_start_of_line {
                    at_start_of_line = false;
                    min_indent = min_indent.min(cur_indent);
                }
            }
            RawPart::Lit(mut text) => {
                if idx == 0 {
                    text = strip_first_line(text);
                }
                for c in text.chars() {
                    if at_start_of_line {
                        if c == ' ' {
                            cur_indent += 1;
                        } else if c == '\n' {
                            cur_indent = 0;
                        } else {
                            at_start_of_line = false;
                            min_indent = min_indent.min(cur_indent);
                        }
                    } else if c == '\n' {
                        at_start_of_line = true;
                        cur_indent = 0;
                    }
                }
            }
        }
    }
    let mut cur_dropped = 0usize;
    at_start_of_line = true;
    for (i, p) in raw.iter().enumerate() {
        match *p {
            RawPart::Interp(e) => {
                at_start_of_line = false;
                cur_dropped = 0;
                ast.parts.push(Part::Interp(e));
            }
            RawPart::Lit(mut text) => {
                if i == 0 && first_is_literal {
                    let stripped = strip_first_line(text);
                    if stripped.len() != text.len() {
                        text = stripped;
                        if text.is_empty() {
                            continue;
                        }
                    }
                }
                let mut s = String::with_capacity(text.len());
                for c in text.chars() {
                    if at_start_of_line {
                        if c == ' ' {
                            if cur_dropped >= min_indent {
                                s.push(c);
                            }
                            cur_dropped += 1;
                        } else if c == '\n' {
                            cur_dropped = 0;
                            s.push(c);
                        } else {
                            at_start_of_line = false;
                            cur_dropped = 0;
                            s.push(c);
                        }
                    } else {
                        s.push(c);
                        if c == '\n' {
                            at_start_of_line = true;
                        }
                    }
                }
                if i == n - 1 {
                    if let Some(p) = s.rfind('\n') {
                        if s[p + 1..].chars().all(|c| c == ' ') {
                            s.truncate(p + 1);
                        }
                    }
                }
                let st = ast.strbuf.len() as u32;
                unescape(&s, true, &mut ast.strbuf);
                ast.parts.push(Part::Lit {
                    start: st,
                    end: ast.strbuf.len() as u32,
                });
            }
        }
    }
    Slice {
        start,
        len: ast.parts.len() as u32 - start,
    }
}

/// Drops a first line made only of spaces (up to and including its newline).
fn strip_first_line(text: &str) -> &str {
    match text.find('\n') {
        Some(p) if text[..p].chars().all(|c| c == ' ') => &text[p + 1..],
        _ => text,
    }
}
