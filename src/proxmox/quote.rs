//! The one helper that quotes remote arguments for the POSIX shell sshd hands the command to.
//!
//! SSH sends a command as one string which the remote user's shell parses again, so every
//! argument must survive that parse unchanged. POSIX single quotes are the only quoting with no
//! special characters inside: `'` itself is written as `'\''` (close, escaped quote, reopen).
//! Nothing else is needed, and nothing else is used anywhere in vmctl for remote commands.

/// Quotes one argument so a POSIX shell reads it back as exactly `arg`.
///
/// Plain words made only of characters no shell treats specially are left bare so dry-run
/// output stays readable (`qm start 110`); everything else is single-quoted.
pub fn quote(arg: &str) -> String {
    // `~` and `=` are left out of the bare set: some shells expand them at a word's start.
    let plain = !arg.is_empty()
        && arg.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'_' | b'.' | b'/' | b':' | b',' | b'+' | b'@' | b'%'
                )
        });
    if plain {
        return arg.to_string();
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('\'');
    for c in arg.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Joins an argv into the single command string sent over SSH, each argument quoted.
pub fn command_line<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A reader for the subset of POSIX shell words `command_line` emits: bare words and
    /// single-quoted strings, concatenated, separated by spaces, with `\'` outside quotes.
    /// It refuses anything else, so a bare special character makes the property fail.
    fn split_words(line: &str) -> Option<Vec<String>> {
        let mut words = Vec::new();
        let mut cur: Option<String> = None;
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                ' ' => {
                    if let Some(w) = cur.take() {
                        words.push(w);
                    }
                }
                '\'' => {
                    let w = cur.get_or_insert_with(String::new);
                    loop {
                        match chars.next()? {
                            '\'' => break,
                            c => w.push(c),
                        }
                    }
                }
                '\\' => {
                    let next = chars.next()?;
                    if next != '\'' {
                        return None;
                    }
                    cur.get_or_insert_with(String::new).push('\'');
                }
                c if c.is_ascii_alphanumeric() || "-_./:,+@%".contains(c) => {
                    cur.get_or_insert_with(String::new).push(c)
                }
                _ => return None,
            }
        }
        words.extend(cur);
        Some(words)
    }

    #[test]
    fn plain_words_stay_bare() {
        assert_eq!(command_line(&["qm", "start", "110"]), "qm start 110");
        assert_eq!(quote("nvmeprom:vm-110-disk-0"), "nvmeprom:vm-110-disk-0");
    }

    #[test]
    fn specials_are_single_quoted() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("$(reboot)"), "'$(reboot)'");
        assert_eq!(quote("`id`"), "'`id`'");
        assert_eq!(quote("*"), "'*'");
        assert_eq!(quote("~root"), "'~root'");
        assert_eq!(quote("a\nb"), "'a\nb'");
        assert_eq!(quote("x=1"), "'x=1'");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn command_line_round_trips(argv in proptest::collection::vec(".*", 0..6)) {
            let line = command_line(&argv);
            prop_assert_eq!(split_words(&line), Some(argv));
        }

        #[test]
        fn hostile_strings_round_trip(s in "[ '\"$`\\\\*?~#;&|<>(){}!\n\t=a-z\u{e9}\u{1F600}]{0,20}") {
            let line = command_line(&["qm", "set", "110", "--description", s.as_str()]);
            let words = split_words(&line).unwrap();
            prop_assert_eq!(&words[4], &s);
        }
    }
}
