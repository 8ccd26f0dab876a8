//! The whole route table, on one screen. Handlers live in one file per family.

mod auth;
mod client;
mod desk;
mod method;
mod oauth;
mod resource;
mod v2;

use actix_web::web;

pub use method::{data, message};

/// Registers every route; `body_limit` caps request bodies (413 beyond it).
pub fn configure(cfg: &mut web::ServiceConfig, body_limit: usize) {
    cfg.app_data(web::PayloadConfig::new(body_limit))
        .route("/api/method/ping", web::get().to(auth::ping))
        .route(
            "/api/method/frappe.integrations.doctype.connected_app.connected_app.callback/{app}",
            web::route().to(oauth::callback),
        )
        .route("/api/method/{method}", web::route().to(method::dispatch))
        .route("/api/v2/method/{method:.*}", web::route().to(v2::method))
        .service(resource::scope("/api/resource"))
        .service(resource::scope("/api/v1/resource"))
        .service(v2::scope())
        .default_service(web::route().to(method::not_found));
}
