//! Lossless edits of fleet files, computed as text edits on a parsed tree.
//!
//! Every edit is a list of sorted, non-overlapping [`TextEdit`]s: bytes outside them are
//! untouched by construction. Callers re-parse and re-check the result before writing it.

pub mod docs;
pub mod hosts;
pub mod nix;
pub mod refusal;
pub mod scaffold;
pub mod sops;

/// Replace the bytes `start..end` of the original text with `insert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextEdit {
    pub start: usize,
    pub end: usize,
    pub insert: String,
}

impl TextEdit {
    pub fn insert(at: usize, text: impl Into<String>) -> Self {
        TextEdit {
            start: at,
            end: at,
            insert: text.into(),
        }
    }

    pub fn replace(start: usize, end: usize, text: impl Into<String>) -> Self {
        TextEdit {
            start,
            end,
            insert: text.into(),
        }
    }

    pub fn delete(start: usize, end: usize) -> Self {
        TextEdit {
            start,
            end,
            insert: String::new(),
        }
    }
}

/// Why a set of edits cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("edit {start}..{end} is outside the text of {len} bytes or not on a char boundary")]
    OutOfBounds {
        start: usize,
        end: usize,
        len: usize,
    },
    #[error("edits {0:?} and {1:?} overlap")]
    Overlap((usize, usize), (usize, usize)),
}

/// Applies `edits` to `text`. Edits are sorted by position first; two edits that overlap (or
/// two insertions at the same offset, whose order would be ambiguous) are refused.
pub fn apply(text: &str, edits: &[TextEdit]) -> Result<String, ApplyError> {
    let mut sorted: Vec<&TextEdit> = edits.iter().collect();
    sorted.sort_by_key(|e| (e.start, e.end));
    for e in &sorted {
        if e.start > e.end
            || e.end > text.len()
            || !text.is_char_boundary(e.start)
            || !text.is_char_boundary(e.end)
        {
            return Err(ApplyError::OutOfBounds {
                start: e.start,
                end: e.end,
                len: text.len(),
            });
        }
    }
    for w in sorted.windows(2) {
        let (a, b) = (w[0], w[1]);
        if b.start < a.end || (a.start == b.start && a.start == a.end && b.start == b.end) {
            return Err(ApplyError::Overlap((a.start, a.end), (b.start, b.end)));
        }
    }
    let mut out =
        String::with_capacity(text.len() + sorted.iter().map(|e| e.insert.len()).sum::<usize>());
    let mut pos = 0;
    for e in sorted {
        out.push_str(&text[pos..e.start]);
        out.push_str(&e.insert);
        pos = e.end;
    }
    out.push_str(&text[pos..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_in_position_order_whatever_the_input_order() {
        let edits = [
            TextEdit::insert(5, "!"),
            TextEdit::replace(0, 1, "J"),
            TextEdit::delete(2, 3),
        ];
        assert_eq!(apply("hello", &edits).unwrap(), "Jelo!");
    }

    #[test]
    fn refuses_overlaps_and_ambiguous_inserts() {
        assert!(apply("hello", &[TextEdit::delete(0, 3), TextEdit::delete(2, 4)]).is_err());
        assert!(apply(
            "hello",
            &[TextEdit::insert(1, "a"), TextEdit::insert(1, "b")]
        )
        .is_err());
        assert!(apply("hello", &[TextEdit::delete(3, 9)]).is_err());
        assert!(apply("é", &[TextEdit::insert(1, "x")]).is_err());
    }
}
