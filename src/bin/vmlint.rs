//! The `vmlint` binary: the linter alone, for editors, pre-commit hooks and `nix flake check`.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(vmctl::cli::lint::vmlint_main())
}
