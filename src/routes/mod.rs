//! The whole route table, on one screen. Handlers live in one file per family.

mod auth;
pub(crate) mod call;
mod client;
mod cors;
mod desk;
pub(crate) mod errors;
mod method;
pub(crate) mod oauth;
mod ops;
mod presets;
mod resource;
pub(crate) mod route_table;
mod rpc;
mod v2;

use actix_web::web;

pub use call::{data, message};
pub use cors::cors;
pub use errors::{frappe_errors, report};
pub use method::METHODS;
pub use ops::observe;
pub use route_table::RouteTable;
pub use rpc::frappe_rpc;

/// Registers every route; `body_limit` caps request bodies (413 beyond it).
pub fn configure(cfg: &mut web::ServiceConfig, body_limit: usize) {
    cfg.app_data(web::PayloadConfig::new(body_limit));
    let mut t = RouteTable::new(Some(cfg));
    table(&mut t);
    if let Some(cfg) = t.cfg {
        cfg.default_service(web::route().to(route_table::not_found));
    }
}

/// Every `(method, path pattern)` the router serves, in matching order; `*` is any method.
/// `/api/method/{method}` stands for the names in [`METHODS`].
pub fn route_list() -> Vec<(&'static str, String)> {
    let mut t = RouteTable::new(None);
    table(&mut t);
    t.list
}

fn table(t: &mut RouteTable) {
    t.get("/healthz", ops::healthz)
        .get("/readyz", ops::readyz)
        .get("/metrics", ops::metrics)
        .get("/api/method/ping", auth::ping)
        .any(
            "/api/method/frappe.integrations.doctype.connected_app.connected_app.callback/{app}",
            oauth::callback,
        )
        .any("/api/method/{method}", method::dispatch)
        .any("/api/v2/method/{method:.*}", v2::method);
    resource::routes(t, "/api/resource");
    resource::routes(t, "/api/v1/resource");
    v2::routes(t);
    crate::ui::routes(t);
}
