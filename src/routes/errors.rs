//! The HTTP edge of errors: an [`AppError`] becomes Frappe's v1 body (or v2's `{"errors":[…]}`
//! through [`V2Error`]) with its status and `Retry-After`, and is logged here, once, with its
//! cause chain. Errors raised by the framework itself (a body over the limit, an undecodable
//! path, …) get Frappe's error shape too: a client never sees a bare text error.

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Map, Value};

use crate::error::{AppError, ExcType, ServerMessage, Status};

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
            AppError::thrown(ExcType::ValidationError, "The request body is too large.")
                .with_status(Status(status.as_u16()))
        }
        StatusCode::NOT_FOUND => AppError::not_found_bare(),
        StatusCode::METHOD_NOT_ALLOWED => AppError::not_permitted(),
        s if s.is_server_error() => AppError::internal(format!("framework error {s}")),
        s => AppError::thrown(ExcType::ValidationError, "The request could not be read.")
            .with_status(Status(s.as_u16())),
    };
    report(&err);
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

/// Logs an error where it becomes an answer, once: a 500 with its cause chain, a 503 of an
/// unavailable dependency with its cause; other errors are the client's and are not logged.
pub fn report(e: &AppError) {
    let Some(cause) = &e.cause else {
        return;
    };
    let chain = crate::error::cause_chain(cause.as_ref());
    match (e.status, e.exc_type) {
        (Status::INTERNAL_SERVER_ERROR, _) => tracing::error!(error = %chain, "internal error"),
        (_, ExcType::QueryDeadlockError) => tracing::debug!(error = %chain, "write conflict"),
        (Status::SERVICE_UNAVAILABLE, _) => {
            tracing::warn!(error = %chain, "dependency unavailable")
        }
        _ => {}
    }
}

impl From<Status> for StatusCode {
    fn from(s: Status) -> StatusCode {
        StatusCode::from_u16(s.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

fn respond(e: &AppError, body: Value) -> HttpResponse {
    report(e);
    let mut r = HttpResponse::build(e.status.into());
    if let Some(secs) = e.retry_after {
        r.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
    r.json(body)
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.status.into()
    }

    fn error_response(&self) -> HttpResponse {
        respond(self, self.v1_body())
    }
}

/// An `AppError` rendered in API v2's `{"errors":[…]}` shape.
#[derive(Debug)]
pub struct V2Error(pub AppError);

impl From<AppError> for V2Error {
    fn from(e: AppError) -> Self {
        V2Error(e)
    }
}

impl std::fmt::Display for V2Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for V2Error {
    fn status_code(&self) -> StatusCode {
        self.0.status.into()
    }

    fn error_response(&self) -> HttpResponse {
        respond(&self.0, self.0.v2_body())
    }
}

impl AppError {
    /// The v1 body: `{exception, exc_type, exc, _server_messages, _error_message}` (present keys only).
    pub fn v1_body(&self) -> Value {
        let mut m = Map::new();
        if let Some(msg) = &self.message {
            m.insert("message".into(), Value::String(msg.clone()));
        }
        if let Some(exc) = &self.exception {
            m.insert("exception".into(), Value::String(exc.clone()));
        }
        m.insert(
            "exc_type".into(),
            Value::String(self.exc_type.name().into()),
        );
        if let Some(exc) = &self.exception {
            // Frappe puts the traceback here (a JSON list of strings); this service sends only
            // its last line, `module.Class: message`, which is what `frappe-client` raises
            // `FrappeException` with and what a Python caller reads.
            m.insert("exc".into(), Value::String(json!([exc]).to_string()));
        }
        if !self.messages.is_empty() {
            m.insert(
                "_server_messages".into(),
                Value::String(self.server_messages_json()),
            );
        }
        if let Some(em) = &self.error_message {
            m.insert("_error_message".into(), Value::String(em.clone()));
        }
        Value::Object(m)
    }

    /// `_server_messages`: a JSON list of JSON-encoded message objects.
    pub fn server_messages_json(&self) -> String {
        let list: Vec<Value> = self
            .messages
            .iter()
            .map(|m| Value::String(m.to_json().to_string()))
            .collect();
        Value::Array(list).to_string()
    }

    /// The v2 body: `{"errors":[{type, exception, message, title, indicator}]}`.
    pub fn v2_body(&self) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), Value::String(self.exc_type.name().into()));
        if let Some(exc) = &self.exception {
            m.insert("exception".into(), Value::String(exc.clone()));
        }
        if let Some(msg) = self.messages.last() {
            m.insert("message".into(), Value::String(msg.message.clone()));
            m.insert("title".into(), Value::String(msg.title.into()));
            if msg.raised {
                m.insert("indicator".into(), json!("red"));
            }
        }
        let mut body = Map::new();
        body.insert("errors".into(), json!([Value::Object(m)]));
        // Earlier messages (printed before the exception was raised) travel beside the error.
        if self.messages.len() > 1 {
            let earlier: Vec<Value> = self.messages[..self.messages.len() - 1]
                .iter()
                .map(ServerMessage::to_json)
                .collect();
            body.insert("messages".into(), Value::Array(earlier));
        }
        Value::Object(body)
    }
}
