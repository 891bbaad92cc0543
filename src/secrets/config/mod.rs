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

mod matching;
mod read;

use std::fmt;

use crate::yaml::value::Value;

pub use matching::{clean, go_regex, path_for_matching};

use read::parse_rule;

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

#[cfg(test)]
mod tests {
    use std::path::Path;

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
