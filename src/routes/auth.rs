//! Logins as Frappe clients make them: `login`, `logout`, `ping`.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::{HttpResponse, HttpResponseBuilder};
use serde_json::json;

use super::call::Call;
use crate::auth::store as users;
use crate::error::AppError;
use crate::secrets;

pub async fn ping() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "message": "pong" }))
}

fn secure(call: &Call) -> bool {
    call.state.public_url.starts_with("https://")
}

fn cookie<'a>(name: &'a str, value: String, secure: bool, http_only: bool) -> Cookie<'a> {
    let mut c = Cookie::new(name, value);
    c.set_path("/");
    c.set_same_site(SameSite::Lax);
    c.set_http_only(http_only);
    c.set_secure(secure);
    c
}

fn session_cookies(
    b: &mut HttpResponseBuilder,
    sid: &str,
    user: &str,
    full_name: &str,
    system_user: bool,
    secure: bool,
    max_age: i64,
) {
    let mut sid_cookie = cookie("sid", sid.to_string(), secure, true);
    sid_cookie.set_max_age(CookieDuration::seconds(max_age));
    b.cookie(sid_cookie);
    b.cookie(cookie(
        "system_user",
        if system_user { "yes" } else { "no" }.into(),
        secure,
        false,
    ));
    b.cookie(cookie("full_name", full_name.to_string(), secure, false));
    b.cookie(cookie("user_id", user.to_string(), secure, false));
    b.cookie(cookie("user_image", String::new(), secure, false));
}

/// `POST /api/method/login` with `usr` and `pwd`.
///
/// Three steps: (1) one database call resolves the user and takes an attempt from the user's
/// and the address's counters (refused at once when either is used up); (2) the password is
/// checked without holding a connection, at most a few at a time, always against a hash (the
/// user's, also when disabled, or a dummy), so timing does not tell which users exist or are
/// enabled; (3) only a good login writes again: its session, and gives its attempts back.
pub async fn login(call: Call) -> Result<HttpResponse, AppError> {
    use crate::auth::throttle;
    refuse_forged_login(&call)?;
    let usr = call.args.str("usr").unwrap_or_default();
    let pwd = call.args.str("pwd").unwrap_or_default();
    if usr.is_empty() || pwd.is_empty() {
        return Err(AppError::invalid_login("Incomplete login details"));
    }
    let ip = throttle::client_ip(&call.req);
    let addr = ip.map(throttle::address_key);
    let state = call.state.clone();
    let limits = &call.state.login;
    let queued = limits.enter()?;
    let now = state.clock.now();
    let t = throttle::Throttle::from_settings(&state.settings);
    let purge = limits.purge_due();
    let (user, hash, keys) = state
        .db
        .run(move |conn| {
            if purge {
                // Housekeeping: a failed purge (say a Galera conflict) is logged, not fatal.
                let _ = t.purge(conn, now);
            }
            let user = users::find_login_user(conn, &usr)?;
            let hash = match &user {
                Some(u) => crate::secrets::vault::stored(conn, "User", &u.name, "password")?
                    .map(|s| s.value),
                None => None,
            };
            // The resolved user's counter, so every way to name one user shares it.
            let mut keys = vec![throttle::user_key(user.as_ref().map_or(&usr, |u| &u.name))];
            keys.extend(addr.as_deref().map(throttle::login_address_key));
            if !t.admit(conn, &keys, now)? {
                return Ok(Err(AppError::invalid_login(
                    "Your account has been locked and will resume after some time. Please try again later.",
                )));
            }
            Ok(Ok((user, hash, keys)))
        })
        .await??;
    let verified = queued
        .verify(pwd, hash.unwrap_or_else(|| DUMMY_HASH.to_string()))
        .await?;
    drop(queued);
    let Some(u) = user.filter(|u| verified && u.enabled != 0) else {
        // The attempt stays taken: that is the failure counted.
        return Err(AppError::invalid_login("Invalid login credentials"));
    };
    let sid = secrets::random_hex(56);
    let sid2 = sid.clone();
    let ttl_hours = state.settings.session_ttl.as_secs() / 3600;
    let outcome: Result<users::UserRow, AppError> = state
        .db
        .run(move |conn| {
            if let Some((user_key, others)) = keys.split_first() {
                t.clear(conn, user_key)?;
                for k in others {
                    t.give_back(conn, k)?;
                }
            }
            let data = format!(
                "{{'user': '{}', 'session_ip': '{}', 'last_updated': '{}', 'session_expiry': '{}:00:00', 'full_name': None, 'user_type': '{}', 'lang': 'en'}}",
                py_escape(&u.name),
                ip.map(|a| a.to_string()).unwrap_or_default(),
                crate::frappe::time::format(&now),
                ttl_hours,
                py_escape(u.user_type.as_deref().unwrap_or("Website User"))
            );
            users::insert_session(conn, &sid2, &u.name, &data, None, now)?;
            Ok(u)
        })
        .await;
    let u = outcome?;
    let full_name = u
        .full_name
        .clone()
        .or(u.first_name.clone())
        .unwrap_or_else(|| u.name.clone());
    let system_user = u.user_type.as_deref() == Some("System User");
    let mut b = HttpResponse::Ok();
    session_cookies(
        &mut b,
        &sid,
        &u.name,
        &full_name,
        system_user,
        secure(&call),
        call.state.settings.session_ttl.as_secs() as i64,
    );
    let body = if system_user {
        json!({"message": "Logged In", "home_page": "/app", "full_name": full_name})
    } else {
        json!({"message": "No App", "home_page": "/me", "full_name": full_name})
    };
    Ok(b.json(body))
}

/// Login CSRF: another site's page must not log the browser into an account of its choice.
/// A login is a POST whose browser-declared origin, when it has one, is this service (or an
/// `allow_cors` origin); a password never travels in a URL, so a GET login (which a link or a
/// navigation can make, without any `Origin`) and a `pwd` in the query string are refused.
fn refuse_forged_login(call: &Call) -> Result<(), AppError> {
    let pwd_in_query =
        url::form_urlencoded::parse(call.req.query_string().as_bytes()).any(|(k, _)| k == "pwd");
    if !crate::auth::csrf::is_unsafe(&call.method) || pwd_in_query {
        return Err(AppError::permission(
            vec![crate::error::ServerMessage::raised(
                "Log in with a POST request that carries usr and pwd in its body: a password is never accepted in the URL.",
            )],
            None,
        ));
    }
    crate::auth::csrf::check_origin(&call.state, &call.req)
}

/// A valid hash to verify against when the user does not exist.
const DUMMY_HASH: &str =
    "$pbkdf2-sha256$29000$V.p9LyVkzLlX6r23Nqa0Vg$Ssjwv3Hd.XAE1kUn/D4Na6T4yKPucJ1YqhB8isFH1TI";

fn py_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

/// `POST /api/method/logout`: ends the session and resets the cookies to Guest.
pub async fn logout(call: Call) -> Result<HttpResponse, AppError> {
    if let Some(sid) = call.user.sid.clone() {
        call.state
            .db
            .run(move |conn| users::delete_session(conn, &sid))
            .await?;
    }
    let mut b = HttpResponse::Ok();
    session_cookies(&mut b, "Guest", "Guest", "Guest", false, secure(&call), 0);
    Ok(b.json(json!({"message": "No App", "home_page": "/login", "full_name": "Guest"})))
}
