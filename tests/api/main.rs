//! Black-box tests of the real service: each test builds the application on a random port
//! against its own fresh database (SQLite file or MariaDB database) and talks HTTP to it.

// A test fails by panicking: unwrap and expect are how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/provider.rs"]
mod provider;

mod helpers;

mod api_spec;
mod app_settings;
mod browser;
mod cli;
mod client_auth;
mod compat;
mod csrf;
mod errors;
mod first_hour;
mod foundation;
mod frappe_calls;
mod frappe_clients;
mod galera;
mod health;
mod hostile;
mod injection;
mod isolation;
mod keepalive;
mod limits;
mod lists;
mod migration;
mod misbehaving_provider;
mod oauth_concurrency;
mod oauth_flow;
mod oauth_tokens;
mod operations;
mod outage;
mod outbound;
mod presets;
mod provider_quirks;
mod replay;
mod rest;
mod rotation_load;
mod schemathesis;
mod secrets_leak;
mod storage;
mod throttle;
mod token_identity;
mod two_process_load;
mod versions;
