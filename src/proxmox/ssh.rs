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
}

impl SshTarget {
    /// The target definitions.nix describes. Port 22 is left to ssh_config so a `Host` block
    /// in the user's ssh config can redirect it (jump hosts, tunnels, tests).
    pub fn from_proxmox(p: &Proxmox, config_file: Option<PathBuf>) -> Result<Self, TargetError> {
        let host = p.host.clone().ok_or(TargetError::NoHost)?;
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

/// The ssh_config that pins the host key: the first value of an option wins in ssh_config, so
/// these lines come before the user's own config, which is included after them.
pub fn pinned_config(known_hosts: &Path, include: Option<&Path>) -> String {
    let mut s = format!(
        "# written by vmctl for one run: accept only the host key pinned in definitions.nix\n\
         HostKeyAlias {PINNED_ALIAS}\n\
         UserKnownHostsFile \"{}\"\n\
         GlobalKnownHostsFile /dev/null\n\
         StrictHostKeyChecking yes\n\
         UpdateHostKeys no\n\
         BatchMode yes\n",
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

    #[test]
    fn target_from_definitions() {
        let mut p = Proxmox {
            host: Some("prom.lan".into()),
            user: "root".into(),
            port: 22,
            ..Default::default()
        };
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
    fn pinned_config_comes_before_the_users() {
        let c = pinned_config(Path::new("/tmp/kh"), Some(Path::new("/home/u/.ssh/config")));
        let alias = c.find("HostKeyAlias").unwrap();
        let include = c.find("Include").unwrap();
        assert!(alias < include);
        assert!(c.contains("UserKnownHostsFile \"/tmp/kh\""));
    }

    #[test]
    fn recognises_host_key_failures() {
        assert!(is_host_key_failure("Host key verification failed.\r\n"));
        assert!(!is_host_key_failure("Permission denied (publickey)."));
    }
}
