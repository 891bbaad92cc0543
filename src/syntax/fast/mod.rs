//! A hand-written lexer and recursive-descent parser for well-formed Nix, producing the same
//! [`Ast`] as rnix + [`super::lower`] (every range included) several times faster.
//!
//! It mirrors rnix 0.15's tokenizer and parser function by function (operator precedence and
//! associativity, the `{` lookahead that tells a pattern from a set, `or` as a name, path and
//! URI detection) and *declines* (returns `None`) on any syntax error and on constructs it
//! does not implement: interpolated paths, the legacy `let { }`, pipes, `or` applied as an
//! argument, non-ASCII text outside strings and comments, floats like `.5`. The caller then
//! uses rnix, so declining is always safe; accepting must mean rnix reports no error and
//! builds the same tree, which `tests/it/fast_parser.rs` checks on every fixture and on random
//! edits.

mod bindings;
mod lexer;
mod parser;
mod strings;

use std::collections::VecDeque;

use rowan::{TextRange, TextSize};

use self::lexer::{lex_some, Ctx, PathRun, Tok, T};
use super::ast::{Ast, Attr, Entry, ExprId, Formal, Interner, Kind, RawPart, Slice};
/// Deepest nesting the parser follows before declining (rnix stops at 512 `parse_expr`s).
const MAX_DEPTH: u32 = 256;

/// Parses `text`, or `None` when it has a syntax error or anything this parser leaves to rnix.
pub fn parse(text: &str, names: &mut Interner) -> Option<Ast> {
    if text.len() >= u32::MAX as usize / 2 {
        return None;
    }
    let mut p = Parser {
        src: text,
        cur: Tok {
            t: T::Eof,
            start: 0,
            end: 0,
        },
        ahead: VecDeque::with_capacity(8),
        lex_pos: 0,
        path_run: PathRun::default(),
        ctx: Vec::new(),
        eof: false,
        failed: false,
        last_end: 0,
        ast: Ast::default(),
        names,
        depth: 0,
        s_items: Vec::new(),
        s_entries: Vec::new(),
        s_attrs: Vec::new(),
        s_formals: Vec::new(),
        s_raw: Vec::new(),
    };
    // Typical fleet files have about one node per 17 bytes, one binding per 29, one string
    // part per 37: guesses, not bounds, that spare most of the copies of growing the tables.
    p.ast.nodes.reserve(text.len() / 16);
    p.ast.entries.reserve(text.len() / 32);
    p.ast.attrs.reserve(text.len() / 32);
    p.ast.parts.reserve(text.len() / 40);
    p.ast.items.reserve(text.len() / 64);
    p.ast.strbuf.reserve(text.len() / 6);
    p.advance();
    let root = p.parse_expr()?;
    if p.peek() != T::Eof || p.failed {
        return None;
    }
    p.ast.root = root;
    Some(p.ast)
}

struct Parser<'s, 'n> {
    src: &'s str,
    /// The next token, and lexed tokens after it (the lookahead beyond one token).
    cur: Tok,
    ahead: VecDeque<Tok>,
    /// Where lexing continues, and its context stack.
    lex_pos: usize,
    ctx: Vec<Ctx>,
    path_run: PathRun,
    eof: bool,
    /// Lexing hit something left to rnix: the parse declines whatever it built.
    failed: bool,
    last_end: u32,
    ast: Ast,
    names: &'n mut Interner,
    depth: u32,
    // Stacks the children of the nodes being parsed collect on, so nested nodes (whose own
    // children land above) need no allocation of their own; each node moves its part out.
    s_items: Vec<ExprId>,
    s_entries: Vec<Entry>,
    s_attrs: Vec<Attr>,
    s_formals: Vec<Formal>,
    s_raw: Vec<RawPart<'s>>,
}

fn range(start: u32, end: u32) -> TextRange {
    TextRange::new(TextSize::from(start), TextSize::from(end))
}

fn slice(start: usize, end: usize) -> Slice {
    Slice {
        start: start as u32,
        len: (end - start) as u32,
    }
}

impl<'s> Parser<'s, '_> {
    /// Lexes more tokens into `ahead`; false at the end of the text or when lexing failed.
    fn fill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        match lex_some(
            self.src,
            &mut self.lex_pos,
            &mut self.ctx,
            &mut self.ahead,
            &mut self.path_run,
        ) {
            Some(true) => true,
            Some(false) => {
                self.eof = true;
                false
            }
            None => {
                self.eof = true;
                self.failed = true;
                false
            }
        }
    }

    /// Moves to the next token (an `Eof` token at the end).
    fn advance(&mut self) {
        if self.ahead.is_empty() && !self.fill() {
            let end = self.src.len() as u32;
            self.cur = Tok {
                t: T::Eof,
                start: end,
                end,
            };
            return;
        }
        self.cur = self.ahead.pop_front().expect("filled");
    }

    fn peek(&self) -> T {
        self.cur.t
    }

    /// The kind of the token `k` (≥ 1) places after the next one.
    fn peek_at(&mut self, k: usize) -> T {
        while self.ahead.len() < k {
            if !self.fill() {
                return T::Eof;
            }
        }
        self.ahead[k - 1].t
    }

    /// Where the next token starts.
    fn start(&self) -> u32 {
        self.cur.start
    }

    fn bump(&mut self) -> Tok {
        let t = self.cur;
        self.last_end = t.end;
        self.advance();
        t
    }

    fn expect(&mut self, t: T) -> Option<Tok> {
        if self.peek() == t {
            Some(self.bump())
        } else {
            None
        }
    }

    fn text(&self, t: Tok) -> &'s str {
        &self.src[t.start as usize..t.end as usize]
    }

    fn node(&mut self, start: u32, kind: Kind) -> ExprId {
        self.ast.push(range(start, self.last_end), kind)
    }

    fn node_start(&self, id: ExprId) -> u32 {
        u32::from(self.ast.nodes[id as usize].range.start())
    }
}
