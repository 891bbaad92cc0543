//! A small JSON reader that keeps the byte span of every value, so metadata edits can be
//! computed as text edits on the file sops wrote (key order is kept, as the MAC needs it).

/// A JSON value and the bytes `start..end` it occupies in the source text.
#[derive(Debug, Clone, PartialEq)]
pub struct JNode {
    pub start: usize,
    pub end: usize,
    pub kind: JKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum JKind {
    /// Members in document order.
    Object(Vec<(String, JNode)>),
    Array(Vec<JNode>),
    String(String),
    /// The number as written.
    Number(String),
    Bool(bool),
    Null,
}

impl JNode {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&JNode> {
        match &self.kind {
            JKind::Object(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value as `serde_json::Value` (objects lose nothing but their order, which
    /// metadata does not need).
    pub fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            JKind::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_value())).collect())
            }
            JKind::Array(a) => Value::Array(a.iter().map(JNode::to_value).collect()),
            JKind::String(s) => Value::String(s.clone()),
            JKind::Number(n) => serde_json::from_str(n).unwrap_or(Value::Null),
            JKind::Bool(b) => Value::Bool(*b),
            JKind::Null => Value::Null,
        }
    }
}

/// Where and why the text is not JSON. Carries a position, never the text itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {at}")]
pub struct JsonError {
    pub at: usize,
    pub what: &'static str,
}

const MAX_DEPTH: usize = 200;

/// Parses one JSON document (surrounding whitespace allowed, nothing else).
pub fn parse(text: &str) -> Result<JNode, JsonError> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
    };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("trailing characters after the JSON document"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &'static str) -> JsonError {
        JsonError { at: self.i, what }
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    /// The members of an object or array whose opening bracket is at `self.i`: `each` reads
    /// one member (whitespace before it skipped) until the `close` bracket.
    fn delimited(
        &mut self,
        close: u8,
        expected: &'static str,
        mut each: impl FnMut(&mut Self) -> Result<(), JsonError>,
    ) -> Result<(), JsonError> {
        self.i += 1;
        self.ws();
        if self.s.get(self.i) == Some(&close) {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            each(self)?;
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(&c) if c == close => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.err(expected)),
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<JNode, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        let start = self.i;
        let kind = match self.s.get(self.i) {
            None => return Err(self.err("unexpected end of input")),
            Some(b'{') => {
                let mut members = Vec::new();
                self.delimited(b'}', "expected ',' or '}'", |p| {
                    if p.s.get(p.i) != Some(&b'"') {
                        return Err(p.err("expected an object key"));
                    }
                    let key = p.string()?;
                    p.ws();
                    if p.s.get(p.i) != Some(&b':') {
                        return Err(p.err("expected ':'"));
                    }
                    p.i += 1;
                    p.ws();
                    members.push((key, p.value(depth + 1)?));
                    Ok(())
                })?;
                JKind::Object(members)
            }
            Some(b'[') => {
                let mut items = Vec::new();
                self.delimited(b']', "expected ',' or ']'", |p| {
                    items.push(p.value(depth + 1)?);
                    Ok(())
                })?;
                JKind::Array(items)
            }
            Some(b'"') => JKind::String(self.string()?),
            Some(b't') => self.literal("true", JKind::Bool(true))?,
            Some(b'f') => self.literal("false", JKind::Bool(false))?,
            Some(b'n') => self.literal("null", JKind::Null)?,
            Some(c) if *c == b'-' || c.is_ascii_digit() => {
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                let raw = &self.text[start..self.i];
                if serde_json::from_str::<serde_json::Number>(raw).is_err() {
                    return Err(JsonError {
                        at: start,
                        what: "invalid number",
                    });
                }
                JKind::Number(raw.to_string())
            }
            Some(_) => return Err(self.err("unexpected character")),
        };
        Ok(JNode {
            start,
            end: self.i,
            kind,
        })
    }

    fn literal(&mut self, word: &str, kind: JKind) -> Result<JKind, JsonError> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(kind)
        } else {
            Err(self.err("unexpected word"))
        }
    }

    /// A string literal starting at `self.i` (which holds `"`), decoded.
    fn string(&mut self) -> Result<String, JsonError> {
        let start = self.i;
        self.i += 1;
        loop {
            match self.s.get(self.i) {
                None => return Err(self.err("unterminated string")),
                Some(b'\\') => self.i += 2,
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(_) => self.i += 1,
            }
        }
        if self.i > self.s.len() {
            return Err(self.err("unterminated string"));
        }
        serde_json::from_str(&self.text[start..self.i]).map_err(|_| JsonError {
            at: start,
            what: "invalid string literal",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_spans() {
        let t = "{\n\t\"b\": [1, \"x\\n\"],\n\t\"a\": {\"k\": null}\n}\n";
        let v = parse(t).unwrap();
        let JKind::Object(m) = &v.kind else { panic!() };
        assert_eq!(m[0].0, "b");
        assert_eq!(m[1].0, "a");
        let b = v.get("b").unwrap();
        assert_eq!(&t[b.start..b.end], "[1, \"x\\n\"]");
        let JKind::Array(items) = &b.kind else {
            panic!()
        };
        assert_eq!(items[1].kind, JKind::String("x\n".into()));
    }

    #[test]
    fn rejects_truncated_and_trailing_input() {
        assert!(parse("{\"a\": [1, 2").is_err());
        assert!(parse("{\"a\": \"x").is_err());
        assert!(parse("{} x").is_err());
        assert!(parse("{\"a\": 01x}").is_err());
    }
}
