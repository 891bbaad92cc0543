//! Helpers for the `.sops.yaml` checks: finding the file in the fleet and spans in it.

use crate::model::fleet::Fleet;
use crate::syntax::{FileId, Span, TextRange, TextSize};
use crate::yaml::scan::NodeId;
use crate::yaml::sops::SopsYaml;

/// The fleet's `.sops.yaml` (any source whose file name ends in `.sops.yaml` or `.sops.yml`),
/// scanned. `None` when the fleet has none or it is outside the subset vmctl reads.
pub(super) fn sops_file(fleet: &Fleet) -> Option<(FileId, SopsYaml)> {
    (0..fleet.db.len() as u32).map(FileId).find_map(|id| {
        let name = fleet.db.path(id).file_name()?.to_str()?;
        if !(name.ends_with(".sops.yaml") || name.ends_with(".sops.yml")) {
            return None;
        }
        SopsYaml::parse(fleet.db.text(id)).ok().map(|s| (id, s))
    })
}

pub(super) fn span(file: FileId, start: usize, end: usize) -> Span {
    Span::new(
        file,
        TextRange::new(TextSize::from(start as u32), TextSize::from(end as u32)),
    )
}

/// The span of a node's value, without its `&anchor`.
pub(super) fn value_span(file: FileId, sops: &SopsYaml, id: NodeId) -> Span {
    let node = sops.doc.node(id);
    let start = match &node.anchor {
        Some(a) => {
            let rest = &sops.doc.text[a.span.end..node.span.end];
            a.span.end + (rest.len() - rest.trim_start().len())
        }
        None => node.span.start,
    };
    span(file, start, node.span.end)
}

/// Every host of hosts.nix with its derived age recipient (hosts without a valid ed25519 key
/// are left to the HS checks).
pub(super) fn host_recipients(fleet: &Fleet) -> Vec<(FileId, &crate::model::Host, String)> {
    let Some((file, hosts)) = fleet.hosts_file() else {
        return Vec::new();
    };
    hosts
        .hosts
        .iter()
        .filter_map(|h| {
            let key = crate::keys::PublicKey::parse(h.public_key.as_deref()?).ok()?;
            Some((file.file, h, key.age_recipient().ok()?))
        })
        .collect()
}
