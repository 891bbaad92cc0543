//! Remote output made safe for a terminal: escape sequences (colours, cursor moves, window
//! titles, OSC 52 clipboard writes) and other control characters are removed before anything
//! a remote host printed is shown, so a hostile or broken host cannot rewrite what the user
//! sees or reach the terminal itself.

/// `s` without terminal control sequences: CSI, OSC, DCS/SOS/PM/APC strings and other escapes,
/// C1 controls, DEL and C0 controls other than newline and tab (a lone carriage return could
/// overwrite a line; `\r\n` becomes `\n`).
pub fn strip_control(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates, then one final byte 0x40–0x7E.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC, DCS, SOS, PM, APC: a string ended by BEL or ST (ESC \).
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                // Two-character escapes (ESC c, ESC 7, …), and character set selections.
                Some('(' | ')' | '*' | '+' | '#' | '%') => {
                    chars.next();
                }
                Some(_) | None => {}
            },
            // 8-bit CSI and string introducers.
            '\u{9b}' => {
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn removes_sequences_and_keeps_text() {
        assert_eq!(strip_control("\u{1b}[31mred\u{1b}[0m\n"), "red\n");
        assert_eq!(strip_control("a\u{1b}]0;title\u{7}b"), "ab");
        assert_eq!(strip_control("a\u{1b}]52;c;aGk=\u{1b}\\b"), "ab");
        assert_eq!(strip_control("x\u{1b}[2J\u{1b}[Hy"), "xy");
        assert_eq!(strip_control("ok\rFAKE"), "okFAKE");
        assert_eq!(strip_control("line\r\nnext\ttab"), "line\nnext\ttab");
        assert_eq!(
            strip_control("bell\u{7}del\u{7f}c1\u{9b}31m."),
            "belldelc1."
        );
        assert_eq!(strip_control("é 中文 😀"), "é 中文 😀");
    }

    proptest! {
        #[test]
        fn nothing_controlling_survives(s in "\\PC*|[\u{0}-\u{9f}a-z]{0,40}") {
            let out = strip_control(&s);
            prop_assert!(out.chars().all(|c| !c.is_control() || c == '\n' || c == '\t'));
        }
    }
}
