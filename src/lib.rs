//! connected-apps: Frappe's Connected App and Token Cache as a standalone service.

pub mod auth;
pub mod cli;
pub mod commands;
pub mod configuration;
pub mod db;
pub mod doc;
pub mod doctype;
pub mod error;
pub mod frappe;
pub mod import;
pub mod metrics;
pub mod oauth;
pub mod routes;
pub mod secrets;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod ui;
