//! Attribute sets: building plain, `rec` and `let` sets (nested paths merged, duplicates
//! reported), `inherit`, and selection.

use std::rc::Rc;

use indexmap::IndexMap;
use rustc_hash::FxBuildHasher;

use super::{Attrs, EvalError, EvalErrorKind, Evaluator, ScopeId, Thunk, ThunkId, Val, V};
use crate::syntax::ast::{Attr, AttrKind, Entry, ExprId, Kind, Opt, Slice, Sym, NONE};
use crate::syntax::{FileId, Span};
type Slots = IndexMap<Sym, Slot, FxBuildHasher>;

/// One slot of an attribute set under construction (nested attribute paths merge here).
enum Slot {
    Leaf {
        key: Span,
        thunk: ThunkId,
        literal: Option<(ExprId, ScopeId)>,
    },
    Nested {
        key: Span,
        node: Span,
        entries: Slots,
    },
}

impl Slot {
    fn key(&self) -> Span {
        match self {
            Slot::Leaf { key, .. } | Slot::Nested { key, .. } => *key,
        }
    }
}

impl Evaluator<'_> {
    /// The name an attribute key stands for; `Ok(None)` for `${null}` keys, which Nix skips.
    pub(super) fn attr_name(
        &mut self,
        attr: Attr,
        scope: ScopeId,
        file: FileId,
    ) -> Result<Option<Sym>, String> {
        match attr.kind {
            AttrKind::Ident(s) => Ok(Some(s)),
            AttrKind::Str(id) => {
                let span = self.span(file, self.ast(file).node(id).range);
                let v = self.eval_str(id, scope, file, span);
                match v.v {
                    V::Str(s) => Ok(Some(self.names.intern(&s))),
                    _ => Err(
                        "an attribute name is computed from a value not known statically".into(),
                    ),
                }
            }
            AttrKind::Dynamic(e) => {
                if e == NONE {
                    return Err("an attribute name is missing".into());
                }
                let v = self.eval(e, scope, file);
                match v.v {
                    V::Str(s) => Ok(Some(self.names.intern(&s))),
                    V::Null => Ok(None),
                    _ => Err(
                        "an attribute name is computed from a value not known statically".into(),
                    ),
                }
            }
        }
    }

    /// Builds the entries of a set or `let`: values are evaluated in `value_scope` (the set's
    /// own scope for `rec` and `let`), inherits and dynamic names in `outer`.
    pub(super) fn build_attrs(
        &mut self,
        entries: Slice,
        value_scope: ScopeId,
        outer: ScopeId,
        file: FileId,
    ) -> Result<Attrs, String> {
        if self.flat_bindings(entries, file) {
            let errors = self.errors.len();
            if let Some(attrs) = self.build_flat(entries, value_scope, outer, file)? {
                return Ok(attrs);
            }
            // A name bound twice: the slots decide whether it is a merge or a duplicate,
            // and report it once.
            self.errors.truncate(errors);
        }
        let mut slots = Slots::with_capacity_and_hasher(entries.len as usize, FxBuildHasher);
        self.fill_slots(entries, &mut slots, value_scope, outer, file)?;
        Ok(self.finish_slots(slots))
    }

    /// True when no binding has a nested path (`a.b = …`) and every name is a plain
    /// identifier: then no set needs merging and the slots can be skipped.
    fn flat_bindings(&self, entries: Slice, file: FileId) -> bool {
        let ast = self.ast(file);
        ast.entries[entries.range()].iter().all(|e| match *e {
            Entry::Value { path, .. } => {
                path.len == 1 && matches!(ast.attrs[path.start as usize].kind, AttrKind::Ident(_))
            }
            Entry::Inherit { .. } => true,
        })
    }

    /// [`Self::fill_slots`] + [`Self::finish_slots`] for flat bindings: the same thunks,
    /// straight into the final table. `None` when a name is bound twice (two set literals
    /// merge, as in Nix): the slots handle that.
    fn build_flat(
        &mut self,
        entries: Slice,
        value_scope: ScopeId,
        outer: ScopeId,
        file: FileId,
    ) -> Result<Option<Attrs>, String> {
        let mut out = Attrs::with_capacity_and_hasher(entries.len as usize, FxBuildHasher);
        for ei in entries.range() {
            let entry = self.ast(file).entries[ei];
            match entry {
                Entry::Inherit { from, attrs } => {
                    for (name, key, thunk) in self.inherit_thunks(from, attrs, outer, file)? {
                        if out.insert(name, (key, thunk)).is_some() {
                            return Ok(None);
                        }
                    }
                }
                Entry::Value { path, value, .. } => {
                    let attr = self.ast(file).attrs[path.start as usize];
                    let AttrKind::Ident(name) = attr.kind else {
                        unreachable!("checked by flat_bindings")
                    };
                    let key = self.span(file, attr.range);
                    let thunk = self.new_thunk(Thunk::Expr(value, value_scope, file));
                    if out.insert(name, (key, thunk)).is_some() {
                        return Ok(None);
                    }
                }
            }
        }
        Ok(Some(out))
    }

    /// The bindings of `inherit x;` / `inherit (e) x;`: names are looked up in `outer` (or
    /// selected from `e`, evaluated in `outer`) lazily, as Nix does.
    fn inherit_thunks(
        &mut self,
        from: Opt,
        attrs: Slice,
        outer: ScopeId,
        file: FileId,
    ) -> Result<Vec<(Sym, Span, ThunkId)>, String> {
        let from = (from != NONE).then(|| self.new_thunk(Thunk::Expr(from, outer, file)));
        let mut out = Vec::with_capacity(attrs.len as usize);
        for ai in attrs.range() {
            let attr = self.ast(file).attrs[ai];
            let key = self.span(file, attr.range);
            let Some(name) = self.attr_name(attr, outer, file)? else {
                continue;
            };
            let thunk = match (from, attr.kind) {
                (Some(src), _) => self.new_thunk(Thunk::Select(src, name, key)),
                (None, AttrKind::Ident(_)) => self.new_thunk(Thunk::Ident(name, outer, key)),
                (None, _) => {
                    let v = self.lookup(name, outer, key);
                    self.new_thunk(Thunk::Done(v))
                }
            };
            out.push((name, key, thunk));
        }
        Ok(out)
    }

    fn fill_slots(
        &mut self,
        entries: Slice,
        slots: &mut Slots,
        value_scope: ScopeId,
        outer: ScopeId,
        file: FileId,
    ) -> Result<(), String> {
        for ei in entries.range() {
            let entry = self.ast(file).entries[ei];
            match entry {
                Entry::Inherit { from, attrs } => {
                    for (name, key, thunk) in self.inherit_thunks(from, attrs, outer, file)? {
                        self.insert_leaf(slots, name, key, thunk, None);
                    }
                }
                Entry::Value { range, path, value } => {
                    let mut names: Vec<(Sym, Span)> = Vec::with_capacity(path.len as usize);
                    let mut skip = false;
                    for ai in path.range() {
                        let attr = self.ast(file).attrs[ai];
                        let key = self.span(file, attr.range);
                        match self.attr_name(attr, outer, file)? {
                            Some(n) => names.push((n, key)),
                            None => skip = true,
                        }
                    }
                    if skip || names.is_empty() {
                        continue;
                    }
                    let node_span = self.span(file, range);
                    let (last, prefix) = names.split_last().expect("non-empty");
                    // Walk (and create) the nested sets of `a.b.c = …;`.
                    let mut cur: &mut Slots = slots;
                    for &(n, key) in prefix {
                        if let Some(Slot::Leaf { .. }) = cur.get(&n) {
                            self.expand_leaf(cur, n)?;
                        }
                        let slot = cur.entry(n).or_insert_with(|| Slot::Nested {
                            key,
                            node: node_span,
                            entries: Slots::default(),
                        });
                        match slot {
                            Slot::Nested { entries, .. } => cur = entries,
                            Slot::Leaf { key: first, .. } => {
                                let first = *first;
                                self.duplicate(n, key, first);
                                return Ok(());
                            }
                        }
                    }
                    let (name, key) = *last;
                    let literal = match self.ast(file).node(value).kind {
                        Kind::AttrSet { rec: false, .. } => Some((value, value_scope)),
                        _ => None,
                    };
                    if literal.is_some()
                        && matches!(
                            cur.get(&name),
                            Some(Slot::Leaf {
                                literal: Some(_),
                                ..
                            })
                        )
                    {
                        // `a = { x = 1; }; a = { y = 2; };` is one set `a` to Nix too (its parser
                        // merges two set literals bound to one name); only a name both define is
                        // a duplicate.
                        self.expand_leaf(cur, name)?;
                    }
                    if let (Some(Slot::Nested { .. }), Some((set, sc))) = (cur.get(&name), literal)
                    {
                        // `a.b = 1; a = { c = 2; };` merges into one set, as Nix does.
                        let Kind::AttrSet {
                            entries: set_entries,
                            ..
                        } = self.ast(file).node(set).kind
                        else {
                            unreachable!("checked above")
                        };
                        if let Some(Slot::Nested { entries, .. }) = cur.get_mut(&name) {
                            let mut taken = std::mem::take(entries);
                            self.fill_slots(set_entries, &mut taken, sc, sc, file)?;
                            if let Some(Slot::Nested { entries, .. }) = cur.get_mut(&name) {
                                *entries = taken;
                            }
                        }
                        continue;
                    }
                    let thunk = self.new_thunk(Thunk::Expr(value, value_scope, file));
                    self.insert_leaf(cur, name, key, thunk, literal);
                }
            }
        }
        Ok(())
    }

    /// Turns a leaf holding a literal set into a nested slot so more paths can merge into it.
    fn expand_leaf(&mut self, slots: &mut Slots, name: Sym) -> Result<(), String> {
        let Some(Slot::Leaf {
            key,
            literal: Some((set, sc)),
            ..
        }) = slots.get(&name)
        else {
            return Ok(());
        };
        let (key, set, sc) = (*key, *set, *sc);
        let file = key.file;
        let set_node = self.ast(file).node(set);
        let node = self.span(file, set_node.range);
        let Kind::AttrSet {
            entries: set_entries,
            ..
        } = set_node.kind
        else {
            unreachable!("literal slots hold set literals")
        };
        let mut entries = Slots::default();
        self.fill_slots(set_entries, &mut entries, sc, sc, file)?;
        slots.insert(name, Slot::Nested { key, node, entries });
        Ok(())
    }

    fn insert_leaf(
        &mut self,
        slots: &mut Slots,
        name: Sym,
        key: Span,
        thunk: ThunkId,
        literal: Option<(ExprId, ScopeId)>,
    ) {
        if let Some(existing) = slots.get(&name) {
            let first = existing.key();
            self.duplicate(name, key, first);
            return;
        }
        slots.insert(
            name,
            Slot::Leaf {
                key,
                thunk,
                literal,
            },
        );
    }

    fn duplicate(&mut self, name: Sym, key: Span, first: Span) {
        let name = self.name(name).to_string();
        self.errors.push(EvalError {
            kind: EvalErrorKind::DuplicateAttribute,
            span: key,
            message: format!("attribute `{name}` is already defined"),
            related: Some((first, "first defined here".into())),
        });
    }

    fn finish_slots(&mut self, slots: Slots) -> Attrs {
        let mut out = Attrs::with_capacity_and_hasher(slots.len(), FxBuildHasher);
        for (name, slot) in slots {
            match slot {
                Slot::Leaf { key, thunk, .. } => {
                    out.insert(name, (key, thunk));
                }
                Slot::Nested { key, node, entries } => {
                    let inner = self.finish_slots(entries);
                    let t = self.done(V::Attrs(Rc::new(inner)), node);
                    out.insert(name, (key, t));
                }
            }
        }
        out
    }

    pub(super) fn select_one(&mut self, from: Val, name: Sym, span: Span) -> Val {
        match &from.v {
            V::Attrs(a) => match a.get(&name) {
                Some(&(_, t)) => self.force(t),
                None => {
                    let n = self.name(name).to_string();
                    self.error(
                        EvalErrorKind::MissingAttribute,
                        span,
                        format!("attribute `{n}` missing"),
                    )
                }
            },
            V::Dynamic(_) => self.dynamic(span, "selects from a set that is not known statically"),
            V::Error => Val { v: V::Error, span },
            other => self.type_error(other, span, |t| {
                format!("value is {t} while a set was expected")
            }),
        }
    }

    /// `e` evaluated and the attribute path after it (`e.a.b`, `e ? a.b`); `Err` where rnix
    /// recovered from a syntax error and left either out.
    pub(super) fn path_start(
        &mut self,
        e: Opt,
        path: Option<Slice>,
        scope: ScopeId,
        file: FileId,
        span: Span,
    ) -> Result<(Val, Slice), Val> {
        if e == NONE {
            return Err(Val { v: V::Error, span });
        }
        let cur = self.eval(e, scope, file);
        match path {
            Some(path) => Ok((cur, path)),
            None => Err(Val { v: V::Error, span }),
        }
    }

    pub(super) fn eval_select(
        &mut self,
        e: Opt,
        path: Option<Slice>,
        default: Opt,
        scope: ScopeId,
        file: FileId,
        span: Span,
    ) -> Val {
        let (mut cur, path) = match self.path_start(e, path, scope, file, span) {
            Ok(start) => start,
            Err(v) => return v,
        };
        for ai in path.range() {
            let attr = self.ast(file).attrs[ai];
            let key = self.span(file, attr.range);
            let name = match self.attr_name(attr, scope, file) {
                Ok(Some(n)) => n,
                Ok(None) => return self.error(EvalErrorKind::Type, key, "attribute name is null"),
                Err(reason) => return self.dynamic(span, &reason),
            };
            match &cur.v {
                V::Attrs(a) => match a.get(&name) {
                    Some(&(_, t)) => cur = self.force(t),
                    None => {
                        return if default != NONE {
                            self.eval(default, scope, file)
                        } else {
                            let n = self.name(name).to_string();
                            self.error(
                                EvalErrorKind::MissingAttribute,
                                key,
                                format!("attribute `{n}` missing"),
                            )
                        }
                    }
                },
                V::Dynamic(_) => {
                    return self.dynamic(span, "selects from a set that is not known statically")
                }
                V::Error => return Val { v: V::Error, span },
                _ if default != NONE => {
                    return self.eval(default, scope, file);
                }
                other => {
                    return self.type_error(other, cur.span, |t| {
                        format!("value is {t} while a set was expected")
                    });
                }
            }
        }
        cur
    }
}
