//! The paths a fleet's settings name, or the layout expects, that are missing or are not what
//! they should be: reported on definitions.nix, never silently skipped.

use std::path::Path;

use crate::model::fleet::Fleet;
use crate::model::read::Issue;

/// True when `dir` holds anything that is not hidden (a `.gitkeep` alone does not count).
fn has_entries(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.filter_map(Result::ok)
            .any(|e| !e.file_name().to_string_lossy().starts_with('.'))
    })
}

/// Records, on definitions.nix, the paths its `settings` name that do not exist (FL003 for the
/// files vmctl edits, FL004 for directories) and the files the fleet needs but lacks (FL004):
/// a missing file is never silently skipped, and a typo must not make an edit create a second
/// file next to the real one.
pub(super) fn report(fleet: &mut Fleet, root: &Path, settings: &crate::model::Settings) {
    let Some(idx) = fleet.definitions.as_ref().map(|(i, _)| *i) else {
        return;
    };
    let file = &fleet.files[idx];
    let setting = |name: &str| {
        file.eval
            .value
            .as_attrs()
            .and_then(|t| t.get("settings"))
            .and_then(|s| s.as_attrs())
            .and_then(|s| s.get(name))
            .map(|v| v.span)
    };
    let top = crate::syntax::Span::new(file.file, rowan::TextRange::empty(0.into()));
    let mut issues = Vec::new();
    let shown = |p: &Path| p.display().to_string();
    for (name, path, is_file) in [
        ("hostsFile", &settings.hosts_file, true),
        ("sopsConfig", &settings.sops_config, true),
        ("hostsDir", &settings.hosts_dir, false),
        ("templateDir", &settings.template_dir, false),
        ("secretsDir", &settings.secrets_dir, false),
    ] {
        let full = root.join(path);
        let Some(span) = setting(name) else {
            // Not named in settings: a default path that is absent is the layout checks'
            // business below; one that is there but is no file (a directory, a link to
            // nothing) would be skipped silently, so it is an error.
            let there = std::fs::symlink_metadata(&full).is_ok();
            if is_file && there && !full.is_file() {
                issues.push(Issue::MissingPath {
                    span: top,
                    message: format!(
                        "`{}` is there but is not a file vmctl can read (a directory, or a link \
                         to nothing), so the fleet cannot be checked against it",
                        shown(path)
                    ),
                    help: format!(
                        "make `{}` the file it should be, or point `settings.{name}` at it",
                        shown(path)
                    ),
                    error: true,
                });
            }
            continue;
        };
        let exists = if is_file {
            full.is_file()
        } else {
            full.is_dir()
        };
        if exists {
            continue;
        }
        let what = if is_file { "file" } else { "directory" };
        issues.push(Issue::MissingPath {
            span,
            message: format!(
                "`settings.{name}` names `{}`, but there is no such {what} in the fleet",
                shown(path)
            ),
            help: if is_file {
                format!("fix the path, or create the file (vmctl edits `{}` and will not create a second one)", shown(path))
            } else {
                format!("fix the path, or create the directory `{}`", shown(path))
            },
            error: is_file,
        });
    }
    // The layout warnings below are about the fleet as a whole: they point at the top of
    // definitions.nix and never fail the run.
    let mut layout = |message: String, help: String| {
        issues.push(Issue::MissingPath {
            span: top,
            message,
            help,
            error: false,
        })
    };
    let sops = root.join(&settings.sops_config);
    if setting("sopsConfig").is_none() && !sops.is_file() {
        let nested = root.join(&settings.secrets_dir).join(".sops.yaml");
        if nested.is_file() {
            let rel = settings.secrets_dir.join(".sops.yaml");
            layout(
                format!(
                    "the fleet's sops configuration is `{}`, but vmctl reads `{}`",
                    shown(&rel),
                    shown(&settings.sops_config)
                ),
                format!(
                    "add `settings.sopsConfig = \"{}\";` to definitions.nix",
                    shown(&rel)
                ),
            );
        } else if has_entries(&root.join(&settings.secrets_dir)) {
            layout(
                format!(
                    "`{}` holds secrets but the fleet has no `{}`: re-keying and the recipient checks cannot run",
                    shown(&settings.secrets_dir),
                    shown(&settings.sops_config)
                ),
                "create it, or point `settings.sopsConfig` at the one you use".into(),
            );
        }
    }
    if setting("hostsFile").is_none()
        && sops.is_file()
        && !root.join(&settings.hosts_file).is_file()
    {
        layout(
            format!(
                "the fleet has `{}` but no `{}`: the hosts its recipients belong to are unknown",
                shown(&settings.sops_config),
                shown(&settings.hosts_file)
            ),
            format!(
                "create it (`{}` writes the first entry), or point `settings.hostsFile` at yours",
                crate::proxmox::quote::command_line(&[
                    "vmctl", "hosts", "add", "NAME", "--key", "KEY"
                ])
            ),
        );
    }
    fleet.files[idx].issues.extend(issues);
}
