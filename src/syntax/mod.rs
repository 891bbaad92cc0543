//! Nix syntax: rnix parsing (never fails) and a static evaluator for the subset fleet files use.
//!
//! `syntax` knows Nix, not VMs. Every value it produces carries the [`Span`] it came from, so
//! checks can point at the exact bytes.

pub mod ast;
pub mod eval;
pub mod fast;
pub mod lower;
pub mod value;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use rowan::{TextRange, TextSize};

pub use eval::{evaluate, EvalError, EvalErrorKind, Evaluation, LoadError, Loader, NoImports};
pub use value::{AttrEntry, AttrSet, Value, ValueKind};

/// Index of a file in a [`SourceDb`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// A byte range in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: FileId,
    pub range: TextRange,
}

impl Span {
    pub fn new(file: FileId, range: TextRange) -> Self {
        Span { file, range }
    }
}

/// One source file: the path it is shown as and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Arc<str>,
}

/// Every file a run has read, so diagnostics can refer to any of them by [`FileId`].
#[derive(Debug, Clone, Default)]
pub struct SourceDb {
    files: Vec<SourceFile>,
}

impl SourceDb {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file (or returns the id it already has).
    pub fn add(&mut self, path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> FileId {
        let path = path.into();
        if let Some(id) = self.find(&path) {
            return id;
        }
        self.files.push(SourceFile {
            path,
            text: text.into(),
        });
        FileId(self.files.len() as u32 - 1)
    }

    pub fn find(&self, path: &Path) -> Option<FileId> {
        self.files
            .iter()
            .position(|f| f.path == path)
            .map(|i| FileId(i as u32))
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn text(&self, id: FileId) -> &str {
        &self.files[id.0 as usize].text
    }

    pub fn path(&self, id: FileId) -> &Path {
        &self.files[id.0 as usize].path
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// Deepest bracket nesting handed to rnix (see [`nesting_beyond`]).
pub const MAX_NESTING: usize = 2_000;

/// The byte offset where `(`, `[`, `{` and `${` first nest deeper than `limit`, if they do.
/// Strings and comments are skipped (an interpolation inside a string counts), so the count
/// follows the parser's recursion for lists, sets and parentheses.
pub fn nesting_beyond(text: &str, limit: usize) -> Option<usize> {
    /// What a closing bracket returns to: code, or the string an interpolation is in
    /// (`Some(true)`: an indented string).
    type Frame = Option<bool>;
    let b = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    // Some(indented) while inside a string.
    let mut string: Option<bool> = None;
    while i < b.len() {
        if let Some(indented) = string {
            if !indented && b[i] == b'\\' {
                i += 2;
                continue;
            }
            if indented && b[i..].starts_with(b"''") {
                // Three quotes, `''$` and `''\` are escapes; two quotes alone end the string.
                match b.get(i + 2) {
                    Some(b'\'') | Some(b'$') | Some(b'\\') => i += 3,
                    _ => {
                        string = None;
                        i += 2;
                    }
                }
                continue;
            }
            if !indented && b[i] == b'"' {
                string = None;
            } else if b[i..].starts_with(b"${") {
                stack.push(Some(indented));
                string = None;
                if stack.len() > limit {
                    return Some(i);
                }
                i += 2;
                continue;
            }
            i += 1;
            continue;
        }
        match b[i] {
            b'"' => string = Some(false),
            b'\'' if b[i..].starts_with(b"''") => {
                string = Some(true);
                i += 2;
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b[i..].starts_with(b"/*") => {
                i = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
                continue;
            }
            b'(' | b'[' | b'{' => {
                stack.push(None);
                if stack.len() > limit {
                    return Some(i);
                }
            }
            b')' | b']' | b'}' => {
                if let Some(Some(indented)) = stack.pop() {
                    string = Some(indented);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// A syntax error: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub range: TextRange,
    pub message: String,
}

/// Parses Nix text. Never fails: the tree is always there, errors come alongside.
pub fn parse(text: &str) -> (rnix::Root, Vec<SyntaxError>) {
    let parse = rnix::Root::parse(text);
    let errors = parse
        .errors()
        .iter()
        .map(|e| syntax_error(e, text))
        .collect();
    (parse.tree(), errors)
}

fn kind_name(kind: rnix::SyntaxKind) -> String {
    use rnix::SyntaxKind::*;
    let s = match kind {
        TOKEN_SEMICOLON => "`;`",
        TOKEN_ASSIGN => "`=`",
        TOKEN_L_BRACE => "`{`",
        TOKEN_R_BRACE => "`}`",
        TOKEN_L_BRACK => "`[`",
        TOKEN_R_BRACK => "`]`",
        TOKEN_L_PAREN => "`(`",
        TOKEN_R_PAREN => "`)`",
        TOKEN_IN => "`in`",
        TOKEN_COLON => "`:`",
        TOKEN_COMMA => "`,`",
        TOKEN_DOT => "`.`",
        TOKEN_THEN => "`then`",
        TOKEN_ELSE => "`else`",
        TOKEN_IDENT => "an identifier",
        TOKEN_STRING_END => "the end of the string",
        TOKEN_INTERPOL_END => "`}` closing the interpolation",
        other => {
            return format!("{other:?}")
                .to_lowercase()
                .replace("token_", "")
                .replace('_', " ")
        }
    };
    s.to_string()
}

fn syntax_error(e: &rnix::ParseError, text: &str) -> SyntaxError {
    use rnix::ParseError as P;
    let end = TextSize::of(text);
    let eof = TextRange::empty(end);
    let list = |ks: &[rnix::SyntaxKind]| {
        let names: Vec<String> = ks.iter().map(|k| kind_name(*k)).collect();
        names.join(" or ")
    };
    match e {
        P::Unexpected(r) => SyntaxError {
            range: *r,
            message: "unexpected input".into(),
        },
        P::UnexpectedExtra(r) => SyntaxError {
            range: *r,
            message: "unexpected input after the end of the expression".into(),
        },
        P::UnexpectedWanted(found, r, wanted) => SyntaxError {
            range: *r,
            message: format!("expected {}, found {}", list(wanted), kind_name(*found)),
        },
        P::UnexpectedDoubleBind(r) => SyntaxError {
            range: *r,
            message: "a function pattern is bound twice".into(),
        },
        P::UnexpectedEOF => SyntaxError {
            range: eof,
            message: "unexpected end of file".into(),
        },
        P::UnexpectedEOFWanted(wanted) => SyntaxError {
            range: eof,
            message: format!("unexpected end of file, expected {}", list(wanted)),
        },
        P::DuplicatedArgs(r, name) => SyntaxError {
            range: *r,
            message: format!("function argument `{name}` is declared twice"),
        },
        P::RecursionLimitExceeded => SyntaxError {
            range: eof,
            message: "the expression is nested too deeply to parse".into(),
        },
        _ => SyntaxError {
            range: eof,
            message: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::nesting_beyond;

    #[test]
    fn nesting_counts_brackets_and_interpolations_not_strings_or_comments() {
        assert_eq!(nesting_beyond("[[[ ]]]", 3), None);
        assert_eq!(nesting_beyond("[[[[ ]]]]", 3), Some(3));
        assert_eq!(nesting_beyond(r#"{ a = "[[[["; }"#, 2), None);
        assert_eq!(nesting_beyond("# [[[[\n[ ]", 2), None);
        assert_eq!(nesting_beyond("/* [[[[ */ [ ]", 2), None);
        assert_eq!(nesting_beyond("'' [[[[ ''' '' ", 2), None);
        assert_eq!(nesting_beyond(r#""${ { a = "${ [ ] }"; } }""#, 3), Some(14));
        assert_eq!(nesting_beyond(r#""${ { a = "${ [ ] }"; } }""#, 4), None);
        assert_eq!(
            nesting_beyond(r#""\${[[[[""#, 2),
            None,
            "an escaped interpolation"
        );
    }
}
