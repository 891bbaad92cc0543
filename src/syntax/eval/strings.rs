//! Strings and paths: literal parts joined with their interpolations.

use std::path::Path;
use std::rc::Rc;

use super::{normalize, Evaluator, ScopeId, Val, V};
use crate::syntax::ast::{ExprId, Kind, Part, PathKind, Slice, NONE};
use crate::syntax::{FileId, Span};
impl Evaluator<'_> {
    /// Evaluates the string node `id` (a [`Kind::Str`], or [`Kind::Error`] when malformed).
    pub(super) fn eval_str(&mut self, id: ExprId, scope: ScopeId, file: FileId, span: Span) -> Val {
        let Kind::Str { parts } = self.ast(file).node(id).kind else {
            return Val { v: V::Error, span };
        };
        // The common case, one literal part, needs no buffer.
        if parts.len == 1 {
            if let Part::Lit { start, end } = self.ast(file).parts[parts.start as usize] {
                let s: Rc<str> = self.ast(file).lit(start, end).into();
                return Val { v: V::Str(s), span };
            }
        }
        let out = match self.join_parts(parts, scope, file, span, Self::string_part) {
            Ok(out) => out,
            Err(v) => return v,
        };
        Val {
            v: V::Str(out.into()),
            span,
        }
    }

    pub(super) fn eval_path(
        &mut self,
        kind: PathKind,
        parts: Slice,
        scope: ScopeId,
        file: FileId,
        span: Span,
    ) -> Val {
        match kind {
            PathKind::Home => return self.dynamic(span, "a `~/` path depends on the user's home"),
            PathKind::Search => return self.dynamic(span, "a `<…>` path depends on NIX_PATH"),
            PathKind::Abs | PathKind::Rel => {}
        }
        let text = match self.join_parts(parts, scope, file, span, Self::path_part) {
            Ok(text) => text,
            Err(v) => return v,
        };
        let resolved = if text.starts_with('/') {
            normalize(Path::new(&text))
        } else {
            let base = self
                .db
                .path(file)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            normalize(&base.join(&text))
        };
        Val {
            v: V::Path(resolved.into()),
            span,
        }
    }

    /// The literal parts of a string or path joined with its interpolations, each turned
    /// into text by `coerce`; `Err` holds the value to give instead (dynamic or an error).
    fn join_parts(
        &mut self,
        parts: Slice,
        scope: ScopeId,
        file: FileId,
        span: Span,
        coerce: fn(&mut Self, Val, Span) -> Result<Rc<str>, Val>,
    ) -> Result<String, Val> {
        let mut out = String::new();
        for i in parts.range() {
            match self.ast(file).parts[i] {
                Part::Lit { start, end } => out.push_str(self.ast(file).lit(start, end)),
                Part::Interp(e) if e == NONE => return Err(Val { v: V::Error, span }),
                Part::Interp(e) => {
                    let v = self.eval(e, scope, file);
                    out.push_str(&coerce(self, v, span)?);
                }
            }
        }
        Ok(out)
    }

    /// An interpolation in a string: strings only; a path or a derivation would need the
    /// store.
    fn string_part(&mut self, v: Val, span: Span) -> Result<Rc<str>, Val> {
        match &v.v {
            V::Str(s) => Ok(s.clone()),
            V::Path(_) => {
                Err(self.dynamic(span, "interpolating a path copies it to the Nix store"))
            }
            V::Dynamic(_) => {
                Err(self.dynamic(span, "interpolates a value that is not known statically"))
            }
            V::Error => Err(Val { v: V::Error, span }),
            V::Attrs(a)
                if a.contains_key(&self.wk.out_path) || a.contains_key(&self.wk.to_string) =>
            {
                Err(self.dynamic(span, "interpolates a derivation or a set with `__toString`"))
            }
            other => Err(self.coerce_error(other, v.span)),
        }
    }

    /// An interpolation in a path: strings only.
    fn path_part(&mut self, v: Val, span: Span) -> Result<Rc<str>, Val> {
        match &v.v {
            V::Str(s) => Ok(s.clone()),
            V::Dynamic(_) | V::Error => {
                Err(self.dynamic(span, "a path built from a value not known statically"))
            }
            other => Err(self.coerce_error(other, v.span)),
        }
    }

    fn coerce_error(&mut self, other: &V, at: Span) -> Val {
        self.type_error(other, at, |t| format!("cannot coerce {t} to a string"))
    }
}
