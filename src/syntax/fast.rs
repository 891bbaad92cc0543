//! A hand-written lexer and recursive-descent parser for well-formed Nix, producing the same
//! [`Ast`] as rnix + [`super::lower`] (every range included) several times faster.
//!
//! It mirrors rnix 0.15's tokenizer and parser function by function (operator precedence and
//! associativity, the `{` lookahead that tells a pattern from a set, `or` as a name, path and
//! URI detection) and *declines* (returns `None`) on any syntax error and on constructs it
//! does not implement: interpolated paths, the legacy `let { }`, pipes, `or` applied as an
//! argument, non-ASCII text outside strings and comments, floats like `.5`. The caller then
//! uses rnix, so declining is always safe; accepting must mean rnix reports no error and
//! builds the same tree, which `tests/fast_parser.rs` checks on every fixture and on random
//! edits.

use std::collections::VecDeque;

use rnix::ast::{BinOpKind, UnaryOpKind};
use rowan::{TextRange, TextSize};

use super::ast::{
    normalize_parts, Ast, Attr, AttrKind, Entry, ExprId, Formal, Interner, Kind, Opt, Param,
    PathKind, RawPart, Slice, Sym, NONE,
};

/// Deepest nesting the parser follows before declining (rnix stops at 512 `parse_expr`s).
const MAX_DEPTH: u32 = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum T {
    Eof,
    Ident,
    Int,
    Float,
    Uri,
    PathAbs,
    PathRel,
    PathHome,
    PathSearch,
    StrStart,
    StrContent,
    StrEnd,
    InterpStart,
    InterpEnd,
    Assert,
    Else,
    If,
    In,
    Inherit,
    Let,
    Or,
    Rec,
    Then,
    With,
    LBrace,
    RBrace,
    LBrack,
    RBrack,
    LParen,
    RParen,
    Semi,
    Assign,
    Colon,
    Comma,
    Dot,
    Ellipsis,
    At,
    Question,
    Concat,
    Add,
    Sub,
    Mul,
    Div,
    Update,
    Less,
    LessEq,
    More,
    MoreEq,
    Equal,
    NotEqual,
    AndAnd,
    OrOr,
    Implication,
    Invert,
}

#[derive(Debug, Clone, Copy)]
struct Tok {
    t: T,
    start: u32,
    end: u32,
}

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

fn is_path_char(c: u8) -> bool {
    matches!(c, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'_' | b'.' | b'+' | b'-')
}

fn is_uri_char(c: u8) -> bool {
    matches!(
        c,
        b'%' | b'?' | b':' | b'@' | b'&' | b'=' | b'$' | b',' | b'!' | b'~' | b'*' | b'\''
    ) || is_path_char(c)
}

fn is_ident_char(c: u8) -> bool {
    matches!(c, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'\'')
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Interpol { brackets: u32 },
    Str { multiline: bool },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Guess {
    None,
    PathAbs,
    PathRel,
    PathHome,
    PathSearch,
    Uri,
}

/// Lexes at least one more token (trivia dropped) into `toks`, from `*pos` and with the
/// context stack `ctx`, mirroring rnix's tokenizer: `Some(true)` when it did, `Some(false)` at
/// the end of the text, `None` on an error or anything left to rnix. Tokens are made as the
/// parser asks for them, so the whole file's tokens never sit in memory at once.
/// The last run of path characters scanned for a token's guess: its start, its end (the first
/// non-path character) and its last `_`. A token starting inside the run ends its scan at the
/// same place, so `a.a.a.…` on one long line is lexed in linear time, not quadratic.
#[derive(Debug, Clone, Copy, Default)]
struct PathRun {
    start: usize,
    end: usize,
    last_underscore: Option<usize>,
}

fn lex_some(
    src: &str,
    pos: &mut usize,
    ctx: &mut Vec<Ctx>,
    toks: &mut VecDeque<Tok>,
    run: &mut PathRun,
) -> Option<bool> {
    let b = src.as_bytes();
    let n = b.len();
    let mut i = *pos;
    let at = |j: usize| -> u8 {
        if j < n {
            b[j]
        } else {
            0
        }
    };
    macro_rules! push {
        ($t:expr, $s:expr, $e:expr) => {
            toks.push_back(Tok {
                t: $t,
                start: $s as u32,
                end: $e as u32,
            })
        };
    }
    let before = toks.len();
    while toks.len() == before {
        if let Some(&Ctx::Str { multiline }) = ctx.last() {
            // A string body up to the end, an interpolation or the closing quote.
            let start = i;
            loop {
                if i >= n {
                    return None;
                }
                let c = b[i];
                if c == b'"' && !multiline {
                    if i > start {
                        push!(T::StrContent, start, i);
                    }
                    push!(T::StrEnd, i, i + 1);
                    i += 1;
                    ctx.pop();
                    break;
                } else if c == b'\\' && !multiline {
                    if i + 1 >= n {
                        return None;
                    }
                    i += 2;
                } else if c == b'\'' && multiline {
                    match at(i + 1) {
                        0 if i + 1 >= n => return None,
                        b'\'' => match at(i + 2) {
                            b'\'' | b'$' => i += 3,
                            b'\\' => {
                                if i + 3 >= n {
                                    return None;
                                }
                                i += 4;
                            }
                            _ => {
                                if i > start {
                                    push!(T::StrContent, start, i);
                                }
                                push!(T::StrEnd, i, i + 2);
                                i += 2;
                                ctx.pop();
                                break;
                            }
                        },
                        _ => i += 1,
                    }
                } else if c == b'$' {
                    match at(i + 1) {
                        b'$' => i += 2,
                        b'{' => {
                            if i > start {
                                push!(T::StrContent, start, i);
                            }
                            push!(T::InterpStart, i, i + 2);
                            i += 2;
                            ctx.push(Ctx::Interpol { brackets: 0 });
                            break;
                        }
                        _ => i += 1,
                    }
                } else {
                    i += 1;
                }
            }
            continue;
        }
        // Trivia.
        while i < n && is_ws(b[i]) {
            i += 1;
        }
        if i >= n {
            *pos = i;
            return if ctx.is_empty() { Some(false) } else { None };
        }
        let c = b[i];
        if c == b'#' {
            while i < n && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && at(i + 1) == b'*' {
            let rest = &src[i + 2..];
            let end = rest.find("*/")?;
            i += 2 + end + 2;
            continue;
        }
        if c >= 0x80 {
            return None;
        }
        let start = i;
        if c == b'.' && at(i + 1) == b'.' && at(i + 2) == b'.' {
            push!(T::Ellipsis, i, i + 3);
            i += 3;
            continue;
        }
        // rnix's guess of what the token is, from the characters around it.
        let guess = if c == b'/' {
            if at(i + 1) == b'/' {
                Guess::None
            } else if at(i + 1) == b'$' && at(i + 2) == b'{' {
                return None;
            } else if is_path_char(at(i + 1)) && at(i + 1) != b'*' {
                Guess::PathAbs
            } else {
                Guess::None
            }
        } else if c == b'~' && at(i + 1) == b'/' {
            Guess::PathHome
        } else {
            let store = c == b'<';
            let (j, underscore) = if !store && run.start <= i && i < run.end {
                (run.end, run.last_underscore.is_some_and(|u| u >= i))
            } else {
                let mut j = i;
                let mut last_underscore = None;
                while j < n {
                    let d = b[j];
                    let ok = match d {
                        b'<' | b'/' => store,
                        _ => is_path_char(d),
                    };
                    if !ok {
                        break;
                    }
                    if d == b'_' {
                        last_underscore = Some(j);
                    }
                    j += 1;
                }
                if !store {
                    *run = PathRun {
                        start: i,
                        end: j,
                        last_underscore,
                    };
                }
                (j, last_underscore.is_some())
            };
            let (l1, l2) = (at(j), at(j + 1));
            // Whether a non-ASCII character is whitespace is left to rnix.
            if l1 == b'/' && l2 >= 0x80 {
                return None;
            }
            match l1 {
                b'/' if l2 == b'/' || l2 == b'*' => Guess::None,
                b'/' if j + 1 < n && !is_ws(l2) => Guess::PathRel,
                b'>' => Guess::PathSearch,
                b':' if j + 1 < n && is_uri_char(l2) && !underscore => Guess::Uri,
                _ => Guess::None,
            }
        };
        i += 1;
        if c == b'/' && at(i) == b'/' {
            push!(T::Update, start, i + 1);
            i += 1;
            continue;
        }
        if c == b'~'
            || matches!(guess, Guess::PathAbs | Guess::PathRel)
            || (c == b'/' && is_path_char(at(i)))
        {
            let t = if c == b'~' {
                if at(i) != b'/' {
                    return None;
                }
                i += 1;
                T::PathHome
            } else if c == b'/' {
                T::PathAbs
            } else {
                T::PathRel
            };
            while i < n && is_path_char(b[i]) {
                i += 1;
            }
            if at(i) == b'$' && at(i + 1) == b'{' {
                return None;
            }
            let text = &src[start..i];
            if text.ends_with('/') || text.contains("//") {
                return None;
            }
            push!(t, start, i);
            continue;
        }
        let next = at(i);
        let (t, len) = match c {
            b'=' if next == b'=' => (T::Equal, 2),
            b'!' if next == b'=' => (T::NotEqual, 2),
            b'!' => (T::Invert, 1),
            b'{' => {
                if let Some(Ctx::Interpol { brackets }) = ctx.last_mut() {
                    *brackets += 1;
                }
                (T::LBrace, 1)
            }
            b'}' => {
                let mut t = T::RBrace;
                if let Some(Ctx::Interpol { brackets }) = ctx.last_mut() {
                    if *brackets == 0 {
                        ctx.pop();
                        t = T::InterpEnd;
                    } else {
                        *brackets -= 1;
                    }
                }
                (t, 1)
            }
            b'[' => (T::LBrack, 1),
            b']' => (T::RBrack, 1),
            b'@' => (T::At, 1),
            b':' => (T::Colon, 1),
            b',' => (T::Comma, 1),
            b'.' => {
                if next.is_ascii_digit() {
                    return None;
                }
                (T::Dot, 1)
            }
            b'=' => (T::Assign, 1),
            b'?' => (T::Question, 1),
            b';' => (T::Semi, 1),
            b'(' => (T::LParen, 1),
            b')' => (T::RParen, 1),
            b'+' if next == b'+' => (T::Concat, 2),
            b'-' if next == b'>' => (T::Implication, 2),
            b'+' => (T::Add, 1),
            b'-' => (T::Sub, 1),
            b'*' => (T::Mul, 1),
            b'/' => (T::Div, 1),
            // Pipes are left to rnix.
            b'<' if next == b'|' => return None,
            b'<' if guess == Guess::PathSearch => {
                let mut j = i;
                while j < n && is_path_char(b[j]) {
                    j += 1;
                }
                if j == i {
                    (T::Less, 1)
                } else if at(j) != b'>' {
                    return None;
                } else {
                    push!(T::PathSearch, start, j + 1);
                    i = j + 1;
                    continue;
                }
            }
            b'&' if next == b'&' => (T::AndAnd, 2),
            b'|' if next == b'>' => return None,
            b'|' if next == b'|' => (T::OrOr, 2),
            b'<' if next == b'=' => (T::LessEq, 2),
            b'<' => (T::Less, 1),
            b'>' if next == b'=' => (T::MoreEq, 2),
            b'>' => (T::More, 1),
            b'$' if next == b'{' => {
                ctx.push(Ctx::Interpol { brackets: 0 });
                (T::InterpStart, 2)
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let uri = guess == Guess::Uri;
                let mut j = i;
                while j < n && (is_ident_char(b[j]) || (uri && is_uri_char(b[j]))) {
                    j += 1;
                }
                let t = if uri {
                    T::Uri
                } else {
                    match &src[start..j] {
                        "assert" => T::Assert,
                        "else" => T::Else,
                        "if" => T::If,
                        "in" => T::In,
                        "inherit" => T::Inherit,
                        "let" => T::Let,
                        "or" => T::Or,
                        "rec" => T::Rec,
                        "then" => T::Then,
                        "with" => T::With,
                        _ => T::Ident,
                    }
                };
                push!(t, start, j);
                i = j;
                continue;
            }
            b'"' => {
                ctx.push(Ctx::Str { multiline: false });
                (T::StrStart, 1)
            }
            b'\'' if next == b'\'' => {
                ctx.push(Ctx::Str { multiline: true });
                (T::StrStart, 2)
            }
            b'0'..=b'9' => {
                let mut j = i;
                while j < n && b[j].is_ascii_digit() {
                    j += 1;
                }
                let mut t = T::Int;
                if !(c == b'0' && next != b'.') && at(j) == b'.' {
                    j += 1;
                    while j < n && b[j].is_ascii_digit() {
                        j += 1;
                    }
                    if matches!(at(j), b'e' | b'E') {
                        j += 1;
                        if matches!(at(j), b'+' | b'-') {
                            j += 1;
                        }
                        let d = j;
                        while j < n && b[j].is_ascii_digit() {
                            j += 1;
                        }
                        if j == d {
                            return None;
                        }
                    }
                    t = T::Float;
                }
                push!(t, start, j);
                i = j;
                continue;
            }
            _ => return None,
        };
        push!(t, start, start + len);
        i = start + len;
    }
    *pos = i;
    Some(true)
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

    fn parse_expr(&mut self) -> Option<ExprId> {
        if self.depth >= MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        let out = self.parse_expr_inner();
        self.depth -= 1;
        out
    }

    fn parse_expr_inner(&mut self) -> Option<ExprId> {
        match self.peek() {
            T::Let => {
                let start = self.start();
                self.bump();
                if self.peek() == T::LBrace {
                    return None;
                }
                let entries = self.parse_set(T::In)?;
                let body = self.parse_expr()?;
                Some(self.node(start, Kind::LetIn { entries, body }))
            }
            T::With => {
                let start = self.start();
                self.bump();
                let ns = self.parse_expr()?;
                self.expect(T::Semi)?;
                let body = self.parse_expr()?;
                Some(self.node(start, Kind::With { ns, body }))
            }
            T::If => {
                let start = self.start();
                self.bump();
                let cond = self.parse_expr()?;
                self.expect(T::Then)?;
                let then = self.parse_expr()?;
                self.expect(T::Else)?;
                let els = self.parse_expr()?;
                Some(self.node(start, Kind::IfElse { cond, then, els }))
            }
            T::Assert => {
                let start = self.start();
                self.bump();
                let cond = self.parse_expr()?;
                self.expect(T::Semi)?;
                let body = self.parse_expr()?;
                Some(self.node(start, Kind::Assert { cond, body }))
            }
            _ => self.parse_implication(),
        }
    }

    fn binop(&mut self, lhs: ExprId, op: BinOpKind, rhs: ExprId) -> ExprId {
        let start = self.node_start(lhs);
        self.node(
            start,
            Kind::BinOp {
                op: Some(op),
                lhs,
                rhs,
            },
        )
    }

    fn parse_implication(&mut self) -> Option<ExprId> {
        let lhs = self.parse_or()?;
        if self.peek() == T::Implication {
            self.bump();
            let rhs = self.parse_implication()?;
            return Some(self.binop(lhs, BinOpKind::Implication, rhs));
        }
        Some(lhs)
    }

    #[inline(always)]
    fn parse_or(&mut self) -> Option<ExprId> {
        let mut lhs = self.parse_and()?;
        while self.peek() == T::OrOr {
            self.bump();
            let rhs = self.parse_and()?;
            lhs = self.binop(lhs, BinOpKind::Or, rhs);
        }
        Some(lhs)
    }

    #[inline(always)]
    fn parse_and(&mut self) -> Option<ExprId> {
        let mut lhs = self.parse_equal()?;
        while self.peek() == T::AndAnd {
            self.bump();
            let rhs = self.parse_equal()?;
            lhs = self.binop(lhs, BinOpKind::And, rhs);
        }
        Some(lhs)
    }

    #[inline(always)]
    fn parse_equal(&mut self) -> Option<ExprId> {
        let lhs = self.parse_compare()?;
        let op = match self.peek() {
            T::Equal => BinOpKind::Equal,
            T::NotEqual => BinOpKind::NotEqual,
            _ => return Some(lhs),
        };
        self.bump();
        let rhs = self.parse_compare()?;
        Some(self.binop(lhs, op, rhs))
    }

    #[inline(always)]
    fn parse_compare(&mut self) -> Option<ExprId> {
        let lhs = self.parse_merge()?;
        let op = match self.peek() {
            T::Less => BinOpKind::Less,
            T::LessEq => BinOpKind::LessOrEq,
            T::More => BinOpKind::More,
            T::MoreEq => BinOpKind::MoreOrEq,
            _ => return Some(lhs),
        };
        self.bump();
        let rhs = self.parse_merge()?;
        Some(self.binop(lhs, op, rhs))
    }

    fn parse_merge(&mut self) -> Option<ExprId> {
        let lhs = self.parse_invert()?;
        if self.peek() == T::Update {
            self.bump();
            let rhs = self.parse_merge()?;
            return Some(self.binop(lhs, BinOpKind::Update, rhs));
        }
        Some(lhs)
    }

    fn parse_invert(&mut self) -> Option<ExprId> {
        if self.peek() == T::Invert {
            let start = self.start();
            self.bump();
            let e = self.parse_invert()?;
            return Some(self.node(
                start,
                Kind::UnaryOp {
                    op: Some(UnaryOpKind::Invert),
                    expr: e,
                },
            ));
        }
        self.parse_add()
    }

    #[inline(always)]
    fn parse_add(&mut self) -> Option<ExprId> {
        let mut lhs = self.parse_mul()?;
        loop {
            let op = match self.peek() {
                T::Add => BinOpKind::Add,
                T::Sub => BinOpKind::Sub,
                _ => return Some(lhs),
            };
            self.bump();
            let rhs = self.parse_mul()?;
            lhs = self.binop(lhs, op, rhs);
        }
    }

    #[inline(always)]
    fn parse_mul(&mut self) -> Option<ExprId> {
        let mut lhs = self.parse_concat()?;
        loop {
            let op = match self.peek() {
                T::Mul => BinOpKind::Mul,
                T::Div => BinOpKind::Div,
                _ => return Some(lhs),
            };
            self.bump();
            let rhs = self.parse_concat()?;
            lhs = self.binop(lhs, op, rhs);
        }
    }

    fn parse_concat(&mut self) -> Option<ExprId> {
        let lhs = self.parse_hasattr()?;
        if self.peek() == T::Concat {
            self.bump();
            let rhs = self.parse_concat()?;
            return Some(self.binop(lhs, BinOpKind::Concat, rhs));
        }
        Some(lhs)
    }

    #[inline(always)]
    fn parse_hasattr(&mut self) -> Option<ExprId> {
        let mut e = self.parse_negate()?;
        while self.peek() == T::Question {
            self.bump();
            let path = self.parse_attrpath()?;
            let start = self.node_start(e);
            e = self.node(
                start,
                Kind::HasAttr {
                    expr: e,
                    path: Some(path),
                },
            );
        }
        Some(e)
    }

    fn parse_negate(&mut self) -> Option<ExprId> {
        if self.peek() == T::Sub {
            let start = self.start();
            self.bump();
            let e = self.parse_negate()?;
            return Some(self.node(
                start,
                Kind::UnaryOp {
                    op: Some(UnaryOpKind::Negate),
                    expr: e,
                },
            ));
        }
        self.parse_fn()
    }

    #[inline(always)]
    fn parse_fn(&mut self) -> Option<ExprId> {
        let mut f = self.parse_simple()?;
        while matches!(
            self.peek(),
            T::Rec
                | T::LBrace
                | T::LBrack
                | T::LParen
                | T::StrStart
                | T::Ident
                | T::Int
                | T::Float
                | T::Uri
                | T::PathAbs
                | T::PathRel
                | T::PathHome
                | T::PathSearch
        ) {
            let arg = self.parse_simple()?;
            let start = self.node_start(f);
            f = self.node(start, Kind::Apply { func: f, arg });
        }
        Some(f)
    }

    fn parse_simple(&mut self) -> Option<ExprId> {
        if self.depth >= MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        let out = self.parse_simple_inner();
        self.depth -= 1;
        out
    }

    fn parse_simple_inner(&mut self) -> Option<ExprId> {
        let t = self.peek();
        if t == T::Eof {
            return None;
        }
        let start = self.start();
        let e = match t {
            T::LParen => {
                self.bump();
                let e = self.parse_expr()?;
                self.expect(T::RParen)?;
                self.node(start, Kind::Paren(e))
            }
            T::Rec => {
                self.bump();
                self.expect(T::LBrace)?;
                let entries = self.parse_set(T::RBrace)?;
                self.node(start, Kind::AttrSet { rec: true, entries })
            }
            T::LBrace => {
                let pattern = matches!(
                    (self.peek_at(1), self.peek_at(2)),
                    (T::Ident, T::Comma)
                        | (T::Ident, T::Question)
                        | (T::Ident, T::RBrace)
                        | (T::Ellipsis, T::RBrace)
                        | (T::RBrace, T::Colon)
                        | (T::RBrace, T::At)
                );
                self.bump();
                if pattern {
                    let param = self.parse_pattern(None)?;
                    self.expect(T::Colon)?;
                    let body = self.parse_expr()?;
                    self.node(start, Kind::Lambda { param, body })
                } else {
                    let entries = self.parse_set(T::RBrace)?;
                    self.node(
                        start,
                        Kind::AttrSet {
                            rec: false,
                            entries,
                        },
                    )
                }
            }
            T::LBrack => {
                self.bump();
                let base = self.s_items.len();
                loop {
                    match self.peek() {
                        T::RBrack => break,
                        T::Eof => return None,
                        _ => {
                            let e = self.parse_simple()?;
                            self.s_items.push(e);
                        }
                    }
                }
                self.bump();
                let s = self.ast.items.len();
                self.ast.items.extend(self.s_items.drain(base..));
                let items = slice(s, self.ast.items.len());
                self.node(start, Kind::List { items })
            }
            T::StrStart => self.parse_string()?,
            T::PathAbs | T::PathRel | T::PathHome | T::PathSearch => {
                let tok = self.bump();
                let (kind, lit) = match t {
                    T::PathAbs => (PathKind::Abs, true),
                    T::PathRel => (PathKind::Rel, true),
                    T::PathHome => (PathKind::Home, false),
                    _ => (PathKind::Search, false),
                };
                let s = self.ast.parts.len();
                if lit {
                    let part = self.ast.push_lit(self.text(tok));
                    self.ast.parts.push(part);
                }
                let parts = slice(s, self.ast.parts.len());
                self.node(start, Kind::Path { kind, parts })
            }
            T::Int => {
                let tok = self.bump();
                let v = self.text(tok).parse::<i64>().ok();
                self.node(start, Kind::Int(v))
            }
            T::Float => {
                let tok = self.bump();
                let v = self.text(tok).parse::<f64>().unwrap_or(f64::NAN);
                self.node(start, Kind::Float(v))
            }
            T::Uri => {
                self.bump();
                self.node(start, Kind::Uri)
            }
            T::Ident => match self.peek_at(1) {
                T::Colon => {
                    let tok = self.bump();
                    let name = self.names.intern(self.text(tok));
                    self.bump();
                    self.ast.params.push(Param::Ident(Some(name)));
                    let param = self.ast.params.len() as u32 - 1;
                    let body = self.parse_expr()?;
                    self.node(start, Kind::Lambda { param, body })
                }
                T::At => {
                    let tok = self.bump();
                    let name = self.names.intern(self.text(tok));
                    self.bump();
                    self.expect(T::LBrace)?;
                    let param = self.parse_pattern(Some(name))?;
                    self.expect(T::Colon)?;
                    let body = self.parse_expr()?;
                    self.node(start, Kind::Lambda { param, body })
                }
                _ => {
                    let tok = self.bump();
                    let text = self.text(tok);
                    if text == "__curPos" {
                        self.node(start, Kind::CurPos)
                    } else {
                        let name = self.names.intern(text);
                        self.node(start, Kind::Ident(name))
                    }
                }
            },
            _ => return None,
        };
        match self.peek() {
            T::Dot => {
                self.bump();
                let path = self.parse_attrpath()?;
                let default = if self.peek() == T::Or {
                    self.bump();
                    self.parse_simple()?
                } else {
                    NONE
                };
                Some(self.node(
                    start,
                    Kind::Select {
                        expr: e,
                        path: Some(path),
                        default,
                    },
                ))
            }
            // `x or` applies `x` to a variable named `or`: left to rnix.
            T::Or => None,
            _ => Some(e),
        }
    }

    /// After the `{` of a pattern; `bound` is the name of a leading `name@`.
    fn parse_pattern(&mut self, bound: Option<Sym>) -> Option<Opt> {
        let base = self.s_formals.len();
        let mut ellipsis = false;
        if self.peek() == T::RBrace {
            self.bump();
        } else {
            loop {
                match self.peek() {
                    T::RBrace => {
                        self.bump();
                        break;
                    }
                    T::Ellipsis => {
                        self.bump();
                        ellipsis = true;
                        self.expect(T::RBrace)?;
                        break;
                    }
                    T::Ident => {
                        let tok = self.bump();
                        let name = self.names.intern(self.text(tok));
                        let default = if self.peek() == T::Question {
                            self.bump();
                            self.parse_expr()?
                        } else {
                            NONE
                        };
                        self.s_formals.push(Formal { name, default });
                        if self.peek() == T::Comma {
                            self.bump();
                        } else {
                            self.expect(T::RBrace)?;
                            break;
                        }
                    }
                    _ => return None,
                }
            }
        }
        let mut bind = bound;
        if self.peek() == T::At {
            if bound.is_some() {
                return None;
            }
            self.bump();
            let tok = self.expect(T::Ident)?;
            bind = Some(self.names.intern(self.text(tok)));
        }
        let s = self.ast.formals.len();
        self.ast.formals.extend(self.s_formals.drain(base..));
        let formals = slice(s, self.ast.formals.len());
        self.ast.params.push(Param::Pattern {
            bind,
            formals,
            ellipsis,
        });
        Some(self.ast.params.len() as u32 - 1)
    }

    /// The bindings of a set or `let`, through the closing `until` token.
    fn parse_set(&mut self, until: T) -> Option<Slice> {
        let base = self.s_entries.len();
        loop {
            let t = self.peek();
            if t == until {
                break;
            }
            match t {
                T::Eof => return None,
                T::Inherit => {
                    self.bump();
                    let from = if self.peek() == T::LParen {
                        self.bump();
                        let e = self.parse_expr()?;
                        self.expect(T::RParen)?;
                        e
                    } else {
                        NONE
                    };
                    let abase = self.s_attrs.len();
                    while self.peek() != T::Semi {
                        let a = self.parse_attr()?;
                        self.s_attrs.push(a);
                    }
                    self.bump();
                    let s = self.ast.attrs.len();
                    self.ast.attrs.extend(self.s_attrs.drain(abase..));
                    self.s_entries.push(Entry::Inherit {
                        from,
                        attrs: slice(s, self.ast.attrs.len()),
                    });
                }
                _ => {
                    let start = self.start();
                    let path = self.parse_attrpath()?;
                    self.expect(T::Assign)?;
                    let value = self.parse_expr()?;
                    self.expect(T::Semi)?;
                    self.s_entries.push(Entry::Value {
                        range: range(start, self.last_end),
                        path,
                        value,
                    });
                }
            }
        }
        self.bump();
        let s = self.ast.entries.len();
        self.ast.entries.extend(self.s_entries.drain(base..));
        Some(slice(s, self.ast.entries.len()))
    }

    fn parse_attrpath(&mut self) -> Option<Slice> {
        let base = self.s_attrs.len();
        loop {
            let a = self.parse_attr()?;
            self.s_attrs.push(a);
            if self.peek() == T::Dot {
                self.bump();
            } else {
                break;
            }
        }
        let s = self.ast.attrs.len();
        self.ast.attrs.extend(self.s_attrs.drain(base..));
        Some(slice(s, self.ast.attrs.len()))
    }

    fn parse_attr(&mut self) -> Option<Attr> {
        match self.peek() {
            T::InterpStart => {
                let start = self.start();
                self.bump();
                let e = self.parse_expr()?;
                self.expect(T::InterpEnd)?;
                Some(Attr {
                    range: range(start, self.last_end),
                    kind: AttrKind::Dynamic(e),
                })
            }
            T::StrStart => {
                let id = self.parse_string()?;
                Some(Attr {
                    range: self.ast.nodes[id as usize].range,
                    kind: AttrKind::Str(id),
                })
            }
            T::Ident | T::Or => {
                let tok = self.bump();
                let name = self.names.intern(self.text(tok));
                Some(Attr {
                    range: range(tok.start, tok.end),
                    kind: AttrKind::Ident(name),
                })
            }
            _ => None,
        }
    }

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

    fn parse_string(&mut self) -> Option<ExprId> {
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
