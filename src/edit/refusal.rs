//! A refused edit as the user sees it: like a lint finding when the refusal points at a place
//! in the file (the message, the file's snippet with a label, what to do as help), else its
//! message after the file's name.

use miette::{Diagnostic, MietteDiagnostic, NamedSource, Report};

/// `error`, a refusal about `file` (shown as `file`, holding `text`), as a report. A refusal
/// with a label keeps its type inside the report (its help, its labels, its `source()` chain)
/// and gets the file's text to draw the snippet from.
pub fn refusal<E>(error: E, file: &str, text: &str) -> Report
where
    E: Diagnostic + Send + Sync + 'static,
{
    if error.labels().is_some_and(|mut l| l.next().is_some()) {
        return Report::new(error).with_source_code(NamedSource::new(file, text.to_string()));
    }
    // Nothing to point at: the file's name leads the message.
    let mut diag = MietteDiagnostic::new(format!("{file}: {error}"));
    if let Some(help) = error.help() {
        diag = diag.with_help(help.to_string());
    }
    Report::new(diag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edit::hosts::{edit_hosts, HostIntent};

    fn render(r: &Report) -> String {
        let mut out = String::new();
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100)
            .render_report(&mut out, r.as_ref())
            .unwrap();
        out
    }

    #[test]
    fn a_refusal_with_a_place_renders_like_a_finding() {
        let text = "{\n  a = { publicKey = \"k\"; };\n  a = { publicKey = \"k2\"; };\n}\n";
        let e = edit_hosts(
            text,
            &HostIntent::Remove {
                name: "a".to_string(),
            },
            None,
        )
        .unwrap_err();
        let shown = render(&refusal(e, "hosts.nix", text));
        assert!(shown.contains("`a` is defined twice"), "{shown}");
        assert!(shown.contains("[hosts.nix:3:3]"), "{shown}");
        assert!(shown.contains("defined again here"), "{shown}");
        assert!(
            shown.contains("help: remove one definition first"),
            "{shown}"
        );
        assert!(!shown.contains("line 3"), "{shown}");
    }

    #[test]
    fn a_refusal_without_a_place_names_the_file() {
        let e = edit_hosts(
            "{ }",
            &HostIntent::Remove {
                name: "nope".to_string(),
            },
            None,
        )
        .unwrap_err();
        let shown = render(&refusal(e, "hosts.nix", "{ }"));
        assert!(
            shown.contains("hosts.nix: host `nope` is not in hosts.nix"),
            "{shown}"
        );
    }
}
