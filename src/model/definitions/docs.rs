//! Documentation values of imported VMs and the template, read leniently: `specs`, cores,
//! memory and network; a value the docs cannot show is a documentation finding, never an error.

use crate::model::read::{doc_text, Ctx, Field, Issue};
use crate::model::units::{
    parse_count_words, parse_memory_words, MAX_CORES, MAX_MEMORY_MIB, MIN_MEMORY_MIB,
};
use crate::model::Network;
use crate::syntax::{AttrSet, Value, ValueKind};
/// `specs` of an imported VM or the template, when it is a set; any other value is recorded as
/// documentation vmctl cannot read.
pub(super) fn specs_of<'a>(
    set: &'a AttrSet,
    ctx: Ctx<'_>,
    issues: &mut Vec<Issue>,
) -> Option<&'a AttrSet> {
    let v = set.get("specs")?;
    match &v.kind {
        ValueKind::Attrs(a) => Some(a),
        ValueKind::Null | ValueKind::Dynamic(_) | ValueKind::Error => None,
        _ => {
            issues.push(doc_issue(
                v,
                "specs",
                ctx,
                format!("is {}, so the docs show no resources from it", v.type_name()),
                "write `specs = { cores = 4; memory = 8192; disk = \"64G\"; };`, or keep the text in `notes`".into(),
            ));
            None
        }
    }
}

/// A documented resource: the field itself, else the same field under `specs`.
pub(super) fn doc_field<'a>(
    set: &'a AttrSet,
    specs: Option<&'a AttrSet>,
    field: &str,
) -> Option<&'a Value> {
    set.get(field).or_else(|| specs.and_then(|s| s.get(field)))
}

/// `what` completes "`field` of CONTEXT …", e.g. `is "lots", not a number of cores`.
fn doc_issue(v: &Value, field: &str, ctx: Ctx<'_>, what: String, help: String) -> Issue {
    Issue::Documentation {
        span: v.span,
        field: Field::new(field, ctx.render()),
        message: format!("`{field}` of {} {what}", ctx.render()),
        help,
    }
}

/// Documented cores: a count, or words starting with one (`"4 vCPUs"`).
pub(super) fn doc_cores(v: &Value, ctx: Ctx<'_>, issues: &mut Vec<Issue>) -> Option<u32> {
    let help = || {
        "the docs show no core count; write e.g. `cores = 4;` (words can stay in `notes`)"
            .to_string()
    };
    let n = match &v.kind {
        ValueKind::Int(c) => *c,
        ValueKind::String(s) => match parse_count_words(s) {
            Some(c) => i64::from(c),
            None => {
                issues.push(doc_issue(
                    v,
                    "cores",
                    ctx,
                    format!("is \"{s}\", which vmctl cannot read as a number of cores"),
                    help(),
                ));
                return None;
            }
        },
        ValueKind::Null | ValueKind::Dynamic(_) | ValueKind::Error => return None,
        _ => {
            issues.push(doc_issue(
                v,
                "cores",
                ctx,
                format!("is {}, not a number of cores", v.type_name()),
                help(),
            ));
            return None;
        }
    };
    if !(1..=MAX_CORES).contains(&n) {
        issues.push(doc_issue(
            v,
            "cores",
            ctx,
            format!("is {n}; a VM has from 1 to {MAX_CORES}"),
            help(),
        ));
        return None;
    }
    u32::try_from(n).ok()
}

/// Documented memory in MiB: a number of MiB, or words like `"16 GB"`.
pub(super) fn doc_memory(v: &Value, ctx: Ctx<'_>, issues: &mut Vec<Issue>) -> Option<u64> {
    let help = || {
        "the docs show no memory; write MiB (`memory = 16384;`) or a size like `\"16G\"` (words can stay in `notes`)".to_string()
    };
    let mib = match &v.kind {
        ValueKind::Int(m) => {
            if (1..=64).contains(m) {
                issues.push(doc_issue(
                    v,
                    "memory",
                    ctx,
                    format!("is {m} MiB, too little for any VM"),
                    format!("memory is in MiB: {m} GiB is `memory = {};`", m * 1024),
                ));
                return None;
            }
            u64::try_from(*m).ok()
        }
        ValueKind::String(s) => match parse_memory_words(s) {
            Some(m) => Some(m),
            None => {
                issues.push(doc_issue(
                    v,
                    "memory",
                    ctx,
                    format!("is \"{s}\", which vmctl cannot read as an amount of memory"),
                    help(),
                ));
                return None;
            }
        },
        ValueKind::Null | ValueKind::Dynamic(_) | ValueKind::Error => return None,
        _ => {
            issues.push(doc_issue(
                v,
                "memory",
                ctx,
                format!("is {}, not an amount of memory", v.type_name()),
                help(),
            ));
            return None;
        }
    };
    match mib {
        Some(m) if (MIN_MEMORY_MIB..=MAX_MEMORY_MIB).contains(&m) => Some(m),
        _ => {
            issues.push(doc_issue(
                v,
                "memory",
                ctx,
                format!("is outside {MIN_MEMORY_MIB} MiB to 16 TiB"),
                help(),
            ));
            None
        }
    }
}

/// A documented network: every field as text, nothing required.
pub(super) fn doc_network(v: Option<&Value>) -> Network {
    let Some(set) = v.and_then(Value::as_attrs) else {
        return Network::default();
    };
    let text = |f: &str| set.get(f).and_then(doc_text);
    Network {
        bridge: text("bridge"),
        vlan: set.get("vlan").and_then(|v| match &v.kind {
            ValueKind::Int(i) => u32::try_from(*i).ok(),
            ValueKind::String(s) => parse_count_words(s),
            _ => None,
        }),
        ip: text("ip"),
        gateway: text("gateway"),
        mac: text("mac"),
    }
}
