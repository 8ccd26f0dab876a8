//! Logins as Frappe clients make them: `login`, `logout`, `ping`.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::{HttpResponse, HttpResponseBuilder};
use serde_json::json;

use super::method::Call;
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
pub async fn login(call: Call) -> Result<HttpResponse, AppError> {
    refuse_forged_login(&call)?;
    let usr = call.args.str("usr").unwrap_or_default();
    let pwd = call.args.str("pwd").unwrap_or_default();
    if usr.is_empty() || pwd.is_empty() {
        return Err(AppError::invalid_login("Incomplete login details"));
    }
    let ip = call
        .req
        .connection_info()
        .realip_remote_addr()
        .map(|a| a.split(':').next().unwrap_or(a).to_string());
    let state = call.state.clone();
    let now = state.clock.now();
    let throttle = crate::auth::throttle::Throttle::from_settings(&state.settings);
    let sid = secrets::random_hex(56);
    let sid2 = sid.clone();
    let ttl_hours = state.settings.session_ttl.as_secs() / 3600;
    let outcome = state
        .db
        .run(move |conn| {
            let keys = throttle.keys(&usr, ip.as_deref());
            if throttle.is_locked(conn, &keys, now)? {
                return Ok(Err(AppError::invalid_login(
                    "Your account has been locked and will resume after some time. Please try again later.",
                )));
            }
            let user = users::find_login_user(conn, &usr)?;
            let hash = match &user {
                Some(u) => users::auth_value(conn, "User", &u.name, "password")?.map(|(h, _)| h),
                None => None,
            };
            let ok = match (&user, &hash) {
                (Some(u), Some(h)) => u.enabled != 0 && secrets::password::verify_password(&pwd, h),
                _ => {
                    // Same work whether or not the user exists.
                    let _ = secrets::password::verify_password(&pwd, DUMMY_HASH);
                    false
                }
            };
            if !ok {
                throttle.record_failure(conn, &keys, now)?;
                return Ok(Err(AppError::invalid_login("Invalid login credentials")));
            }
            throttle.clear(conn, &keys)?;
            let Some(u) = user else { return Ok(Err(AppError::invalid_login("Invalid login credentials"))) };
            let data = format!(
                "{{'user': '{}', 'session_ip': '{}', 'last_updated': '{}', 'session_expiry': '{}:00:00', 'full_name': None, 'user_type': '{}', 'lang': 'en'}}",
                py_escape(&u.name),
                py_escape(ip.as_deref().unwrap_or("")),
                crate::frappe::time::format(&now),
                ttl_hours,
                py_escape(u.user_type.as_deref().unwrap_or("Website User"))
            );
            users::insert_session(conn, &sid2, &u.name, &data, None, now)?;
            Ok(Ok(u))
        })
        .await?;
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
