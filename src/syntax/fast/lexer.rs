//! The lexer: rnix 0.15's tokenizer, run a few tokens ahead of the parser.

use std::collections::VecDeque;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum T {
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
pub(super) struct Tok {
    pub(super) t: T,
    pub(super) start: u32,
    pub(super) end: u32,
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
pub(super) enum Ctx {
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

/// The last run of path characters scanned for a token's guess: its start, its end (the first
/// non-path character) and its last `_`. A token starting inside the run ends its scan at the
/// same place, so `a.a.a.…` on one long line is lexed in linear time, not quadratic.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PathRun {
    start: usize,
    end: usize,
    last_underscore: Option<usize>,
}

/// Lexes at least one more token (trivia dropped) into `toks`, from `*pos` and with the
/// context stack `ctx`, mirroring rnix's tokenizer: `Some(true)` when it did, `Some(false)` at
/// the end of the text, `None` on an error or anything left to rnix. Tokens are made as the
/// parser asks for them, so the whole file's tokens never sit in memory at once.
pub(super) fn lex_some(
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
