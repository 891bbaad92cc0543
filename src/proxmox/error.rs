//! What a failed Proxmox command means, read from its stderr (the messages Proxmox documents).

/// The kinds of failure vmctl treats differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// "can't lock file '…' - got timeout": another task holds a storage or config lock.
    LockTimeout {
        file: String,
    },
    /// "VM is locked (clone)": a task (clone, backup, snapshot, …) holds the VM.
    VmLocked {
        reason: String,
    },
    /// "unable to create VM N: config file already exists": the VMID was taken meanwhile.
    VmidTaken {
        vmid: Option<u32>,
    },
    /// "Configuration file '…/N.conf' does not exist".
    NoSuchVm {
        vmid: Option<u32>,
    },
    /// "No QEMU guest agent configured".
    NoAgentConfigured,
    /// "QEMU guest agent is not running".
    AgentNotRunning,
    Other,
}

impl Failure {
    /// Lock contention is transient: the same command succeeds once the other task ends.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Failure::LockTimeout { .. } | Failure::VmLocked { .. })
    }
}

/// Classifies a failed command by its stderr.
pub fn classify(stderr: &str) -> Failure {
    if let Some(rest) = stderr.split("can't lock file '").nth(1) {
        if stderr.contains("got timeout") {
            let file = rest.split('\'').next().unwrap_or_default().to_string();
            return Failure::LockTimeout { file };
        }
    }
    if let Some(rest) = stderr.split("VM is locked").nth(1) {
        let reason = rest
            .trim_start()
            .strip_prefix('(')
            .and_then(|r| r.split(')').next())
            .unwrap_or_default()
            .to_string();
        return Failure::VmLocked { reason };
    }
    if stderr.contains("config file already exists") {
        let vmid = stderr
            .split("unable to create VM ")
            .nth(1)
            .and_then(|r| r.split(':').next())
            .and_then(|n| n.trim().parse().ok());
        return Failure::VmidTaken { vmid };
    }
    if let Some(rest) = stderr.split("Configuration file '").nth(1) {
        if stderr.contains("does not exist") {
            let vmid = rest
                .split('\'')
                .next()
                .and_then(|p| p.rsplit('/').next())
                .and_then(|f| f.strip_suffix(".conf"))
                .and_then(|n| n.parse().ok());
            return Failure::NoSuchVm { vmid };
        }
    }
    if stderr.contains("No QEMU guest agent configured") {
        return Failure::NoAgentConfigured;
    }
    if stderr.contains("QEMU guest agent is not running") {
        return Failure::AgentNotRunning;
    }
    Failure::Other
}

/// The last `lines` non-empty lines of a command's stderr, for error messages.
pub fn tail(stderr: &str, lines: usize) -> String {
    let all: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_documented_messages() {
        assert_eq!(
            classify("trying to acquire lock...\ncan't lock file '/var/lock/pve-manager/pve-storage-nvmeprom' - got timeout\n"),
            Failure::LockTimeout {
                file: "/var/lock/pve-manager/pve-storage-nvmeprom".into()
            }
        );
        assert_eq!(
            classify("VM is locked (clone)\n"),
            Failure::VmLocked {
                reason: "clone".into()
            }
        );
        assert_eq!(
            classify("unable to create VM 110: config file already exists\n"),
            Failure::VmidTaken { vmid: Some(110) }
        );
        assert_eq!(
            classify("Configuration file 'nodes/prom/qemu-server/999.conf' does not exist\n"),
            Failure::NoSuchVm { vmid: Some(999) }
        );
        assert_eq!(
            classify("QEMU guest agent is not running\n"),
            Failure::AgentNotRunning
        );
        assert_eq!(classify("boom"), Failure::Other);
        assert!(classify("VM is locked (backup)").is_retryable());
        assert!(!Failure::VmidTaken { vmid: None }.is_retryable());
    }

    #[test]
    fn tails() {
        assert_eq!(tail("a\n\nb\nc\n", 2), "b\nc");
    }
}
