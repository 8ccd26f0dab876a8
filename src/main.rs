//! The `connected-apps` binary: parse the command line, build the application, run.

use clap::Parser;
use connected_apps::cli::Cli;

/// Requests allocate many small strings and JSON values; mimalloc serves them several times
/// cheaper than glibc's allocator across the worker threads (measured with `bench/run`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let settings = match cli.global.settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    connected_apps::telemetry::init(&settings);
    let result =
        actix_web::rt::System::new().block_on(connected_apps::commands::run(cli.command, settings));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
