//! The `vmctl` binary: every command.

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = vmctl::cli::Cli::parse();
    match vmctl::cli::run(cli) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(report) => {
            eprintln!("{report:?}");
            std::process::ExitCode::from(1)
        }
    }
}
