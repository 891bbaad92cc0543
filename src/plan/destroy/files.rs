//! The fleet-file edits of a destroy: hosts.nix loses the host, .sops.yaml its recipient,
//! machines.md is regenerated, and (unless `--keep-definition`) definitions.nix loses the VM
//! and `hosts/CONFIG/` goes. Every edit is a lossless one from `edit/`, computed here on the
//! texts the caller read.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::{Inputs, PlanError, RemovedKey};
use crate::edit::hosts::{edit_hosts, HostIntent};
use crate::model::{Definitions, Vm};

/// The fleet files the plan reads, as they are now.
#[derive(Debug, Clone, Copy)]
pub struct FleetTexts<'a> {
    pub definitions: &'a str,
    pub hosts: &'a str,
    /// .sops.yaml, when the fleet has one.
    pub sops: Option<&'a str>,
    /// docs/machines.md, when it exists (a destroy never creates it).
    pub docs: Option<&'a str>,
    /// Every file below `hosts/CONFIG/` (fleet-relative) with its bytes.
    pub host_dir: &'a [(PathBuf, Vec<u8>)],
}

/// One file the destroy changes: fleet-relative path, its bytes before, its bytes after
/// (`None`: deleted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedFile {
    pub path: PathBuf,
    #[serde(with = "b64")]
    pub old: Vec<u8>,
    #[serde(with = "b64_opt")]
    pub new: Option<Vec<u8>>,
    pub summary: String,
}

/// Bytes as base64 in the journal (fleet files are text, but a scaffolded file need not be).
mod b64 {
    use super::*;
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(serde::de::Error::custom)
    }
}

mod b64_opt {
    use super::*;
    pub fn serialize<S: serde::Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::b64::serialize(v, s),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| {
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
    }
}

/// The fleet-file part of the plan.
pub(super) struct FleetPlan {
    pub files: Vec<PlannedFile>,
    pub removed_key: Option<RemovedKey>,
    pub removed_recipient: Option<String>,
}

fn push(out: &mut Vec<PlannedFile>, path: &Path, old: &str, new: &str, summary: String) {
    if old != new {
        out.push(PlannedFile {
            path: path.to_path_buf(),
            old: old.as_bytes().to_vec(),
            new: Some(new.as_bytes().to_vec()),
            summary,
        });
    }
}

pub(super) fn plan_files(
    inputs: &Inputs,
    vm: &Vm,
    notes: &mut Vec<String>,
) -> Result<FleetPlan, PlanError> {
    let defs = inputs.defs;
    let s = &defs.settings;
    let t = &inputs.files;
    let name = inputs.name;
    let mut out = Vec::new();

    // hosts.nix: the host goes; its key says which recipient .sops.yaml loses.
    let doc = crate::edit::hosts::locate(t.hosts)?;
    let mut removed_key = None;
    match doc.host(name) {
        Some(entry) => {
            if entry.public_key.as_ref().is_some_and(|k| k.value.is_none()) {
                // Without the key vmctl cannot tell which recipient the host had: refusing is
                // safer than leaving it able to read the secrets.
                return Err(PlanError::BadKey {
                    name: name.into(),
                    reason: "it is not a plain string".into(),
                });
            }
            if let Some(key) = entry.public_key.as_ref().and_then(|k| k.value.clone()) {
                let bad = |reason: String| PlanError::BadKey {
                    name: name.into(),
                    reason,
                };
                let parsed = crate::keys::PublicKey::parse(&key).map_err(|e| bad(e.to_string()))?;
                removed_key = Some(RemovedKey {
                    fingerprint: parsed.fingerprint(),
                    age_recipient: parsed.age_recipient().map_err(|e| bad(e.to_string()))?,
                    public_key: key,
                });
            }
            let edit = edit_hosts(
                t.hosts,
                &HostIntent::Remove {
                    name: name.to_string(),
                },
                None,
            )?;
            push(
                &mut out,
                &s.hosts_file,
                t.hosts,
                &edit.text,
                edit.change.summary(),
            );
        }
        None => notes.push(format!(
            "hosts.nix has no host `{name}` (never provisioned?): left as it is"
        )),
    }

    // .sops.yaml: the recipient goes from every rule.
    let mut removed_recipient = None;
    if let Some(sops) = t.sops {
        let recipient = removed_key.as_ref().map(|k| k.age_recipient.as_str());
        match crate::edit::sops::remove_recipient(sops, name, recipient) {
            Ok(edit) if !edit.is_noop() => {
                if let Some(k) = &removed_key {
                    if k.age_recipient != edit.recipient {
                        notes.push(format!(
                            ".sops.yaml's `&{name}` is {}, not the recipient of the key \
                             hosts.nix pinned ({}); the anchor's is removed",
                            edit.recipient, k.age_recipient
                        ));
                    }
                }
                push(
                    &mut out,
                    &s.sops_config,
                    sops,
                    &edit.new_text,
                    format!("removed the age recipient of `{name}`"),
                );
                removed_recipient = Some(edit.recipient);
            }
            Ok(_) => notes.push(format!(
                ".sops.yaml does not list the recipient of `{name}`: left as it is"
            )),
            // Neither an anchor, a `# name` comment nor a pinned key: nothing names it there.
            Err(crate::edit::sops::SopsEditError::Refused(_)) if recipient.is_none() => notes.push(
                format!(".sops.yaml names no recipient of `{name}`: left as it is"),
            ),
            Err(e) => return Err(e.into()),
        }
    }

    // definitions.nix and hosts/CONFIG/, unless kept.
    let mut after: Definitions = defs.clone();
    if inputs.keep_definition {
        notes.push(format!(
            "--keep-definition: `{name}` stays in vms/definitions.nix and `{}` stays",
            s.hosts_dir.join(vm.config_name()).display()
        ));
    } else {
        let edit = crate::edit::definitions::remove_managed(t.definitions, name)?;
        push(
            &mut out,
            Path::new("vms/definitions.nix"),
            t.definitions,
            &edit.text,
            edit.summary(name),
        );
        after.managed.retain(|v| v.name != name);
        let dir = s.hosts_dir.join(vm.config_name());
        let shared: Vec<&str> = after
            .all_vms()
            .filter(|v| v.config_name() == vm.config_name())
            .map(|v| v.name.as_str())
            .collect();
        if !shared.is_empty() {
            notes.push(format!(
                "`{}` stays: {} use{} it too",
                dir.display(),
                shared.join(", "),
                if shared.len() == 1 { "s" } else { "" }
            ));
        } else {
            for (path, bytes) in t.host_dir {
                out.push(PlannedFile {
                    path: path.clone(),
                    old: bytes.clone(),
                    new: None,
                    summary: format!("removed with `{}`", dir.display()),
                });
            }
        }
    }

    // machines.md, from the definitions as the destroy leaves them.
    if let Some(docs) = t.docs {
        let update = crate::edit::docs::update(Some(docs), &after)?;
        push(
            &mut out,
            &s.docs_file,
            docs,
            &update.text,
            "regenerated".into(),
        );
    }
    Ok(FleetPlan {
        files: out,
        removed_key,
        removed_recipient,
    })
}

/// The fleet-files step's title: the files, briefly.
pub(super) fn title(files: &[PlannedFile]) -> String {
    let changed = files.iter().filter(|f| f.new.is_some()).count();
    let deleted = files.len() - changed;
    let mut t = format!("edit {changed} fleet file(s)");
    if deleted > 0 {
        t.push_str(&format!(", delete {deleted}"));
    }
    t
}
