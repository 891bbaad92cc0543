//! The one place that chooses a failed command's exit code (docs/cli.md, "Exit codes"): 2 when
//! vmctl could not act at all (a file it cannot read or write, a program it cannot start, no
//! fleet), 1 when it acted and the answer is no (a refusal, a failed command, findings).

use crate::exec::apply::ApplyError;
use crate::exec::cannot_act::CannotAct;
use crate::exec::lint::LintSetupError;
use crate::exec::process::ProcessError;
use crate::exec::remote::RemoteError;
use crate::exec::sops::SopsRunError;

/// A plain error as a report, the way `Report::from_err` makes one (same message, same
/// causes), but with its type kept so [`code_of`] can classify it (miette's own wrapper
/// hides the type).
pub fn report<E: std::error::Error + Send + Sync + 'static>(e: E) -> miette::Report {
    miette::Report::new(Typed(Box::new(e)))
}

#[derive(Debug)]
struct Typed(Box<dyn std::error::Error + Send + Sync + 'static>);

impl std::fmt::Display for Typed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Typed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl miette::Diagnostic for Typed {}

/// The exit code of a command that failed with `report`: 2 when any error of its chain is one
/// of the "cannot act" kinds, else 1. Decided by the errors' types, never by their text.
pub fn code_of(report: &miette::Report) -> u8 {
    if report.chain().any(cannot_act) {
        2
    } else {
        1
    }
}

/// Whether `e` says vmctl could not act (read, write, start, find) rather than refused.
fn cannot_act(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(Typed(inner)) = e.downcast_ref::<Typed>() {
        return cannot_act(&**inner);
    }
    if e.is::<CannotAct>()
        || e.is::<LintSetupError>()
        || e.is::<std::io::Error>()
        || e.is::<crate::exec::nix_version::NixVersionError>()
    {
        return true;
    }
    if let Some(e) = e.downcast_ref::<ProcessError>() {
        return matches!(e, ProcessError::Spawn { .. });
    }
    if let Some(e) = e.downcast_ref::<ApplyError>() {
        // Waiting for another vmctl, a file changed underneath, a file that exists: refusals.
        return matches!(
            e,
            ApplyError::Io { .. } | ApplyError::Lock { .. } | ApplyError::Partial { .. }
        );
    }
    if let Some(e) = e.downcast_ref::<SopsRunError>() {
        return matches!(
            e,
            SopsRunError::Read { .. } | SopsRunError::Backup { .. } | SopsRunError::Start { .. }
        );
    }
    if let Some(e) = e.downcast_ref::<RemoteError>() {
        return matches!(e, RemoteError::Setup { .. });
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_and_start_failures_are_2_refusals_are_1() {
        let io = || std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let two: Vec<miette::Report> = vec![
            miette::Report::new(CannotAct::new("cannot read `hosts.nix`")),
            miette::Report::new(ApplyError::Io {
                action: "write",
                path: "x".into(),
                error: io(),
            }),
            miette::Report::msg("a").wrap_err("b"),
            miette::Report::new(CannotAct::new("no fleet")).wrap_err("cannot add the host"),
            report(ProcessError::Spawn {
                purpose: "run sops".into(),
                program: "sops".into(),
                error: io(),
            }),
        ];
        let codes: Vec<u8> = two.iter().map(code_of).collect();
        assert_eq!(codes, [2, 2, 1, 2, 2]);
        let refused = miette::Report::new(ApplyError::Exists { shown: "x".into() });
        assert_eq!(code_of(&refused), 1);
        assert_eq!(code_of(&miette::miette!("host `x` is not in hosts.nix")), 1);
    }
}
