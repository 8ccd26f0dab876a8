//! Frappe's `allow_cors` (`frappe.app.set_cors_headers`): pages of a listed origin may call the
//! API with the user's cookies. Their responses carry `Access-Control-Allow-Origin` (that
//! origin), `-Allow-Credentials: true` and `Vary: Origin`; a preflight (`OPTIONS`) from them
//! is answered here with the method and headers it asks for. Nothing changes for anyone when
//! `allow_cors` is empty, which is the default.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

use crate::state::AppState;

/// The middleware.
pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let allowed = req
        .app_data::<web::Data<AppState>>()
        .filter(|s| !s.settings.allow_cors.is_empty())
        .and_then(|s| {
            let origin = req.headers().get(header::ORIGIN)?.to_str().ok()?;
            crate::auth::csrf::is_allowed(s, origin).then(|| origin.to_string())
        });
    let Some(origin) = allowed else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let origin = HeaderValue::from_str(&origin).ok();
    if req.method() == Method::OPTIONS {
        let mut res = HttpResponse::Ok().finish();
        let h = res.headers_mut();
        add(h, origin);
        copy(
            req.headers(),
            "access-control-request-method",
            h,
            header::ACCESS_CONTROL_ALLOW_METHODS,
        );
        copy(
            req.headers(),
            "access-control-request-headers",
            h,
            header::ACCESS_CONTROL_ALLOW_HEADERS,
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
        return Ok(req.into_response(res).map_into_right_body());
    }
    let mut res = next.call(req).await?;
    add(res.headers_mut(), origin);
    Ok(res.map_into_left_body())
}

fn add(h: &mut HeaderMap, origin: Option<HeaderValue>) {
    if let Some(o) = origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}

fn copy(from: &HeaderMap, name: &str, to: &mut HeaderMap, as_name: HeaderName) {
    if let Some(v) = from.get(name) {
        to.insert(as_name, v.clone());
    }
}
