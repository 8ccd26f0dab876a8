//! Errors raised by the framework itself (a body over the limit, an undecodable path, …) get
//! Frappe's error shape too: a client never sees a bare text error.

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::HttpResponse;

use crate::error::AppError;

/// The middleware: rewrites non-JSON, non-HTML error responses into Frappe's JSON shape.
pub fn frappe_errors<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(rewrite)
}

fn rewrite<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let ct = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/json")
        || ct.starts_with("text/html")
        || res.status().is_redirection()
    {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let err = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            AppError::thrown(status, "ValidationError", "The request body is too large.")
        }
        StatusCode::NOT_FOUND => AppError::not_found_bare(),
        StatusCode::METHOD_NOT_ALLOWED => AppError::not_permitted(),
        s if s.is_server_error() => AppError::internal(&format!("framework error {s}")),
        s => AppError::thrown(s, "ValidationError", "The request could not be read."),
    };
    let v2 = res.request().path().starts_with("/api/v2");
    let body = if v2 { err.v2_body() } else { err.v1_body() };
    let (req, _) = res.into_parts();
    let mut response = HttpResponse::build(status).json(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let res: ServiceResponse<BoxBody> = ServiceResponse::new(req, response);
    Ok(ErrorHandlerResponse::Response(
        res.map_into_right_body::<B>().map_body(|_, b| match b {
            EitherBody::Left { body } => EitherBody::Left { body },
            EitherBody::Right { body } => EitherBody::Right { body },
        }),
    ))
}
