//! The one model of a `.sops.yaml`: what sops reads ([`SopsConfig`]: rules, key groups,
//! recipients) and, when the file is inside the subset vmctl edits, the lossless view of the
//! same rules with spans ([`SopsYaml`]: each rule's `path_regex` and first key group's age
//! list, found through aliases and merge keys). [`SopsModel::parse`] builds both and keeps the
//! view only when it agrees with sops's reading rule by rule, so the checks, the editor and
//! re-keying never see two different files.

use std::ops::Range;

use crate::secrets::config::{ConfigError, SopsConfig};
use crate::yaml::scan::{Doc, NodeId, NodeKind, ScanError};

/// A `.sops.yaml` read once for everyone: the checks, the editor and re-keying.
#[derive(Debug, Clone)]
pub struct SopsModel {
    /// The rules as sops reads them (every YAML feature, every key type).
    pub config: SopsConfig,
    /// The same rules with spans, or why vmctl cannot edit the file.
    pub view: Result<SopsYaml, ViewError>,
}

impl SopsModel {
    /// Reads `text`. Fails only when sops itself could not use the file.
    pub fn parse(text: &str) -> Result<SopsModel, ConfigError> {
        let config = SopsConfig::parse(text)?;
        let view = SopsYaml::parse(text).and_then(|v| agree(&v, &config).map(|()| v));
        Ok(SopsModel { config, view })
    }
}

/// Checks that the lossless view reads every rule as sops does: same rules, same path_regex,
/// same first-group age recipients. A difference means the scanner misreads the file, and
/// the file is then treated as outside what vmctl edits.
fn agree(view: &SopsYaml, config: &SopsConfig) -> Result<(), ViewError> {
    let differ = |what: String| Err(ViewError::Disagrees(what));
    if view.rules.len() != config.rules.len() {
        return differ(format!(
            "it counts {} creation rules where sops counts {}",
            view.rules.len(),
            config.rules.len()
        ));
    }
    for (v, c) in view.rules.iter().zip(&config.rules) {
        let vre = v.path_regex.as_deref().filter(|r| !r.is_empty());
        if vre != c.path_regex.as_deref() {
            return differ(format!("rule #{} has another path_regex", v.index + 1));
        }
        let mut theirs: Vec<&str> = c
            .key_groups
            .first()
            .map(|g| g.age.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let mut ours: Vec<&str> = match &v.age {
            Ok(list) => list.recipients().collect(),
            Err(_) => Vec::new(),
        };
        theirs.sort_unstable();
        theirs.dedup();
        ours.sort_unstable();
        ours.dedup();
        if ours != theirs {
            return differ(format!(
                "rule #{} has other age recipients in its first key group",
                v.index + 1
            ));
        }
    }
    Ok(())
}

/// Why a file cannot be read as a `.sops.yaml` at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    #[error("the file is not YAML vmctl can edit: {0}")]
    Scan(#[from] ScanError),
    #[error("the file has no top-level `creation_rules:` list")]
    NoRules,
    #[error("`creation_rules` must be a block list (`- path_regex: …` items)")]
    RulesNotList,
    #[error("vmctl's reading of the file differs from sops's ({0}); edit it by hand")]
    Disagrees(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgeListKind {
    /// `- age1…` lines.
    Block,
    /// `[*a, *b]`.
    Flow,
    /// One comma-separated string.
    Comma,
}

/// One recipient of an age list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgeItem {
    /// The item node (none for the elements of a comma-separated string).
    pub node: Option<NodeId>,
    /// The recipient, when the item is (or aliases) a scalar.
    pub recipient: Option<String>,
    /// `*name` when the item is an alias.
    pub alias: Option<String>,
    /// `&name` when the item defines an anchor.
    pub anchor: Option<String>,
    /// The `# comment` after the item.
    pub comment: Option<String>,
}

/// Why vmctl does not edit a rule's age list (and what to do by hand instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotEditable(pub String);

/// The `age:` list of a rule's first key group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgeList {
    /// The node holding the list (a sequence, or a scalar for comma strings).
    pub container: NodeId,
    pub kind: AgeListKind,
    /// The anchor through which the list was reached (a merge key or an alias), when the list
    /// is shared by construction.
    pub via: Option<String>,
    pub items: Vec<AgeItem>,
}

impl AgeList {
    pub fn recipients(&self) -> impl Iterator<Item = &str> {
        self.items.iter().filter_map(|i| i.recipient.as_deref())
    }

    pub fn contains(&self, recipient: &str) -> bool {
        self.recipients().any(|r| r == recipient)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub index: usize,
    pub node: NodeId,
    /// Offset of the rule's `-`.
    pub dash: usize,
    pub path_regex: Option<String>,
    pub path_regex_span: Option<Range<usize>>,
    /// The first key group's age list, or why there is none vmctl can edit.
    pub age: Result<AgeList, NotEditable>,
}

impl Rule {
    /// `path_regex` for messages.
    pub fn label(&self) -> String {
        match &self.path_regex {
            Some(r) => format!("`{r}`"),
            None => format!("rule #{} (no path_regex)", self.index + 1),
        }
    }
}

/// A `.sops.yaml` as vmctl edits it.
#[derive(Debug, Clone)]
pub struct SopsYaml {
    pub doc: Doc,
    pub root: NodeId,
    /// The top-level `keys:` list (it only holds anchors; sops ignores it).
    pub keys: Option<NodeId>,
    pub rules_seq: NodeId,
    pub rules: Vec<Rule>,
}

impl SopsYaml {
    pub fn parse(text: &str) -> Result<SopsYaml, ViewError> {
        let doc = Doc::parse(text)?;
        let root = doc.root.ok_or(ViewError::NoRules)?;
        if doc.map(root).is_none() {
            return Err(ViewError::NoRules);
        }
        let rules_entry = doc.get(root, "creation_rules").ok_or(ViewError::NoRules)?;
        let rules_seq = rules_entry.value;
        let seq = doc.seq(rules_seq).ok_or(ViewError::RulesNotList)?;
        if seq.flow {
            return Err(ViewError::RulesNotList);
        }
        let keys = doc
            .get(root, "keys")
            .map(|e| e.value)
            .filter(|&k| doc.seq(k).is_some());
        let rules = seq
            .items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let (path_regex, path_regex_span) = doc
                    .get(item.node, "path_regex")
                    .and_then(|e| doc.resolve(e.value))
                    .and_then(|v| {
                        doc.scalar(v)
                            .map(|s| (Some(s.value.clone()), Some(doc.node(v).span.clone())))
                    })
                    .unwrap_or((None, None));
                Rule {
                    index,
                    node: item.node,
                    dash: item.dash,
                    path_regex,
                    path_regex_span,
                    age: age_list(&doc, item.node).map_err(NotEditable),
                }
            })
            .collect();
        Ok(SopsYaml {
            doc,
            root,
            keys,
            rules_seq,
            rules,
        })
    }

    /// Anchors on scalars (recipient definitions): name, value, node, in document order.
    pub fn scalar_anchors(&self) -> Vec<(String, String, NodeId)> {
        self.doc
            .anchors
            .iter()
            .filter_map(|(name, id)| {
                self.doc
                    .scalar(*id)
                    .map(|s| (name.clone(), s.value.trim().to_string(), *id))
            })
            .collect()
    }

    /// Whether `id` lies inside the top-level `keys:` list.
    pub fn in_keys(&self, id: NodeId) -> bool {
        self.keys.is_some_and(|k| {
            let ks = &self.doc.node(k).span;
            let s = &self.doc.node(id).span;
            ks.start <= s.start && s.end <= ks.end
        })
    }
}

/// Finds the age list of a rule's first key group (or of the rule itself without key groups).
fn age_list(doc: &Doc, rule: NodeId) -> Result<AgeList, String> {
    if doc.map(rule).is_none() {
        return Err("the rule is not a mapping".into());
    }
    if let Some(kg) = doc.get(rule, "key_groups") {
        let via = alias_name(doc, kg.value);
        let seq_id = doc
            .resolve(kg.value)
            .ok_or("`key_groups` is an unknown alias")?;
        let seq = doc.seq(seq_id).ok_or("`key_groups` is not a list")?;
        let first = seq.items.first().ok_or("`key_groups` is empty")?;
        let via = via.or_else(|| alias_name(doc, first.node));
        let group = doc
            .resolve(first.node)
            .ok_or("the first key group is an unknown alias")?;
        if doc.map(group).is_none() {
            return Err("the first key group is not a mapping".into());
        }
        return find_age(doc, group, via, 0);
    }
    match doc.get(rule, "age") {
        Some(e) => container(doc, e.value, None),
        None => Err(
            "the rule has no age recipients (only other key types); add an `age:` list by hand"
                .into(),
        ),
    }
}

fn alias_name(doc: &Doc, id: NodeId) -> Option<String> {
    match &doc.node(id).kind {
        NodeKind::Alias(n) => Some(n.clone()),
        _ => None,
    }
}

fn find_age(doc: &Doc, map: NodeId, via: Option<String>, depth: usize) -> Result<AgeList, String> {
    if depth > 16 {
        return Err("merge keys nest too deeply".into());
    }
    if let Some(e) = doc.get(map, "age") {
        return container(doc, e.value, via);
    }
    if let Some(m) = doc.get(map, "<<") {
        // A map's own keys win over merged ones, and earlier merge sources over later ones.
        let sources: Vec<NodeId> = match &doc.node(m.value).kind {
            NodeKind::Alias(_) => vec![m.value],
            NodeKind::Seq(s) => s.items.iter().map(|i| i.node).collect(),
            _ => return Err("the merge key (`<<`) is not an alias or a list of aliases".into()),
        };
        for src in sources {
            let name = alias_name(doc, src).or_else(|| via.clone());
            let Some(target) = doc.resolve(src) else {
                return Err("a merge key points at an unknown anchor".into());
            };
            if doc.map(target).is_some() && has_age(doc, target, 0) {
                return find_age(doc, target, name, depth + 1);
            }
        }
    }
    Err("the first key group has no age list; add `age:` to it by hand".into())
}

fn has_age(doc: &Doc, map: NodeId, depth: usize) -> bool {
    if depth > 16 {
        return false;
    }
    if doc.get(map, "age").is_some() {
        return true;
    }
    let Some(m) = doc.get(map, "<<") else {
        return false;
    };
    let sources: Vec<NodeId> = match &doc.node(m.value).kind {
        NodeKind::Alias(_) => vec![m.value],
        NodeKind::Seq(s) => s.items.iter().map(|i| i.node).collect(),
        _ => return false,
    };
    sources
        .into_iter()
        .filter_map(|s| doc.resolve(s))
        .any(|t| doc.map(t).is_some() && has_age(doc, t, depth + 1))
}

fn container(doc: &Doc, value: NodeId, via: Option<String>) -> Result<AgeList, String> {
    let via = alias_name(doc, value).or(via);
    let id = doc.resolve(value).ok_or("`age` is an unknown alias")?;
    let node = doc.node(id);
    match &node.kind {
        NodeKind::Seq(s) => {
            let items = s
                .items
                .iter()
                .map(|it| {
                    let n = doc.node(it.node);
                    let target = doc.resolve(it.node);
                    AgeItem {
                        node: Some(it.node),
                        recipient: target
                            .and_then(|t| doc.scalar(t))
                            .map(|s| s.value.trim().to_string()),
                        alias: alias_name(doc, it.node),
                        anchor: n.anchor.as_ref().map(|a| a.name.clone()),
                        comment: n.comment.clone(),
                    }
                })
                .collect();
            Ok(AgeList {
                container: id,
                kind: if s.flow {
                    AgeListKind::Flow
                } else {
                    AgeListKind::Block
                },
                via,
                items,
            })
        }
        NodeKind::Scalar(s) => Ok(AgeList {
            container: id,
            kind: AgeListKind::Comma,
            via,
            items: s
                .value
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(|r| AgeItem {
                    node: None,
                    recipient: Some(r.to_string()),
                    alias: None,
                    anchor: None,
                    comment: None,
                })
                .collect(),
        }),
        NodeKind::Null => Err("`age:` is empty; add the first recipient by hand".into()),
        _ => Err("`age` is neither a list nor a comma-separated string".into()),
    }
}
