//! `.sops.yaml` creation rules, read and matched exactly as sops does.
//!
//! Facts from getsops/sops `config/config.go`: the top-level `creation_rules` list is tried in
//! order and the first rule whose `path_regex` matches (unanchored, Go RE2 syntax) wins; a rule
//! without `path_regex` matches every file. The path matched is the file's path relative to the
//! config file's directory. A rule either lists keys directly (`age`, `pgp`, … as a
//! comma-separated string or a list: one key group) or has `key_groups` (each item one group;
//! several groups mean Shamir secret sharing). Inside a group `age` is a list whose items may
//! themselves be comma-separated; `merge` lists nested groups whose keys are folded in first.
//! Keys are de-duplicated per group. The top-level `keys:` list is not a sops field: it only
//! holds YAML anchors. Aliases and `<<` merge keys are resolved before reading.

use std::fmt;
use std::path::Path;

use serde_yaml::Value;

/// A `.sops.yaml` file as vmctl understands it.
#[derive(Debug, Clone, Default)]
pub struct SopsConfig {
    pub rules: Vec<CreationRule>,
}

/// One item of `creation_rules`.
#[derive(Clone)]
pub struct CreationRule {
    /// Position in `creation_rules` (0-based).
    pub index: usize,
    /// `path_regex` as written; `None` (or empty) matches every file.
    pub path_regex: Option<String>,
    /// The key groups the rule asks for (one for the flat form).
    pub key_groups: Vec<KeyGroup>,
    /// True when written with `key_groups:` rather than flat `age:`/`pgp:` fields.
    pub uses_key_groups: bool,
    pub shamir_threshold: Option<u32>,
    pub unencrypted_suffix: Option<String>,
    pub encrypted_suffix: Option<String>,
    pub unencrypted_regex: Option<String>,
    pub encrypted_regex: Option<String>,
    pub mac_only_encrypted: bool,
    regex: Option<regex::Regex>,
}

impl fmt::Debug for CreationRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreationRule")
            .field("index", &self.index)
            .field("path_regex", &self.path_regex)
            .field("key_groups", &self.key_groups)
            .field("shamir_threshold", &self.shamir_threshold)
            .finish_non_exhaustive()
    }
}

impl CreationRule {
    /// True when this rule applies to `relative_path` (unanchored regex search).
    pub fn matches(&self, relative_path: &str) -> bool {
        match &self.regex {
            None => true,
            Some(r) => r.is_match(relative_path),
        }
    }

    /// A short human label: `rule 2 (path_regex: secrets/.*)`.
    pub fn label(&self) -> String {
        match &self.path_regex {
            Some(r) => format!("rule {} (path_regex: {r})", self.index + 1),
            None => format!("rule {} (no path_regex)", self.index + 1),
        }
    }
}

/// The master keys of one key group. Every list keeps sops's identifier string for the key
/// (what `sops updatekeys` compares), in the order sops builds the group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyGroup {
    /// age recipients (`age1…`, or `ssh-ed25519 …`/`ssh-rsa …` for native ssh recipients).
    pub age: Vec<String>,
    /// PGP fingerprints, spaces removed.
    pub pgp: Vec<String>,
    /// AWS KMS ARNs.
    pub kms: Vec<String>,
    /// GCP KMS resource IDs.
    pub gcp_kms: Vec<String>,
    /// Azure Key Vault key URLs (`VAULT/keys/NAME/VERSION`).
    pub azure_keyvault: Vec<String>,
    /// HashiCorp Vault transit URIs.
    pub hc_vault: Vec<String>,
    /// Huawei Cloud KMS key IDs.
    pub hckms: Vec<String>,
    /// Plugin keys (binary name).
    pub plugins: Vec<String>,
}

/// What kind of master key a [`KeyId`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    Age,
    Pgp,
    Kms,
    GcpKms,
    AzureKeyvault,
    HcVault,
    Hckms,
    Plugin,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Age => "age",
            KeyKind::Pgp => "pgp",
            KeyKind::Kms => "kms",
            KeyKind::GcpKms => "gcp_kms",
            KeyKind::AzureKeyvault => "azure_keyvault",
            KeyKind::HcVault => "hc_vault",
            KeyKind::Hckms => "hckms",
            KeyKind::Plugin => "plugin",
        }
    }
}

/// One master key: its kind and sops's identifier for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId {
    pub kind: KeyKind,
    pub id: String,
}

impl fmt::Display for KeyId {
    /// age recipients print bare (they are self-describing); other keys as `kind:id`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            KeyKind::Age => f.write_str(&self.id),
            k => write!(f, "{}:{}", k.as_str(), self.id),
        }
    }
}

impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl KeyGroup {
    /// Every key of the group, in sops's order.
    pub fn key_ids(&self) -> Vec<KeyId> {
        let lists: [(KeyKind, &Vec<String>); 8] = [
            (KeyKind::Age, &self.age),
            (KeyKind::Pgp, &self.pgp),
            (KeyKind::Kms, &self.kms),
            (KeyKind::GcpKms, &self.gcp_kms),
            (KeyKind::Hckms, &self.hckms),
            (KeyKind::AzureKeyvault, &self.azure_keyvault),
            (KeyKind::HcVault, &self.hc_vault),
            (KeyKind::Plugin, &self.plugins),
        ];
        lists
            .iter()
            .flat_map(|(kind, ids)| {
                ids.iter().map(move |id| KeyId {
                    kind: *kind,
                    id: id.clone(),
                })
            })
            .collect()
    }

    /// True when the group holds age keys and nothing else.
    pub fn is_age_only(&self) -> bool {
        !self.age.is_empty() && self.key_ids().iter().all(|k| k.kind == KeyKind::Age)
    }

    pub fn is_empty(&self) -> bool {
        self.key_ids().is_empty()
    }

    fn push(&mut self, kind: KeyKind, id: String) {
        let list = match kind {
            KeyKind::Age => &mut self.age,
            KeyKind::Pgp => &mut self.pgp,
            KeyKind::Kms => &mut self.kms,
            KeyKind::GcpKms => &mut self.gcp_kms,
            KeyKind::AzureKeyvault => &mut self.azure_keyvault,
            KeyKind::HcVault => &mut self.hc_vault,
            KeyKind::Hckms => &mut self.hckms,
            KeyKind::Plugin => &mut self.plugins,
        };
        // sops de-duplicates the keys of a group (deduplicateKeygroup).
        if !list.contains(&id) {
            list.push(id);
        }
    }

    fn extend(&mut self, other: KeyGroup) {
        for k in other.key_ids() {
            self.push(k.kind, k.id);
        }
    }
}

/// Why a `.sops.yaml` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("not valid YAML: {message}")]
    Yaml {
        message: String,
        /// Byte offset of the problem, when the YAML parser gives one.
        offset: Option<usize>,
    },
    #[error("`creation_rules` must be a list")]
    RulesNotAList,
    #[error("creation rule {rule}: {message}")]
    Rule { rule: usize, message: String },
}

impl SopsConfig {
    /// Reads `.sops.yaml` text. A file without `creation_rules` has no rules (sops then
    /// behaves as if there were no config). Merge keys are resolved as go-yaml (sops's
    /// parser) resolves them: nested merges included, a map's own keys first.
    pub fn parse(text: &str) -> Result<SopsConfig, ConfigError> {
        let doc: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            crate::yaml::value::load_located(text)
                .map_err(|(message, offset)| ConfigError::Yaml { message, offset })?
        };
        let rules = match doc.get("creation_rules") {
            None | Some(Value::Null) => return Ok(SopsConfig::default()),
            Some(Value::Sequence(items)) => items,
            Some(_) => return Err(ConfigError::RulesNotAList),
        };
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                parse_rule(i, r).map_err(|message| ConfigError::Rule {
                    rule: i + 1,
                    message,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SopsConfig { rules })
    }

    /// The rule sops would use for a file at `relative_path` (relative to the config's
    /// directory, `/`-separated): the first rule that matches.
    pub fn rule_for(&self, relative_path: &str) -> Option<&CreationRule> {
        self.rules.iter().find(|r| r.matches(relative_path))
    }
}

/// The path sops matches `path_regex` against: the file's absolute path with the config
/// directory's absolute path (and the separator) trimmed off the front. Both are cleaned first
/// as Go's `filepath.Abs` cleans them (`..`, `.`, repeated slashes), so `secrets/../x.yaml`
/// matches as `x.yaml` does in sops. The trim is textual, as sops's `strings.TrimPrefix`: a
/// file outside the config's directory keeps its absolute path.
pub fn path_for_matching(config_dir: &Path, file: &Path) -> String {
    let dir = clean(&config_dir.to_string_lossy().replace('\\', "/"));
    let file = clean(&file.to_string_lossy().replace('\\', "/"));
    match file.strip_prefix(&format!("{dir}/")) {
        Some(rel) => rel.to_string(),
        None => file,
    }
}

/// Go's `path.Clean`: the shortest path equal to `p` by purely lexical processing. Repeated
/// slashes become one, `.` elements go, an element followed by `..` goes with it, `..` at the
/// start of a rooted path goes, and an empty result is `.`. Symlinks are not looked at (sops
/// does not either).
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => match out.last() {
                Some(&last) if last != ".." => {
                    out.pop();
                }
                // `/..` is `/`; a relative path keeps leading `..`s.
                _ if rooted => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// A Go RE2 pattern (what sops compiles `path_regex` with) in the syntax of Rust's `regex`,
/// which is the same language but for two spellings only Go accepts: `\Q…\E` quoting, and a
/// `{` that does not start a valid repetition (`a{,3}`, `x{y}`), which Go reads as a literal.
pub fn go_regex(re: &str) -> String {
    let b = re.as_bytes();
    let mut out = String::with_capacity(re.len());
    let mut i = 0;
    let mut class = false;
    while i < b.len() {
        let c = re[i..].chars().next().expect("in bounds");
        match c {
            '\\' if !class && re[i..].starts_with("\\Q") => {
                let body = &re[i + 2..];
                let end = body.find("\\E").unwrap_or(body.len());
                out.push_str(&regex::escape(&body[..end]));
                i += 2 + end + if end < body.len() { 2 } else { 0 };
                continue;
            }
            '\\' => {
                // An escape: copy it whole, so `\[`, `\{` and `\\` are never read as syntax.
                let next = re[i + 1..].chars().next();
                out.push('\\');
                if let Some(n) = next {
                    out.push(n);
                    i += 1 + n.len_utf8();
                } else {
                    i += 1;
                }
                continue;
            }
            '[' if !class => {
                class = true;
                out.push('[');
                i += 1;
                // `]` right after `[` or `[^` is a literal member.
                if re[i..].starts_with('^') {
                    out.push('^');
                    i += 1;
                }
                if re[i..].starts_with(']') {
                    out.push(']');
                    i += 1;
                }
                continue;
            }
            '[' if class && re[i..].starts_with("[:") => {
                // A POSIX class like `[:alpha:]` inside a bracket expression.
                let end = re[i + 2..].find(":]").map_or(1, |e| e + 4);
                out.push_str(&re[i..i + end]);
                i += end;
                continue;
            }
            ']' if class => class = false,
            '{' if !class => {
                let rest = &re[i + 1..];
                let close = rest.find('}');
                let valid = close.is_some_and(|e| {
                    let inner = &rest[..e];
                    let (min, max) = inner.split_once(',').unwrap_or((inner, "0"));
                    !min.is_empty()
                        && min.bytes().all(|d| d.is_ascii_digit())
                        && max.bytes().all(|d| d.is_ascii_digit())
                });
                if !valid {
                    out.push_str("\\{");
                    i += 1;
                    continue;
                }
            }
            _ => {}
        }
        out.push(c);
        i += c.len_utf8();
    }
    out
}

fn opt_string(rule: &Value, key: &str) -> Result<Option<String>, String> {
    match rule.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}

/// A field that sops accepts as a comma-separated string or a list of strings.
fn string_or_list(v: Option<&Value>, key: &str) -> Result<Vec<String>, String> {
    let items: Vec<String> = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => Err(format!("`{key}` list items must be strings")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(format!("`{key}` must be a string or a list of strings")),
    };
    Ok(split_commas(&items))
}

fn split_commas(items: &[String]) -> Vec<String> {
    items
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn pgp_fp(s: &str) -> String {
    s.replace(' ', "")
}

fn parse_rule(index: usize, rule: &Value) -> Result<CreationRule, String> {
    if !rule.is_mapping() {
        return Err("must be a mapping".into());
    }
    let path_regex = opt_string(rule, "path_regex")?;
    let regex = match &path_regex {
        None => None,
        Some(r) => Some(regex::Regex::new(&go_regex(r)).map_err(|e| {
            // The regex crate's message draws the pattern over several lines: keep its
            // last line, the reason.
            let e = e.to_string();
            let why = e
                .lines()
                .last()
                .unwrap_or_default()
                .trim_start_matches("error: ");
            format!("path_regex {r:?} does not compile ({why})")
        })?),
    };
    let shamir_threshold = match rule.get("shamir_threshold") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or("`shamir_threshold` must be a non-negative integer")?,
        ),
        Some(_) => return Err("`shamir_threshold` must be an integer".into()),
    }
    .filter(|&n| n != 0);
    let (key_groups, uses_key_groups) = match rule.get("key_groups") {
        Some(Value::Sequence(groups)) if !groups.is_empty() => (
            groups
                .iter()
                .enumerate()
                .map(|(gi, g)| group_from_item(g).map_err(|e| format!("key group {}: {e}", gi + 1)))
                .collect::<Result<Vec<_>, _>>()?,
            true,
        ),
        None | Some(Value::Null) | Some(Value::Sequence(_)) => (vec![flat_group(rule)?], false),
        Some(_) => return Err("`key_groups` must be a list".into()),
    };
    Ok(CreationRule {
        index,
        path_regex,
        key_groups,
        uses_key_groups,
        shamir_threshold,
        unencrypted_suffix: opt_string(rule, "unencrypted_suffix")?,
        encrypted_suffix: opt_string(rule, "encrypted_suffix")?,
        unencrypted_regex: opt_string(rule, "unencrypted_regex")?,
        encrypted_regex: opt_string(rule, "encrypted_regex")?,
        mac_only_encrypted: matches!(rule.get("mac_only_encrypted"), Some(Value::Bool(true))),
        regex,
    })
}

/// The single group of a rule written without `key_groups` (getKeyGroupsFromCreationRule).
fn flat_group(rule: &Value) -> Result<KeyGroup, String> {
    let mut g = KeyGroup::default();
    for r in string_or_list(rule.get("age"), "age")? {
        g.push(KeyKind::Age, r);
    }
    for fp in string_or_list(rule.get("pgp"), "pgp")? {
        g.push(KeyKind::Pgp, pgp_fp(&fp));
    }
    for arn in string_or_list(rule.get("kms"), "kms")? {
        // `arn+role` names a role to assume; sops identifies the key by its ARN.
        let arn = arn.split('+').next().unwrap_or_default().to_string();
        g.push(KeyKind::Kms, arn);
    }
    for id in string_or_list(rule.get("gcp_kms"), "gcp_kms")? {
        g.push(KeyKind::GcpKms, id);
    }
    for id in string_or_list(rule.get("hckms"), "hckms")? {
        g.push(KeyKind::Hckms, id);
    }
    for url in string_or_list(rule.get("azure_keyvault"), "azure_keyvault")? {
        g.push(KeyKind::AzureKeyvault, url);
    }
    for uri in string_or_list(rule.get("hc_vault_transit_uri"), "hc_vault_transit_uri")? {
        g.push(KeyKind::HcVault, uri);
    }
    for p in plugin_names(rule.get("plugins"))? {
        g.push(KeyKind::Plugin, p);
    }
    Ok(g)
}

fn plugin_names(v: Option<&Value>) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(items)) => Ok(items
            .iter()
            .map(|p| {
                p.get("binary_name")
                    .and_then(Value::as_str)
                    .unwrap_or("plugin")
                    .to_string()
            })
            .collect()),
        Some(_) => Err("`plugins` must be a list".into()),
    }
}

fn list_of_strings(v: Option<&Value>, key: &str) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => Err(format!("`{key}` items must be strings")),
            })
            .collect(),
        Some(_) => Err(format!("`{key}` must be a list")),
    }
}

fn list_of_maps<'a>(v: Option<&'a Value>, key: &str) -> Result<Vec<&'a Value>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(items)) => Ok(items.iter().collect()),
        Some(_) => Err(format!("`{key}` must be a list")),
    }
}

fn field(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// One item of `key_groups` (extractMasterKeys): `merge` first, then age, pgp, kms, gcp_kms,
/// hckms, azure_keyvault, hc_vault, plugins.
fn group_from_item(item: &Value) -> Result<KeyGroup, String> {
    if !item.is_mapping() {
        return Err("must be a mapping".into());
    }
    let mut g = KeyGroup::default();
    for m in list_of_maps(item.get("merge"), "merge")? {
        g.extend(group_from_item(m)?);
    }
    // Each `age` item may itself hold several comma-separated recipients.
    for r in split_commas(&list_of_strings(item.get("age"), "age")?) {
        g.push(KeyKind::Age, r);
    }
    for fp in list_of_strings(item.get("pgp"), "pgp")? {
        g.push(KeyKind::Pgp, pgp_fp(&fp));
    }
    for k in list_of_maps(item.get("kms"), "kms")? {
        g.push(KeyKind::Kms, field(k, "arn"));
    }
    for k in list_of_maps(item.get("gcp_kms"), "gcp_kms")? {
        g.push(KeyKind::GcpKms, field(k, "resource_id"));
    }
    for k in list_of_maps(item.get("hckms"), "hckms")? {
        g.push(KeyKind::Hckms, field(k, "key_id"));
    }
    for k in list_of_maps(item.get("azure_keyvault"), "azure_keyvault")? {
        let url = format!(
            "{}/keys/{}/{}",
            field(k, "vaultUrl"),
            field(k, "key"),
            field(k, "version")
        );
        g.push(KeyKind::AzureKeyvault, url);
    }
    for uri in list_of_strings(item.get("hc_vault"), "hc_vault")? {
        g.push(KeyKind::HcVault, uri);
    }
    for p in plugin_names(item.get("plugins"))? {
        g.push(KeyKind::Plugin, p);
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw";
    const B: &str = "age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs";
    const C: &str = "age17044m9wgakla6pzftf4srtl3h5mcsr85jysgt5fg23zpnta8sfdqhzn452";

    #[test]
    fn anchors_and_key_groups() {
        let text = format!(
            "keys:\n  - &admin {A}\n  - &oldhost {B}\n  - &newvm {C}\ncreation_rules:\n  - path_regex: secrets/[^/]+\\.(yaml|json|env|ini)$\n    key_groups:\n    - age:\n      - *admin\n      - *oldhost\n      - *newvm\n"
        );
        let c = SopsConfig::parse(&text).unwrap();
        assert_eq!(c.rules.len(), 1);
        let r = c.rule_for("secrets/host.yaml").unwrap();
        assert!(r.uses_key_groups);
        assert_eq!(r.key_groups[0].age, vec![A, B, C]);
        assert!(r.key_groups[0].is_age_only());
        assert!(c.rule_for("secrets/sub/host.yaml").is_none());
        assert!(c.rule_for("other/host.txt").is_none());
    }

    #[test]
    fn comma_separated_strings_first_match_wins_and_unanchored() {
        let text = format!(
            "creation_rules:\n  - path_regex: host\\.yaml\n    age: '{A}, {B},'\n  - age: {C}\n"
        );
        let c = SopsConfig::parse(&text).unwrap();
        // Unanchored: matches anywhere in the path.
        let r = c.rule_for("secrets/host.yaml.bak").unwrap();
        assert_eq!(r.index, 0);
        assert_eq!(r.key_groups.len(), 1);
        assert_eq!(r.key_groups[0].age, vec![A, B]);
        // A rule without path_regex matches everything.
        assert_eq!(c.rule_for("anything").unwrap().index, 1);
    }

    #[test]
    fn merge_keys_comma_items_dedup_and_other_key_types() {
        let text = format!(
            "base: &base\n  path_regex: ^x/\n  pgp: 'AB CD, EF'\ncreation_rules:\n  - <<: *base\n    age: [{A}, {A}]\n  - key_groups:\n      - age: ['{A},{B}']\n        merge:\n          - age: [{C}]\n      - pgp: [FP1]\n        kms: [{{arn: 'arn:aws:kms:1'}}]\n    shamir_threshold: 2\n"
        );
        let c = SopsConfig::parse(&text).unwrap();
        let r0 = &c.rules[0];
        assert_eq!(r0.path_regex.as_deref(), Some("^x/"));
        assert_eq!(r0.key_groups[0].age, vec![A]);
        assert_eq!(r0.key_groups[0].pgp, vec!["ABCD", "EF"]);
        assert!(!r0.key_groups[0].is_age_only());
        let r1 = &c.rules[1];
        assert_eq!(r1.key_groups.len(), 2);
        assert_eq!(r1.key_groups[0].age, vec![C, A, B]);
        assert_eq!(r1.key_groups[1].kms, vec!["arn:aws:kms:1"]);
        assert_eq!(r1.shamir_threshold, Some(2));
        assert_eq!(c.rule_for("x/a").unwrap().index, 0);
        assert_eq!(c.rule_for("y/a").unwrap().index, 1);
    }

    #[test]
    fn errors_and_empty_configs() {
        assert!(SopsConfig::parse("").unwrap().rules.is_empty());
        assert!(SopsConfig::parse("keys: []\n").unwrap().rules.is_empty());
        assert!(matches!(
            SopsConfig::parse("creation_rules:\n  - path_regex: '('\n"),
            Err(ConfigError::Rule { rule: 1, .. })
        ));
        assert!(SopsConfig::parse("creation_rules: {a: 1}\n").is_err());
        assert!(SopsConfig::parse("creation_rules: [\n").is_err());
    }

    #[test]
    fn matching_path_is_relative_to_the_config_dir() {
        let dir = Path::new("/repo");
        assert_eq!(
            path_for_matching(dir, Path::new("/repo/secrets/a.yaml")),
            "secrets/a.yaml"
        );
        assert_eq!(
            path_for_matching(dir, Path::new("/other/a.yaml")),
            "/other/a.yaml"
        );
    }

    #[test]
    fn go_only_regex_spellings_compile_and_match_as_in_go() {
        let m = |re: &str, path: &str| regex::Regex::new(&go_regex(re)).unwrap().is_match(path);
        // \Q…\E quotes: the dot is literal.
        assert!(m(r"^secrets/\Qa.b\E$", "secrets/a.b"));
        assert!(!m(r"^secrets/\Qa.b\E$", "secrets/axb"));
        assert!(m(r"\Q(x", "a(x"));
        // A `{` that is no repetition is a literal in Go.
        assert!(m(r"^a{,3}$", "a{,3}"));
        assert!(m(r"^x{y}$", "x{y}"));
        // Real repetitions, classes and escapes are untouched.
        assert_eq!(go_regex(r"a{2,3}b{4}c{5,}"), r"a{2,3}b{4}c{5,}");
        assert_eq!(go_regex(r"[{]\{[[:alpha:]]"), r"[{]\{[[:alpha:]]");
        assert_eq!(
            go_regex(r"secrets/[^/]+\.(yaml|json)$"),
            r"secrets/[^/]+\.(yaml|json)$"
        );
        assert_eq!(go_regex(r"[]a]{2}"), r"[]a]{2}");
    }

    #[test]
    fn paths_are_cleaned_as_go_cleans_them() {
        // The cases of Go's path.Clean tests (src/path/path_test.go).
        for (input, want) in [
            ("", "."),
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            ("a/b/c", "a/b/c"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("/abc/", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("//abc//", "/abc"),
            ("abc//", "abc"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/.", "abc"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
        ] {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn dot_dot_and_repeated_slashes_do_not_change_which_rule_matches() {
        let text = format!(
            "creation_rules:\n  - path_regex: ^secrets/[^/]+\\.yaml$\n    age: {A}\n  - age: {B}\n"
        );
        let c = SopsConfig::parse(&text).unwrap();
        let dir = Path::new("/repo");
        for file in [
            "/repo/secrets/a.yaml",
            "/repo/other/../secrets/a.yaml",
            "/repo/./secrets//a.yaml",
            "/repo//secrets/./x/../a.yaml",
        ] {
            let rel = path_for_matching(dir, Path::new(file));
            assert_eq!(rel, "secrets/a.yaml", "{file}");
            assert_eq!(c.rule_for(&rel).unwrap().index, 0, "{file}");
        }
        // Leaving the directory with `..` leaves it for sops too.
        assert_eq!(
            path_for_matching(dir, Path::new("/repo/secrets/../../etc/a.yaml")),
            "/etc/a.yaml"
        );
        // The config directory itself is cleaned.
        assert_eq!(
            path_for_matching(Path::new("/repo/sub/.."), Path::new("/repo/secrets/a.yaml")),
            "secrets/a.yaml"
        );
    }
}
