//! Locating hosts.nix: the hosts set and its entries as byte ranges, refusing shapes vmctl
//! cannot edit; plus the Nix-aware line helpers the layout policy is written in.

use std::ops::Range;

use rnix::ast::{self, HasEntry};
use rnix::SyntaxNode;
use rowan::ast::AstNode;

use super::{Entry, HostsDoc, HostsEditError, KeyLiteral};
use crate::edit::nix;
use crate::model::hosts::{classify, EntryKind, HOST_MARKERS};
use crate::text::{leading_indent, line_end, LineIndex, Newline};

impl Entry {
    /// An entry whose inner attributes were not read: a `_` attribute, or a host the
    /// verification only needs to see is still there.
    fn unread(
        name: String,
        is_host: bool,
        (range, name_range): (Range<usize>, Range<usize>),
        line: usize,
    ) -> Entry {
        Entry {
            name,
            is_host,
            range,
            line,
            name_range,
            public_key: None,
            ssh_alias: None,
            hostname: None,
            inner_indent: None,
            set_close: None,
        }
    }
}

pub(super) fn range_of(node: &SyntaxNode) -> Range<usize> {
    let r = node.text_range();
    usize::from(r.start())..usize::from(r.end())
}

/// Reads hosts.nix into a [`HostsDoc`], refusing shapes vmctl cannot edit.
pub fn locate(text: &str) -> Result<HostsDoc, HostsEditError> {
    locate_with(text, None)
}

/// [`locate`]; with `only = Some(name)`, host entries other than `name` are only checked to be
/// attribute sets and their inner attributes are not read (their `publicKey` is `None`). The
/// verification uses this: those entries are byte-identical to ones already read in full.
pub(super) fn locate_with(text: &str, only: Option<&str>) -> Result<HostsDoc, HostsEditError> {
    let parse = rnix::Root::parse(text);
    if let Some(first) = parse.errors().first() {
        let at = match first {
            rnix::ParseError::Unexpected(r)
            | rnix::ParseError::UnexpectedExtra(r)
            | rnix::ParseError::UnexpectedWanted(_, r, _)
            | rnix::ParseError::UnexpectedDoubleBind(r)
            | rnix::ParseError::DuplicatedArgs(r, _) => {
                usize::from(r.start())..usize::from(r.end())
            }
            _ => text.len()..text.len(),
        };
        return Err(HostsEditError::Syntax {
            count: parse.errors().len(),
            at,
        });
    }
    let mut expr = parse
        .tree()
        .expr()
        .ok_or(HostsEditError::UnsupportedShape { found: "empty" })?;
    let set = loop {
        expr = nix::unparen(expr);
        match expr {
            ast::Expr::LetIn(l) => match l.body() {
                Some(body) => expr = body,
                None => return Err(HostsEditError::UnsupportedShape { found: "empty" }),
            },
            ast::Expr::AttrSet(set) => break set,
            other => {
                return Err(HostsEditError::UnsupportedShape {
                    found: nix::describe(&other),
                })
            }
        }
    };
    let (Some(l), Some(r)) = (set.l_curly_token(), set.r_curly_token()) else {
        return Err(HostsEditError::UnsupportedShape {
            found: "an incomplete attribute set",
        });
    };
    let lines = LineIndex::new(text);
    let mut entries: Vec<Entry> = Vec::new();
    let mut host_names: std::collections::HashSet<String> = std::collections::HashSet::new();
    for entry in set.entries() {
        match entry {
            ast::Entry::Inherit(inh) => {
                for attr in inh.attrs() {
                    let at = range_of(attr.syntax());
                    let name = attr_text(&attr)
                        .ok_or(HostsEditError::InterpolatedName { at: at.clone() })?;
                    if !name.starts_with('_') {
                        return Err(HostsEditError::Inherit { at });
                    }
                }
            }
            ast::Entry::AttrpathValue(av) => {
                let range = range_of(av.syntax());
                let line = lines.line(range.start) + 1;
                let name_range = av
                    .attrpath()
                    .map(|p| range_of(p.syntax()))
                    .unwrap_or_else(|| range.clone());
                let mut attrs = av.attrpath().into_iter().flat_map(|p| p.attrs());
                let first = attrs.next().ok_or(HostsEditError::InterpolatedName {
                    at: name_range.clone(),
                })?;
                let nested = attrs.next().is_some();
                let name = attr_text(&first).ok_or(HostsEditError::InterpolatedName {
                    at: range_of(first.syntax()),
                })?;
                if name.starts_with('_') {
                    // Non-host attributes may hold anything; several bindings may share a
                    // `_name.` prefix, so they are not checked for duplicates.
                    entries.push(Entry::unread(name, false, (range, name_range), line));
                    continue;
                }
                if nested {
                    return Err(HostsEditError::NestedPath {
                        name,
                        at: name_range,
                    });
                }
                if !host_names.insert(name.clone()) {
                    return Err(HostsEditError::Duplicate {
                        name,
                        at: name_range,
                    });
                }
                let value = av.value();
                let Some(ast::Expr::AttrSet(host_set)) = value else {
                    return Err(HostsEditError::EntryNotAttrset {
                        name,
                        // The name, not the value: a value may span many lines.
                        at: name_range,
                        found: value.as_ref().map(nix::describe).unwrap_or("empty"),
                    });
                };
                if only.is_some_and(|o| o != name) {
                    entries.push(Entry::unread(name, true, (range, name_range), line));
                    continue;
                }
                let mut public_key = None;
                let mut ssh_alias = None;
                let mut hostname = None;
                let mut inner_indent = None;
                // The first name of every binding, for the shared host classification.
                // Whether a binding's first name is a host marker, for the shared host
                // classification (computed without allocating: this loop runs per host).
                let marker_of = |attr: &ast::Attr| -> Option<&'static str> {
                    let wanted = |k: &str| HOST_MARKERS.iter().copied().find(|w| *w == k);
                    match attr {
                        ast::Attr::Ident(i) => i.ident_token().and_then(|t| wanted(t.text())),
                        other => attr_text(other).and_then(|k| wanted(&k)),
                    }
                };
                let mut markers: Vec<&'static str> = Vec::new();
                for inner in host_set.entries() {
                    let ast::Entry::AttrpathValue(iav) = inner else {
                        if let ast::Entry::Inherit(inh) = inner {
                            markers.extend(inh.attrs().filter_map(|a| marker_of(&a)));
                        }
                        continue;
                    };
                    if inner_indent.is_none() {
                        inner_indent = relative_indent(text, range.start, iav.syntax());
                    }
                    let mut path = iav.attrpath().into_iter().flat_map(|p| p.attrs());
                    let Some(first) = path.next() else {
                        continue;
                    };
                    let marker = marker_of(&first);
                    markers.extend(marker);
                    // Only single-name bindings matter here (`publicKey = …;`).
                    let (Some(key), None) = (marker, path.next()) else {
                        continue;
                    };
                    let value = iav.value();
                    let string = match &value {
                        Some(ast::Expr::Str(s)) => Some(s),
                        _ => None,
                    };
                    match key {
                        "publicKey" => {
                            public_key = Some(match (string, &value) {
                                (Some(s), _) => KeyLiteral {
                                    range: range_of(s.syntax()),
                                    value: nix::plain_string(s),
                                },
                                (None, Some(v)) => KeyLiteral {
                                    range: range_of(v.syntax()),
                                    value: None,
                                },
                                (None, None) => KeyLiteral {
                                    range: range_of(iav.syntax()),
                                    value: None,
                                },
                            })
                        }
                        "sshAlias" => ssh_alias = string.and_then(nix::plain_string),
                        "hostname" => hostname = string.and_then(nix::plain_string),
                        _ => {}
                    }
                }
                // Lint and edit agree on what a host is (`model::hosts::classify`): a set
                // with `publicKey`, `hostname` or `sshAlias`; its key may be missing yet.
                if classify(&name, Some(markers.iter().copied())) != EntryKind::Host {
                    return Err(HostsEditError::EntryWithoutKey {
                        name,
                        at: name_range.clone(),
                    });
                }
                entries.push(Entry {
                    public_key,
                    ssh_alias,
                    hostname,
                    inner_indent,
                    set_close: host_set
                        .r_curly_token()
                        .map(|t| usize::from(t.text_range().start())),
                    ..Entry::unread(name, true, (range, name_range), line)
                });
            }
        }
    }
    Ok(HostsDoc {
        open: usize::from(l.text_range().end()),
        close: usize::from(r.text_range().start()),
        entries,
        newline: Newline::of(text).as_str(),
    })
}

/// The name an attribute spells, when it is an identifier or a string without interpolation.
pub(super) fn attr_text(attr: &ast::Attr) -> Option<String> {
    match attr {
        // The identifier's one token, not `SyntaxText` (which walks the node): this runs for
        // every entry of a fleet's hosts.nix, twice per edit.
        ast::Attr::Ident(i) => Some(
            i.ident_token()
                .map_or_else(|| i.syntax().text().to_string(), |t| t.text().to_string()),
        ),
        ast::Attr::Str(s) => nix::plain_string(s),
        ast::Attr::Dynamic(_) => None,
    }
}

/// The indentation of `inner` beyond that of the line holding `outer_start`, when both begin
/// their lines.
pub(super) fn relative_indent(
    text: &str,
    outer_start: usize,
    inner: &SyntaxNode,
) -> Option<String> {
    let outer = leading_indent(text, outer_start)?;
    let inner = leading_indent(text, range_of(inner).start)?;
    inner.strip_prefix(outer).map(str::to_string)
}

/// The end of `pos`'s line content when everything from `pos` to the line break is trivia
/// (spaces and comments that stay on this line); that end excludes a `\r` before the `\n`.
pub(super) fn trivia_to_line_end(text: &str, pos: usize) -> Option<usize> {
    let end = line_end(text, pos);
    if end == text.len() {
        return None;
    }
    let rest = &text[pos..end];
    let trimmed = rest.trim_start_matches([' ', '\t']);
    let only_trivia = trimmed.trim_end_matches('\r').is_empty()
        || trimmed.starts_with('#')
        || (trimmed.starts_with("/*")
            && trimmed.trim_end_matches([' ', '\t', '\r']).ends_with("*/")
            && trimmed.matches("*/").count() == 1);
    only_trivia.then(|| {
        if end > pos && text.as_bytes()[end - 1] == b'\r' {
            end - 1
        } else {
            end
        }
    })
}
