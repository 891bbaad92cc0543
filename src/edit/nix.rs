//! Typed constructors for new Nix fragments and the one Nix string-literal escaping helper.
//!
//! Every piece of Nix text an edit inserts is built here: values go through [`string_literal`]
//! (or [`string_body`] inside an existing literal), names through [`attr_name`], and whole
//! fragments through [`Fragment`], which parses the text with rnix and refuses it when the
//! parser reports any error. An edit therefore never inserts text that does not parse.

use rnix::ast::{self, HasEntry};

/// Why a fragment of Nix text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FragmentError {
    #[error("the generated nix text does not parse ({error}): {text}")]
    Syntax { text: String, error: String },
    #[error("the generated nix text is not a single `name = value;` binding: {text}")]
    NotOneBinding { text: String },
}

/// Escapes `s` for use between the double quotes of a Nix string literal: `\`, `"`, `${`,
/// newline, carriage return and tab are escaped; everything else is kept as is.
pub fn string_body(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Only `${` starts an interpolation; a lone `$` (or `$$`) is literal text.
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out
}

/// The Nix double-quoted string literal whose value is exactly `s`.
pub fn string_literal(s: &str) -> String {
    format!("\"{}\"", string_body(s))
}

/// Nix keywords, which cannot be bare attribute names.
const KEYWORDS: &[&str] = &[
    "assert", "else", "if", "in", "inherit", "let", "or", "rec", "then", "with",
];

/// True when `name` can be written as a bare attribute name (`[A-Za-z_][A-Za-z0-9_'-]*`, not a
/// keyword).
pub fn is_bare_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_');
    first_ok
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '\'' | '-'))
        && !KEYWORDS.contains(&name)
}

/// `name` as an attribute name: bare when it is an identifier, a string literal otherwise
/// (`"10.0.0.1"`, `"if"`).
pub fn attr_name(name: &str) -> String {
    if is_bare_identifier(name) {
        name.to_string()
    } else {
        string_literal(name)
    }
}

/// The value of a string literal without interpolation (`"…"` or `''…''`), unescaped;
/// `None` when it interpolates.
pub fn plain_string(s: &ast::Str) -> Option<String> {
    let mut out = String::new();
    for part in s.normalized_parts() {
        match part {
            ast::InterpolPart::Literal(text) => out.push_str(&text),
            ast::InterpolPart::Interpolation(_) => return None,
        }
    }
    Some(out)
}

/// A piece of Nix text that is known to parse without errors in the context it was built for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    text: String,
}

impl Fragment {
    /// An expression: `text` must parse as a whole Nix file with no errors.
    pub fn expr(text: impl Into<String>) -> Result<Fragment, FragmentError> {
        let text = text.into();
        let parse = rnix::Root::parse(&text);
        if let Some(e) = parse.errors().first() {
            return Err(FragmentError::Syntax {
                error: e.to_string(),
                text,
            });
        }
        Ok(Fragment { text })
    }

    /// A string literal whose value is `value`.
    pub fn string(value: &str) -> Fragment {
        Fragment {
            text: string_literal(value),
        }
    }

    /// The binding `name = value;`, with `name` quoted when it must be. The result is checked
    /// to parse as exactly one binding inside an attribute set.
    pub fn binding(name: &str, value: &Fragment) -> Result<Fragment, FragmentError> {
        let text = format!("{} = {};", attr_name(name), value.text);
        let wrapped = format!("{{\n{text}\n}}");
        let parse = rnix::Root::parse(&wrapped);
        if let Some(e) = parse.errors().first() {
            return Err(FragmentError::Syntax {
                error: e.to_string(),
                text,
            });
        }
        let one_binding = parse
            .tree()
            .expr()
            .and_then(|e| match e {
                ast::Expr::AttrSet(set) => Some(set),
                _ => None,
            })
            .is_some_and(|set| {
                let entries: Vec<_> = set.entries().collect();
                entries.len() == 1
                    && matches!(&entries[0], ast::Entry::AttrpathValue(av)
                        if av.attrpath().is_some_and(|p| p.attrs().count() == 1))
            });
        if !one_binding {
            return Err(FragmentError::NotOneBinding { text });
        }
        Ok(Fragment { text })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn into_string(self) -> String {
        self.text
    }
}

/// The root expression of a parsed file, seen through parentheses.
pub fn unparen(mut expr: ast::Expr) -> ast::Expr {
    while let ast::Expr::Paren(p) = &expr {
        match p.expr() {
            Some(inner) => expr = inner,
            None => break,
        }
    }
    expr
}

/// A one-line description of an expression's kind, for error messages.
pub fn describe(expr: &ast::Expr) -> &'static str {
    match expr {
        ast::Expr::AttrSet(_) => "an attribute set",
        ast::Expr::List(_) => "a list",
        ast::Expr::Lambda(_) => "a function",
        ast::Expr::With(_) => "a `with` expression",
        ast::Expr::LetIn(_) => "a `let … in` expression",
        ast::Expr::Str(_) => "a string",
        ast::Expr::Literal(_) => "a literal",
        ast::Expr::Ident(_) => "a variable",
        ast::Expr::Apply(_) => "a function call",
        ast::Expr::BinOp(_) => "an operator expression (`//`, `++`, …)",
        ast::Expr::Select(_) => "an attribute selection",
        ast::Expr::IfElse(_) => "an `if` expression",
        ast::Expr::Paren(_) => "a parenthesised expression",
        _ => "an expression vmctl cannot edit",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_the_characters_nix_interprets() {
        assert_eq!(string_literal("plain"), r#""plain""#);
        assert_eq!(string_literal(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(string_literal("${x} $y $${z}"), r#""\${x} $y $\${z}""#);
        assert_eq!(string_literal("l1\nl2\tx\r"), r#""l1\nl2\tx\r""#);
    }

    #[test]
    fn round_trips_through_rnix_unescaping() {
        for s in [
            "",
            "a\"b",
            "\\${x}",
            "$",
            "$$",
            "$${a}",
            "tab\there",
            "é ü ✓",
            "''",
            "\\",
        ] {
            let lit = Fragment::expr(string_literal(s)).unwrap();
            let parse = rnix::Root::parse(lit.as_str());
            let ast::Expr::Str(st) = parse.tree().expr().unwrap() else {
                panic!("not a string: {}", lit.as_str())
            };
            assert_eq!(plain_string(&st).as_deref(), Some(s), "{}", lit.as_str());
        }
    }

    #[test]
    fn names_are_bare_only_when_they_can_be() {
        assert_eq!(attr_name("doc1"), "doc1");
        assert_eq!(attr_name("test-automation"), "test-automation");
        assert_eq!(attr_name("10.0.0.1"), r#""10.0.0.1""#);
        assert_eq!(attr_name("if"), r#""if""#);
        assert_eq!(attr_name("a.b"), r#""a.b""#);
    }

    #[test]
    fn fragments_that_do_not_parse_are_refused() {
        assert!(Fragment::expr("{ a = 1; }").is_ok());
        assert!(Fragment::expr("{ a = ; }").is_err());
        assert!(Fragment::binding("a", &Fragment::string("x")).is_ok());
        let broken = Fragment {
            text: "{ x = 1".into(),
        };
        assert!(Fragment::binding("a", &broken).is_err());
        let two = Fragment {
            text: "1; b = 2".into(),
        };
        assert!(matches!(
            Fragment::binding("a", &two),
            Err(FragmentError::NotOneBinding { .. })
        ));
    }
}
