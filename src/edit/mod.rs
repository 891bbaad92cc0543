//! Lossless edits of fleet files, computed as text edits on a parsed tree.
//!
//! Every edit is a list of sorted, non-overlapping [`TextEdit`](crate::text::TextEdit)s:
//! bytes outside them are untouched by construction. Callers re-parse and re-check the result
//! before writing it.

pub mod definitions;
pub mod definitions_import;
pub mod docs;
pub mod hosts;
pub mod nix;
pub mod refusal;
pub mod scaffold;
pub mod sops;
