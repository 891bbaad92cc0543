//! Fixes: the ones computed from the whole fleet (the next free VMID), and the choice of which
//! fixes to apply together, shared by `vmlint --fix`, `--format json` and `vmctl lsp`.

use std::collections::BTreeMap;

use super::util::definitions;
use super::{Applicability, Diagnostic, Fix};
use crate::model::fleet::Fleet;
use crate::syntax::FileId;
use crate::text::TextEdit;

/// Which fixes a caller may apply without showing them first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixMode {
    /// `--fix`: the safe ones only.
    Safe,
    /// `--unsafe-fixes`: safe and unsafe ones (never display-only).
    Unsafe,
}

impl FixMode {
    pub fn allows(self, a: Applicability) -> bool {
        match a {
            Applicability::Safe => true,
            Applicability::Unsafe => self == FixMode::Unsafe,
            Applicability::DisplayOnly => false,
        }
    }
}

impl Applicability {
    /// The name JSON, SARIF and the editor show.
    pub fn as_str(self) -> &'static str {
        match self {
            Applicability::Safe => "safe",
            Applicability::Unsafe => "unsafe",
            Applicability::DisplayOnly => "display-only",
        }
    }
}

/// Attaches the fixes that need the whole fleet to see: a duplicate VMID gets the next VMID no
/// VM uses in the range that holds it. Unsafe: the VM may already exist on the cluster under
/// the old VMID, and only a person knows which of the two should move.
pub(super) fn attach(fleet: &Fleet, out: &mut [Diagnostic]) {
    let Some(d) = definitions(fleet) else { return };
    // VMs whose VMID is unknown could hold the "free" one: offer nothing then.
    if !d.defs.undetermined.is_empty() {
        return;
    }
    let text = fleet.db.text(d.file);
    for diag in out.iter_mut() {
        if diag.rule.code != "VM001" || diag.fix.is_some() || diag.span.file != d.file {
            continue;
        }
        let (start, end) = (
            usize::from(diag.span.range.start()),
            usize::from(diag.span.range.end()),
        );
        // Only a VMID written as a plain integer literal is replaced by another one.
        let Some(Ok(vmid)) = text
            .get(start..end)
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .map(str::parse::<u32>)
        else {
            continue;
        };
        let Some(range) = d
            .defs
            .vmid_ranges
            .iter()
            .filter(|r| (r.start..=r.end).contains(&vmid))
            .min_by_key(|r| r.end - r.start)
        else {
            continue;
        };
        let used: std::collections::BTreeSet<u32> =
            d.defs.all_vms().filter_map(|v| v.vmid).collect();
        let Some(free) = (range.start..=range.end).find(|id| !used.contains(id)) else {
            continue;
        };
        diag.fix = Some(Fix {
            message: format!(
                "use VMID {free}, the next free one in range `{}`",
                range.name
            ),
            applicability: Applicability::Unsafe,
            edits: vec![TextEdit::replace(start, end, free.to_string())],
        });
    }
}

/// The edits of every fix `mode` allows, per file: sorted, and without a fix that overlaps one
/// chosen before it (the next round, after a re-lint, picks it up if it still applies). Two
/// duplicate VMIDs would get the same "next free" VMID: only one fix of a rule per round may
/// insert the same text into a file.
pub fn select(diags: &[Diagnostic], mode: FixMode) -> BTreeMap<FileId, Vec<TextEdit>> {
    let mut out: BTreeMap<FileId, Vec<TextEdit>> = BTreeMap::new();
    let mut inserted: Vec<(FileId, &'static str, String)> = Vec::new();
    for d in diags {
        let Some(fix) = d.fix.as_ref().filter(|f| mode.allows(f.applicability)) else {
            continue;
        };
        let file = d.span.file;
        let key = |e: &TextEdit| (file, d.rule.code, e.insert.clone());
        if fix.edits.iter().any(|e| inserted.contains(&key(e))) {
            continue;
        }
        let chosen = out.entry(file).or_default();
        let overlaps = fix.edits.iter().any(|e| {
            chosen.iter().any(|c| {
                e.start < c.end && c.start < e.end || (e.start == c.start && e.end == c.end)
            })
        });
        if overlaps {
            continue;
        }
        chosen.extend(fix.edits.iter().cloned());
        inserted.extend(fix.edits.iter().map(key));
        chosen.sort_by_key(|e| (e.start, e.end));
    }
    out.retain(|_, v| !v.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check_fleet;
    use crate::model::fleet::NixRole;
    use crate::syntax::NoImports;

    fn fleet(src: &str) -> Fleet {
        let mut fleet = Fleet::default();
        fleet.add_nix("vms/definitions.nix", src, NixRole::Definitions, &NoImports);
        fleet
    }

    const RANGES: &str = "vmidRanges.lab = { start = 110; end = 113; };";

    /// Two VMs on 110 and one on 111: the later 110 gets 112, the first free in `lab`.
    #[test]
    fn a_duplicate_vmid_gets_the_first_free_one_of_its_range() {
        let src = format!(
            "{{ proxmox.host = \"h\"; {RANGES} managed.a = {{ vmid = 110; cores = 1; memory = 2048; disk = \"20G\"; }}; managed.b = {{ vmid = 111; cores = 1; memory = 2048; disk = \"20G\"; }}; managed.c = {{ vmid = 110; cores = 1; memory = 2048; disk = \"20G\"; }}; }}"
        );
        let diags = check_fleet(&fleet(&src));
        let fixes: Vec<_> = diags.iter().filter_map(|d| d.fix.as_ref()).collect();
        assert_eq!(fixes.len(), 1, "{diags:#?}");
        assert_eq!(fixes[0].applicability, Applicability::Unsafe);
        assert_eq!(fixes[0].edits[0].insert, "112");
        assert_eq!(&src[fixes[0].edits[0].start..fixes[0].edits[0].end], "110");
        assert!(fixes[0].edits[0].start > src.find("managed.c").unwrap());
    }

    /// No fix when the VMID is in no range, when the range is full, or when some VM's VMID
    /// cannot be known (it could be the "free" one).
    #[test]
    fn no_vmid_fix_when_vmctl_cannot_be_sure() {
        let vm = |n: &str, id: u32| {
            format!("managed.{n} = {{ vmid = {id}; cores = 1; memory = 2048; disk = \"20G\"; }};")
        };
        for src in [
            format!(
                "{{ proxmox.host = \"h\"; {} {} }}",
                vm("a", 500),
                vm("b", 500)
            ),
            format!(
                "{{ proxmox.host = \"h\"; {RANGES} {} {} {} {} {} }}",
                vm("a", 110),
                vm("b", 111),
                vm("c", 112),
                vm("d", 113),
                vm("e", 110)
            ),
            format!(
                "{{ proxmox.host = \"h\"; {RANGES} {} {} imported = builtins.fromJSON \"{{}}\"; }}",
                vm("a", 110),
                vm("b", 110)
            ),
        ] {
            let diags = check_fleet(&fleet(&src));
            assert!(
                diags.iter().any(|d| d.code() == "VM001"),
                "{src}: {diags:#?}"
            );
            assert!(
                diags.iter().all(|d| d.fix.is_none() || d.code() != "VM001"),
                "{src}"
            );
        }
    }

    /// `select` keeps the allowed fixes, drops one overlapping an earlier one and a second
    /// identical insertion of the same rule, and sorts.
    #[test]
    fn select_takes_allowed_non_overlapping_fixes() {
        let src = format!(
            "{{ proxmox.host = \"h\"; {RANGES} managed.a = {{ vmid = 110; cores = 1; memroy = 2048; memory = 2048; disk = \"20G\"; }}; managed.b = {{ vmid = 110; cores = 1; memory = 2048; disk = \"20G\"; }}; managed.c = {{ vmid = 110; cores = 1; memory = 2048; disk = \"20G\"; }}; }}"
        );
        let diags = check_fleet(&fleet(&src));
        assert!(
            select(&diags, FixMode::Safe).is_empty(),
            "every fix here is unsafe"
        );
        let chosen = select(&diags, FixMode::Unsafe);
        let edits = &chosen[&FileId(0)];
        let inserted: Vec<&str> = edits.iter().map(|e| e.insert.as_str()).collect();
        // The rename and one of the two duplicates' VMID (both would take 111).
        assert_eq!(inserted, ["memory", "111"], "{edits:?}");
        assert!(edits.windows(2).all(|w| w[0].end <= w[1].start));
    }
}
