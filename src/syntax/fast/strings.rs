//! String literals: the plain fast path read straight from the text, and the token path.

use super::lexer::{Ctx, T};
use super::{slice, Parser};
use crate::syntax::ast::{normalize_parts, ExprId, Kind, RawPart};
impl<'s> Parser<'s, '_> {
    /// A `"…"` string without escapes or `$`, read straight from the text (most strings of a
    /// fleet file): the same node the token path builds, without lexing its three tokens.
    /// Only when no token after the opening quote has been lexed yet, so the lexer can
    /// simply resume after the closing quote.
    fn plain_string(&mut self) -> Option<ExprId> {
        let open = self.cur;
        if open.end - open.start != 1 || !self.ahead.is_empty() || self.eof {
            return None;
        }
        let b = self.src.as_bytes();
        let body = open.end as usize;
        let len = b[body..]
            .iter()
            .position(|&c| matches!(c, b'"' | b'\\' | b'$'))?;
        let close = body + len;
        if b[close] != b'"' {
            return None;
        }
        debug_assert!(matches!(
            self.ctx.last(),
            Some(Ctx::Str { multiline: false })
        ));
        self.ctx.pop();
        self.lex_pos = close + 1;
        let start = self.ast.parts.len();
        if len > 0 {
            let part = self.ast.push_lit(&self.src[body..close]);
            self.ast.parts.push(part);
        }
        let parts = slice(start, self.ast.parts.len());
        self.last_end = close as u32 + 1;
        self.advance();
        Some(self.node(open.start, Kind::Str { parts }))
    }

    pub(super) fn parse_string(&mut self) -> Option<ExprId> {
        if let Some(id) = self.plain_string() {
            return Some(id);
        }
        let open = self.bump();
        let multiline = open.end - open.start == 2;
        let base = self.s_raw.len();
        loop {
            match self.peek() {
                T::StrContent => {
                    let tok = self.bump();
                    let text = self.text(tok);
                    self.s_raw.push(RawPart::Lit(text));
                }
                T::InterpStart => {
                    self.bump();
                    let e = self.parse_expr()?;
                    self.expect(T::InterpEnd)?;
                    self.s_raw.push(RawPart::Interp(e));
                }
                T::StrEnd => {
                    self.bump();
                    break;
                }
                _ => return None,
            }
        }
        let parts = normalize_parts(&mut self.ast, &self.s_raw[base..], multiline);
        self.s_raw.truncate(base);
        Some(self.node(open.start, Kind::Str { parts }))
    }
}
