//! The whole route table, on one screen. Handlers live in one file per family.

mod auth;
mod client;
mod cors;
mod desk;
mod errors;
mod method;
pub(crate) mod oauth;
mod ops;
mod presets;
mod resource;
mod rpc;
mod v2;

use actix_web::http::Method;
use actix_web::{web, FromRequest, Handler, Responder};

pub use cors::cors;
pub use errors::{frappe_errors, report};
pub use method::{data, message, METHODS};
pub use ops::observe;
pub use rpc::frappe_rpc;

/// Registers every route; `body_limit` caps request bodies (413 beyond it).
pub fn configure(cfg: &mut web::ServiceConfig, body_limit: usize) {
    cfg.app_data(web::PayloadConfig::new(body_limit));
    let mut t = RouteTable::new(Some(cfg));
    table(&mut t);
    if let Some(cfg) = t.cfg {
        cfg.default_service(web::route().to(method::not_found));
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

/// Registers routes on the app (when given a `ServiceConfig`) and lists them, so the list the
/// API spec is checked against is the router itself.
pub struct RouteTable<'a> {
    cfg: Option<&'a mut web::ServiceConfig>,
    list: Vec<(&'static str, String)>,
}

impl<'a> RouteTable<'a> {
    fn new(cfg: Option<&'a mut web::ServiceConfig>) -> Self {
        Self {
            cfg,
            list: Vec::new(),
        }
    }

    /// `method` is `None` for any method; `label` is how `route_list` names it.
    fn add<F, Args>(
        &mut self,
        method: Option<Method>,
        label: &'static str,
        path: &str,
        handler: F,
    ) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.list.push((label, path.to_string()));
        if let Some(cfg) = self.cfg.as_deref_mut() {
            let route = match method {
                None => web::route(),
                Some(m) => web::method(m),
            };
            cfg.route(path, route.to(handler));
        }
        self
    }

    pub fn get<F, Args>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Some(Method::GET), "GET", path, handler)
    }

    pub fn post<F, Args>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Some(Method::POST), "POST", path, handler)
    }

    pub fn put<F, Args>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Some(Method::PUT), "PUT", path, handler)
    }

    pub fn patch<F, Args>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Some(Method::PATCH), "PATCH", path, handler)
    }

    pub fn delete<F, Args>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Some(Method::DELETE), "DELETE", path, handler)
    }

    /// Any HTTP method (Frappe's `/api/method` accepts them all).
    pub fn any<F, Args>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(None, "*", path, handler)
    }
}
