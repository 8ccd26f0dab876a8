//! The error of storage and the domain: a Frappe exception (its class, an HTTP status as a
//! plain number, Frappe's messages) that keeps its cause as `source()`.
//!
//! Policy: store and domain code return `AppError`; it knows nothing of the web framework.
//! Only the HTTP edge (`routes/errors.rs`) renders it as Frappe's v1 or v2 body and logs it,
//! once, with its cause chain; 500s are opaque to clients. No error body ever carries a
//! traceback, a secret or SQL.

use std::sync::Arc;

use serde_json::{json, Map, Value};

/// A cause kept inside an error (shared, so a cached failure can be answered to several
/// callers).
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// An HTTP status as a plain number; the edge turns it into the framework's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Status(pub u16);

impl Status {
    pub const BAD_REQUEST: Status = Status(400);
    pub const UNAUTHORIZED: Status = Status(401);
    pub const FORBIDDEN: Status = Status(403);
    pub const NOT_FOUND: Status = Status(404);
    pub const CONFLICT: Status = Status(409);
    pub const PAYLOAD_TOO_LARGE: Status = Status(413);
    pub const UNSUPPORTED_MEDIA_TYPE: Status = Status(415);
    pub const EXPECTATION_FAILED: Status = Status(417);
    pub const TOO_MANY_REQUESTS: Status = Status(429);
    pub const INTERNAL_SERVER_ERROR: Status = Status(500);
    pub const BAD_GATEWAY: Status = Status(502);
    pub const SERVICE_UNAVAILABLE: Status = Status(503);

    pub fn as_u16(self) -> u16 {
        self.0
    }
}

/// Frappe's exception classes (and the Python ones Frappe lets escape) this service raises.
/// Each knows its class name and the status Frappe answers it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExcType {
    ValidationError,
    MandatoryError,
    DataError,
    LinkExistsError,
    TimestampMismatchError,
    DoesNotExistError,
    DuplicateEntryError,
    PermissionError,
    AuthenticationError,
    CSRFTokenError,
    TooManyRequestsError,
    OAuthProviderError,
    QueryDeadlockError,
    ServiceUnavailableError,
    InternalServerError,
    /// Python's, for bad input Frappe crashes on (Frappe answers 500, this service 400).
    JSONDecodeError,
    TypeError,
    KeyError,
    AttributeError,
}

impl ExcType {
    /// The class name, as in `exc_type`.
    pub fn name(self) -> &'static str {
        match self {
            ExcType::ValidationError => "ValidationError",
            ExcType::MandatoryError => "MandatoryError",
            ExcType::DataError => "DataError",
            ExcType::LinkExistsError => "LinkExistsError",
            ExcType::TimestampMismatchError => "TimestampMismatchError",
            ExcType::DoesNotExistError => "DoesNotExistError",
            ExcType::DuplicateEntryError => "DuplicateEntryError",
            ExcType::PermissionError => "PermissionError",
            ExcType::AuthenticationError => "AuthenticationError",
            ExcType::CSRFTokenError => "CSRFTokenError",
            ExcType::TooManyRequestsError => "TooManyRequestsError",
            ExcType::OAuthProviderError => "OAuthProviderError",
            ExcType::QueryDeadlockError => "QueryDeadlockError",
            ExcType::ServiceUnavailableError => "ServiceUnavailableError",
            ExcType::InternalServerError => "InternalServerError",
            ExcType::JSONDecodeError => "JSONDecodeError",
            ExcType::TypeError => "TypeError",
            ExcType::KeyError => "KeyError",
            ExcType::AttributeError => "AttributeError",
        }
    }

    /// The status Frappe's class declares (`http_status_code`); a constructor may override it.
    pub fn status(self) -> Status {
        match self {
            ExcType::ValidationError
            | ExcType::MandatoryError
            | ExcType::DataError
            | ExcType::LinkExistsError
            | ExcType::TimestampMismatchError
            | ExcType::OAuthProviderError => Status::EXPECTATION_FAILED,
            ExcType::DoesNotExistError => Status::NOT_FOUND,
            ExcType::DuplicateEntryError => Status::CONFLICT,
            ExcType::PermissionError => Status::FORBIDDEN,
            ExcType::AuthenticationError => Status::UNAUTHORIZED,
            ExcType::TooManyRequestsError => Status::TOO_MANY_REQUESTS,
            ExcType::QueryDeadlockError | ExcType::ServiceUnavailableError => {
                Status::SERVICE_UNAVAILABLE
            }
            ExcType::InternalServerError => Status::INTERNAL_SERVER_ERROR,
            ExcType::CSRFTokenError
            | ExcType::JSONDecodeError
            | ExcType::TypeError
            | ExcType::KeyError
            | ExcType::AttributeError => Status::BAD_REQUEST,
        }
    }

    /// The module-qualified name a traceback's last line starts with.
    pub fn qualified(self) -> String {
        match self {
            ExcType::JSONDecodeError => "json.decoder.JSONDecodeError".into(),
            ExcType::TypeError | ExcType::KeyError | ExcType::AttributeError => self.name().into(),
            other => format!("frappe.exceptions.{}", other.name()),
        }
    }
}

impl std::fmt::Display for ExcType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

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

    /// The message as Frappe serialises it into `_server_messages`.
    pub fn to_json(&self) -> Value {
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
#[derive(Debug, Clone)]
pub struct AppError {
    pub status: Status,
    /// Frappe's exception class.
    pub exc_type: ExcType,
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
    /// What caused it (a diesel or pool error, …), for the log; never sent to a client.
    pub cause: Option<Cause>,
}

/// Equal when everything a client sees and the failure kind are equal, and both have no
/// cause or the same one.
impl PartialEq for AppError {
    fn eq(&self, other: &Self) -> bool {
        let same_cause = match (&self.cause, &other.cause) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        self.status == other.status
            && self.exc_type == other.exc_type
            && self.exception == other.exception
            && self.messages == other.messages
            && self.error_message == other.error_message
            && self.message == other.message
            && self.db_failure == other.db_failure
            && self.retry_after == other.retry_after
            && same_cause
    }
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

impl AppError {
    fn new(exc_type: ExcType) -> Self {
        Self {
            status: exc_type.status(),
            exc_type,
            exception: None,
            messages: vec![],
            error_message: None,
            message: None,
            db_failure: None,
            retry_after: None,
            cause: None,
        }
    }

    /// `frappe.exceptions.<exc_type>: <message>` with one raised server message, as
    /// `frappe.throw` makes, with the class's status.
    pub fn thrown(exc_type: ExcType, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::new(exc_type);
        e.exception = Some(format!("frappe.exceptions.{exc_type}: {message}"));
        e.messages.push(ServerMessage::raised(message));
        e
    }

    /// The same error answered with another status.
    pub fn with_status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }

    /// Keeps `cause` as the error's `source()` (logged at the edge, never sent).
    pub fn caused_by(mut self, cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        self.cause = Some(Arc::from(cause.into()));
        self
    }

    /// 417 ValidationError with Frappe's message.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::thrown(ExcType::ValidationError, message)
    }

    /// 404 "<doctype> <name> not found".
    pub fn not_found(doctype: &str, name: &str) -> Self {
        let mut e = Self::new(ExcType::DoesNotExistError);
        e.messages
            .push(ServerMessage::raised(format!("{doctype} {name} not found")));
        e
    }

    /// 404 with no message (Frappe's answer to deleting a missing document, or an unknown route).
    pub fn not_found_bare() -> Self {
        Self::new(ExcType::DoesNotExistError)
    }

    /// 417 MandatoryError for a missing parent field.
    pub fn mandatory(doctype: &str, name: &str, field: &str, label: &str) -> Self {
        let mut e = Self::new(ExcType::MandatoryError);
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
        let mut e = Self::new(ExcType::MandatoryError);
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
        let mut e = Self::new(ExcType::PermissionError);
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
        Self::permission(
            vec![ServerMessage {
                message: msg,
                title: "Method Not Allowed",
                raised: true,
            }],
            None,
        )
    }

    /// 401 AuthenticationError (bad API secret, bad session).
    pub fn authentication() -> Self {
        let mut e = Self::new(ExcType::AuthenticationError);
        e.exception = Some("frappe.exceptions.AuthenticationError".into());
        e
    }

    /// 401 for a failed login, with Frappe's top-level message.
    pub fn invalid_login(message: &str) -> Self {
        let mut e = Self::authentication();
        e.message = Some(message.to_string());
        e
    }

    /// A 400 for input Frappe would crash on (bad JSON, wrong types), keeping Frappe's class name.
    pub fn bad_input(exc_type: ExcType, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::new(exc_type).with_status(Status::BAD_REQUEST);
        e.exception = Some(format!("{}: {message}", exc_type.qualified()));
        e.messages.push(ServerMessage::raised(message));
        e
    }

    /// 400 `CSRFTokenError`, as Frappe's `validate_csrf_token` throws it with the traceback
    /// disabled (no `exception`, no `exc`).
    pub fn csrf(message: impl Into<String>) -> Self {
        let mut e = Self::new(ExcType::CSRFTokenError);
        e.messages.push(ServerMessage::raised(message));
        e
    }

    /// 413: the body is larger than the configured limit.
    pub fn too_large(limit: usize) -> Self {
        Self::thrown(
            ExcType::ValidationError,
            format!("Request body is larger than the limit of {limit} bytes."),
        )
        .with_status(Status::PAYLOAD_TOO_LARGE)
    }

    /// 503: the database (or another dependency) is unavailable right now.
    pub fn unavailable(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let mut e = Self::thrown(
            ExcType::ServiceUnavailableError,
            "The service is temporarily unavailable. Please try again.",
        )
        .caused_by(cause);
        e.retry_after = Some(1);
        e
    }

    /// 503 after a write kept losing conflicts to concurrent writers (every retry was used).
    /// Frappe names a deadlock `QueryDeadlockError`; the client may simply send it again.
    pub fn conflict(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let mut e = Self::thrown(
            ExcType::QueryDeadlockError,
            "The document was being changed by other requests at the same time. Please try again.",
        )
        .caused_by(cause);
        e.retry_after = Some(1);
        e.db_failure = Some(DbFailure::Conflict);
        e
    }

    /// 500 with an opaque body; the cause is kept for the edge to log.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let mut e = Self::new(ExcType::InternalServerError).caused_by(cause);
        e.exception = Some("frappe.exceptions.InternalServerError".into());
        e.messages.push(ServerMessage::raised(
            "Something went wrong. The error has been logged.",
        ));
        e
    }

    /// The last line of the traceback Frappe would print: `frappe.exceptions.Class: message`
    /// (the class alone when there is no message).
    pub fn summary(&self) -> String {
        if let Some(exc) = &self.exception {
            return exc.clone();
        }
        let class = self.exc_type.qualified();
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

impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

/// The causes of an error, outermost first, joined with `: ` (for log lines).
pub fn cause_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(c) = next {
        out.push_str(": ");
        out.push_str(&c.to_string());
        next = c.source();
    }
    out
}

pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_keeps_its_cause_as_source_and_shows_none_of_it() {
        let e = AppError::internal(std::io::Error::other("disk on fire"));
        assert_eq!(e.status, Status::INTERNAL_SERVER_ERROR);
        let source = std::error::Error::source(&e).expect("a source");
        assert_eq!(source.to_string(), "disk on fire");
        assert!(!e.to_string().contains("disk on fire"));
        assert!(!e.summary().contains("disk on fire"));
    }

    #[test]
    fn each_class_knows_its_name_and_frappes_status() {
        assert_eq!(AppError::validation("x").status.as_u16(), 417);
        assert_eq!(AppError::not_found("A", "b").status.as_u16(), 404);
        assert_eq!(AppError::not_permitted().status.as_u16(), 403);
        assert_eq!(AppError::authentication().status.as_u16(), 401);
        assert_eq!(
            AppError::thrown(ExcType::DuplicateEntryError, "x")
                .exc_type
                .name(),
            "DuplicateEntryError"
        );
        assert_eq!(
            AppError::bad_input(ExcType::ValidationError, "x").status,
            Status::BAD_REQUEST
        );
        assert_eq!(
            AppError::bad_input(ExcType::JSONDecodeError, "m").summary(),
            "json.decoder.JSONDecodeError: m"
        );
    }

    #[test]
    fn the_cause_chain_names_every_cause_in_order() {
        let inner = AppError::internal("lost connection");
        let outer = AppError::internal(inner);
        let chain = cause_chain(std::error::Error::source(&outer).expect("source"));
        assert_eq!(
            chain,
            "InternalServerError (500): Something went wrong. The error has been logged.: lost connection"
        );
    }
}
