//! VM010: a managed VM's network settings are malformed.

use std::net::IpAddr;

use super::util::vm_entries;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::model::VmKind;
use crate::syntax::Value;

pub const RULE: Rule = Rule {
    code: "VM010",
    name: "invalid-network",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "a managed VM's network settings are malformed",
    explanation: "\
## What it does
Checks `network` of managed VMs: `ip` is `\"dhcp\"` or an address with a prefix length
(`\"192.168.1.50/24\"`, `\"fd00::5/64\"`); `gateway` is an IP address of the same family; `mac`
is six hex pairs separated by `:` and a unicast address; `vlan` is from 1 to 4094.

## Why
These values go to cloud-init and `qm set --net0`; Proxmox accepts some malformed ones and the
VM then boots without network, so the install waits forever for an address.

## Example
```nix
network = { ip = \"192.168.1.50\"; gateway = \"192.168.1\"; vlan = 5000; };
```

## Fix
Write `ip` with its prefix length (`/24`), a full gateway address and a VLAN tag from 1 to 4094.
",
};

fn cidr_problem(s: &str) -> Option<String> {
    if s == "dhcp" {
        return None;
    }
    let Some((addr, prefix)) = s.split_once('/') else {
        return Some("it needs a prefix length, e.g. `192.168.1.50/24`, or `dhcp`".into());
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return Some(format!("`{addr}` is not an IP address"));
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match prefix.parse::<u8>() {
        Ok(p) if p <= max => None,
        _ => Some(format!(
            "`/{prefix}` is not a prefix length from 0 to {max}"
        )),
    }
}

fn mac_problem(s: &str) -> Option<&'static str> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6
        || parts
            .iter()
            .any(|p| p.len() != 2 || !p.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Some("expected six hex pairs like `BC:24:11:00:00:01`");
    }
    let first = u8::from_str_radix(parts[0], 16).unwrap_or(0);
    if first & 1 == 1 {
        return Some("it is a multicast address; the first byte must be even");
    }
    None
}

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    for e in vm_entries(fleet)
        .into_iter()
        .filter(|e| e.kind == VmKind::Managed)
    {
        let Some(net) = e.get("network").and_then(Value::as_attrs) else {
            continue;
        };
        let mut push = |v: &Value, field: &str, problem: String| {
            out.push(Diagnostic::new(
                &RULE,
                v.span,
                format!("`network.{field}` of `{}` is invalid: {problem}", e.name),
            ));
        };
        let ip = net.get("ip");
        if let Some(v) = ip {
            if let Some(p) = v.as_str().and_then(cidr_problem) {
                push(v, "ip", p);
            }
        }
        if let Some(v) = net.get("gateway") {
            if let Some(s) = v.as_str() {
                match s.parse::<IpAddr>() {
                    Err(_) => push(v, "gateway", format!("`{s}` is not an IP address")),
                    Ok(gw) => {
                        let ip_family = ip
                            .and_then(|i| i.as_str())
                            .and_then(|i| i.split_once('/'))
                            .and_then(|(a, _)| a.parse::<IpAddr>().ok())
                            .map(|a| a.is_ipv4());
                        if ip_family.is_some_and(|v4| v4 != gw.is_ipv4()) {
                            push(
                                v,
                                "gateway",
                                "it is not of the same IP family as `ip`".into(),
                            );
                        }
                    }
                }
            }
        }
        if let Some(v) = net.get("mac") {
            if let Some(p) = v.as_str().and_then(mac_problem) {
                push(v, "mac", p.into());
            }
        }
        if let Some(v) = net.get("vlan") {
            if let Some(t) = v.as_int().filter(|t| !(1..=4094).contains(t)) {
                push(v, "vlan", format!("{t} is not a VLAN tag from 1 to 4094"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(cidr_problem("dhcp"), None);
        assert_eq!(cidr_problem("10.0.0.5/24"), None);
        assert_eq!(cidr_problem("fd00::5/64"), None);
        assert!(cidr_problem("10.0.0.5").is_some());
        assert!(cidr_problem("10.0.0.5/33").is_some());
        assert!(cidr_problem("10.0.5/24").is_some());
        assert_eq!(mac_problem("BC:24:11:00:00:01"), None);
        assert!(mac_problem("01:24:11:00:00:01").is_some());
        assert!(mac_problem("BC-24-11-00-00-01").is_some());
    }
}
