//! The `vmctl` binary: every command.

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let code = vmctl::render::stdio::quiet_on_closed_output(|| {
        let cli = vmctl::cli::Cli::parse();
        match vmctl::cli::run(cli) {
            Ok(code) => code,
            Err(report) => {
                vmctl::render::stdio::err(&format!("{report:?}\n"));
                1
            }
        }
    });
    std::process::ExitCode::from(code)
}
