//! The `connected-apps` binary: parse the command line, build the application, run.

use connected_apps::cli::Command;

/// Requests allocate many small strings and JSON values; mimalloc serves them several times
/// cheaper than glibc's allocator across the worker threads (measured with `bench/run`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let mut cli = connected_apps::cli::parse();
    // Server options go after `serve` or, as earlier versions took them, before it.
    let server = match &mut cli.command {
        Command::Serve { server, .. } => std::mem::take(server).or(cli.server.clone()),
        _ => cli.server.clone(),
    };
    let settings = match cli.global.settings(&server) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    connected_apps::telemetry::init(&settings);
    let result =
        actix_web::rt::System::new().block_on(connected_apps::commands::run(cli.command, settings));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
