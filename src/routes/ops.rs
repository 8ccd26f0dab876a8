//! Operations: liveness, readiness, Prometheus metrics, and the per-request middleware that
//! gives every request an id, a tracing span and its place in the metrics.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use diesel::RunQueryDsl;
use serde_json::json;
use tracing::Instrument;

use super::call::message;
use crate::error::AppError;
use crate::state::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// `GET /healthz`: the process answers.
pub async fn healthz() -> HttpResponse {
    message(json!("ok"))
}

/// `GET /readyz`: the database answers `SELECT 1` through the pool (503 when it does not).
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    state
        .db
        .run(|conn| {
            diesel::sql_query("SELECT 1")
                .execute(conn)
                .map_err(AppError::unavailable)
        })
        .await?;
    Ok(message(json!("ready")))
}

/// `GET /metrics`: Prometheus text exposition.
/// The connections gauge is counted now; when the database does not answer, the last counts stay.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let st = crate::doc::service::StatePtr::new(&state);
    let counted = state
        .db
        .read(move |conn| crate::oauth::health::count_by_state(st.get(), conn))
        .await;
    match counted {
        Ok(counts) => {
            let labelled: Vec<(&'static str, i64)> = crate::oauth::health::STATES
                .iter()
                .zip(counts)
                .map(|(s, n)| (s.label(), n))
                .collect();
            state.metrics.set_connections(&labelled);
        }
        Err(e) => tracing::warn!(error = %e, "connections could not be counted for /metrics"),
    }
    HttpResponse::Ok()
        .content_type(prometheus::TEXT_FORMAT)
        .body(state.metrics.render(&state.db))
}

/// The client's `X-Request-Id` when it is short and plain, else a new UUID.
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Wraps every request: a span carrying the request id (never the query string or body, which
/// carry codes, states and secrets), one log line when it is answered, the metrics, and the
/// id echoed in `X-Request-Id`.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request_id(&req);
    let method = crate::metrics::method_label(req.method());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let span = tracing::info_span!("request", request_id = %id, method = %method);
    let start = Instant::now();
    let result = next.call(req).instrument(span.clone()).await;
    let elapsed = start.elapsed();
    let mut res = result?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let status = res.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            route = %route,
            status,
            elapsed_ms = elapsed.as_secs_f64() * 1000.0,
            "request answered"
        )
    });
    if let Some(state) = state {
        state
            .metrics
            .observe_request(&route, method, status, elapsed.as_secs_f64());
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    Ok(res)
}
