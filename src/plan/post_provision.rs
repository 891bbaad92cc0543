//! The pure decisions of `vmctl post-provision NAME IP VMID`: which VM it is (a managed VM
//! whose definition and the cluster both say VMID), the address and fingerprint arguments read
//! as strictly as ssh reads them, the host key out of `ssh-keyscan`'s output, whether the key
//! may be trusted, and the commit message.
//!
//! Nothing here connects or prints; `exec::post_provision` fetches the key and integrates it,
//! `cli::post_provision` asks the user.

use std::net::IpAddr;

use base64::Engine;

use crate::keys::{parse_key_line, KeyLine, PublicKey};
use crate::model::{Definitions, Vm, VmKind};
use crate::plan::provision::ceremony;
use crate::proxmox::{VmId, VmResource};

/// Why post-provisioning refuses. Nothing was changed when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostProvisionError {
    #[error("`{name}` is not a managed VM in vms/definitions.nix; {hint}")]
    NotManaged { name: String, hint: String },
    #[error("managed VM `{name}` has no `vmid` in vms/definitions.nix; add `vmid = {given};` to its definition first")]
    NoVmid { name: String, given: VmId },
    #[error("`{name}` has vmid {declared} in vms/definitions.nix, not {given}; pass the VMID its definition declares, or fix the definition first")]
    VmidDiffers {
        name: String,
        declared: VmId,
        given: VmId,
    },
    #[error("VM {vmid} is not on the cluster; check the VMID (`vmctl ops list`): post-provision adopts a VM that already runs")]
    NotOnCluster { vmid: VmId },
    #[error("VM {vmid} on the cluster is `{found}` (node {node}), not `{name}`: it is another VM, so vmctl will not give it `{name}`'s identity; check the VMID (`vmctl ops list`), or rename the VM on Proxmox if it really is `{name}`")]
    OtherName {
        name: String,
        vmid: VmId,
        found: String,
        node: String,
    },
    #[error("VM {vmid} on the cluster is a template, not an installed VM; pass the VMID of the VM itself")]
    Template { vmid: VmId },
    #[error("the host key of {addr} has fingerprint {actual}, not {given}: nothing was changed; something else may answer at that address, or the VM's key is not the one you checked: compare again with the VM's console (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` there)")]
    FingerprintMismatch {
        addr: String,
        given: String,
        actual: String,
    },
    #[error("the host key of {addr} ({actual}) was not accepted: nothing was changed; run again and answer `yes` once it matches the VM's console, or pass --accept-fingerprint")]
    NotAccepted { addr: String, actual: String },
}

/// The VM a post-provision adopts: its definition and the node the cluster shows it on.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub vm: &'a Vm,
    pub node: Option<&'a str>,
}

/// The definition of `name`: a managed VM whose `vmid` is `vmid`. Checked before any
/// connection, so a typo costs nothing.
pub fn definition<'d>(
    defs: &'d Definitions,
    name: &str,
    vmid: VmId,
) -> Result<&'d Vm, PostProvisionError> {
    let Some(vm) = defs.managed.iter().find(|v| v.name == name) else {
        let hint = match defs.vm_by_name(name) {
            Some(v) if v.kind == VmKind::Imported => {
                "it is an imported VM, which vmctl documents but never integrates; move it under \
                 `managed` first if vmctl should own it"
                    .to_string()
            }
            Some(_) => "it is the template".to_string(),
            None => format!("add it under `managed` (with `vmid = {vmid};`) first"),
        };
        return Err(PostProvisionError::NotManaged {
            name: name.into(),
            hint,
        });
    };
    match vm.vmid {
        None => Err(PostProvisionError::NoVmid {
            name: name.into(),
            given: vmid,
        }),
        Some(declared) if declared != vmid => Err(PostProvisionError::VmidDiffers {
            name: name.into(),
            declared,
            given: vmid,
        }),
        Some(_) => Ok(vm),
    }
}

/// The VM on the cluster must be VMID under NAME, and not a template: fail closed on anything
/// else, since the host key fetched next becomes NAME's identity.
pub fn target<'a>(
    vm: &'a Vm,
    vmid: VmId,
    cluster: &'a [VmResource],
) -> Result<Target<'a>, PostProvisionError> {
    let found = cluster
        .iter()
        .find(|r| r.vmid == vmid)
        .ok_or(PostProvisionError::NotOnCluster { vmid })?;
    if found.name.as_deref() != Some(vm.name.as_str()) {
        return Err(PostProvisionError::OtherName {
            name: vm.name.clone(),
            vmid,
            found: found.name.clone().unwrap_or_else(|| "(no name)".into()),
            node: found.node.clone(),
        });
    }
    if found.template {
        return Err(PostProvisionError::Template { vmid });
    }
    Ok(Target {
        vm,
        node: Some(found.node.as_str()),
    })
}

/// An address argument as ssh would connect to it, refused unless it is unambiguous: an IPv4
/// address in dotted-quad form (no `127.1`, no leading zeros, which ssh's resolver would read
/// as octal), or an IPv6 address (brackets allowed, a `%zone` only on a link-local address).
/// No host names: the key fetched must be the one of this address, not of whatever a resolver
/// says. Returns the address as ssh-keyscan is given it.
pub fn ip(s: &str) -> Result<String, String> {
    if s.starts_with('-') {
        return Err(format!(
            "`{}` looks like an option, not an address",
            s.escape_debug()
        ));
    }
    let inner = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    let (addr, zone) = match inner.split_once('%') {
        Some((a, z)) => (a, Some(z)),
        None => (inner, None),
    };
    let parsed: IpAddr = addr.parse().map_err(|_| {
        format!(
            "`{}` is not an IP address: write the VM's IPv4 address like `192.168.1.50` or an \
             IPv6 address (no host names, no port: use --port)",
            s.escape_debug()
        )
    })?;
    if parsed.is_unspecified() || parsed.is_multicast() || parsed == IpAddr::from([255; 4]) {
        return Err(format!("`{s}` is not the address of one machine"));
    }
    match (zone, parsed) {
        (None, _) => Ok(parsed.to_string()),
        (Some(z), IpAddr::V6(v6))
            if (v6.segments()[0] & 0xffc0) == 0xfe80
                && !z.is_empty()
                && z.len() <= 15
                && z.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) =>
        {
            Ok(format!("{parsed}%{z}"))
        }
        _ => Err(format!(
            "`{}`: a `%zone` goes only on a link-local IPv6 address (fe80::…%eth0)",
            s.escape_debug()
        )),
    }
}

/// A `--accept-fingerprint` value in the one format ssh prints (`ssh-keygen -lf`,
/// `ssh-keyscan | ssh-keygen -lf -`): `SHA256:` and the unpadded base64 of a 32-byte digest.
/// One trailing `=` of padding is tolerated; the result is the canonical form.
pub fn fingerprint(s: &str) -> Result<String, String> {
    let Some(b64) = s
        .strip_prefix("SHA256:")
        .or_else(|| s.strip_prefix("sha256:"))
    else {
        return Err(format!(
            "`{}` is not a SHA256 fingerprint: pass it as ssh prints it, `SHA256:` and 43 \
             characters (`ssh-keygen -lf KEY.pub`); MD5 fingerprints are not accepted",
            s.escape_debug()
        ));
    };
    let b64 = b64.strip_suffix('=').unwrap_or(b64);
    match base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64) {
        Ok(digest) if digest.len() == 32 => Ok(format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
        )),
        _ => Err(format!(
            "`{}` is not a SHA256 fingerprint: after `SHA256:` come 43 base64 characters",
            s.escape_debug()
        )),
    }
}

/// Why `ssh-keyscan`'s output does not name one ed25519 host key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("{addr} offered no ed25519 host key{}; check the address and --port, that the VM runs sshd, and that it has an ed25519 host key (`/etc/ssh/ssh_host_ed25519_key`)", if tail.is_empty() { String::new() } else { format!(" (ssh-keyscan: {tail})") })]
    NoKey { addr: String, tail: String },
    #[error("{addr} answered with {count} different ed25519 host keys; something else may be answering at that address: check it before integrating anything")]
    Several { addr: String, count: usize },
    #[error("ssh-keyscan printed a line vmctl cannot read as a host key ({reason}): `{line}`")]
    Unreadable { line: String, reason: String },
}

/// The one ed25519 host key in `ssh-keyscan -t ed25519` output (`HOST ssh-ed25519 AAAA…`
/// lines, `#` comments); `addr` and `stderr_tail` are for the messages.
pub fn scanned_key(stdout: &str, addr: &str, stderr_tail: &str) -> Result<PublicKey, ScanError> {
    let mut keys: Vec<PublicKey> = Vec::new();
    for line in stdout.lines() {
        match parse_key_line(line) {
            Ok(KeyLine::Ed25519 { key, .. }) => {
                if !keys.iter().any(|k| k.key == key.key) {
                    keys.push(PublicKey {
                        comment: None,
                        ..key
                    });
                }
            }
            Ok(KeyLine::Empty | KeyLine::Other { .. }) => {}
            Err(e) => {
                return Err(ScanError::Unreadable {
                    line: line.chars().take(120).collect(),
                    reason: e.to_string(),
                })
            }
        }
    }
    match keys.len() {
        0 => Err(ScanError::NoKey {
            addr: addr.into(),
            tail: stderr_tail.into(),
        }),
        1 => {
            let key = keys.remove(0);
            // The key becomes an age recipient: a blob that is no curve point is no key.
            key.age_recipient().map_err(|e| ScanError::Unreadable {
                line: key.to_openssh(),
                reason: e.to_string(),
            })?;
            Ok(key)
        }
        count => Err(ScanError::Several {
            addr: addr.into(),
            count,
        }),
    }
}

/// Whether the fetched key may become the host's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consent {
    /// `--accept-fingerprint` names exactly this key.
    Accepted,
    /// `--accept-fingerprint` names another key: refuse, change nothing.
    Mismatch { given: String },
    /// No flag, but a person is at a terminal: ask them.
    Ask,
    /// No flag and nobody to ask: print the fingerprint and say which flag to pass.
    NeedFlag,
}

/// Decides from `--accept-fingerprint` (already in canonical form), the fetched key's
/// fingerprint and whether stdin and stderr are both terminals. Never trusts silently.
pub fn consent(given: Option<&str>, actual: &str, interactive: bool) -> Consent {
    match given {
        // Both are canonical `SHA256:<43 chars>`: a byte comparison is the comparison.
        Some(g) if g == actual => Consent::Accepted,
        Some(g) => Consent::Mismatch { given: g.into() },
        None if interactive => Consent::Ask,
        None => Consent::NeedFlag,
    }
}

/// `host:port` as people and ssh write it (`[v6]:port` for IPv6).
pub fn addr(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

pub fn commit_subject(name: &str, vmid: VmId) -> String {
    format!("feat(vms): post-provision {name} (VMID {vmid})")
}

/// How the host key was accepted, recorded in the commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    /// `--accept-fingerprint` named it.
    Flag,
    /// A person answered `yes` at a terminal.
    Terminal,
}

impl Acceptance {
    pub fn as_str(self) -> &'static str {
        match self {
            Acceptance::Flag => "--accept-fingerprint",
            Acceptance::Terminal => "yes at a terminal",
        }
    }
}

/// The commit message: provision's trailers, plus where the key came from and how it was
/// accepted (`Host-Key-Accepted-By`), so a reviewer sees how trust was established.
pub fn commit_message(
    name: &str,
    vmid: VmId,
    node: Option<&str>,
    key: &PublicKey,
    from: &str,
    accepted: Acceptance,
    files: &[String],
) -> String {
    let intro = format!(
        "Integrated by `vmctl post-provision`: a VM installed outside vmctl. Its ed25519\n\
         host key, fetched from {from} and accepted by its fingerprint, is pinned in\n\
         hosts.nix, its age recipient is in .sops.yaml and the secrets are re-keyed for it."
    );
    let mut m = ceremony::integration_message(
        &commit_subject(name, vmid),
        &intro,
        vmid,
        node,
        &key.fingerprint(),
        &key.age_recipient().unwrap_or_default(),
        files,
    );
    m.push_str(&format!("Host-Key-Accepted-By: {}\n", accepted.as_str()));
    m
}

#[cfg(test)]
mod tests;
