//! Secret redaction for everything vmctl prints about a remote command: dry-run lines, progress
//! lines, errors and the recording fake's log all go through `display_line`, and remote
//! output through `scrub`, so a `cipassword` or token never reaches a terminal or a log.
//!
//! The argv sent over SSH is never redacted: only what is shown.

use super::quote::quote;

/// What a secret is shown as.
pub const REDACTED: &str = "<redacted>";

/// True for option names whose values are secrets (`cipassword`, `password`, `token`, API
/// keys, `secret`), with or without leading dashes, in any case.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.trim_start_matches('-').to_ascii_lowercase();
    [
        "password",
        "passwd",
        "token",
        "secret",
        "apikey",
        "api-key",
        "api_key",
        "privkey",
        "private-key",
        "private_key",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// The argv with every secret value replaced by `<redacted>`: the word after a secret option
/// (`--cipassword VALUE`), the value of `--cipassword=VALUE`, and of `KEY=VALUE` words whose
/// key is secret.
pub fn redact_argv<S: AsRef<str>>(argv: &[S]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut next_is_secret = false;
    for a in argv {
        let a = a.as_ref();
        if next_is_secret {
            out.push(REDACTED.to_string());
            next_is_secret = false;
            continue;
        }
        if a.starts_with('-') && !a.contains('=') && is_secret_key(a) {
            next_is_secret = true;
            out.push(a.to_string());
            continue;
        }
        out.push(redact_text(a));
    }
    out
}

/// `KEY=VALUE` with a secret KEY becomes `KEY=<redacted>`; anything else is unchanged.
pub fn redact_text(s: &str) -> String {
    match s.split_once('=') {
        Some((k, _)) if is_secret_key(k) => format!("{k}={REDACTED}"),
        _ => s.to_string(),
    }
}

/// The secret values of an argv (what `redact_argv` hides), for scrubbing remote output.
pub fn secrets<S: AsRef<str>>(argv: &[S]) -> Vec<String> {
    let shown = redact_argv(argv);
    argv.iter()
        .zip(&shown)
        .filter(|(a, s)| a.as_ref() != s.as_str())
        .map(|(a, s)| {
            let a = a.as_ref();
            match s.strip_suffix(REDACTED).filter(|p| p.ends_with('=')) {
                Some(prefix) => a[prefix.len()..].to_string(),
                None => a.to_string(),
            }
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// `text` with every occurrence of a secret replaced (Proxmox may echo a rejected value).
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    // Longest first, so a secret containing another is hidden whole.
    let mut sorted: Vec<&String> = secrets.iter().collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in sorted {
        out = out.replace(s.as_str(), REDACTED);
    }
    out
}

/// The command line as vmctl shows it: quoted like the real one, secrets as `<redacted>`.
pub fn display_line<S: AsRef<str>>(argv: &[S]) -> String {
    let original: Vec<&str> = argv.iter().map(AsRef::as_ref).collect();
    redact_argv(argv)
        .iter()
        .zip(original)
        .map(|(shown, orig)| {
            if shown == REDACTED && orig != REDACTED {
                REDACTED.to_string()
            } else if let Some(k) = shown
                .strip_suffix(REDACTED)
                .and_then(|p| p.strip_suffix('='))
                .filter(|_| shown != orig)
            {
                format!("{}={REDACTED}", quote(k))
            } else {
                quote(shown)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn secret_options_are_hidden_in_every_form() {
        let argv = v(&[
            "qm",
            "set",
            "110",
            "--ciuser",
            "root",
            "--cipassword",
            "hunter2 'x'",
            "--description",
            "cipassword=also",
            "--api-token=abc",
            "--Password",
            "P",
        ]);
        assert_eq!(
            display_line(&argv),
            "qm set 110 --ciuser root --cipassword <redacted> --description \
             cipassword=<redacted> --api-token=<redacted> --Password <redacted>"
        );
        assert_eq!(secrets(&argv), ["hunter2 'x'", "also", "abc", "P"]);
        let shown = redact_argv(&argv);
        assert!(!shown.iter().any(|s| s.contains("hunter2")));
    }

    #[test]
    fn ordinary_lines_are_unchanged() {
        let argv = v(&["qm", "clone", "9001", "110", "--description", "it's $(x)"]);
        assert_eq!(display_line(&argv), crate::proxmox::command_line(&argv));
        assert!(secrets(&argv).is_empty());
        assert!(!is_secret_key("sshkeys") && !is_secret_key("ciuser"));
    }

    #[test]
    fn scrubbing_hides_echoed_values() {
        let s = scrub(
            "400 Parameter verification failed. cipassword: value 'hunter2' is bad\n",
            &["hunter2".into()],
        );
        assert_eq!(
            s,
            "400 Parameter verification failed. cipassword: value '<redacted>' is bad\n"
        );
    }
}
