//! Logging: human-readable by default, JSON lines with `--log-json`. Every request runs in a
//! `request{request_id, method}` span (see `routes::ops::observe`); query strings, bodies and
//! secrets are never logged.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::configuration::Settings;

/// Installs the global subscriber (once; later calls are ignored, which tests rely on).
pub fn init(settings: &Settings) {
    let filter =
        EnvFilter::try_new(&settings.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if settings.log_json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
