//! The `vmlint` binary: the linter alone, for editors, pre-commit hooks and `nix flake check`.

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(vmctl::render::stdio::quiet_on_closed_output(
        vmctl::cli::lint::vmlint_main,
    ))
}
