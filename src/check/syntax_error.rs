//! NX001: the file is not valid Nix.

use super::{Cascade, Diagnostic, Rule, Severity};
use crate::model::fleet::Fleet;
use crate::syntax::Span;

pub const RULE: Rule = Rule {
    code: "NX001",
    name: "syntax-error",
    severity: Severity::Error,
    cascade: Cascade::Always,
    summary: "the file is not valid Nix",
    explanation: "\
## What it does
Reports every syntax error the Nix parser finds, at the exact place it stops making sense.

## Why
A file Nix cannot parse breaks `nix flake check`, every `nixos-rebuild` and vmctl itself.
vmlint keeps checking the rest of the file, so you see every problem at once.

## Example
```nix
{
  doc1 = { hostname = \"doc1\"; }   # missing `;` after the closing brace
  igpu = { hostname = \"igpu\"; };
}
```

## Fix
Add the missing token the message names (often a `;` after an attribute value or a closing
`}`/`]`). Nothing is fixed automatically.
",
};

/// Syntax errors reported per file; the rest are counted in one more diagnostic. Past the
/// first few, a parser's errors are echoes of the first ones, and a pathological file (20,000
/// broken lines) must not print megabytes.
pub const MAX_PER_FILE: usize = 20;

pub fn check(fleet: &Fleet, out: &mut Vec<Diagnostic>) {
    let mut seen: std::collections::HashMap<crate::syntax::FileId, usize> = Default::default();
    for f in &fleet.files {
        for (file, e) in &f.eval.syntax_errors {
            let n = seen.entry(*file).or_default();
            *n += 1;
            if *n <= MAX_PER_FILE {
                out.push(Diagnostic::new(
                    &RULE,
                    Span::new(*file, e.range),
                    e.message.clone(),
                ));
            }
        }
    }
    for f in &fleet.files {
        for (file, e) in &f.eval.syntax_errors {
            let Some(n) = seen.remove(file).filter(|n| *n > MAX_PER_FILE) else {
                continue;
            };
            // Pointed at the last error, so it sorts after the ones shown.
            let last = f
                .eval
                .syntax_errors
                .iter()
                .rev()
                .find(|(id, _)| id == file)
                .map_or(e.range, |(_, e)| e.range);
            out.push(
                Diagnostic::new(
                    &RULE,
                    Span::new(*file, last),
                    format!(
                        "{} more syntax errors in this file are not shown",
                        n - MAX_PER_FILE
                    ),
                )
                .help("fix the first errors and run vmlint again"),
            );
        }
    }
}
