//! Random byte-level mutations of fixture texts, for the bounded fuzz tests.

use proptest::prelude::*;

/// Bytes that are likely to change the structure: delimiters, quotes, interpolation.
pub const INTERESTING: &[u8] = b"{}[]();=\"'$\\.:,@?#/*+-!<>|&~\n 0a_";

#[derive(Debug, Clone)]
pub enum Mutation {
    Truncate(usize),
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), prop::sample::select(INTERESTING))
            .prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<usize>(), prop::sample::select(INTERESTING))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
    ]
}

/// Applies the mutations in order. Byte edits can split a UTF-8 sequence; the tools read
/// files as UTF-8 text, so the result is read lossily.
pub fn apply(text: &str, muts: &[Mutation]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for m in muts {
        let len = bytes.len().max(1);
        match *m {
            Mutation::Truncate(i) => bytes.truncate(i % len),
            Mutation::Replace(i, b) => {
                if !bytes.is_empty() {
                    let i = i % bytes.len();
                    bytes[i] = b;
                }
            }
            Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Mutation::Delete(i, n) => {
                if !bytes.is_empty() {
                    let i = i % bytes.len();
                    let end = (i + n).min(bytes.len());
                    bytes.drain(i..end);
                }
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
