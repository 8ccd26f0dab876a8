//! The user a request runs as ([`CurrentUser`], an extractor): from an API key (`token
//! key:secret` or Basic), the `sid` session cookie (with its CSRF checks), or Guest.

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{web, FromRequest, HttpRequest};
use base64::Engine;
use futures_util::future::LocalBoxFuture;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use super::{csrf, store, throttle, ADMINISTRATOR, GUEST, SYSTEM_MANAGER};
use crate::error::AppError;
use crate::state::AppState;

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Guest,
    ApiKey,
    Session,
}

/// The user a request runs as.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub name: String,
    pub roles: Vec<String>,
    pub method: AuthMethod,
    /// The session id when authenticated by cookie.
    pub sid: Option<String>,
}

impl CurrentUser {
    pub fn guest() -> Self {
        Self {
            name: GUEST.into(),
            roles: vec![GUEST.into()],
            method: AuthMethod::Guest,
            sid: None,
        }
    }

    pub fn is_guest(&self) -> bool {
        self.name == GUEST
    }

    /// System Managers (and Administrator) may do everything on both doctypes.
    pub fn is_system_manager(&self) -> bool {
        self.name == ADMINISTRATOR
            || self
                .roles
                .iter()
                .any(|r| r == SYSTEM_MANAGER || r == ADMINISTRATOR)
    }
}

/// Credentials found in a request.
enum Credentials {
    ApiKey { key: String, secret: String },
    Session(String),
    None,
}

fn credentials(req: &HttpRequest) -> Result<Credentials, AppError> {
    if let Some(h) = req.headers().get(AUTHORIZATION) {
        let h = h.to_str().map_err(|_| AppError::authentication())?.trim();
        let (scheme, value) = h.split_once(' ').ok_or_else(AppError::authentication)?;
        let pair = match scheme.to_ascii_lowercase().as_str() {
            "token" => value.trim().to_string(),
            "basic" => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(value.trim())
                    .map_err(|_| AppError::authentication())?;
                String::from_utf8(raw).map_err(|_| AppError::authentication())?
            }
            // Bearer tokens are Frappe's OAuth provider feature, which this service does not serve.
            _ => return Err(AppError::authentication()),
        };
        let (key, secret) = pair.split_once(':').ok_or_else(AppError::authentication)?;
        return Ok(Credentials::ApiKey {
            key: key.to_string(),
            secret: secret.to_string(),
        });
    }
    if let Some(c) = req.cookie("sid") {
        let sid = c.value();
        if !sid.is_empty() && sid != GUEST {
            return Ok(Credentials::Session(sid.to_string()));
        }
    }
    Ok(Credentials::None)
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let creds = credentials(req);
        let req = req.clone();
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::internal("application state missing"))?;
            match creds? {
                Credentials::None => Ok(CurrentUser::guest()),
                Credentials::ApiKey { key, secret } => {
                    authenticate_api_key(&state, key, secret, Some(&req)).await
                }
                Credentials::Session(sid) => {
                    // A write with the session cookie: it must come from this service's pages
                    // (or an allowed origin) and carry the session's CSRF token if it has one.
                    let write = csrf::is_unsafe(req.method());
                    if write {
                        csrf::check_origin(&state, &req)?;
                    }
                    let Some((user, data)) = session_user(&state, sid, write).await? else {
                        return Ok(CurrentUser::guest());
                    };
                    // A login makes a new session before Frappe checks the token, so the old
                    // session's token is not asked for (its origin is checked above and in
                    // the login itself).
                    if write && !is_login_path(req.path()) {
                        csrf::check_token(&req, data.as_deref().and_then(csrf::token_in_data))?;
                    }
                    Ok(user)
                }
            }
        })
    }
}

/// A secret that is not in the cache is verified against the database, unless the key or
/// the address has used up its failures (429, as Frappe's rate limiter answers). A wrong
/// secret counts a failure for both; a right one counts nothing and writes nothing.
async fn authenticate_api_key(
    state: &web::Data<AppState>,
    key: String,
    secret: String,
    req: Option<&HttpRequest>,
) -> Result<CurrentUser, AppError> {
    if let Some((name, roles)) = state.api_keys.get(&key, &secret) {
        return Ok(CurrentUser {
            name,
            roles,
            method: AuthMethod::ApiKey,
            sid: None,
        });
    }
    let st = state.clone();
    let lookup_key = key.clone();
    let t = throttle::Throttle::from_settings(&state.settings);
    let addr = req.and_then(throttle::client_ip).map(throttle::address_key);
    let mut counters = vec![throttle::api_key_key(&key)];
    counters.extend(addr.as_deref().map(throttle::api_address_key));
    let now = state.clock.now();
    let checked = counters.clone();
    let found = state
        .db
        .read(move |conn| {
            if t.is_locked(conn, &checked, now)? {
                return Ok(Err(throttle::too_many_requests()));
            }
            let Some((name, enabled, enc)) = store::user_by_api_key(conn, &lookup_key)? else {
                return Ok(Ok(None));
            };
            let roles = store::roles_of(conn, &name)?;
            Ok(Ok(Some((name, enabled, enc, roles))))
        })
        .await??;
    let verified = match &found {
        Some((_, enabled, Some(enc), _)) if *enabled != 0 => crate::secrets::Vault::new(&st.keys)
            .open(enc)
            .is_ok_and(|stored| {
                bool::from(stored.expose_secret().as_bytes().ct_eq(secret.as_bytes()))
            }),
        _ => false,
    };
    let Some((name, _, _, roles)) = found.filter(|_| verified) else {
        let purge = state.login.purge_due();
        state
            .db
            .run(move |conn| {
                if purge {
                    // Housekeeping: a failed purge (say a Galera conflict) is logged, not fatal.
                    let _ = t.purge(conn, now);
                }
                t.record_failure(conn, &counters, now)
            })
            .await?;
        return Err(AppError::authentication());
    };
    state.api_keys.put(
        &key,
        &secret,
        &name,
        &roles,
        state.settings.api_key_cache_ttl,
    );
    Ok(CurrentUser {
        name,
        roles,
        method: AuthMethod::ApiKey,
        sid: None,
    })
}

/// `/api/method/login` (v1 or v2).
fn is_login_path(path: &str) -> bool {
    path == "/api/method/login" || path == "/api/v2/method/login"
}

/// The user of a live session, or `None` when the sid is unknown or expired.
pub async fn authenticate_session(
    state: &web::Data<AppState>,
    sid: String,
) -> Result<Option<CurrentUser>, AppError> {
    Ok(session_user(state, sid, false).await?.map(|(u, _)| u))
}

/// The user of a live session and, with `with_data`, the session's `sessiondata`.
async fn session_user(
    state: &web::Data<AppState>,
    sid: String,
    with_data: bool,
) -> Result<Option<(CurrentUser, Option<String>)>, AppError> {
    let clock = state.clock;
    let ttl = state.settings.session_ttl;
    let sid2 = sid.clone();
    let found = state
        .db
        .read(move |conn| {
            let Some(found) = store::find_session_user(conn, &sid2, with_data)? else {
                return Ok(None);
            };
            let now = clock.now();
            let age = found
                .session
                .lastupdate
                .map(|t| (now - t).num_seconds())
                .unwrap_or(i64::MAX);
            if age < 0 || age as u64 > ttl.as_secs() {
                return Ok(None);
            }
            let Some((name, true)) = found.user else {
                return Ok(None);
            };
            // Frappe refreshes lastupdate at most every few minutes; so do we.
            let touch = (age > 300).then_some(now);
            let roles = found.roles;
            Ok(Some((
                CurrentUser {
                    name,
                    roles,
                    method: AuthMethod::Session,
                    sid: Some(sid2),
                },
                touch,
                found.data,
            )))
        })
        .await?;
    let Some((user, touch, data)) = found else {
        return Ok(None);
    };
    if let Some(now) = touch {
        state
            .db
            .run(move |conn| store::touch_session(conn, &sid, now))
            .await?;
    }
    Ok(Some((user, data)))
}
