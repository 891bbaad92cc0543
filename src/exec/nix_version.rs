//! The Nix that vmctl builds and installs with must be new enough: nixpkgs and nixos-anywhere
//! need Nix 2.18 or later, and an older one fails much later with errors that do not say so.
//!
//! Only the command that runs Nix to build checks (`vmctl template create` building the image);
//! lint's `nix-instantiate --eval` fallback works on any Nix 2.x and never asks. The install
//! step of `vmctl provision` runs nixos-anywhere, not Nix: checking there would refuse the
//! sandbox, whose stand-in nixos-anywhere runs beside Debian's Nix 2.8 (docs/flake.md).

use std::ffi::OsString;
use std::time::Duration;

use super::process::{Process, ProcessError};

/// The oldest Nix that current nixpkgs and nixos-anywhere accept.
pub const MIN_NIX: Version = Version {
    major: 2,
    minor: 18,
    patch: 0,
};

/// A Nix version, `major.minor.patch` (a missing patch is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Why the Nix on PATH cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NixVersionError {
    #[error("{purpose} needs Nix {MIN_NIX} or later, and `{program}` is Nix {found}; upgrade Nix (nixpkgs and nixos-anywhere need at least {MIN_NIX}), or put a newer `nix` first on PATH (or name it in VMCTL_NIX)")]
    TooOld {
        purpose: String,
        program: String,
        found: Version,
    },
    #[error("{purpose} needs Nix {MIN_NIX} or later, and `{program} --version` printed `{output}`, which names no version vmctl can read; check that `{program}` is Nix")]
    Unreadable {
        purpose: String,
        program: String,
        output: String,
    },
    #[error("{purpose} needs Nix {MIN_NIX} or later: {source}; install Nix (https://nixos.org/download) or name it in VMCTL_NIX")]
    Run {
        purpose: String,
        #[source]
        source: ProcessError,
    },
}

/// The version in the output of `nix --version`: `nix (Nix) 2.18.1`, `nix (Lix, like Nix)
/// 2.91.1`, `nix (Determinate Nix 3.4.2) 2.28.3` (the last number is the Nix version). Suffixes
/// such as `pre20240115_abc` are ignored.
pub fn parse(output: &str) -> Option<Version> {
    let first = output.lines().next()?;
    let word = first
        .split_whitespace()
        .rev()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = word.split('.').map(|p| {
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    });
    let major = parts.next()??;
    let minor = parts.next()??;
    let patch = parts.next().flatten().unwrap_or(0);
    Some(Version {
        major,
        minor,
        patch,
    })
}

/// Runs `nix --version` (or `$VMCTL_NIX --version`) and returns its version when it is at
/// least [`MIN_NIX`]; `purpose` says what needs it, for the error.
pub fn require(purpose: &str) -> Result<Version, NixVersionError> {
    let program: OsString = std::env::var_os("VMCTL_NIX").unwrap_or_else(|| "nix".into());
    let shown = program.to_string_lossy().into_owned();
    let out = Process::new("ask Nix for its version", &program)
        .arg("--version")
        .timeout(Duration::from_secs(30))
        .output()
        .map_err(|source| NixVersionError::Run {
            purpose: purpose.to_string(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match parse(&text) {
        Some(found) if found >= MIN_NIX => Ok(found),
        Some(found) => Err(NixVersionError::TooOld {
            purpose: purpose.to_string(),
            program: shown,
            found,
        }),
        None => Err(NixVersionError::Unreadable {
            purpose: purpose.to_string(),
            program: shown,
            output: text.chars().take(200).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32, minor: u32, patch: u32) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }

    #[test]
    fn reads_the_versions_nix_and_its_forks_print() {
        assert_eq!(parse("nix (Nix) 2.8.0"), Some(v(2, 8, 0)));
        assert_eq!(parse("nix (Nix) 2.18.1\n"), Some(v(2, 18, 1)));
        assert_eq!(parse("nix (Nix) 2.24"), Some(v(2, 24, 0)));
        assert_eq!(parse("nix (Lix, like Nix) 2.91.1"), Some(v(2, 91, 1)));
        assert_eq!(
            parse("nix (Determinate Nix 3.4.2) 2.28.3"),
            Some(v(2, 28, 3))
        );
        assert_eq!(
            parse("nix (Nix) 2.19.0pre20231115_abcdef"),
            Some(v(2, 19, 0))
        );
        assert_eq!(parse("bash: nix: command not found"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("nix (Nix) 2"), None);
    }

    #[test]
    fn versions_order_numerically() {
        assert!(v(2, 8, 0) < MIN_NIX);
        assert!(v(2, 17, 9) < MIN_NIX);
        assert!(v(2, 18, 0) >= MIN_NIX);
        assert!(v(2, 100, 0) > v(2, 18, 5));
        assert!(v(3, 0, 0) > MIN_NIX);
    }
}
