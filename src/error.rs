//! The one error type at the HTTP edge, rendered as Frappe's v1 and v2 error bodies.
//!
//! Policy: store code returns `AppError` built from diesel errors; 500s are opaque to clients
//! and logged once with their cause; no error body ever carries a traceback, a secret or SQL.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Map, Value};

/// One entry of Frappe's `_server_messages`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerMessage {
    pub message: String,
    pub title: &'static str,
    /// Messages raised by `frappe.throw` carry `indicator: red` and `raise_exception: 1`.
    pub raised: bool,
}

impl ServerMessage {
    pub fn raised(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            title: "Message",
            raised: true,
        }
    }

    pub fn plain(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            title: "Message",
            raised: false,
        }
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("message".into(), Value::String(self.message.clone()));
        m.insert("title".into(), Value::String(self.title.into()));
        if self.raised {
            m.insert("indicator".into(), json!("red"));
            m.insert("raise_exception".into(), json!(1));
        }
        Value::Object(m)
    }
}

/// A Frappe-shaped error.
#[derive(Debug, Clone, PartialEq)]
pub struct AppError {
    pub status: StatusCode,
    /// Frappe's exception class name (`ValidationError`, `DoesNotExistError`, …).
    pub exc_type: &'static str,
    /// `frappe.exceptions.Class[: message]`; absent where Frappe leaves it out (404s).
    pub exception: Option<String>,
    pub messages: Vec<ServerMessage>,
    pub error_message: Option<String>,
    /// A top-level `message` (the login failure body has one).
    pub message: Option<String>,
    /// Set when the database failed in a way that re-running the transaction can fix.
    pub db_failure: Option<DbFailure>,
    /// Seconds a client should wait before trying again (`Retry-After`), on 503s.
    pub retry_after: Option<u8>,
}

/// Why a database statement failed, when running the transaction again can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbFailure {
    /// The transaction lost a conflict and was rolled back by the server: an InnoDB deadlock
    /// or lock wait timeout, or a Galera certification failure (both `1213`). The connection
    /// is healthy.
    Conflict,
    /// The connection was lost, or its node cannot serve queries (Galera `1047`, no quorum):
    /// the connection is dropped, and the transaction may run again on another one.
    Connection,
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

impl AppError {
    fn new(status: StatusCode, exc_type: &'static str) -> Self {
        Self {
            status,
            exc_type,
            exception: None,
            messages: vec![],
            error_message: None,
            message: None,
            db_failure: None,
            retry_after: None,
        }
    }

    /// `frappe.exceptions.<exc_type>: <message>` with one raised server message, as `frappe.throw` makes.
    pub fn thrown(status: StatusCode, exc_type: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::new(status, exc_type);
        e.exception = Some(format!("frappe.exceptions.{exc_type}: {message}"));
        e.messages.push(ServerMessage::raised(message));
        e
    }

    /// 417 ValidationError with Frappe's message.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::thrown(StatusCode::EXPECTATION_FAILED, "ValidationError", message)
    }

    /// 404 "<doctype> <name> not found".
    pub fn not_found(doctype: &str, name: &str) -> Self {
        let mut e = Self::new(StatusCode::NOT_FOUND, "DoesNotExistError");
        e.messages
            .push(ServerMessage::raised(format!("{doctype} {name} not found")));
        e
    }

    /// 404 with no message (Frappe's answer to deleting a missing document, or an unknown route).
    pub fn not_found_bare() -> Self {
        Self::new(StatusCode::NOT_FOUND, "DoesNotExistError")
    }

    /// 417 MandatoryError for a missing parent field.
    pub fn mandatory(doctype: &str, name: &str, field: &str, label: &str) -> Self {
        let mut e = Self::new(StatusCode::EXPECTATION_FAILED, "MandatoryError");
        e.exception = Some(format!(
            "frappe.exceptions.MandatoryError: [{doctype}, {name}]: {field}"
        ));
        e.messages.push(ServerMessage::plain(format!(
            "Error: Value missing for {doctype}: {label}"
        )));
        e
    }

    /// 417 MandatoryError for a missing child-row field.
    pub fn mandatory_child(
        parent_doctype: &str,
        parent: &str,
        child_doctype: &str,
        row: usize,
        field: &str,
        label: &str,
    ) -> Self {
        let mut e = Self::new(StatusCode::EXPECTATION_FAILED, "MandatoryError");
        e.exception = Some(format!(
            "frappe.exceptions.MandatoryError: [{parent_doctype}, {parent}]: {field}"
        ));
        e.messages.push(ServerMessage::plain(format!(
            "Error: <strong>{child_doctype}</strong> Row #{row}: Value missing for: {label}"
        )));
        e
    }

    /// 403 PermissionError with the given messages; `exception` is `frappe.exceptions.PermissionError`
    /// plus the last raised message, as Frappe builds it.
    pub fn permission(messages: Vec<ServerMessage>, error_message: Option<String>) -> Self {
        let mut e = Self::new(StatusCode::FORBIDDEN, "PermissionError");
        e.exception = Some(match messages.iter().rev().find(|m| m.raised) {
            Some(m) => format!("frappe.exceptions.PermissionError: {}", m.message),
            None => "frappe.exceptions.PermissionError".to_string(),
        });
        e.messages = messages;
        e.error_message = error_message;
        e
    }

    /// 403 "Not permitted".
    pub fn not_permitted() -> Self {
        Self::permission(vec![ServerMessage::raised("Not permitted")], None)
    }

    /// 403 "Function <method> is not whitelisted." (Frappe's wording for Guests and unknown methods).
    pub fn not_whitelisted(method: &str) -> Self {
        let msg = format!(
            "<details><summary>You are not permitted to access this resource.</summary>Function <strong>{}</strong> is not whitelisted.</details>",
            html_escape(method)
        );
        let mut e = Self::permission(
            vec![ServerMessage {
                message: msg,
                title: "Method Not Allowed",
                raised: true,
            }],
            None,
        );
        e.exception = e.exception.take();
        e
    }

    /// 401 AuthenticationError (bad API secret, bad session).
    pub fn authentication() -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "AuthenticationError");
        e.exception = Some("frappe.exceptions.AuthenticationError".into());
        e
    }

    /// 401 for a failed login, with Frappe's top-level message.
    pub fn invalid_login(message: &str) -> Self {
        let mut e = Self::authentication();
        e.message = Some(message.to_string());
        e
    }

    /// A 4xx for input Frappe would crash on (bad JSON, wrong types), keeping Frappe's class name.
    pub fn bad_input(exc_type: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::new(StatusCode::BAD_REQUEST, exc_type);
        e.exception = Some(format!("{}: {message}", exception_module(exc_type)));
        e.messages.push(ServerMessage::raised(message));
        e
    }

    /// 413: the body is larger than the configured limit.
    pub fn too_large(limit: usize) -> Self {
        Self::thrown(
            StatusCode::PAYLOAD_TOO_LARGE,
            "ValidationError",
            format!("Request body is larger than the limit of {limit} bytes."),
        )
    }

    /// 503: the database (or another dependency) is unavailable right now.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "dependency unavailable");
        let mut e = Self::thrown(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableError",
            "The service is temporarily unavailable. Please try again.",
        );
        e.retry_after = Some(1);
        e
    }

    /// 503 after a write kept losing conflicts to concurrent writers (every retry was used).
    /// Frappe names a deadlock `QueryDeadlockError`; the client may simply send it again.
    pub fn conflict(cause: &dyn std::fmt::Display) -> Self {
        tracing::debug!(error = %cause, "write conflict");
        let mut e = Self::thrown(
            StatusCode::SERVICE_UNAVAILABLE,
            "QueryDeadlockError",
            "The document was being changed by other requests at the same time. Please try again.",
        );
        e.retry_after = Some(1);
        e.db_failure = Some(DbFailure::Conflict);
        e
    }

    /// 500 with an opaque body; the cause is logged here, once.
    pub fn internal(cause: &str) -> Self {
        tracing::error!(error = %cause, "internal error");
        let mut e = Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError");
        e.exception = Some("frappe.exceptions.InternalServerError".into());
        e.messages.push(ServerMessage::raised(
            "Something went wrong. The error has been logged.",
        ));
        e
    }

    /// A diesel error: lost connections become 503, everything else an opaque 500.
    pub fn database(e: &diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        let connection_lost = |e: &Error| {
            let mut err = Self::unavailable(e);
            err.db_failure = Some(DbFailure::Connection);
            err
        };
        match e {
            // Galera may answer the ROLLBACK after a conflict at COMMIT with the conflict
            // again; what counts is why the commit failed (the connection is then dropped).
            Error::RollbackErrorOnCommit { commit_error, .. } => {
                let mut err = Self::database(commit_error);
                if err.db_failure.is_none() {
                    err.db_failure = Some(DbFailure::Connection);
                }
                err
            }
            // A connection whose transaction state is unknown: dropped, never reused.
            Error::BrokenTransactionManager => connection_lost(e),
            Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => Self::conflict(e),
            Error::DatabaseError(_, info) if is_conflict_message(info.message()) => {
                Self::conflict(e)
            }
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => connection_lost(e),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                let mut err = Self::new(StatusCode::CONFLICT, "DuplicateEntryError");
                err.exception = Some("frappe.exceptions.DuplicateEntryError".into());
                err.messages.push(ServerMessage::raised(
                    "A document with this name already exists.",
                ));
                err
            }
            Error::DatabaseError(_, info) if is_connection_message(info.message()) => {
                connection_lost(e)
            }
            Error::SerializationError(_) | Error::DeserializationError(_) => {
                Self::internal(&e.to_string())
            }
            _ if is_conflict_message(&e.to_string()) => Self::conflict(e),
            _ if is_connection_message(&e.to_string()) => connection_lost(e),
            _ => Self::internal(&e.to_string()),
        }
    }

    /// The last line of the traceback Frappe would print: `frappe.exceptions.Class: message`
    /// (the class alone when there is no message).
    pub fn summary(&self) -> String {
        if let Some(exc) = &self.exception {
            return exc.clone();
        }
        let class = exception_module(self.exc_type);
        match self
            .messages
            .iter()
            .rev()
            .find(|m| m.raised)
            .or(self.messages.last())
        {
            Some(m) => format!("{class}: {}", m.message),
            None => class,
        }
    }

    pub fn with_error_message(mut self, m: impl Into<String>) -> Self {
        self.error_message = Some(m.into());
        self
    }

    /// The v1 body: `{exception, exc_type, exc, _server_messages, _error_message}` (present keys only).
    pub fn v1_body(&self) -> Value {
        let mut m = Map::new();
        if let Some(msg) = &self.message {
            m.insert("message".into(), Value::String(msg.clone()));
        }
        if let Some(exc) = &self.exception {
            m.insert("exception".into(), Value::String(exc.clone()));
        }
        m.insert("exc_type".into(), Value::String(self.exc_type.into()));
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
        m.insert("type".into(), Value::String(self.exc_type.into()));
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

fn exception_module(exc_type: &str) -> String {
    match exc_type {
        "JSONDecodeError" => "json.decoder.JSONDecodeError".into(),
        "TypeError" | "ValueError" | "KeyError" | "AttributeError" => exc_type.into(),
        other => format!("frappe.exceptions.{other}"),
    }
}

/// A Galera certification failure or an InnoDB deadlock (`1213`), or a lock wait timeout
/// (`1205`): the server rolled the transaction back; running it again can succeed.
fn is_conflict_message(m: &str) -> bool {
    let m = m.to_ascii_lowercase();
    // InnoDB says "Deadlock found when trying to get lock"; Galera "WSREP detected
    // deadlock/conflict and aborted the transaction".
    m.contains("deadlock") || m.contains("lock wait timeout exceeded")
}

/// The connection or its node cannot serve queries: lost, refused, or a Galera node without
/// quorum (`1047 WSREP has not yet prepared node for application use`).
fn is_connection_message(m: &str) -> bool {
    let m = m.to_ascii_lowercase();
    m.contains("wsrep has not yet prepared node")
        || m.contains("server has gone away")
        || m.contains("lost connection")
        || m.contains("can't connect")
        || m.contains("connection refused")
}

/// Escapes text for HTML contexts inside messages.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.messages.last() {
            Some(m) => write!(
                f,
                "{} ({}): {}",
                self.exc_type,
                self.status.as_u16(),
                m.message
            ),
            None => write!(f, "{} ({})", self.exc_type, self.status.as_u16()),
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            r.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
        }
        r.json(self.v1_body())
    }
}

impl ResponseError for V2Error {
    fn status_code(&self) -> StatusCode {
        self.0.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.0.status);
        if let Some(secs) = self.0.retry_after {
            r.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
        }
        r.json(self.0.v2_body())
    }
}

pub type AppResult<T> = Result<T, AppError>;
