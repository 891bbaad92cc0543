//! Plain text below every format: text edits and their application, one line index, the
//! line and indentation helpers, and newline style.
//!
//! This is the lowest layer: it depends on nothing else in the crate, so `syntax`, `yaml`,
//! `edit`, `check`, `secrets` and `render` all share one answer to "which line is this
//! offset on" and one way of applying edits. Offsets are bytes; columns are 1-based and count
//! Unicode scalar values, as the JSON output documents.

mod edit;
mod lines;
mod newline;

pub use edit::{apply, ApplyError, TextEdit};
pub use lines::{
    indent_width, is_blank, leading_indent, line_col, line_end, line_number, line_start,
    next_line_start, LineIndex,
};
pub use newline::Newline;

#[cfg(test)]
mod tests;
