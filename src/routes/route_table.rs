//! [`RouteTable`]: registers a route on the app and lists it for the API spec test, so the
//! list is the router itself; and the answer to a path no route matches.

use actix_web::http::Method;
use actix_web::{web, FromRequest, Handler, HttpRequest, HttpResponse, Responder};

use crate::error::AppError;

/// Registers routes on the app (when given a `ServiceConfig`) and lists them, so the list the
/// API spec is checked against is the router itself.
pub struct RouteTable<'a> {
    pub(super) cfg: Option<&'a mut web::ServiceConfig>,
    pub(super) list: Vec<(&'static str, String)>,
}

impl<'a> RouteTable<'a> {
    pub(super) fn new(cfg: Option<&'a mut web::ServiceConfig>) -> Self {
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

/// Unknown routes: 404 in Frappe's shape.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    if req.path().starts_with("/api/v2") {
        return HttpResponse::NotFound().json(AppError::not_found_bare().v2_body());
    }
    HttpResponse::NotFound().json(AppError::not_found_bare().v1_body())
}
