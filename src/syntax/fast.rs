//! A hand-written parser for well-formed Nix (stub).

use super::ast::{Ast, Interner};

pub fn parse(_text: &str, _names: &mut Interner) -> Option<Ast> {
    None
}
