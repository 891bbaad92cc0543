//! Fields as definitions.nix writes them, each with its range: what the checks read.
//!
//! The typed fields of [`Vm`](super::Vm) and [`Definitions`](super::Definitions) hold what
//! vmctl acts on, converted (`vmid: Option<u32>`); a value that does not convert is gone from
//! them, though it is exactly what a check must point at (`vmid = -1`, `cores = 0`, a
//! `readonly` Nix could not evaluate). The views here keep such values as written, with their
//! ranges, so no check walks the evaluated `Value` tree again.

use crate::syntax::{AttrSet, Value, ValueKind};
use rowan::TextRange;

/// A value read from a fleet file and the range it is written at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub range: TextRange,
}

/// What a field's expression gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written<T> {
    /// A value of the field's type.
    Value(T),
    /// A value of another type (DF002 reports it).
    OtherType,
    /// Neither the static evaluator nor the Nix fallback could determine it.
    Undetermined,
}

impl<T> Written<T> {
    pub fn value(&self) -> Option<&T> {
        match self {
            Written::Value(v) => Some(v),
            _ => None,
        }
    }

    pub fn is_undetermined(&self) -> bool {
        matches!(self, Written::Undetermined)
    }
}

/// A VM's fields as written, for the checks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VmSource {
    /// The VM's name: the attribute name (`web` in `web = {`), or the template's `name` value.
    pub name: TextRange,
    pub vmid: Option<Spanned<Written<i64>>>,
    pub readonly: Option<Spanned<Written<bool>>>,
    /// `cores` and `memory` (MiB) as written flat in the VM's set (where a managed VM has
    /// them), when integers.
    pub cores: Option<Spanned<i64>>,
    pub memory: Option<Spanned<i64>>,
    /// Where `disk` is written flat, when a string: a managed VM's `disk`, parsed once.
    pub disk: Option<TextRange>,
    pub nixos_config: Option<Spanned<String>>,
    pub network: NetworkSource,
    /// The strings of `sopsRules`, when it is a list.
    pub sops_rules: Vec<Spanned<String>>,
}

/// `network` of a VM as written: where its strings are (a managed VM's `network` holds their
/// values), and the VLAN tag, when an integer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NetworkSource {
    pub ip: Option<TextRange>,
    pub gateway: Option<TextRange>,
    pub mac: Option<TextRange>,
    pub vlan: Option<Spanned<i64>>,
}

/// definitions.nix as written beyond its VMs, for the checks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DefinitionsSource {
    /// `proxmox.port`, when an integer.
    pub port: Option<Spanned<i64>>,
    /// The integer `start` and `end` of every `vmidRanges` entry, even those that do not fit a
    /// VMID (and so are not in `vmid_ranges`).
    pub range_bounds: Vec<RangeBound>,
    /// The VM tables and entries that could not be determined, where they are written.
    pub undetermined: Vec<Spanned<Undetermined>>,
}

/// One bound of a `vmidRanges` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeBound {
    /// The entry's name (`lab` in `vmidRanges.lab`).
    pub name: String,
    /// `start` or `end`.
    pub field: &'static str,
    pub value: Spanned<i64>,
}

/// A VM table (`imported = lib.x;`) or one entry of it (`managed.web = mkVm …;`) whose value
/// could not be determined, so its VMIDs are unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undetermined {
    Table(&'static str),
    Entry(&'static str, String),
}

impl Undetermined {
    /// For messages: `` `managed` `` or `` `managed.web` ``.
    pub fn describe(&self) -> String {
        match self {
            Undetermined::Table(t) => format!("`{t}`"),
            Undetermined::Entry(t, name) => format!("`{t}.{name}`"),
        }
    }
}

fn spanned<T>(v: &Value, value: T) -> Spanned<T> {
    Spanned {
        value,
        range: v.span.range,
    }
}

/// `field` of `set` when it is an integer.
pub(super) fn int(set: &AttrSet, field: &str) -> Option<Spanned<i64>> {
    let v = set.get(field)?;
    v.as_int().map(|i| spanned(v, i))
}

/// `field` of `set` when it is a string.
pub(super) fn string(set: &AttrSet, field: &str) -> Option<Spanned<String>> {
    let v = set.get(field)?;
    v.as_str().map(|s| spanned(v, s.to_string()))
}

/// Where `field` of `set` is written, when it is a string.
fn string_at(set: &AttrSet, field: &str) -> Option<TextRange> {
    let v = set.get(field)?;
    v.as_str().map(|_| v.span.range)
}

/// `field` of `set` as written: of the type `of` reads, of another, or undetermined.
pub(super) fn written<T>(
    set: &AttrSet,
    field: &str,
    of: impl Fn(&Value) -> Option<T>,
) -> Option<Spanned<Written<T>>> {
    let v = set.get(field)?;
    let w = match of(v) {
        Some(t) => Written::Value(t),
        None if v.is_unknown() => Written::Undetermined,
        None => Written::OtherType,
    };
    Some(spanned(v, w))
}

/// The fields of one VM's set as written; `name` is where its name is.
pub(super) fn vm_source(set: &AttrSet, name: TextRange) -> VmSource {
    let network = match set.get("network").map(|v| &v.kind) {
        Some(ValueKind::Attrs(net)) => NetworkSource {
            ip: string_at(net, "ip"),
            gateway: string_at(net, "gateway"),
            mac: string_at(net, "mac"),
            vlan: int(net, "vlan"),
        },
        _ => NetworkSource::default(),
    };
    VmSource {
        name,
        vmid: written(set, "vmid", Value::as_int),
        readonly: written(set, "readonly", Value::as_bool),
        cores: int(set, "cores"),
        memory: int(set, "memory"),
        disk: string_at(set, "disk"),
        nixos_config: string(set, "nixosConfig"),
        network,
        sops_rules: set
            .get("sopsRules")
            .and_then(Value::as_list)
            .into_iter()
            .flatten()
            .filter_map(|item| item.as_str().map(|s| spanned(item, s.to_string())))
            .collect(),
    }
}
