//! Strings and paths: literal parts joined with their interpolations.

use std::path::Path;
use std::rc::Rc;

use super::{normalize, type_name, EvalErrorKind, Evaluator, ScopeId, Val, V};
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
        let mut out = String::new();
        for i in parts.range() {
            let part = self.ast(file).parts[i];
            match part {
                Part::Lit { start, end } => out.push_str(self.ast(file).lit(start, end)),
                Part::Interp(e) => {
                    if e == NONE {
                        return Val { v: V::Error, span };
                    }
                    let v = self.eval(e, scope, file);
                    match &v.v {
                        V::Str(s) => out.push_str(s),
                        V::Path(_) => {
                            return self
                                .dynamic(span, "interpolating a path copies it to the Nix store")
                        }
                        V::Dynamic(_) => {
                            return self
                                .dynamic(span, "interpolates a value that is not known statically")
                        }
                        V::Error => return Val { v: V::Error, span },
                        V::Attrs(a)
                            if a.contains_key(&self.wk.out_path)
                                || a.contains_key(&self.wk.to_string) =>
                        {
                            return self.dynamic(
                                span,
                                "interpolates a derivation or a set with `__toString`",
                            )
                        }
                        other => {
                            let t = type_name(other);
                            return self.error(
                                EvalErrorKind::Type,
                                v.span,
                                format!("cannot coerce {t} to a string"),
                            );
                        }
                    }
                }
            }
        }
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
        let mut text = String::new();
        for i in parts.range() {
            let part = self.ast(file).parts[i];
            match part {
                Part::Lit { start, end } => text.push_str(self.ast(file).lit(start, end)),
                Part::Interp(e) => {
                    if e == NONE {
                        return Val { v: V::Error, span };
                    }
                    let v = self.eval(e, scope, file);
                    match &v.v {
                        V::Str(s) => text.push_str(s),
                        V::Dynamic(_) | V::Error => {
                            return self
                                .dynamic(span, "a path built from a value not known statically")
                        }
                        other => {
                            let t = type_name(other);
                            return self.error(
                                EvalErrorKind::Type,
                                v.span,
                                format!("cannot coerce {t} to a string"),
                            );
                        }
                    }
                }
            }
        }
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
}
