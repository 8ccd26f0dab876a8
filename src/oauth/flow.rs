//! The OAuth flows of a Connected App: connect (authorization URL), callback (code exchange),
//! tokens for scripts (refresh once under concurrency), client credentials, revocation and
//! OpenID discovery.

use std::borrow::Borrow;

use chrono::NaiveDateTime;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};
use subtle::ConstantTimeEq;

use super::client::{self, AppEndpoints, ClientLimits, OAuthError, Pkce, TokenSet};
use super::health_store;
use super::store as oauth_store;
use crate::auth::store as users;
use crate::auth::CurrentUser;
use crate::db::DbConnection;
use crate::doc::service::{self, Perm, StatePtr};
use crate::doc::{store, Doc};
use crate::doctype::connected_app::ConnectedApp;
use crate::doctype::token_cache::{self, Key, Slot, TokenCache};
use crate::error::{AppError, AppResult, ExcType, Status};
use crate::frappe::meta::{CONNECTED_APP, TOKEN_CACHE};
use crate::frappe::time;
use crate::metrics::{Outcome, RefreshFailure};
use crate::secrets::vault::{Sealed, Stored};
use crate::secrets::Vault;
use crate::state::{AppState, SharedState};

pub fn limits(state: &AppState) -> ClientLimits {
    ClientLimits {
        max_response_bytes: state.settings.http_max_response,
    }
}

/// Decrypts a Password field of a document (`None` when unset).
pub fn secret_of(
    state: &AppState,
    conn: &mut DbConnection,
    doctype: &str,
    name: &str,
    field: &str,
) -> AppResult<Option<SecretString>> {
    Vault::new(&state.keys).read(conn, doctype, name, field)
}

/// The cleartext of a stored `__Auth` value.
fn reveal(
    state: &AppState,
    doctype: &str,
    name: &str,
    field: &str,
    stored: String,
    encrypted: bool,
) -> AppResult<SecretString> {
    Vault::new(&state.keys).reveal(
        doctype,
        name,
        field,
        Stored {
            value: stored,
            encrypted,
        },
    )
}

/// What the provider client needs from a Connected App.
pub fn endpoints(state: &AppState, conn: &mut DbConnection, app: &Doc) -> AppResult<AppEndpoints> {
    ConnectedApp::of(app).endpoints(&Vault::new(&state.keys), conn)
}

/// A provider failure as a Frappe-shaped 4xx (or 503 when the provider is unreachable).
///
/// Every failure to get an answer at all (a destination `outbound_allow` refuses, a refused
/// connection, a DNS failure, a timeout) is the same 503 with the same words, naming no
/// address, port or cause: a caller who may set an app's URLs cannot use the answers to map
/// internal hosts and services. The cause is logged server-side.
pub fn provider_error(e: &OAuthError) -> AppError {
    match e {
        OAuthError::InvalidTokenType => AppError::validation("Received an invalid token type."),
        OAuthError::Unreachable { .. }
        | OAuthError::Timeout { .. }
        | OAuthError::Refused { .. } => AppError::thrown(
            ExcType::ServiceUnavailableError,
            "The OAuth provider could not be reached or did not answer in time.",
        ),
        OAuthError::Provider { status, .. } if *status >= 500 => AppError::thrown(
            ExcType::OAuthProviderError,
            format!("The OAuth provider failed: {e}"),
        )
        .with_status(Status::BAD_GATEWAY),
        _ => AppError::thrown(
            ExcType::OAuthProviderError,
            format!("The OAuth provider refused the request: {e}"),
        ),
    }
}

/// Starts the web application flow: a fresh single-use `state` (and PKCE verifier) is kept in
/// the user's Token Cache for the app (`<app>-<user>`), and the provider's authorization URL is
/// returned. A row of that name that is not this user's connection to this app is refused,
/// never written to.
pub async fn initiate(
    state: &SharedState,
    caller: &CurrentUser,
    app: &Doc,
    for_user: Option<String>,
    success_uri: Option<String>,
) -> AppResult<String> {
    let target = for_user
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| caller.name.clone());
    if !target.eq_ignore_ascii_case(&caller.name) && !caller.is_system_manager() {
        return Err(AppError::permission(
            vec![crate::error::ServerMessage::raised(
                "Only a System Manager can connect an account for another user.",
            )],
            None,
        ));
    }
    if let Some(s) = &success_uri {
        if s.len() > 140 {
            return Err(AppError::validation(
                "success_uri is too long: it can have at most 140 characters.",
            ));
        }
    }
    let app = app.clone();
    let caller_name = caller.name.clone();
    let st = StatePtr::new(state);
    state
        .db
        .write(move |conn| {
            let state = st.get();
            let now = state.clock.now();
            let ep = endpoints(state, conn, &app)?;
            let oauth_state = crate::secrets::random_token(30);
            let pkce = if oauth_store::pkce_enabled(conn, app.name())? {
                Some(Pkce::generate())
            } else {
                None
            };
            let url = client::authorization_url(
                &ep,
                &oauth_state,
                pkce.as_ref().map(|p| p.challenge.as_str()),
            )
            .map_err(|e| AppError::validation(e.to_string()))?;
            // The user's stored name: the `user` column and the name are written as stored.
            let target = users::find_user(conn, &target)?
                .ok_or_else(|| AppError::not_found("User", &target))?
                .name;
            let key = Key::user(app.name(), &target);
            let name = key.name();
            crate::db::write_transaction(conn, |conn| {
                store::lock(conn, &TOKEN_CACHE, &name)?;
                match token_cache::slot(conn, &key)? {
                    Slot::Taken(_) => return Err(token_cache::taken(&key)),
                    Slot::Own(mut tc) => {
                        tc.set_state(Some(&oauth_state));
                        // As Frappe: each flow sets success_uri, clearing an earlier one.
                        tc.set_success_uri(success_uri.as_deref());
                        tc.touch(&caller_name, now);
                        store::update(conn, tc.doc(), &[])?;
                    }
                    Slot::Free(_) => {
                        let app = ConnectedApp::of(&app);
                        let mut tc = TokenCache::new(&key, app.provider_name(), &caller_name, now);
                        tc.set_state(Some(&oauth_state));
                        tc.set_success_uri(success_uri.as_deref());
                        store::insert(conn, tc.doc())?;
                    }
                }
                let mut ts = oauth_store::token_state(conn, &name)?.unwrap_or_default();
                ts.token_cache = name.clone();
                ts.code_verifier = pkce
                    .as_ref()
                    .map(|p| Vault::new(&state.keys).seal(p.verifier.expose_secret()))
                    .transpose()?
                    .map(Sealed::into_string);
                ts.state_expires_at = Some(
                    now + chrono::Duration::seconds(state.settings.state_ttl.as_secs() as i64),
                );
                oauth_store::save_token_state(conn, &ts)?;
                Ok(url)
            })
        })
        .await
}

/// What a successful callback did.
#[derive(Debug)]
pub struct Connected {
    pub token_cache: String,
    /// The Connected App's stored name.
    pub app: String,
    pub success_uri: Option<String>,
}

fn invalid_state() -> AppError {
    AppError::validation(
        "Invalid token state! Check if the token has been created by the OAuth user.",
    )
}

/// The provider redirected back: checks `state` (constant time, single use, not expired),
/// exchanges the code and stores the tokens.
pub async fn callback(
    state: &SharedState,
    user: &CurrentUser,
    app_name: &str,
    code: Option<String>,
    given_state: Option<String>,
    provider_error_param: Option<(String, Option<String>)>,
) -> AppResult<Connected> {
    let app_name = app_name.to_string();
    let user_name = user.name.clone();
    let st = StatePtr::new(state);
    // 1. Look up and check the pending state.
    let (app, ep, key, name, verifier) = state
        .db
        .run(move |conn| {
            let state = st.get();
            let app = store::load(conn, &CONNECTED_APP, &app_name)?
                .ok_or_else(|| AppError::not_found("Connected App", &app_name))?;
            // Only the caller's own connection to this app holds the state to check.
            let key = Key::user(app.name(), &user_name);
            let tc = token_cache::load(conn, &key)?.ok_or_else(invalid_state)?;
            let name = tc.name().to_string();
            let stored = tc.state().to_string();
            let given = given_state.unwrap_or_default();
            if stored.is_empty() || !bool::from(stored.as_bytes().ct_eq(given.as_bytes())) {
                return Err(invalid_state());
            }
            let ts = oauth_store::token_state(conn, &name)?.unwrap_or_default();
            if ts.state_expires_at.is_some_and(|t| t < state.clock.now()) {
                return Err(AppError::validation(
                    "Invalid token state! The authorization request has expired. Please connect again.",
                ));
            }
            let verifier = match &ts.code_verifier {
                Some(v) => Some(Vault::new(&state.keys).open(v).map_err(|_| invalid_state())?),
                None => None,
            };
            let ep = endpoints(state, conn, &app)?;
            Ok((app, ep, key, name, verifier))
        })
        .await?;
    if let Some((error, description)) = provider_error_param {
        return Err(AppError::thrown(
            ExcType::OAuthProviderError,
            format!(
                "The OAuth provider refused the authorization: ({error}) {}",
                description.unwrap_or_default()
            ),
        ));
    }
    let code = code.filter(|c| !c.is_empty()).ok_or_else(|| {
        AppError::validation("Please supply either code or authorization_response parameters.")
    })?;
    // 2. Exchange the code (outside any transaction).
    let tokens =
        match client::exchange_code(&state.http, &limits(state), &ep, &code, verifier.as_ref())
            .await
        {
            Ok(t) => {
                state.metrics.code_exchange(Outcome::Ok);
                t
            }
            Err(e) => {
                state.metrics.code_exchange(Outcome::Failed);
                tracing::warn!(connected_app = %app.name(), error = %e, "code exchange failed");
                return Err(provider_error(&e));
            }
        };
    // 3. Store them; the state is used up.
    let user_name = user.name.clone();
    let name2 = name.clone();
    let st = StatePtr::new(state);
    let success_uri = state
        .db
        .write(move |conn| {
            let state = st.get();
            crate::db::write_transaction(conn, |conn| {
                store::lock(conn, &TOKEN_CACHE, &name2)?;
                let mut tc = token_cache::load(conn, &key)?.ok_or_else(invalid_state)?;
                // A concurrent callback may have used the state while we talked to the provider.
                if tc.state().is_empty() {
                    return Err(invalid_state());
                }
                tc.set_state(None);
                store_tokens(state, conn, &mut tc, &tokens, &user_name)?;
                let mut ts = oauth_store::token_state(conn, &name2)?.unwrap_or_default();
                ts.token_cache = name2.clone();
                ts.code_verifier = None;
                ts.state_expires_at = None;
                oauth_store::save_token_state(conn, &ts)?;
                Ok(tc.success_uri().map(str::to_string))
            })
        })
        .await?;
    Ok(Connected {
        token_cache: name,
        app: app.name().to_string(),
        success_uri,
    })
}

/// Writes a token response into a loaded Token Cache and saves it (inside a transaction).
fn store_tokens(
    state: &AppState,
    conn: &mut DbConnection,
    tc: &mut TokenCache,
    tokens: &TokenSet,
    by: &str,
) -> AppResult<()> {
    let now = state.clock.now();
    let name = tc.name().to_string();
    let doctype = TOKEN_CACHE.doctype();
    let vault = Vault::new(&state.keys);
    // New tokens: whatever failed before is over.
    health_store::record_refresh_success(conn, &name)?;
    let access_token = tokens.access_token.expose_secret();
    tc.set_access_token_mask(crate::secrets::mask_secret(access_token));
    vault.write(conn, doctype, &name, "access_token", access_token)?;
    if let Some(rt) = &tokens.refresh_token {
        tc.set_refresh_token_mask(crate::secrets::mask_secret(rt.expose_secret()));
        vault.write(conn, doctype, &name, "refresh_token", rt.expose_secret())?;
    }
    tc.set_expires_in(tokens.expires_in);
    tc.set_token_type(&tokens.token_type);
    tc.touch(by, now);
    let mut replaced: Vec<&str> = Vec::new();
    if let Some(scope) = &tokens.scope {
        replaced.push(tc.set_scopes(scope, by, now));
    }
    store::update(conn, tc.doc(), &replaced)?;
    super::token_extra::store(state, conn, &name, tokens)?;
    let mut ts = oauth_store::token_state(conn, &name)?.unwrap_or_default();
    ts.token_cache = name;
    ts.received_at = Some(now);
    ts.needs_reconnect = 0;
    oauth_store::save_token_state(conn, &ts)
}

/// Seconds until a Token Cache's access token expires: received time (or, for rows Frappe
/// wrote, `modified`) plus `expires_in`, minus now.
pub fn seconds_left<D: Borrow<Doc>>(
    state: &AppState,
    tc: &TokenCache<D>,
    received_at: Option<NaiveDateTime>,
) -> i64 {
    let base = received_at.or(tc.modified());
    let Some(base) = base else { return 0 };
    tc.expires_in() - state.clock.seconds_since(base)
}

/// The refresh-ahead margin for a token living `lifetime` seconds: the configured margin, but
/// never more than half the lifetime (else a token living shorter than the margin would be
/// refreshed on every use).
pub fn effective_margin(margin: i64, lifetime: i64) -> i64 {
    margin.min(lifetime.max(0) / 2)
}

/// The caller's usable token, refreshed first when it has expired or is about to.
pub async fn get_access_token(
    state: &SharedState,
    app_name: &str,
    user: Option<&str>,
    caller: &str,
) -> AppResult<Value> {
    // One query resolves the app (404 when there is none) and reads the connection by its
    // name and its `connected_app` and `user` columns (see `token_cache`).
    let key = Key {
        app: app_name.to_string(),
        user: user.map(str::to_string),
    };
    let name = key.name();
    let margin = state.settings.refresh_margin.as_secs() as i64;
    let asked_at = state.clock.now();
    // Fast path: a fresh token needs no lock.
    if let Some(v) = read_fresh(state, &key, margin, None).await? {
        return Ok(v);
    }
    // One refresh per process at a time for this connection…
    let asked = std::time::Instant::now();
    let lock = state.oauth.lock_for(&name);
    let mut last_failure = lock.lock().await;
    // A refresh that failed while this call waited for the lock answers this call too.
    if let Some((failed_at, e)) = last_failure.as_ref() {
        if *failed_at >= asked {
            return Err(e.clone());
        }
    }
    let owner = format!("{}-{}", std::process::id(), crate::secrets::random_hex(8));
    let deadline =
        std::time::Instant::now() + state.settings.http_timeout + std::time::Duration::from_secs(5);
    loop {
        // A token received since this call began is the newest there is, even when it lives
        // shorter than the margin: refreshing again would loop (or refresh once per waiter).
        if let Some(v) = read_fresh(state, &key, margin, Some(asked_at)).await? {
            return Ok(v);
        }
        // …and one across processes, through a lease row in the database.
        let (n2, o2) = (name.clone(), owner.clone());
        let clock = state.clock;
        let lease = state.settings.http_timeout.as_secs() as i64 + 5;
        let taken = state
            .db
            .write(move |conn| {
                let now = clock.now();
                oauth_store::take_lease(conn, &n2, &o2, now, now + chrono::Duration::seconds(lease))
            })
            .await?;
        if taken {
            let result = refresh_now(state, &key, caller).await;
            *last_failure = result
                .as_ref()
                .err()
                .map(|e| (std::time::Instant::now(), e.clone()));
            let (n3, o3) = (name.clone(), owner.clone());
            let _ = state
                .db
                .write(move |conn| oauth_store::release_lease(conn, &n3, &o3))
                .await;
            result?;
            continue;
        }
        if std::time::Instant::now() > deadline {
            return Err(AppError::unavailable(
                "another instance is still refreshing this token",
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The token as the API returns it, when it is usable for at least `margin` more seconds, or
/// when it was received at or after `received_since`.
async fn read_fresh(
    state: &SharedState,
    key: &Key,
    margin: i64,
    received_since: Option<NaiveDateTime>,
) -> AppResult<Option<Value>> {
    let key = key.clone();
    let n = key.name();
    let st = StatePtr::new(state);
    state
        .db
        .read(move |conn| {
            let state = st.get();
            let t = match token_cache::read(conn, &key.app, key.user.as_deref())? {
                token_cache::Read::NoApp => {
                    return Err(AppError::not_found("Connected App", &key.app))
                }
                token_cache::Read::App { token: None, .. } => return Err(not_connected(&n)),
                token_cache::Read::App { token: Some(t), .. } => t,
            };
            if t.needs_reconnect {
                return Err(reconnect_needed());
            }
            let Some((stored, encrypted)) = t.access_token else {
                return Err(not_connected(&n));
            };
            // The document itself rarely changes: the cache serves it while `modified` holds.
            let tc = match state
                .docs
                .get(TOKEN_CACHE.doctype(), &t.stored_name, t.modified)
            {
                Some(tc) => tc,
                None => {
                    let tc = store::load(conn, &TOKEN_CACHE, &t.stored_name)?
                        .ok_or_else(|| not_connected(&n))?;
                    state.docs.put(&tc);
                    std::sync::Arc::new(tc)
                }
            };
            let tc = TokenCache::of(tc);
            // The row the token came from is still this connection's (columns checked again
            // on the document that supplies expiry and scopes).
            if !tc.is_of(&key) {
                return Err(not_connected(&n));
            }
            let token = reveal(state, "Token Cache", &n, "access_token", stored, encrypted)?;
            let left = seconds_left(state, &tc, t.received_at);
            let lifetime = tc.expires_in();
            let margin = effective_margin(margin, lifetime);
            let just_received =
                received_since.is_some_and(|since| t.received_at.is_some_and(|r| r >= since));
            // A token answered without `expires_in` never expires (while Frappe's column still
            // holds the 0 it was stored with).
            let never_expires = t.never_expires && lifetime == 0;
            if left <= margin && !just_received && !never_expires {
                return Ok(None);
            }
            let mut v = json!({
                "access_token": token.expose_secret(),
                "token_type": tc.token_type().unwrap_or("Bearer"),
                "expires_in": if never_expires { Value::Null } else { json!(left) },
                "scope": tc.scopes().join(" "),
            });
            // Only a connection with extras answers them: otherwise the bytes are as before.
            if let Some(extra) = t
                .extra
                .as_deref()
                .and_then(|e| super::token_extra::open(state, e))
            {
                v["extra"] = Value::Object(extra);
            }
            Ok(Some(v))
        })
        .await
}

fn not_connected(name: &str) -> AppError {
    AppError::thrown(
        ExcType::ValidationError,
        format!("There is no connection {name}. Connect the account first."),
    )
}

fn reconnect_needed() -> AppError {
    AppError::thrown(
        ExcType::ValidationError,
        "The provider no longer accepts this connection (invalid_grant). Please connect again.",
    )
}

/// Refreshes a connection for the keep-alive job when its lease is free and its tokens are
/// still the ones received at `seen` (a refresh since then means it is no longer due).
/// `Ok(false)`: left alone. The caller holds the process-wide lock of the Token Cache.
pub async fn refresh_if_unchanged(
    state: &SharedState,
    key: &Key,
    seen: Option<NaiveDateTime>,
    caller: &str,
) -> AppResult<bool> {
    let name = key.name();
    let owner = format!("{}-{}", std::process::id(), crate::secrets::random_hex(8));
    let (n2, o2) = (name.clone(), owner.clone());
    let clock = state.clock;
    let lease = state.settings.http_timeout.as_secs() as i64 + 5;
    let taken = state
        .db
        .write(move |conn| {
            let now = clock.now();
            let current = oauth_store::token_state(conn, &n2)?;
            if current.as_ref().and_then(|t| t.received_at) != seen {
                return Ok(false);
            }
            oauth_store::take_lease(conn, &n2, &o2, now, now + chrono::Duration::seconds(lease))
        })
        .await?;
    if !taken {
        return Ok(false);
    }
    let result = refresh_now(state, key, caller).await;
    let (n3, o3) = (name.clone(), owner.clone());
    let _ = state
        .db
        .write(move |conn| oauth_store::release_lease(conn, &n3, &o3))
        .await;
    result.map(|()| true)
}

/// Refreshes one connection now (the caller holds the lease). Its outcome is recorded for
/// connection health (`health_store`): a failure with a summary naming no secret, a success
/// by clearing it.
async fn refresh_now(state: &SharedState, key: &Key, caller: &str) -> AppResult<()> {
    let name = key.name();
    let n = name.clone();
    let k = key.clone();
    let st = StatePtr::new(state);
    let (ep, refresh_token) = state
        .db
        .run(move |conn| {
            let state = st.get();
            let tc = token_cache::load(conn, &k)?.ok_or_else(|| not_connected(&n))?;
            let n = tc.name().to_string();
            let app_name = tc.app().unwrap_or_default().to_string();
            let app = store::load(conn, &CONNECTED_APP, &app_name)?
                .ok_or_else(|| AppError::not_found("Connected App", &app_name))?;
            let ep = endpoints(state, conn, &app)?;
            let rt = secret_of(state, conn, "Token Cache", &n, "refresh_token")?;
            Ok((ep, rt))
        })
        .await?;
    let Some(refresh_token) = refresh_token else {
        return Err(AppError::validation(
            "The access token has expired and there is no refresh token. Please connect again.",
        ));
    };
    let result = client::refresh(&state.http, &limits(state), &ep, Some(&refresh_token)).await;
    state.metrics.refresh(match &result {
        Ok(_) => Ok(()),
        Err(e) if e.is_invalid_grant() => Err(RefreshFailure::InvalidGrant),
        Err(e) if e.is_transient() => Err(RefreshFailure::Transient),
        Err(_) => Err(RefreshFailure::Other),
    });
    if let Err(e) = &result {
        let (n, summary, now) = (name.clone(), health_store::summary_of(e), state.clock.now());
        if let Err(err) = state
            .db
            .write(move |conn| health_store::record_refresh_failure(conn, &n, &summary, now))
            .await
        {
            tracing::warn!(token_cache = %name, error = %err, "could not record a failed refresh");
        }
    }
    match result {
        Ok(tokens) => {
            let n = name.to_string();
            let k = key.clone();
            let by = caller.to_string();
            let st = StatePtr::new(state);
            state
                .db
                .write(move |conn| {
                    let state = st.get();
                    crate::db::write_transaction(conn, |conn| {
                        store::lock(conn, &TOKEN_CACHE, &n)?;
                        let mut tc =
                            token_cache::load(conn, &k)?.ok_or_else(|| not_connected(&n))?;
                        store_tokens(state, conn, &mut tc, &tokens, &by)
                    })
                })
                .await?;
            tracing::info!(token_cache = %name, "token refreshed");
            Ok(())
        }
        Err(e) if e.is_invalid_grant() => {
            tracing::warn!(token_cache = %name, "refresh refused with invalid_grant; the user must connect again");
            let n = name.to_string();
            state
                .db
                .write(move |conn| {
                    let mut ts = oauth_store::token_state(conn, &n)?.unwrap_or_default();
                    ts.token_cache = n.clone();
                    ts.needs_reconnect = 1;
                    oauth_store::save_token_state(conn, &ts)
                })
                .await?;
            Err(reconnect_needed())
        }
        Err(e) => {
            tracing::warn!(token_cache = %name, error = %e, "token refresh failed");
            Err(provider_error(&e))
        }
    }
}

/// `has_token`: the user has a stored access token that does not need reconnecting.
pub async fn has_token(state: &SharedState, app_name: &str, user: &str) -> AppResult<bool> {
    let (app_name, user) = (app_name.to_string(), user.to_string());
    state
        .db
        .read(
            move |conn| match token_cache::read(conn, &app_name, Some(&user))? {
                token_cache::Read::NoApp => Err(AppError::not_found("Connected App", &app_name)),
                token_cache::Read::App { token: None, .. } => Ok(false),
                token_cache::Read::App { token: Some(t), .. } => {
                    Ok(!t.needs_reconnect && t.access_token.is_some())
                }
            },
        )
        .await
}

/// Client credentials for the app itself, cached in Token Cache `<app>-` until it nears expiry.
pub async fn backend_app_token(
    state: &SharedState,
    app_name: &str,
    caller: &str,
) -> AppResult<Value> {
    let app_name2 = app_name.to_string();
    let app = state
        .db
        .run(move |conn| {
            let app = store::load(conn, &CONNECTED_APP, &app_name2)?
                .ok_or_else(|| AppError::not_found("Connected App", &app_name2))?;
            // `<app>-` must be the app's own row, not a user's connection that has that name.
            let own = Key::app_itself(app.name());
            if let Slot::Taken(_) = token_cache::slot(conn, &own)? {
                return Err(token_cache::taken(&own));
            }
            Ok(app)
        })
        .await?;
    let key = Key::app_itself(app.name());
    let name = key.name();
    let margin = state.settings.refresh_margin.as_secs() as i64;
    let asked = std::time::Instant::now();
    let lock = state.oauth.lock_for(&name);
    let mut last_failure = lock.lock().await;
    // A request for this token that failed while this call waited answers this call too, so
    // callers queued behind a hanging provider do not each wait out the timeout in turn.
    if let Some((failed_at, e)) = last_failure.as_ref() {
        if *failed_at >= asked {
            return Err(e.clone());
        }
    }
    match read_fresh(state, &key, margin, None).await {
        Ok(Some(v)) => return Ok(v),
        Ok(None) => {}
        Err(e) if e.exc_type == ExcType::ValidationError => {}
        Err(e) => return Err(e),
    }
    let st = StatePtr::new(state);
    let app2 = app.clone();
    let ep = state
        .db
        .run(move |conn| endpoints(st.get(), conn, &app2))
        .await?;
    let tokens = client::client_credentials(&state.http, &limits(state), &ep).await;
    state.metrics.client_credentials(match &tokens {
        Ok(_) => Outcome::Ok,
        Err(_) => Outcome::Failed,
    });
    let tokens = match tokens {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(connected_app = %app.name(), error = %e, "client credentials request failed");
            let e = provider_error(&e);
            *last_failure = Some((std::time::Instant::now(), e.clone()));
            return Err(e);
        }
    };
    let n = name.clone();
    let by = caller.to_string();
    let st = StatePtr::new(state);
    state
        .db
        .write(move |conn| {
            let state = st.get();
            crate::db::write_transaction(conn, |conn| {
                store::lock(conn, &TOKEN_CACHE, &n)?;
                let own = Key::app_itself(app.name());
                let mut tc = match token_cache::slot(conn, &own)? {
                    Slot::Own(tc) => *tc,
                    Slot::Taken(_) => return Err(token_cache::taken(&own)),
                    Slot::Free(_) => {
                        let now = state.clock.now();
                        let app = ConnectedApp::of(&app);
                        let tc = TokenCache::new(&own, app.provider_name(), &by, now);
                        store::insert(conn, tc.doc())?;
                        tc
                    }
                };
                let mut ts = oauth_store::token_state(conn, &n)?.unwrap_or_default();
                if ts.needs_reconnect != 0 {
                    ts.token_cache = n.clone();
                    ts.needs_reconnect = 0;
                    oauth_store::save_token_state(conn, &ts)?;
                }
                store_tokens(state, conn, &mut tc, &tokens, &by)
            })
        })
        .await?;
    read_fresh(state, &key, 0, None).await?.ok_or_else(|| {
        AppError::validation("The provider issued a token that has already expired.")
    })
}

/// Fetches the app's `openid_configuration` and fills its endpoints (needs write permission).
pub async fn fill_from_discovery(
    state: &SharedState,
    user: &CurrentUser,
    app: &Doc,
) -> AppResult<Doc> {
    if !service::can(user, &CONNECTED_APP, Perm::Write, app.row.owner.as_deref()) {
        return Err(service::forbidden(
            user,
            &CONNECTED_APP,
            Perm::Write,
            Some(app.name()),
        ));
    }
    let url = ConnectedApp::of(app)
        .openid_configuration()
        .ok_or_else(|| AppError::validation("Please set the OpenID Configuration URL first."))?
        .to_string();
    let d = client::discover(&state.http, &limits(state), &url)
        .await
        .map_err(|e| {
            tracing::warn!(connected_app = %app.name(), error = %e, "OpenID discovery failed");
            provider_error(&e)
        })?;
    let mut body = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            body.insert(k.to_string(), Value::String(v));
        }
    };
    put("authorization_uri", d.authorization_endpoint);
    put("token_uri", d.token_endpoint);
    put("userinfo_uri", d.userinfo_endpoint);
    put("introspection_uri", d.introspection_endpoint);
    put("revocation_uri", d.revocation_endpoint);
    service::update(state, user, &CONNECTED_APP, app.name(), body).await
}

/// Whether a `success_uri` may be redirected to: a relative path or the service's own origin.
pub fn safe_redirect(state: &AppState, uri: &str) -> bool {
    // `\` is `/` to a browser but part of the user info to other clients (`http://own\@evil/`).
    if uri.contains('\\') || uri.chars().any(|c| c.is_control()) {
        return false;
    }
    if uri.starts_with('/') {
        return !uri.starts_with("//") && !uri.starts_with("/\\");
    }
    match (url::Url::parse(uri), url::Url::parse(&state.public_url)) {
        (Ok(u), Ok(p)) => u.origin() == p.origin(),
        _ => false,
    }
}

pub fn format_ts(t: &NaiveDateTime) -> String {
    time::format(t)
}
