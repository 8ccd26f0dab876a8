//! Logging: human-readable by default, JSON lines with `--log-json`.

use tracing_subscriber::EnvFilter;

use crate::configuration::Settings;

/// Installs the global subscriber (once; later calls are ignored, which tests rely on).
pub fn init(settings: &Settings) {
    let filter =
        EnvFilter::try_new(&settings.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if settings.log_json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
