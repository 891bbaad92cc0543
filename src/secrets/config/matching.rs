//! Which rule a file falls under, as sops decides: the path matched (relative to the config
//! directory, cleaned as Go cleans it) and `path_regex` read as Go's RE2 reads it.

use std::path::Path;

/// The path sops matches `path_regex` against: the file's absolute path with the config
/// directory's absolute path (and the separator) trimmed off the front. Both are cleaned first
/// as Go's `filepath.Abs` cleans them (`..`, `.`, repeated slashes), so `secrets/../x.yaml`
/// matches as `x.yaml` does in sops. The trim is textual, as sops's `strings.TrimPrefix`: a
/// file outside the config's directory keeps its absolute path.
pub fn path_for_matching(config_dir: &Path, file: &Path) -> String {
    let dir = clean(&config_dir.to_string_lossy().replace('\\', "/"));
    let file = clean(&file.to_string_lossy().replace('\\', "/"));
    match file.strip_prefix(&format!("{dir}/")) {
        Some(rel) => rel.to_string(),
        None => file,
    }
}

/// Go's `path.Clean`: the shortest path equal to `p` by purely lexical processing. Repeated
/// slashes become one, `.` elements go, an element followed by `..` goes with it, `..` at the
/// start of a rooted path goes, and an empty result is `.`. Symlinks are not looked at (sops
/// does not either).
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => match out.last() {
                Some(&last) if last != ".." => {
                    out.pop();
                }
                // `/..` is `/`; a relative path keeps leading `..`s.
                _ if rooted => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// A Go RE2 pattern (what sops compiles `path_regex` with) in the syntax of Rust's `regex`,
/// which is the same language but for two spellings only Go accepts: `\Q…\E` quoting, and a
/// `{` that does not start a valid repetition (`a{,3}`, `x{y}`), which Go reads as a literal.
pub fn go_regex(re: &str) -> String {
    let b = re.as_bytes();
    let mut out = String::with_capacity(re.len());
    let mut i = 0;
    let mut class = false;
    while i < b.len() {
        let c = re[i..].chars().next().expect("in bounds");
        match c {
            '\\' if !class && re[i..].starts_with("\\Q") => {
                let body = &re[i + 2..];
                let end = body.find("\\E").unwrap_or(body.len());
                out.push_str(&regex::escape(&body[..end]));
                i += 2 + end + if end < body.len() { 2 } else { 0 };
                continue;
            }
            '\\' => {
                // An escape: copy it whole, so `\[`, `\{` and `\\` are never read as syntax.
                let next = re[i + 1..].chars().next();
                out.push('\\');
                if let Some(n) = next {
                    out.push(n);
                    i += 1 + n.len_utf8();
                } else {
                    i += 1;
                }
                continue;
            }
            '[' if !class => {
                class = true;
                out.push('[');
                i += 1;
                // `]` right after `[` or `[^` is a literal member.
                if re[i..].starts_with('^') {
                    out.push('^');
                    i += 1;
                }
                if re[i..].starts_with(']') {
                    out.push(']');
                    i += 1;
                }
                continue;
            }
            '[' if class && re[i..].starts_with("[:") => {
                // A POSIX class like `[:alpha:]` inside a bracket expression.
                let end = re[i + 2..].find(":]").map_or(1, |e| e + 4);
                out.push_str(&re[i..i + end]);
                i += end;
                continue;
            }
            ']' if class => class = false,
            '{' if !class => {
                let rest = &re[i + 1..];
                let close = rest.find('}');
                let valid = close.is_some_and(|e| {
                    let inner = &rest[..e];
                    let (min, max) = inner.split_once(',').unwrap_or((inner, "0"));
                    !min.is_empty()
                        && min.bytes().all(|d| d.is_ascii_digit())
                        && max.bytes().all(|d| d.is_ascii_digit())
                });
                if !valid {
                    out.push_str("\\{");
                    i += 1;
                    continue;
                }
            }
            _ => {}
        }
        out.push(c);
        i += c.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_path_is_relative_to_the_config_dir() {
        let dir = Path::new("/repo");
        assert_eq!(
            path_for_matching(dir, Path::new("/repo/secrets/a.yaml")),
            "secrets/a.yaml"
        );
        assert_eq!(
            path_for_matching(dir, Path::new("/other/a.yaml")),
            "/other/a.yaml"
        );
    }

    #[test]
    fn go_only_regex_spellings_compile_and_match_as_in_go() {
        let m = |re: &str, path: &str| regex::Regex::new(&go_regex(re)).unwrap().is_match(path);
        // \Q…\E quotes: the dot is literal.
        assert!(m(r"^secrets/\Qa.b\E$", "secrets/a.b"));
        assert!(!m(r"^secrets/\Qa.b\E$", "secrets/axb"));
        assert!(m(r"\Q(x", "a(x"));
        // A `{` that is no repetition is a literal in Go.
        assert!(m(r"^a{,3}$", "a{,3}"));
        assert!(m(r"^x{y}$", "x{y}"));
        // Real repetitions, classes and escapes are untouched.
        assert_eq!(go_regex(r"a{2,3}b{4}c{5,}"), r"a{2,3}b{4}c{5,}");
        assert_eq!(go_regex(r"[{]\{[[:alpha:]]"), r"[{]\{[[:alpha:]]");
        assert_eq!(
            go_regex(r"secrets/[^/]+\.(yaml|json)$"),
            r"secrets/[^/]+\.(yaml|json)$"
        );
        assert_eq!(go_regex(r"[]a]{2}"), r"[]a]{2}");
    }

    #[test]
    fn paths_are_cleaned_as_go_cleans_them() {
        // The cases of Go's path.Clean tests (src/path/path_test.go).
        for (input, want) in [
            ("", "."),
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            ("a/b/c", "a/b/c"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("/abc/", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("//abc//", "/abc"),
            ("abc//", "abc"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/.", "abc"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
        ] {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }
}
