//! `--phases LIST`: which steps a run may do, and whether that selection is a safe order (no
//! needed earlier step skipped unless the journal shows it done). Pure.

use std::collections::BTreeSet;

use super::StepId;

/// The named groups of steps, in the order they run.
pub const PHASES: [(&str, &[StepId]); 4] = [
    (
        "infra",
        &[
            StepId::Clone,
            StepId::Configure,
            StepId::Resize,
            StepId::CloudInit,
            StepId::Start,
            StepId::DiscoverIp,
            StepId::WaitSsh,
        ],
    ),
    ("keys", &[StepId::KeyCeremony]),
    ("install", &[StepId::Install, StepId::Verify]),
    ("integrate", &[StepId::Commit]),
];

/// Every step, in order: the phases' steps one after the other.
fn all() -> impl Iterator<Item = StepId> {
    PHASES.iter().flat_map(|(_, steps)| steps.iter().copied())
}

/// Why a `--phases` selection is refused. Nothing was done when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhaseError {
    #[error("`{0}` is not a phase or step; use {names}", names = known_names())]
    Unknown(String),
    #[error("--phases is empty; name at least one phase or step ({names})", names = known_names())]
    Empty,
    #[error("--phases skips step `{missing}`, which `{step}` needs and which has not run: add `{missing}` (or its phase) to --phases")]
    Skips {
        step: &'static str,
        missing: &'static str,
    },
    #[error("step `{0}` needs the host key, which only lives during the run that generated it: run it together with `keys` (e.g. --phases keys,install)")]
    NeedsKey(&'static str),
}

fn known_names() -> String {
    let phases: Vec<&str> = PHASES.iter().map(|(n, _)| *n).collect();
    let steps: Vec<&str> = all().map(StepId::as_str).collect();
    format!(
        "the phases {} or the steps {}",
        phases.join(", "),
        steps.join(", ")
    )
}

/// Parses `infra,keys` or step ids (`clone,configure`) into the set of steps selected.
pub fn parse(list: &str) -> Result<BTreeSet<StepId>, PhaseError> {
    let mut out = BTreeSet::new();
    for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        if let Some((_, steps)) = PHASES.iter().find(|(n, _)| *n == word) {
            out.extend(steps.iter().copied());
        } else if let Some(s) = all().find(|s| s.as_str() == word) {
            out.insert(s);
        } else {
            return Err(PhaseError::Unknown(word.to_string()));
        }
    }
    if out.is_empty() {
        return Err(PhaseError::Empty);
    }
    Ok(out)
}

/// Checks `selected` against the plan's steps (`planned`, in order) and the steps the journal
/// shows done: every step before a selected one must be selected or done, and the steps that
/// use the generated host key must run with the key ceremony that made it.
pub fn check(
    planned: &[StepId],
    selected: &BTreeSet<StepId>,
    done: &[StepId],
) -> Result<(), PhaseError> {
    for (i, step) in planned.iter().enumerate() {
        if !selected.contains(step) || done.contains(step) {
            continue;
        }
        if let Some(missing) = planned[..i]
            .iter()
            .find(|e| !selected.contains(e) && !done.contains(e))
        {
            return Err(PhaseError::Skips {
                step: step.as_str(),
                missing: missing.as_str(),
            });
        }
        if *step == StepId::KeyCeremony
            && planned.contains(&StepId::Install)
            && !selected.contains(&StepId::Install)
        {
            return Err(PhaseError::NeedsKey("install"));
        }
        if matches!(step, StepId::Install | StepId::Verify)
            && planned.contains(&StepId::KeyCeremony)
            && !selected.contains(&StepId::KeyCeremony)
        {
            return Err(PhaseError::NeedsKey(step.as_str()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(list: &str) -> BTreeSet<StepId> {
        parse(list).unwrap()
    }

    #[test]
    fn phases_and_step_ids_parse_to_steps() {
        assert_eq!(set("keys"), BTreeSet::from([StepId::KeyCeremony]));
        assert_eq!(
            set("install, commit"),
            BTreeSet::from([StepId::Install, StepId::Verify, StepId::Commit])
        );
        assert_eq!(set("infra").len(), 7);
        assert_eq!(
            parse("infra,bogus"),
            Err(PhaseError::Unknown("bogus".into()))
        );
        assert_eq!(parse(" , "), Err(PhaseError::Empty));
        assert!(PhaseError::Unknown("x".into())
            .to_string()
            .contains("infra, keys, install, integrate"));
    }

    #[test]
    fn a_selection_that_skips_a_needed_step_is_refused_unless_the_journal_has_it() {
        let all: Vec<StepId> = all().collect();
        assert_eq!(all.len(), 11, "every step is in a phase");
        assert_eq!(check(&all, &set("infra"), &[]), Ok(()));
        assert_eq!(
            check(&all, &set("keys"), &[]),
            Err(PhaseError::Skips {
                step: "key-ceremony",
                missing: "clone"
            })
        );
        // The journal shows the infrastructure done: the rest may follow.
        let infra: Vec<StepId> = set("infra").into_iter().collect();
        // The key ceremony without the install: the key would be gone before it is used.
        assert_eq!(
            check(&all, &set("keys"), &infra),
            Err(PhaseError::NeedsKey("install"))
        );
        assert_eq!(check(&all, &set("keys,install,integrate"), &infra), Ok(()));
        // A gap inside the selection is refused too.
        assert_eq!(
            check(&all, &set("clone,start"), &[]),
            Err(PhaseError::Skips {
                step: "start",
                missing: "configure"
            })
        );
        // Install without the key ceremony in the same run: the key is gone by then.
        let mut upto_keys = infra.clone();
        upto_keys.push(StepId::KeyCeremony);
        assert_eq!(
            check(&all, &set("install"), &upto_keys),
            Err(PhaseError::NeedsKey("install"))
        );
        // A step the plan leaves out (resize when the disk is big enough) is not needed.
        let no_resize: Vec<StepId> = all
            .iter()
            .copied()
            .filter(|s| *s != StepId::Resize)
            .collect();
        assert_eq!(
            check(&no_resize, &set("clone,configure,cloud-init"), &[]),
            Ok(())
        );
    }
}
