//! `vmctl lint` / `vmlint` and `vmctl explain`.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use super::ui::Ui;
use super::Global;
use crate::check::{rule, rules};
use crate::exec::lint::{lint, NixFallback};
use crate::model::fleet::NixRole;
use crate::render::{self, stdio, Counts};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Source snippets with the exact span underlined, notes and help.
    Human,
    /// A JSON array, one object per diagnostic (see docs/json-output.md).
    Json,
    /// SARIF 2.1.0, for GitHub code scanning (see docs/editors.md).
    Sarif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// vms/definitions.nix
    Definitions,
    /// hosts.nix
    Hosts,
    /// Any Nix file: syntax and evaluation only.
    Nix,
}

/// Check fleet files and report every problem at its exact source location.
///
/// With no PATH, lints the fleet found by walking up from the current directory
/// (the directory holding vms/definitions.nix): definitions.nix, hosts.nix and the
/// hosts/ directory. A PATH may be a fleet directory or a single file; a file is read
/// by its name (definitions.nix, hosts.nix) unless --as says otherwise.
///
/// Exit status: 0 when there are no errors (warnings allowed unless --deny-warnings),
/// 1 when there are errors, 2 when the files cannot be read or the usage is wrong.
#[derive(Debug, Clone, clap::Args)]
pub struct LintArgs {
    /// Files or fleet directories to check.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Treat warnings as errors for the exit status.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Read every given file as this kind of fleet file.
    #[arg(long = "as", value_enum, value_name = "KIND")]
    pub role: Option<Role>,
    /// Apply the safe fixes (under the fleet lock), then report what is left.
    #[arg(long)]
    pub fix: bool,
    /// Apply the unsafe fixes too (a renamed field, another VMID, a replaced recipient).
    #[arg(long)]
    pub unsafe_fixes: bool,
    /// Print the fixes --fix (or --unsafe-fixes) would apply as a diff; write nothing. Exit 1
    /// when there is something to fix.
    #[arg(long)]
    pub diff: bool,
}

/// Print the explanation of a diagnostic code.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// Diagnostic code (e.g. VM001) or rule name (e.g. duplicate-vmid).
    #[arg(required_unless_present_any = ["list", "markdown"])]
    pub code: Option<String>,
    /// List every code with its one-line summary.
    #[arg(long, conflicts_with = "markdown")]
    pub list: bool,
    /// Print every rule as the Markdown reference (docs/diagnostics.md).
    #[arg(long)]
    pub markdown: bool,
}

pub fn run(args: LintArgs, g: &Global) -> miette::Result<u8> {
    Ok(run_lint(args, &g.ui, g.fleet.as_deref()))
}

/// Runs lint and prints the result; returns the exit code. A failure to read the files is
/// exit 2, reported as the error object on stdout with `--format json`.
pub fn run_lint(args: LintArgs, ui: &Ui, fleet_root: Option<&std::path::Path>) -> u8 {
    let fail = |msg: String| {
        if args.format == Format::Json {
            stdio::out(&format!(
                "{}\n",
                super::error_json(
                    &msg,
                    None,
                    Some("check the paths given and that the files are readable"),
                    2
                )
            ));
        }
        stdio::err(&format!("error: {msg}\n"));
        2
    };
    let cwd = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => return fail(format!("cannot read the current directory: {e}")),
    };
    let mut paths = args.paths.clone();
    if paths.is_empty() {
        if let Some(root) = fleet_root {
            paths.push(root.to_path_buf());
        }
    }
    let role = args.role.map(|r| match r {
        Role::Definitions => NixRole::Definitions,
        Role::Hosts => NixRole::Hosts,
        Role::Nix => NixRole::Other,
    });
    let nix = if ui.no_nix {
        NixFallback::Off
    } else {
        NixFallback::from_env()
    };
    if args.fix || args.unsafe_fixes || args.diff {
        let mode = if args.unsafe_fixes {
            crate::check::FixMode::Unsafe
        } else {
            crate::check::FixMode::Safe
        };
        return match super::lint_fix::run(mode, args.diff, &paths, role, &cwd, &nix, fleet_root) {
            Ok(super::lint_fix::Fixed::Diff(code)) => code,
            Ok(super::lint_fix::Fixed::Written(run)) => report(&args, ui, &cwd, *run),
            Err(e) => fail(e),
        };
    }
    let run = match lint(&paths, role, &cwd, &nix) {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    report(&args, ui, &cwd, run)
}

/// Prints a lint run in the chosen format; returns the exit code.
fn report(args: &LintArgs, ui: &Ui, cwd: &std::path::Path, run: crate::exec::lint::LintRun) -> u8 {
    for i in 0..run.fleet.db.len() {
        let path = run.fleet.db.path(crate::syntax::FileId(i as u32));
        let shown = path.strip_prefix(cwd).unwrap_or(path);
        super::ui::detail(&format!("read {}", shown.display()));
    }
    let counts = Counts::of(&run.diagnostics);
    match args.format {
        Format::Json => {
            stdio::out(&render::json::render(&run.fleet.db, &run.diagnostics));
            stdio::out("\n");
        }
        Format::Sarif => {
            stdio::out(&render::sarif::render(&run.fleet.db, &run.diagnostics));
            stdio::out("\n");
        }
        Format::Human => {
            stdio::out(&render::human::render(
                &run.fleet.db,
                &run.diagnostics,
                ui.color.stdout(),
            ));
            let files = run.fleet.db.len();
            let what = if files == 1 { "file" } else { "files" };
            super::ui::info(&format!(
                "vmlint: checked {files} {what}: {}",
                counts.summary()
            ));
        }
    }
    let code = if counts.errors > 0 || (args.deny_warnings && counts.warnings > 0) {
        1
    } else {
        0
    };
    // The process exits next: freeing a large fleet's trees one by one is wasted time.
    std::mem::forget(run);
    code
}

pub fn explain(args: ExplainArgs) -> miette::Result<u8> {
    if args.markdown {
        print!("{}", diagnostics_markdown());
        return Ok(0);
    }
    if args.list {
        for r in rules() {
            println!(
                "{}  {:<8} {:<32} {}",
                r.code,
                r.severity.as_str(),
                r.name,
                r.summary
            );
        }
        return Ok(0);
    }
    let code = args.code.unwrap_or_default();
    match rule(&code) {
        Some(r) => {
            println!(
                "{} {} ({})\n\n{}\n\n{}",
                r.code,
                r.name,
                r.severity.as_str(),
                r.summary,
                r.explanation.trim_end()
            );
            Ok(0)
        }
        None => {
            eprintln!(
                "error: unknown diagnostic code `{code}`; `vmctl explain --list` shows every code"
            );
            Ok(2)
        }
    }
}

/// The Markdown reference of every rule: what `docs/diagnostics.md` holds.
pub fn diagnostics_markdown() -> String {
    let mut s = String::from(
        "# Diagnostic codes\n\n<!-- Generated by `vmctl explain --markdown`; do not edit by hand. -->\n\n\
         Families: `NX` Nix syntax and evaluation, `DF` definitions.nix structure, `VM` VM constraints,\n\
         `HS` hosts.nix, `SP` .sops.yaml, `FL` cross-file fleet consistency. Codes are stable and never reused.\n\n\
         | code | name | severity | summary |\n|---|---|---|---|\n",
    );
    for r in rules() {
        s.push_str(&format!(
            "| [{}](#{}) | `{}` | {} | {} |\n",
            r.code,
            r.code.to_lowercase(),
            r.name,
            r.severity.as_str(),
            r.summary
        ));
    }
    for r in rules() {
        let body = r
            .explanation
            .trim_end()
            .replace("\n## ", "\n#### ")
            .replacen("## ", "#### ", 1);
        s.push_str(&format!(
            "\n## {}\n\n`{}` · {}\n\n{}\n",
            r.code,
            r.name,
            r.severity.as_str(),
            body
        ));
    }
    s
}

/// The `vmlint` binary's command line.
#[derive(Debug, Parser)]
#[command(
    name = "vmlint",
    version = env!("VMCTL_VERSION"),
    max_term_width = 100,
    after_long_help = "Examples:
  vmlint                                      # the fleet around the current directory
  vmlint vms/definitions.nix hosts.nix --format json
  vmlint --deny-warnings --no-nix             # for a pre-commit hook
  vmlint --diff --unsafe-fixes                # what the fixes would change
  vmlint --fix                                # apply the safe fixes
  vmlint --format sarif > vmlint.sarif        # for GitHub code scanning"
)]
struct VmlintCli {
    #[command(flatten)]
    args: LintArgs,
    #[command(flatten)]
    ui: Ui,
}

/// Entry point of the `vmlint` binary.
pub fn vmlint_main() -> u8 {
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match VmlintCli::try_parse_from(&raw) {
        Ok(c) => c,
        Err(e) => return super::parse_failure(e, &raw),
    };
    cli.ui.install();
    run_lint(cli.args, &cli.ui, None)
}
