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

/// A documented quantity, as written.
enum Quantity {
    Int(i64),
    Words(u64),
}

/// Reads a documented quantity: an integer, or words `words` reads (`"16 GB"`); any other
/// value is a documentation finding saying it is not `what` ("a number of cores").
fn doc_quantity(
    v: &Value,
    field: &str,
    ctx: Ctx<'_>,
    (what, help): (&str, &str),
    words: fn(&str) -> Option<u64>,
    issues: &mut Vec<Issue>,
) -> Option<Quantity> {
    let problem = match &v.kind {
        ValueKind::Int(i) => return Some(Quantity::Int(*i)),
        ValueKind::String(s) => match words(s) {
            Some(q) => return Some(Quantity::Words(q)),
            None => format!("is \"{s}\", which vmctl cannot read as {what}"),
        },
        ValueKind::Null | ValueKind::Dynamic(_) | ValueKind::Error => return None,
        _ => format!("is {}, not {what}", v.type_name()),
    };
    issues.push(doc_issue(v, field, ctx, problem, help.to_string()));
    None
}

/// Documented cores: a count, or words starting with one (`"4 vCPUs"`).
pub(super) fn doc_cores(v: &Value, ctx: Ctx<'_>, issues: &mut Vec<Issue>) -> Option<u32> {
    let help = "the docs show no core count; write e.g. `cores = 4;` (words can stay in `notes`)";
    let words = |s: &str| parse_count_words(s).map(u64::from);
    let n = match doc_quantity(v, "cores", ctx, ("a number of cores", help), words, issues)? {
        Quantity::Int(c) => c,
        Quantity::Words(c) => c as i64,
    };
    if !(1..=MAX_CORES).contains(&n) {
        let problem = format!("is {n}; a VM has from 1 to {MAX_CORES}");
        issues.push(doc_issue(v, "cores", ctx, problem, help.to_string()));
        return None;
    }
    u32::try_from(n).ok()
}

/// Documented memory in MiB: a number of MiB, or words like `"16 GB"`.
pub(super) fn doc_memory(v: &Value, ctx: Ctx<'_>, issues: &mut Vec<Issue>) -> Option<u64> {
    let help = "the docs show no memory; write MiB (`memory = 16384;`) or a size like `\"16G\"` (words can stay in `notes`)";
    let what = ("an amount of memory", help);
    let mib = match doc_quantity(v, "memory", ctx, what, parse_memory_words, issues)? {
        Quantity::Int(m @ 1..=64) => {
            let problem = format!("is {m} MiB, too little for any VM");
            let help = format!("memory is in MiB: {m} GiB is `memory = {};`", m * 1024);
            issues.push(doc_issue(v, "memory", ctx, problem, help));
            return None;
        }
        Quantity::Int(m) => u64::try_from(m).ok(),
        Quantity::Words(m) => Some(m),
    };
    match mib {
        Some(m) if (MIN_MEMORY_MIB..=MAX_MEMORY_MIB).contains(&m) => Some(m),
        _ => {
            let problem = format!("is outside {MIN_MEMORY_MIB} MiB to 16 TiB");
            issues.push(doc_issue(v, "memory", ctx, problem, help.to_string()));
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
