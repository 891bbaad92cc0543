//! How vmctl reaches the Proxmox host: the SSH destination and, for a pinned host key, the
//! ssh_config text that makes OpenSSH accept that key and no other.

use std::path::{Path, PathBuf};

use crate::model::Proxmox;

/// The alias a pinned key is filed under, so the check does not depend on how the host name or
/// port is spelled (ssh_config `HostKeyAlias`).
pub const PINNED_ALIAS: &str = "vmctl-pinned-proxmox";

/// Where and how to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub host: String,
    pub user: String,
    /// `None` leaves the port to ssh_config (and its default, 22).
    pub port: Option<u16>,
    /// The only host key accepted, as an OpenSSH public key line (`ssh-ed25519 AAAA…`).
    pub pinned_key: Option<String>,
    /// An ssh_config file to use instead of `~/.ssh/config` (`--ssh-config`).
    pub config_file: Option<PathBuf>,
}

/// definitions.nix does not say how to reach Proxmox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("definitions.nix has no `proxmox.host`; set it to the Proxmox host's name or address")]
    NoHost,
    #[error(
        "`proxmox.hostKey` in definitions.nix is not an OpenSSH public key (`ssh-ed25519 AAAA…`); \
         copy the key from `ssh-keyscan {host}`"
    )]
    BadHostKey { host: String },
    #[error(
        "`proxmox.host` in definitions.nix is `{host}`, which is not a host name or address{}; \
         write the Proxmox host's name (`prom.lan`) or IP address",
        if .host.starts_with('-') { " (ssh would read it as an option)" } else { "" }
    )]
    BadHost { host: String },
    #[error(
        "`proxmox.user` in definitions.nix is `{user}`, which is not a user name; write one \
         like `root`"
    )]
    BadUser { user: String },
}

/// True for a host ssh can only read as a destination: a name or an IPv4/IPv6 address, never
/// an option (`-oProxyCommand=…`) and nothing an ssh_config `Host` pattern treats specially.
pub fn is_valid_host(host: &str) -> bool {
    !host.is_empty()
        && !host.starts_with('-')
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'%'))
}

/// True for a user name ssh cannot mistake for an option.
pub fn is_valid_user(user: &str) -> bool {
    !user.is_empty()
        && !user.starts_with('-')
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

impl SshTarget {
    /// The target definitions.nix describes. Port 22 is left to ssh_config so a `Host` block
    /// in the user's ssh config can redirect it (jump hosts, tunnels, tests).
    pub fn from_proxmox(p: &Proxmox, config_file: Option<PathBuf>) -> Result<Self, TargetError> {
        let host = p.host.clone().ok_or(TargetError::NoHost)?;
        if !is_valid_host(&host) {
            return Err(TargetError::BadHost { host });
        }
        if !p.user.is_empty() && !is_valid_user(&p.user) {
            return Err(TargetError::BadUser {
                user: p.user.clone(),
            });
        }
        let pinned_key = match &p.host_key {
            Some(k) => Some(
                normalise_key(k).ok_or_else(|| TargetError::BadHostKey { host: host.clone() })?,
            ),
            None => None,
        };
        Ok(SshTarget {
            port: (p.port != 22 && p.port != 0).then_some(p.port),
            user: if p.user.is_empty() {
                "root".into()
            } else {
                p.user.clone()
            },
            host,
            pinned_key,
            config_file,
        })
    }

    /// `user@host` plus the port, for messages.
    pub fn display(&self) -> String {
        match self.port {
            Some(p) => format!("{}@{}:{p}", self.user, self.host),
            None => format!("{}@{}", self.user, self.host),
        }
    }
}

/// `TYPE BASE64` of a public key line (the comment dropped), or `None` if it is not one.
pub fn normalise_key(line: &str) -> Option<String> {
    let mut f = line.split_whitespace();
    let kind = f.next()?;
    let blob = f.next()?;
    let kind_ok = kind.starts_with("ssh-") || kind.starts_with("ecdsa-sha2-");
    let blob_ok = blob.len() > 16
        && blob
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    (kind_ok && blob_ok).then(|| format!("{kind} {blob}"))
}

/// The known_hosts file that holds only the pinned key.
pub fn pinned_known_hosts(key: &str) -> String {
    format!("{PINNED_ALIAS} {key}\n")
}

/// The ssh_config that pins the host key of `host` (a name `is_valid_host` accepts). The first
/// value of an option wins in ssh_config, so these lines come before the user's own config,
/// which is included after them; they sit in a `Host` block so they apply to this one host
/// only (a jump host keeps its own known_hosts). No other source of host keys is consulted:
/// not `KnownHostsCommand`, not DNS (`VerifyHostKeyDNS`).
pub fn pinned_config(host: &str, known_hosts: &Path, include: Option<&Path>) -> String {
    let mut s = format!(
        "# written by vmctl for one run: accept only the host key pinned in definitions.nix\n\
         Host {host}\n\
         \x20 HostKeyAlias {PINNED_ALIAS}\n\
         \x20 UserKnownHostsFile \"{}\"\n\
         \x20 GlobalKnownHostsFile /dev/null\n\
         \x20 KnownHostsCommand none\n\
         \x20 VerifyHostKeyDNS no\n\
         \x20 StrictHostKeyChecking yes\n\
         \x20 UpdateHostKeys no\n\
         \x20 BatchMode yes\n\
         Match all\n",
        known_hosts.display()
    );
    if let Some(inc) = include {
        s.push_str(&format!("Include \"{}\"\n", inc.display()));
    }
    s
}

/// True when ssh's log says the host key was not accepted.
pub fn is_host_key_failure(ssh_log: &str) -> bool {
    ssh_log.contains("Host key verification failed")
        || ssh_log.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || ssh_log.contains("No matching host key")
        || ssh_log.contains("host key for") && ssh_log.contains("has changed")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `proxmox` section of definitions.nix naming `host`, root on port 22.
    fn proxmox_at(host: &str) -> Proxmox {
        Proxmox {
            host: Some(host.into()),
            user: "root".into(),
            port: 22,
            ..Default::default()
        }
    }

    #[test]
    fn target_from_definitions() {
        let mut p = proxmox_at("prom.lan");
        let t = SshTarget::from_proxmox(&p, None).unwrap();
        assert_eq!(t.port, None);
        assert_eq!(t.display(), "root@prom.lan");
        p.port = 2222;
        p.host_key = Some("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB7 root@prom".into());
        let t = SshTarget::from_proxmox(&p, None).unwrap();
        assert_eq!(t.port, Some(2222));
        assert_eq!(
            t.pinned_key.as_deref(),
            Some("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB7")
        );
        p.host_key = Some("not a key".into());
        assert!(matches!(
            SshTarget::from_proxmox(&p, None),
            Err(TargetError::BadHostKey { .. })
        ));
        p.host = None;
        assert_eq!(SshTarget::from_proxmox(&p, None), Err(TargetError::NoHost));
    }

    #[test]
    fn pinned_config_comes_before_the_users_and_is_scoped_to_the_host() {
        let c = pinned_config(
            "prom.lan",
            Path::new("/tmp/kh"),
            Some(Path::new("/home/u/.ssh/config")),
        );
        let host = c.find("Host prom.lan\n").unwrap();
        let alias = c.find("HostKeyAlias").unwrap();
        let all = c.find("Match all\n").unwrap();
        let include = c.find("Include").unwrap();
        assert!(host < alias && alias < all && all < include, "{c}");
        for line in [
            "UserKnownHostsFile \"/tmp/kh\"",
            "KnownHostsCommand none",
            "VerifyHostKeyDNS no",
            "GlobalKnownHostsFile /dev/null",
        ] {
            assert!(c[host..all].contains(line), "{line}: {c}");
        }
    }

    #[test]
    fn hosts_and_users_that_ssh_would_read_as_options_are_refused() {
        let mut p = proxmox_at("-oProxyCommand=touch /tmp/x");
        let e = SshTarget::from_proxmox(&p, None).unwrap_err();
        assert!(matches!(e, TargetError::BadHost { .. }));
        assert!(e.to_string().contains("read it as an option"), "{e}");
        for bad in ["", "a b", "h*", "h,g", "h\n", "\"h\""] {
            p.host = Some(bad.into());
            assert!(SshTarget::from_proxmox(&p, None).is_err(), "{bad:?}");
        }
        for ok in ["prom.lan", "192.168.1.10", "fe80::1%vmbr0", "pve_1"] {
            p.host = Some(ok.into());
            assert!(SshTarget::from_proxmox(&p, None).is_ok(), "{ok}");
        }
        p.user = "-l".into();
        assert!(matches!(
            SshTarget::from_proxmox(&p, None),
            Err(TargetError::BadUser { .. })
        ));
    }

    #[test]
    fn recognises_host_key_failures() {
        assert!(is_host_key_failure("Host key verification failed.\r\n"));
        assert!(!is_host_key_failure("Permission denied (publickey)."));
    }
}
