//! Request arguments as Frappe reads them: the query string, then a JSON or form body merged
//! on top (`frappe.form_dict`), with JSON-encoded strings decoded where a structure is expected.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::HttpRequest;
use serde_json::{Map, Value};

use crate::error::{AppError, ExcType, Status};

/// The merged arguments of one request.
#[derive(Debug, Default, Clone)]
pub struct Args {
    pub map: Map<String, Value>,
    /// The body when it was JSON and not an object (Frappe crashes on a list body; we answer 4xx).
    pub non_object_body: Option<Value>,
}

/// How a body was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Empty,
    Json,
    Form,
}

impl Args {
    /// Parses the query string and body of a request.
    pub fn parse(req: &HttpRequest, body: &[u8]) -> Result<(Args, BodyKind), AppError> {
        let mut args = Args::default();
        for (k, v) in form_pairs(req.query_string().as_bytes())? {
            args.map.insert(k, Value::String(v));
        }
        let kind = body_kind(req, body)?;
        match kind {
            BodyKind::Empty => {}
            BodyKind::Form => {
                for (k, v) in form_pairs(body)? {
                    args.map.insert(k, Value::String(v));
                }
            }
            BodyKind::Json => match parse_json(body)? {
                Value::Object(m) => args.map.extend(m),
                Value::Null => {}
                other => args.non_object_body = Some(other),
            },
        }
        Ok((args, kind))
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// A string argument (numbers are turned into their text).
    pub fn str(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(if *b { "1".into() } else { "0".into() }),
            _ => None,
        }
    }

    /// A required string argument; missing → 4xx naming it (Frappe answers a 500 TypeError).
    pub fn require_str(&self, key: &str, function: &str) -> Result<String, AppError> {
        match self.get(key) {
            None => Err(missing_argument(function, key)),
            Some(_) => self.str(key).ok_or_else(|| {
                AppError::bad_input(
                    ExcType::TypeError,
                    format!("Argument {key} must be a string."),
                )
            }),
        }
    }

    /// An argument that holds JSON: a string is decoded, anything else is taken as is.
    pub fn json(&self, key: &str) -> Result<Option<Value>, AppError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => parse_json(s.as_bytes()).map(Some),
            Some(v) => Ok(Some(v.clone())),
        }
    }

    /// An argument that is a JSON object (or a JSON string of one).
    pub fn object(&self, key: &str) -> Result<Option<Map<String, Value>>, AppError> {
        match self.json(key)? {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(AppError::bad_input(
                ExcType::TypeError,
                format!("Argument {key} must be a JSON object."),
            )),
        }
    }
}

/// 4xx for a missing function argument, in Frappe's TypeError wording.
pub fn missing_argument(function: &str, key: &str) -> AppError {
    AppError::bad_input(
        ExcType::TypeError,
        format!("{function}() missing 1 required positional argument: '{key}'"),
    )
}

/// Decodes JSON, turning failures into a 4xx JSONDecodeError (Frappe answers 500).
pub fn parse_json(bytes: &[u8]) -> Result<Value, AppError> {
    serde_json::from_slice(bytes).map_err(|e| {
        AppError::bad_input(
            ExcType::JSONDecodeError,
            format!("Expecting value: line {} column {}", e.line(), e.column()),
        )
    })
}

fn body_kind(req: &HttpRequest, body: &[u8]) -> Result<BodyKind, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(BodyKind::Empty);
    }
    let ct = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ct.starts_with("application/json") || ct.ends_with("+json") {
        Ok(BodyKind::Json)
    } else if ct.starts_with("application/x-www-form-urlencoded") {
        Ok(BodyKind::Form)
    } else if ct.is_empty() {
        // Scripts often omit the content type; such a body is read as JSON.
        Ok(BodyKind::Json)
    } else if ct.starts_with("text/plain") {
        // Never JSON: a `text/plain` form that submits itself is how another site forges a
        // JSON body (Frappe does not read it as JSON either).
        Err(AppError::thrown(
            ExcType::ValidationError,
            "A text/plain body is not read: send JSON (application/json) or a URL-encoded form.",
        )
        .with_status(Status::UNSUPPORTED_MEDIA_TYPE))
    } else {
        Err(AppError::thrown(
            ExcType::ValidationError,
            "Unsupported content type: send JSON or a URL-encoded form.",
        )
        .with_status(Status::UNSUPPORTED_MEDIA_TYPE))
    }
}

/// Parses `application/x-www-form-urlencoded` pairs; invalid UTF-8 is a 4xx.
pub fn form_pairs(bytes: &[u8]) -> Result<Vec<(String, String)>, AppError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(AppError::bad_input(
            ExcType::ValidationError,
            "The request is not valid UTF-8.",
        ));
    }
    let mut out = Vec::new();
    for (k, v) in url::form_urlencoded::parse(bytes) {
        if k.contains('\u{FFFD}') || v.contains('\u{FFFD}') {
            return Err(AppError::bad_input(
                ExcType::ValidationError,
                "The request is not valid UTF-8.",
            ));
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    Ok(out)
}
