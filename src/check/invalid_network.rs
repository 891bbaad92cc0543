//! VM010: a managed VM's network settings are malformed.

use std::net::IpAddr;

use super::util::definitions;
use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;

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
    let Some(d) = definitions(fleet) else { return };
    for vm in &d.defs.managed {
        let (net, at) = (&vm.network, &vm.source.network);
        let mut push = |range, field: &str, problem: String| {
            out.push(Diagnostic::new(
                &RULE,
                d.span(range),
                format!("`network.{field}` of `{}` is invalid: {problem}", vm.name),
            ));
        };
        if let (Some(ip), Some(range)) = (&net.ip, at.ip) {
            if let Some(p) = cidr_problem(ip) {
                push(range, "ip", p);
            }
        }
        if let (Some(gateway), Some(range)) = (&net.gateway, at.gateway) {
            match gateway.parse::<IpAddr>() {
                Err(_) => push(range, "gateway", format!("`{gateway}` is not an IP address")),
                Ok(gw) => {
                    let ip_family = net
                        .ip
                        .as_deref()
                        .and_then(|i| i.split_once('/'))
                        .and_then(|(a, _)| a.parse::<IpAddr>().ok())
                        .map(|a| a.is_ipv4());
                    if ip_family.is_some_and(|v4| v4 != gw.is_ipv4()) {
                        push(
                            range,
                            "gateway",
                            "it is not of the same IP family as `ip`".into(),
                        );
                    }
                }
            }
        }
        if let (Some(mac), Some(range)) = (&net.mac, at.mac) {
            if let Some(p) = mac_problem(mac) {
                push(range, "mac", p.into());
            }
        }
        if let Some(v) = at.vlan.as_ref().filter(|t| !(1..=4094).contains(&t.value)) {
            push(
                v.range,
                "vlan",
                format!("{} is not a VLAN tag from 1 to 4094", v.value),
            );
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
