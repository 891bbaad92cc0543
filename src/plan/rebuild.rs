//! The pure part of `vmctl rebuild` and `vmctl known-hosts`: which address and which pinned host
//! key each VM has (definitions.nix and hosts.nix), the known_hosts lines that pin them, the
//! automatic snapshot's name and the `nixos-rebuild` command line.

use crate::model::{Definitions, Host, Hosts, Vm, VmKind};

/// Why a rebuild cannot be planned. Each says what to do next.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RebuildError {
    #[error("`{0}` is not a VM of vms/definitions.nix")]
    #[diagnostic(help("name a managed VM of vms/definitions.nix, or use --all"))]
    UnknownVm(String),
    #[error("`{0}` is readonly: vmctl never rebuilds it")]
    #[diagnostic(help(
        "rebuild it yourself, or move it to `managed` without `readonly` if vmctl should own it"
    ))]
    Readonly(String),
    #[error("`{0}` is the template: it is never rebuilt")]
    #[diagnostic(help("rebuild the VMs cloned from it instead"))]
    Template(String),
    #[error("`{0}` has no vmid in vms/definitions.nix: vmctl cannot snapshot it first")]
    #[diagnostic(help("give it its `vmid`, or provision it with `vmctl provision {0}`"))]
    NoVmid(String),
    #[error("`{0}` has no entry with a `publicKey` in hosts.nix: its host key cannot be pinned")]
    #[diagnostic(help(
        "provision it with vmctl, or add its key with `vmctl hosts add {0} --key \"…\"` once you have checked it"
    ))]
    NoHostKey(String),
    #[error("the host key of `{name}` in hosts.nix cannot be read: {reason}")]
    #[diagnostic(help("fix `{name}.publicKey` in hosts.nix (`vmctl lint` shows where)"))]
    BadHostKey { name: String, reason: String },
    #[error("`{0}` has no address: no static `network.ip` in vms/definitions.nix and no `hostname` in hosts.nix")]
    #[diagnostic(help(
        "give it a static `network.ip`, or a `hostname` in its hosts.nix entry that resolves to it"
    ))]
    NoAddress(String),
    #[error("no VM to rebuild: name one or more, or use --all")]
    #[diagnostic(help("`vmctl rebuild NAME…` or `vmctl rebuild --all`"))]
    NothingNamed,
    #[error("vms/definitions.nix has no managed VM that is not readonly: nothing to rebuild")]
    #[diagnostic(help("declare one under `managed` and provision it (`vmctl provision NAME`)"))]
    NoManagedVm,
    #[error("`--all` rebuilds every managed VM: do not name VMs with it")]
    #[diagnostic(help("`vmctl rebuild --all`, or `vmctl rebuild NAME…` without --all"))]
    AllAndNames,
}

/// One VM to rebuild: where it is, which key it must present, what to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    pub vmid: u32,
    /// The flake's `nixosConfigurations` attribute (`nixosConfig`, else the name).
    pub config: String,
    /// What ssh connects to: the static IP, else hosts.nix `hostname`.
    pub address: String,
    /// `ssh-ed25519 BASE64` from hosts.nix, without its comment.
    pub host_key: String,
}

/// The address a VM answers SSH on, as far as the fleet files say: the static IP of its
/// `network.ip` (without the prefix length), else its hosts.nix `hostname`.
pub fn address(vm: Option<&Vm>, host: Option<&Host>) -> Option<String> {
    static_ip(vm).or_else(|| host.and_then(|h| h.hostname.clone()))
}

/// The static IP of a VM's `network.ip` (`10.0.0.5/24` -> `10.0.0.5`); `None` for `dhcp`.
pub fn static_ip(vm: Option<&Vm>) -> Option<String> {
    vm?.network
        .ip
        .as_deref()
        .filter(|ip| *ip != "dhcp" && !ip.is_empty())
        .map(|ip| ip.split('/').next().unwrap_or(ip).to_string())
}

/// `ssh-ed25519 BASE64` of a hosts.nix key, its comment dropped (a known_hosts line's third
/// field would be taken as one anyway, but a pinned file holds only what is checked).
pub fn pinned_key(name: &str, key: &str) -> Result<String, RebuildError> {
    let parsed = crate::keys::PublicKey::parse(key).map_err(|e| RebuildError::BadHostKey {
        name: name.to_string(),
        reason: e.to_string(),
    })?;
    let line = parsed.to_openssh();
    Ok(line
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" "))
}

/// The VMs `vmctl rebuild` acts on, in the order given (`--all`: every managed VM, in the
/// order of definitions.nix). Any VM that cannot be rebuilt safely stops the whole request.
pub fn targets(
    defs: &Definitions,
    hosts: &Hosts,
    names: &[String],
    all: bool,
) -> Result<Vec<Target>, RebuildError> {
    let chosen: Vec<String> = match (all, names.is_empty()) {
        (true, false) => return Err(RebuildError::AllAndNames),
        (false, true) => return Err(RebuildError::NothingNamed),
        (true, true) => defs
            .managed
            .iter()
            .filter(|v| !v.readonly)
            .map(|v| v.name.clone())
            .collect(),
        (false, false) => names.to_vec(),
    };
    if chosen.is_empty() {
        return Err(RebuildError::NoManagedVm);
    }
    let mut out: Vec<Target> = Vec::new();
    for name in &chosen {
        if out.iter().any(|t| &t.name == name) {
            continue;
        }
        let vm = defs
            .vm_by_name(name)
            .ok_or_else(|| RebuildError::UnknownVm(name.clone()))?;
        if vm.kind == VmKind::Template {
            return Err(RebuildError::Template(name.clone()));
        }
        // Imported VMs are documentation only; readonly ones are never touched.
        if vm.readonly || vm.kind == VmKind::Imported {
            return Err(RebuildError::Readonly(name.clone()));
        }
        let vmid = vm.vmid.ok_or_else(|| RebuildError::NoVmid(name.clone()))?;
        let host = hosts.get(name);
        let key = host
            .and_then(|h| h.public_key.as_deref())
            .ok_or_else(|| RebuildError::NoHostKey(name.clone()))?;
        let host_key = pinned_key(name, key)?;
        let address =
            address(Some(vm), host).ok_or_else(|| RebuildError::NoAddress(name.clone()))?;
        out.push(Target {
            name: name.clone(),
            vmid,
            config: vm.config_name().to_string(),
            address,
            host_key,
        });
    }
    Ok(out)
}

/// How a host is written in a known_hosts file for `port`: `HOST`, or `[HOST]:PORT` off 22.
pub fn known_hosts_pattern(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// One host of the fleet's known_hosts: the names ssh may check its key under, and the key.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KnownHost {
    pub host: String,
    /// What a user types or what ssh resolves (hostname, sshAlias, static IP), unformatted.
    pub names: Vec<String>,
    pub key: String,
}

/// Every host of hosts.nix with a readable key, with the names it is reached by: its
/// `hostname`, `sshAlias`, the static IP of the VM of the same name, and its own name when
/// none of those is given. Hosts left out come back as notes saying why.
pub fn fleet_known_hosts(defs: &Definitions, hosts: &Hosts) -> (Vec<KnownHost>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    for h in &hosts.hosts {
        let Some(key) = h.public_key.as_deref() else {
            notes.push(format!(
                "`{}` has no `publicKey` in hosts.nix: left out",
                h.name
            ));
            continue;
        };
        let key = match pinned_key(&h.name, key) {
            Ok(k) => k,
            Err(e) => {
                notes.push(format!("{e}: left out"));
                continue;
            }
        };
        let mut names: Vec<String> = Vec::new();
        let candidates = [
            h.hostname.clone(),
            h.ssh_alias.clone(),
            static_ip(defs.vm_by_name(&h.name)),
        ];
        for n in candidates.into_iter().flatten() {
            if !n.is_empty() && !names.contains(&n) {
                names.push(n);
            }
        }
        if names.is_empty() {
            names.push(h.name.clone());
        }
        out.push(KnownHost {
            host: h.name.clone(),
            names,
            key,
        });
    }
    (out, notes)
}

/// A known_hosts file: a header, then one line per host, its patterns comma-separated.
/// `patterns` gives each host's patterns as written (`name` or `[name]:port`).
pub fn render_known_hosts(lines: &[(Vec<String>, String)]) -> String {
    let mut s = String::from(
        "# Written by `vmctl known-hosts` from hosts.nix: the fleet's pinned host keys.\n",
    );
    for (patterns, key) in lines {
        s.push_str(&format!("{} {key}\n", patterns.join(",")));
    }
    s
}

/// Whether a known_hosts pattern is safe to write as given: no whitespace, no comma, no
/// wildcard or negation (a hosts.nix `hostname` of `*` would pin a key for every host).
pub fn plain_host(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
}

/// The automatic snapshot taken before `step`: `vmctl-auto-STEP-YYYYMMDDTHHMMSS` (UTC), a
/// valid Proxmox snapshot name for the steps vmctl has (at most 40 characters).
pub fn auto_snapshot_name(step: &str, unix_secs: u64) -> String {
    let stamp: String = crate::secrets::rotate::rfc3339_utc(unix_secs)
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    format!("{AUTO_PREFIX}{step}-{stamp}")
}

/// What every automatic snapshot's name starts with; manual names never do (validated).
pub const AUTO_PREFIX: &str = "vmctl-auto-";

/// `nixos-rebuild switch --flake .#CONFIG --target-host root@ADDRESS`.
pub fn rebuild_argv(t: &Target) -> Vec<String> {
    vec![
        "nixos-rebuild".into(),
        "switch".into(),
        "--flake".into(),
        format!(".#{}", t.config),
        "--target-host".into(),
        format!("root@{}", t.address),
    ]
}

/// The ssh options nixos-rebuild passes to every ssh it starts (`NIX_SSHOPTS`): only the
/// pinned known_hosts, strict checking, no global file, the pinned key's type; the ssh_config
/// and identity the user gave. NIX_SSHOPTS is split on whitespace, so a path holding any is
/// refused (`None`).
pub fn nix_sshopts(
    known_hosts: &str,
    config: Option<&str>,
    identity: Option<&str>,
) -> Option<String> {
    let mut o: Vec<String> = Vec::new();
    if let Some(c) = config {
        o.extend(["-F".into(), c.to_string()]);
    }
    o.extend(
        [
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            &format!("UserKnownHostsFile={known_hosts}"),
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "HostKeyAlgorithms=ssh-ed25519",
            "-o",
            "BatchMode=yes",
        ]
        .map(String::from),
    );
    if let Some(i) = identity {
        o.extend(["-i".into(), i.to_string()]);
    }
    let paths = [Some(known_hosts), config, identity];
    if paths
        .iter()
        .flatten()
        .any(|p| p.chars().any(char::is_whitespace))
    {
        return None;
    }
    Some(o.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Given, Network};

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMlLRoQ0HoeSXd9Rbb9WB51hQUGkEPeKZvmAsJFjg/wH";

    fn host(name: &str, hostname: Option<&str>, key: Option<&str>) -> Host {
        Host {
            name: name.into(),
            public_key: key.map(String::from),
            hostname: hostname.map(String::from),
            ssh_alias: Some(name.into()),
            name_range: Default::default(),
            public_key_range: None,
            public_key_given: Given::Known,
        }
    }

    fn defs(vms: Vec<Vm>, imported: Vec<Vm>) -> Definitions {
        Definitions {
            managed: vms,
            imported,
            ..Definitions::default()
        }
    }

    fn managed(name: &str, vmid: u32, ip: &str) -> Vm {
        Vm {
            network: Network {
                ip: Some(ip.into()),
                ..Network::default()
            },
            ..Vm::new(name, VmKind::Managed, Some(vmid))
        }
    }

    #[test]
    fn the_static_ip_wins_over_the_hostname_and_dhcp_falls_back_to_it() {
        let d = defs(
            vec![
                managed("web", 110, "10.0.0.5/24"),
                managed("db", 111, "dhcp"),
            ],
            vec![],
        );
        let h = Hosts {
            hosts: vec![
                host("web", Some("web.lan"), Some(&format!("{KEY} root@web"))),
                host("db", Some("db.lan"), Some(KEY)),
            ],
        };
        let t = targets(&d, &h, &[], true).unwrap();
        assert_eq!(t[0].address, "10.0.0.5");
        assert_eq!(t[0].host_key, KEY, "the comment is not pinned");
        assert_eq!(t[1].address, "db.lan");
        assert_eq!(
            rebuild_argv(&t[0]),
            [
                "nixos-rebuild",
                "switch",
                "--flake",
                ".#web",
                "--target-host",
                "root@10.0.0.5"
            ]
        );
    }

    #[test]
    fn what_cannot_be_pinned_or_reached_is_refused() {
        let ro = Vm {
            readonly: true,
            ..Vm::new("doc1", VmKind::Imported, Some(104))
        };
        let d = defs(
            vec![
                managed("nokey", 110, "10.0.0.5"),
                managed("noaddr", 111, "dhcp"),
                managed("bad", 112, "10.0.0.6"),
            ],
            vec![ro],
        );
        let h = Hosts {
            hosts: vec![
                host("nokey", Some("a"), None),
                host("noaddr", None, Some(KEY)),
                host("bad", None, Some("ssh-ed25519 AAAAnotakey")),
                host("doc1", Some("doc1"), Some(KEY)),
            ],
        };
        let one = |n: &str| targets(&d, &h, &[n.to_string()], false).unwrap_err();
        assert!(matches!(one("nokey"), RebuildError::NoHostKey(_)));
        assert!(matches!(one("noaddr"), RebuildError::NoAddress(_)));
        assert!(matches!(one("bad"), RebuildError::BadHostKey { .. }));
        assert!(matches!(one("doc1"), RebuildError::Readonly(_)));
        assert!(matches!(one("nosuch"), RebuildError::UnknownVm(_)));
        assert!(matches!(
            targets(&d, &h, &["nokey".into()], true).unwrap_err(),
            RebuildError::AllAndNames
        ));
        assert!(matches!(
            targets(&d, &h, &[], false).unwrap_err(),
            RebuildError::NothingNamed
        ));
        // --all stops on the first VM that cannot be rebuilt: nothing is half done.
        assert!(targets(&d, &h, &[], true).is_err());
        assert!(matches!(
            targets(&defs(vec![], vec![]), &h, &[], true).unwrap_err(),
            RebuildError::NoManagedVm
        ));
    }

    #[test]
    fn known_hosts_name_every_way_a_host_is_reached() {
        let d = defs(vec![managed("web", 110, "10.0.0.5/24")], vec![]);
        let h = Hosts {
            hosts: vec![
                host("web", Some("web.lan"), Some(KEY)),
                host("nokey", Some("x"), None),
            ],
        };
        let (hosts, notes) = fleet_known_hosts(&d, &h);
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].names, ["web.lan", "web", "10.0.0.5"]);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("`nokey`"), "{notes:?}");
        let text = render_known_hosts(&[(
            vec![
                known_hosts_pattern("web.lan", 22),
                known_hosts_pattern("10.0.0.5", 2222),
            ],
            hosts[0].key.clone(),
        )]);
        assert!(
            text.ends_with(&format!("web.lan,[10.0.0.5]:2222 {KEY}\n")),
            "{text}"
        );
        assert!(plain_host("web.lan") && plain_host("fe80::1"));
        assert!(!plain_host("*") && !plain_host("a,b") && !plain_host("!x") && !plain_host(""));
    }

    #[test]
    fn automatic_snapshot_names_are_valid_proxmox_names() {
        let n = auto_snapshot_name("rebuild", 1_796_003_715);
        assert_eq!(n, "vmctl-auto-rebuild-20261130T015515");
        assert!(crate::proxmox::validate::snapshot_name(&n).is_ok());
        assert!(n.len() <= 40);
    }

    #[test]
    fn nix_sshopts_pin_the_key_and_refuse_paths_with_spaces() {
        let o = nix_sshopts("/tmp/x/known_hosts", Some("/c"), Some("/k")).unwrap();
        assert_eq!(
            o,
            "-F /c -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/tmp/x/known_hosts \
             -o GlobalKnownHostsFile=/dev/null -o HostKeyAlgorithms=ssh-ed25519 -o BatchMode=yes -i /k"
        );
        assert_eq!(nix_sshopts("/tmp/a b/kh", None, None), None);
    }
}
