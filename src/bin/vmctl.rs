//! The `vmctl` binary: every command.

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(vmctl::render::stdio::quiet_on_closed_output(
        vmctl::cli::main,
    ))
}
