//! Prometheus metrics: requests by route and status, latency, database pool use and OAuth
//! outcomes, kept in one registry owned by `AppState` and rendered by `GET /metrics`.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::db::Db;

/// Every metric the service exports.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool_connections: IntGauge,
    pool_idle: IntGauge,
    pool_max: IntGauge,
    code_exchanges: IntCounterVec,
    refreshes: IntCounterVec,
    revocations: IntCounterVec,
    client_credentials: IntCounterVec,
    connections: IntGaugeVec,
}

/// How an OAuth call to a provider ended.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Ok,
    Failed,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
        }
    }
}

/// Why a refresh failed: the provider refused the grant, a transient fault (unreachable,
/// timeout, 5xx), or anything else.
#[derive(Debug, Clone, Copy)]
pub enum RefreshFailure {
    InvalidGrant,
    Transient,
    Other,
}

/// The label of an HTTP method: one of a fixed set, so that a caller cannot add label values
/// (an 8,000-character method would otherwise become a series of its own).
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

impl Metrics {
    #[expect(
        clippy::expect_used,
        reason = "the metrics' names, help texts and labels are constants: a bad one is a bug \
                  every test run finds at start-up, not an input to answer"
    )]
    pub fn new(pool_max: u32) -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route pattern, method and status",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer an HTTP request, by route pattern and method",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["route", "method"],
        )
        .expect("valid metric");
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("valid metric");
        let pool_connections = gauge("db_pool_connections", "Open database connections");
        let pool_idle = gauge("db_pool_idle_connections", "Idle database connections");
        let pool_max = {
            let g = gauge(
                "db_pool_max_connections",
                "Largest size of the database pool",
            );
            g.set(i64::from(pool_max));
            g
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let code_exchanges = counter(
            "oauth_code_exchanges_total",
            "Authorization codes exchanged at the callback, by outcome",
            &["outcome"],
        );
        let refreshes = counter(
            "oauth_refreshes_total",
            "Token refreshes, by outcome and failure reason (invalid_grant, transient, other)",
            &["outcome", "reason"],
        );
        let revocations = counter(
            "oauth_revocations_total",
            "Token revocations at the provider, by outcome",
            &["outcome"],
        );
        let client_credentials = counter(
            "oauth_client_credentials_total",
            "Client-credentials token requests, by outcome",
            &["outcome"],
        );
        let connections = IntGaugeVec::new(
            Opts::new(
                "connected_app_connections",
                "Users' connections by health state (connected, expired, refresh_failing, \
                 needs_reconnect, not_connected), counted when scraped",
            ),
            &["state"],
        )
        .expect("valid metric");
        let m = Metrics {
            registry,
            requests,
            latency,
            pool_connections,
            pool_idle,
            pool_max,
            code_exchanges,
            refreshes,
            revocations,
            client_credentials,
            connections,
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 10] = [
            Box::new(m.requests.clone()),
            Box::new(m.latency.clone()),
            Box::new(m.pool_connections.clone()),
            Box::new(m.pool_idle.clone()),
            Box::new(m.pool_max.clone()),
            Box::new(m.code_exchanges.clone()),
            Box::new(m.refreshes.clone()),
            Box::new(m.revocations.clone()),
            Box::new(m.client_credentials.clone()),
            Box::new(m.connections.clone()),
        ];
        for c in collectors {
            m.registry.register(c).expect("metric names are unique");
        }
        m
    }

    /// Counts one answered request; `route` is the matched pattern, never the raw path, and
    /// `method` one of [`method_label`]'s.
    pub fn observe_request(&self, route: &str, method: &'static str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[route, method])
            .observe(seconds);
    }

    pub fn code_exchange(&self, outcome: Outcome) {
        self.code_exchanges
            .with_label_values(&[outcome.label()])
            .inc();
    }

    pub fn refresh(&self, result: Result<(), RefreshFailure>) {
        let (outcome, reason) = match result {
            Ok(()) => ("ok", ""),
            Err(RefreshFailure::InvalidGrant) => ("failed", "invalid_grant"),
            Err(RefreshFailure::Transient) => ("failed", "transient"),
            Err(RefreshFailure::Other) => ("failed", "other"),
        };
        self.refreshes.with_label_values(&[outcome, reason]).inc();
    }

    pub fn revocation(&self, outcome: Outcome) {
        self.revocations.with_label_values(&[outcome.label()]).inc();
    }

    pub fn client_credentials(&self, outcome: Outcome) {
        self.client_credentials
            .with_label_values(&[outcome.label()])
            .inc();
    }

    /// Sets the connections gauge: one count per state label of `oauth::health::STATES`.
    pub fn set_connections(&self, counts: &[(&'static str, i64)]) {
        for (state, n) in counts {
            self.connections.with_label_values(&[state]).set(*n);
        }
    }

    /// The Prometheus text exposition of every metric, with the pool read now.
    pub fn render(&self, db: &Db) -> String {
        let (connections, idle) = db.pool_state();
        self.pool_connections.set(i64::from(connections));
        self.pool_idle.set(i64::from(idle));
        let mut out = Vec::new();
        // Encoding into a Vec only fails on invalid metric families, which `new` rules out.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}
