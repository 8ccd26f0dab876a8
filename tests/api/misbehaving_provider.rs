//! An OAuth provider that misbehaves: it hangs, resets connections, answers 500 or answers
//! garbage. Callbacks and refreshes fail within the configured timeout with a Frappe-shaped
//! error, the rest of the service keeps answering meanwhile, and no stored token is touched.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;
use crate::oauth_flow::*;

const HTTP_TIMEOUT: Duration = Duration::from_secs(2);

/// How the fake token endpoint misbehaves.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Misbehaviour {
    /// Reads the request and never answers.
    Hang,
    /// Reads the request and resets the connection.
    Reset,
    /// Answers 500 with an HTML page.
    ServerError,
    /// Answers bytes that are not HTTP.
    NotHttp,
    /// Answers 200 with a body that is not JSON.
    NotJson,
}

const ALL: [Misbehaviour; 5] = [
    Misbehaviour::Hang,
    Misbehaviour::Reset,
    Misbehaviour::ServerError,
    Misbehaviour::NotHttp,
    Misbehaviour::NotJson,
];

/// Reads one request head (the body, if any, is not needed to misbehave).
async fn read_head(socket: &mut tokio::net::TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    true
}

/// A token endpoint that misbehaves as asked; returns its URL. Hanging sockets stay open for
/// the life of the test.
async fn misbehaving_endpoint(how: Misbehaviour) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            if !read_head(&mut socket).await {
                continue;
            }
            match how {
                Misbehaviour::Hang => held.push(socket),
                Misbehaviour::Reset => {
                    // Linger 0: close() sends RST instead of FIN (and does not block).
                    #[expect(deprecated, reason = "a zero linger never blocks the thread")]
                    let _ = socket.set_linger(Some(Duration::ZERO));
                    drop(socket);
                }
                Misbehaviour::ServerError => {
                    let body = "<html><body>Internal Server Error</body></html>";
                    let reply = format!("HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                    let _ = socket.write_all(reply.as_bytes()).await;
                }
                Misbehaviour::NotHttp => {
                    let _ = socket
                        .write_all(b"\x00\xff\xfe garbage \x1b[31m not http at all\r\n\r\n")
                        .await;
                }
                Misbehaviour::NotJson => {
                    let body = "<html>{{{ not json";
                    let reply = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                    let _ = socket.write_all(reply.as_bytes()).await;
                }
            }
        }
    });
    format!("http://127.0.0.1:{port}/token")
}

async fn set_token_uri(o: &OAuthApp, uri: &str) {
    let (status, v) = o
        .app
        .put(
            &o.admin(),
            &format!("/api/resource/Connected%20App/{}", o.name),
            &json!({ "token_uri": uri }),
        )
        .await;
    assert_eq!(status, 200, "{v}");
}

/// A provider failure in Frappe's shape that says what went wrong and leaks nothing.
fn assert_clear_provider_failure(what: &str, status: u16, v: &Value) {
    assert!(
        matches!(status, 417 | 502 | 503),
        "{what}: expected a provider failure, got {status} {v}"
    );
    let exc_type = v["exc_type"].as_str().unwrap_or_default();
    assert!(
        matches!(
            exc_type,
            "OAuthProviderError" | "ServiceUnavailableError" | "ValidationError"
        ),
        "{what}: {v}"
    );
    let messages = server_messages(v);
    assert!(
        messages
            .iter()
            .any(|m| m.contains("OAuth provider") || m.contains("token")),
        "{what}: the message does not say what failed: {v}"
    );
    let text = v.to_string();
    for leak in [CLIENT_SECRET, "Traceback", "reqwest", "hyper", "garbage"] {
        assert!(!text.contains(leak), "{what}: leaked {leak:?}: {v}");
    }
}

/// The stored tokens of a user, decrypted.
fn tokens(o: &OAuthApp, user: &str) -> (Option<String>, Option<String>) {
    (
        o.stored_secret(user, "access_token"),
        o.stored_secret(user, "refresh_token"),
    )
}

async fn misbehaving_fixture(backend: Backend) -> OAuthApp {
    oauth_app(
        backend,
        |s| {
            s.http_timeout = HTTP_TIMEOUT;
            s.http_connect_timeout = Duration::from_secs(1);
        },
        json!({}),
        json!({}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_against_a_misbehaving_provider_fail_within_the_timeout_and_keep_the_tokens() {
    for backend in BACKENDS {
        let o = misbehaving_fixture(backend).await;
        let admin = o.admin();
        o.connect(&admin, json!({})).await;
        o.expire("Administrator");
        let before = tokens(&o, "Administrator");
        assert!(before.0.is_some() && before.1.is_some());
        for how in ALL {
            set_token_uri(&o, &misbehaving_endpoint(how).await).await;

            let started = Instant::now();
            let (status, v) = o.get_access_token(&admin, "").await;
            let took = started.elapsed();

            let what = format!("{backend:?} {how:?} refresh");
            assert_clear_provider_failure(&what, status, &v);
            assert!(
                took < HTTP_TIMEOUT + Duration::from_secs(2),
                "{what} took {took:?}"
            );
            assert_eq!(tokens(&o, "Administrator"), before, "{what}");
            let (_, v) = o
                .app
                .get(
                    &admin,
                    &format!(
                        "/api/method/frappe.integrations.doctype.connected_app.connected_app.has_token?connected_app={}",
                        o.name
                    ),
                )
                .await;
            assert_eq!(v["message"], true, "{what}: the connection was dropped");
        }
        // Once the provider behaves again, the same stored refresh token still works.
        set_token_uri(&o, &o.provider.token_endpoint()).await;
        let (status, v) = o.get_access_token(&admin, "").await;
        assert_eq!(status, 200, "{backend:?}: {v}");
        assert_ne!(tokens(&o, "Administrator").0, before.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_against_a_misbehaving_provider_fail_within_the_timeout_and_keep_the_tokens() {
    for backend in BACKENDS {
        let o = misbehaving_fixture(backend).await;
        let admin = o.admin();
        o.connect(&admin, json!({})).await;
        let before = tokens(&o, "Administrator");
        for how in ALL {
            // A real authorization, then the code exchange meets the misbehaving endpoint.
            set_token_uri(&o, &o.provider.token_endpoint()).await;
            let url = o.initiate(&admin, json!({})).await;
            let back = o.provider.authorize(&url).await;
            set_token_uri(&o, &misbehaving_endpoint(how).await).await;

            let started = Instant::now();
            let (status, v) = status_json(o.callback(Some(&admin), &back).await).await;
            let took = started.elapsed();

            let what = format!("{backend:?} {how:?} callback");
            assert_clear_provider_failure(&what, status, &v);
            assert!(
                took < HTTP_TIMEOUT + Duration::from_secs(2),
                "{what} took {took:?}"
            );
            assert_eq!(tokens(&o, "Administrator"), before, "{what}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_provider_does_not_slow_down_other_requests() {
    for backend in BACKENDS {
        let o = misbehaving_fixture(backend).await;
        let admin = o.admin();
        let user1 = o.app.user(USER1, &[]).await;
        o.connect(&admin, json!({})).await;
        o.connect(&user1, json!({})).await;
        o.expire("Administrator");
        o.expire(USER1);
        set_token_uri(&o, &misbehaving_endpoint(Misbehaviour::Hang).await).await;

        // More hanging refreshes than the service has workers (test settings: 2).
        let mut hanging = Vec::new();
        for i in 0..8 {
            let auth = if i % 2 == 0 {
                admin.clone()
            } else {
                user1.clone()
            };
            let (client, url) = (
                o.app.client.clone(),
                o.app.url(&format!(
                    "/api/method/connected_apps.get_access_token?connected_app={}",
                    o.name
                )),
            );
            hanging.push(tokio::spawn(async move {
                let r = client
                    .get(url)
                    .header("Authorization", auth)
                    .send()
                    .await
                    .expect("request");
                status_json(r).await
            }));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;

        // Meanwhile every other kind of request answers promptly.
        let doc_path = format!("/api/resource/Connected%20App/{}", o.name);
        for _ in 0..5 {
            for (auth, path) in [
                ("", "/api/method/ping"),
                (admin.as_str(), "/api/resource/Connected%20App"),
                (admin.as_str(), doc_path.as_str()),
                (user1.as_str(), "/api/method/frappe.auth.get_logged_user"),
            ] {
                let started = Instant::now();
                let (status, v) = o.app.get(auth, path).await;
                let took = started.elapsed();
                assert_eq!(status, 200, "{backend:?} {path}: {v}");
                assert!(
                    took < Duration::from_millis(1000),
                    "{backend:?} {path} took {took:?} while the provider hangs"
                );
            }
        }
        assert!(
            hanging.iter().all(|h| !h.is_finished()),
            "{backend:?}: the hanging refreshes ended before the other requests were checked"
        );
        for h in hanging {
            let (status, v) = h.await.unwrap();
            assert_clear_provider_failure("hanging refresh", status, &v);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_of_one_connection_against_a_hanging_provider_each_fail_within_the_timeout(
) {
    for backend in BACKENDS {
        let o = misbehaving_fixture(backend).await;
        let admin = o.admin();
        o.connect(&admin, json!({})).await;
        o.expire("Administrator");
        let before = tokens(&o, "Administrator");
        set_token_uri(&o, &misbehaving_endpoint(Misbehaviour::Hang).await).await;

        let started = Instant::now();
        let mut calls = Vec::new();
        for _ in 0..4 {
            let (client, url, auth) = (
                o.app.client.clone(),
                o.app.url(&format!(
                    "/api/method/connected_apps.get_access_token?connected_app={}",
                    o.name
                )),
                admin.clone(),
            );
            calls.push(tokio::spawn(async move {
                let r = client
                    .get(url)
                    .header("Authorization", auth)
                    .send()
                    .await
                    .expect("request");
                let out = status_json(r).await;
                (out, started.elapsed())
            }));
        }
        for c in calls {
            let ((status, v), took) = c.await.unwrap();
            assert_clear_provider_failure("concurrent hanging refresh", status, &v);
            assert!(
                took < HTTP_TIMEOUT + Duration::from_secs(2),
                "{backend:?}: a refresh waiting behind another took {took:?}"
            );
        }
        assert_eq!(tokens(&o, "Administrator"), before);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_backend_app_token_calls_against_a_hanging_provider_all_answer_within_one_timeout(
) {
    for backend in BACKENDS {
        let o = misbehaving_fixture(backend).await;
        set_token_uri(&o, &misbehaving_endpoint(Misbehaviour::Hang).await).await;

        // Without sharing the failure, the 5th caller would answer after 5 timeouts.
        let started = Instant::now();
        let mut calls = Vec::new();
        for _ in 0..5 {
            let (client, url, auth) = (
                o.app.client.clone(),
                o.app.url(&format!(
                    "/api/method/connected_apps.get_backend_app_token?connected_app={}",
                    o.name
                )),
                o.admin(),
            );
            calls.push(tokio::spawn(async move {
                let r = client
                    .get(url)
                    .header("Authorization", auth)
                    .send()
                    .await
                    .expect("request");
                let out = status_json(r).await;
                (out, started.elapsed())
            }));
        }
        let mut answers = Vec::new();
        for c in calls {
            let ((status, v), took) = c.await.unwrap();
            assert_clear_provider_failure("concurrent hanging client credentials", status, &v);
            assert!(
                took < HTTP_TIMEOUT + Duration::from_secs(2),
                "{backend:?}: a client-credentials call waiting behind another took {took:?}"
            );
            answers.push((status, v));
        }
        assert!(
            answers.iter().all(|a| *a == answers[0]),
            "{backend:?}: {answers:?}"
        );

        // A later call is not answered from the old failure: it asks the provider again.
        set_token_uri(&o, &o.provider.token_endpoint()).await;
        let (status, v) = o
            .app
            .get(
                &o.admin(),
                &format!(
                    "/api/method/connected_apps.get_backend_app_token?connected_app={}",
                    o.name
                ),
            )
            .await;
        assert_eq!(status, 200, "{backend:?}: {v}");
    }
}
