//! The `connected-apps` binary: parse the command line, build the application, run.

use clap::Parser;
use connected_apps::cli::Cli;

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
