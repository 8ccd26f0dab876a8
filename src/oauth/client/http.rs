//! The shared HTTP client for provider requests and its limits: sending (scheme and address
//! checks, size cap, secret-free errors) and the `oauth2` crate's transport.

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse, RequestTokenError};
use url::Url;

use super::OAuthError;
use crate::oauth::outbound::{self, GuardedResolver, OutboundAllow};

/// Limits applied to every provider response.
#[derive(Debug, Clone, Copy)]
pub struct ClientLimits {
    /// Largest response body accepted; bigger bodies fail with [`OAuthError::TooLarge`]
    /// (checked on Content-Length and again while streaming).
    pub max_response_bytes: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            max_response_bytes: 1024 * 1024,
        }
    }
}

/// The one shared HTTP client for provider requests: redirects are never followed, connect and
/// total timeouts are set, only plain http/https is used (every call also checks the URL
/// scheme), no proxy is used, and only destinations `outbound_allow` permits are connected to
/// (see [`super::outbound`]).
#[derive(Debug, Clone)]
pub struct HttpClient {
    pub(super) inner: reqwest::Client,
    allow: Arc<OutboundAllow>,
    /// What discovery documents list for `auto` client authentication.
    pub(super) methods: Arc<super::auth::MethodCache>,
}

/// Builds the shared [`HttpClient`].
///
/// Environment proxies (`HTTP_PROXY`, …) are ignored: a proxy would resolve and connect to the
/// provider's host itself, past the address check.
pub fn build_http_client(
    connect_timeout: Duration,
    timeout: Duration,
    allow: &OutboundAllow,
) -> Result<HttpClient, OAuthError> {
    let inner = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver::new(allow.clone())))
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .user_agent(concat!("connected-apps/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| OAuthError::Request(error_chain(&e.without_url())))?;
    Ok(HttpClient {
        inner,
        allow: Arc::new(allow.clone()),
        methods: Arc::default(),
    })
}

/// A provider response, read within the size cap.
#[derive(Debug)]
pub(super) struct RawResponse {
    pub(super) status: u16,
    pub(super) body: Vec<u8>,
}

/// The `oauth2` HTTP client: sends through the shared reqwest client with [`send`] (scheme
/// check, size cap, secret-free errors) and keeps the raw response, which this module then
/// interprets with Frappe's rules whatever oauth2 made of it.
///
/// It owns a clone of the client (a reference count) rather than borrowing it: a borrowed
/// lifetime on the `AsyncHttpClient` impl makes the flows' futures fail rustc's `Send` check.
pub(super) struct Transport {
    http: HttpClient,
    limits: ClientLimits,
    last: Mutex<Option<RawResponse>>,
}

impl Transport {
    pub(super) fn new(http: &HttpClient, limits: &ClientLimits) -> Self {
        Transport {
            http: http.clone(),
            limits: *limits,
            last: Mutex::new(None),
        }
    }

    /// The raw response of the request oauth2 just made, or the transport error it got.
    pub(super) fn finish<T, TE>(
        self,
        outcome: Result<T, RequestTokenError<OAuthError, TE>>,
    ) -> Result<RawResponse, OAuthError>
    where
        TE: oauth2::ErrorResponse,
    {
        if let Err(RequestTokenError::Request(err)) = outcome {
            return Err(err);
        }
        let last = match self.last.into_inner() {
            Ok(last) => last,
            Err(poisoned) => poisoned.into_inner(),
        };
        // No response and no transport error: oauth2 failed to prepare the request.
        last.ok_or_else(|| OAuthError::Request("the token request could not be prepared".into()))
    }
}

impl<'c> AsyncHttpClient<'c> for Transport {
    type Error = OAuthError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, OAuthError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)
                .map_err(|_| OAuthError::Request("invalid token request".to_owned()))?;
            let raw = send(&self.http, &self.limits, request).await?;
            let response = oauth2::http::Response::builder()
                .status(raw.status)
                .body(raw.body.clone())
                .map_err(|_| OAuthError::Request("invalid response status".to_owned()))?;
            match self.last.lock() {
                Ok(mut last) => *last = Some(raw),
                Err(poisoned) => *poisoned.into_inner() = Some(raw),
            }
            Ok(response)
        })
    }
}

/// POSTs a form (`Accept: application/json`), with an `Authorization` header when the client
/// authenticates by one: the token endpoint's requests and revocation.
pub(super) async fn post_form(
    http: &HttpClient,
    limits: &ClientLimits,
    url: Url,
    authorization: Option<reqwest::header::HeaderValue>,
    form: &[(&str, &str)],
) -> Result<RawResponse, OAuthError> {
    use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
    let mut request = http
        .inner
        .post(url)
        .header(ACCEPT, "application/json")
        .header(CONTENT_TYPE, super::FORM_CONTENT_TYPE);
    if let Some(value) = authorization {
        request = request.header(AUTHORIZATION, value);
    }
    send_built(http, limits, request.body(super::encode_form(form))).await
}

/// Builds a reqwest request and sends it with [`send`].
pub(super) async fn send_built(
    http: &HttpClient,
    limits: &ClientLimits,
    builder: reqwest::RequestBuilder,
) -> Result<RawResponse, OAuthError> {
    let request = builder
        .build()
        .map_err(|e| OAuthError::Request(error_chain(&e.without_url())))?;
    send(http, limits, request).await
}

/// Sends one request (http/https only, redirects are not followed by the shared client) and
/// reads the body, failing as soon as it is known to exceed the cap.
async fn send(
    http: &HttpClient,
    limits: &ClientLimits,
    request: reqwest::Request,
) -> Result<RawResponse, OAuthError> {
    let endpoint = redacted_endpoint(request.url());
    if !matches!(request.url().scheme(), "http" | "https") {
        return Err(OAuthError::InvalidUrl("url"));
    }
    // A literal IP host is connected to without asking the resolver: check it here.
    if outbound::check_url(request.url(), &http.allow).is_err() {
        return Err(OAuthError::Refused { endpoint });
    }
    let mut response = http
        .inner
        .execute(request)
        .await
        .map_err(|e| transport_error(&endpoint, e))?;
    let status = response.status().as_u16();
    let limit = limits.max_response_bytes;
    let too_large = || OAuthError::TooLarge {
        endpoint: endpoint.clone(),
        limit,
    };
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(&endpoint, e))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(RawResponse { status, body })
}

/// A reqwest error as [`OAuthError::Refused`] (the resolver kept no address),
/// [`OAuthError::Timeout`] or [`OAuthError::Unreachable`], without its URL.
fn transport_error(endpoint: &str, err: reqwest::Error) -> OAuthError {
    if outbound::is_refused(&err) {
        OAuthError::Refused {
            endpoint: endpoint.to_owned(),
        }
    } else if err.is_timeout() {
        OAuthError::Timeout {
            endpoint: endpoint.to_owned(),
        }
    } else {
        OAuthError::Unreachable {
            endpoint: endpoint.to_owned(),
            reason: error_chain(&err.without_url()),
        }
    }
}

/// An error and its sources, joined with `: `.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let _ = write!(out, ": {s}");
        source = s.source();
    }
    out
}

/// `scheme://host[:port]/path`: no user info, query or fragment.
pub(super) fn redacted_endpoint(url: &Url) -> String {
    let mut out = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        let _ = write!(out, ":{port}");
    }
    out.push_str(url.path());
    out
}
