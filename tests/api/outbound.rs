//! Server-side request forgery: the service's own requests (discovery, token, refresh, client
//! credentials, revocation) never reach loopback, private, link-local, multicast, unspecified
//! or otherwise non-public addresses unless `outbound_allow` lists them, whatever spelling the
//! URL uses and whatever a host name resolves to; a refused destination is never connected to,
//! and the answer tells nothing about what is there.
//!
//! Only loopback is ever contacted. Refusals of loopback destinations are shown by real
//! listeners that count accepted connections (0), with a positive control that the same
//! listeners do count when the destination is allowed. Other addresses (10.x, 169.254.x, …)
//! are never connected to by construction: the literal address is checked before any socket
//! exists (`outbound::check_url`), which the answer's speed and sameness show here and the
//! unit tests of `src/oauth/outbound.rs` and `src/oauth/client.rs` show directly.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cli::{command_on, free_port};
use crate::helpers::*;
use crate::oauth_flow::*;

/// A listener that counts the connections it accepts and answers each request with `body`
/// (a JSON object that is both a client-credentials token and a discovery document).
struct Counting {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Counting {
    async fn bind(addr: &str) -> Counting {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body = json!({
                        "access_token": "reached-token",
                        "token_type": "Bearer",
                        "expires_in": 3600,
                        "authorization_endpoint": "https://idp.example.com/authorize",
                        "token_endpoint": "https://idp.example.com/token",
                    })
                    .to_string();
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                });
            }
        });
        Counting { port, accepted }
    }

    fn count(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// A Connected App with a client id and secret and no endpoints; returns its name.
async fn bare_app(app: &TestApp) -> String {
    let doc = app
        .create_app(json!({
            "provider_name": "Somewhere",
            "client_id": "outbound-client",
            "client_secret": "outbound-secret",
            "scopes": [{"scope": "read"}],
        }))
        .await;
    doc["name"].as_str().expect("name").to_string()
}

async fn set(app: &TestApp, name: &str, body: Value) {
    let (status, v) = app
        .put(
            &app.admin,
            &format!("/api/resource/Connected%20App/{name}"),
            &body,
        )
        .await;
    assert_eq!(status, 200, "{v}");
}

/// `get_openid_configuration` on the app.
async fn discover(app: &TestApp, name: &str) -> (u16, Value) {
    app.post(
        &app.admin,
        "/api/method/run_doc_method",
        &json!({"dt": "Connected App", "dn": name, "method": "get_openid_configuration"}),
    )
    .await
}

/// `get_backend_app_token` for the app.
async fn backend_token(app: &TestApp, name: &str) -> (u16, Value) {
    app.get(
        &app.admin,
        &format!("/api/method/connected_apps.get_backend_app_token?connected_app={name}"),
    )
    .await
}

/// The one answer every unreachable destination gets: 503, Frappe's shape, no address, port
/// or cause.
fn assert_generic_unreachable(what: &str, status: u16, v: &Value, ports: &[u16]) {
    assert_eq!(status, 503, "{what}: {v}");
    assert_eq!(v["exc_type"], "ServiceUnavailableError", "{what}: {v}");
    assert_eq!(
        server_messages(v),
        ["The OAuth provider could not be reached or did not answer in time."],
        "{what}: {v}"
    );
    let text = v.to_string().to_lowercase();
    for leak in [
        "127.",
        "::1",
        "localhost",
        "10.0",
        "169.254",
        "fd00",
        "refused",
        "timed out",
        "timeout",
        "dns",
        "outbound",
        "allow",
        "connect",
        "http://",
        "https://",
    ] {
        assert!(
            !text.contains(leak),
            "{what}: the answer mentions {leak:?}: {v}"
        );
    }
    for port in ports {
        assert!(
            !text.contains(&port.to_string()),
            "{what}: the answer names the port {port}: {v}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_requests_to_non_public_addresses_are_refused_without_connecting() {
    let v4 = Counting::bind("127.0.0.1:0").await;
    let v6 = Counting::bind("[::1]:0").await;
    let (p, p6) = (v4.port, v6.port);
    // Loopback in every spelling, each with a real listener behind it.
    let loopback = [
        format!("http://127.0.0.1:{p}"),
        format!("http://localhost:{p}"),
        format!("http://LocalHost.:{p}"),
        format!("http://[::1]:{p6}"),
        format!("http://[::ffff:127.0.0.1]:{p}"),
        format!("http://2130706433:{p}"),
        format!("http://0x7f.0.0.1:{p}"),
        format!("http://0177.0.0.1:{p}"),
        format!("http://127.1:{p}"),
        format!("https://127.0.0.1:{p}"),
        // Linux connects the unspecified address to the local host.
        format!("http://0.0.0.0:{p}"),
        format!("http://0:{p}"),
        format!("http://[::]:{p6}"),
    ];
    // Private, link-local (cloud metadata), CGNAT, multicast, broadcast, ULA, and IPv6 forms
    // that carry an internal IPv4 address: refused before a socket exists.
    let elsewhere = [
        format!("http://10.0.0.1:{p}"),
        format!("http://172.16.0.1:{p}"),
        format!("http://192.168.1.1:{p}"),
        "http://169.254.169.254".to_string(),
        format!("http://100.64.0.1:{p}"),
        format!("http://224.0.0.1:{p}"),
        format!("http://255.255.255.255:{p}"),
        format!("http://198.18.0.1:{p}"),
        format!("http://[fd00::1]:{p}"),
        format!("http://[fe80::1]:{p}"),
        format!("http://[ff02::1]:{p}"),
        "http://[::ffff:169.254.169.254]".to_string(),
        "http://[::ffff:a00:1]".to_string(),
        "http://[64:ff9b::a9fe:a9fe]".to_string(),
        "https://[2002:a9fe:a9fe::1]".to_string(),
    ];
    for backend in BACKENDS {
        // The default: nothing non-public is allowed. The connect timeout is long, so a
        // connection attempt to an address that drops packets would show as a slow answer.
        let app = spawn_app_with(backend, |s| {
            s.outbound_allow = Default::default();
            s.http_connect_timeout = Duration::from_secs(5);
        })
        .await;
        let name = bare_app(&app).await;
        let mut first: Option<(Value, Value)> = None;
        for base in loopback.iter().chain(elsewhere.iter()) {
            set(
                &app,
                &name,
                json!({
                    "token_uri": format!("{base}/token"),
                    "openid_configuration": format!("{base}/.well-known/openid-configuration"),
                }),
            )
            .await;
            let started = Instant::now();
            let (s1, token) = backend_token(&app, &name).await;
            let (s2, disc) = discover(&app, &name).await;
            let took = started.elapsed();
            let what = format!("{backend:?} {base}");
            assert_generic_unreachable(&format!("{what} client credentials"), s1, &token, &[p, p6]);
            assert_generic_unreachable(&format!("{what} discovery"), s2, &disc, &[p, p6]);
            assert!(
                took < Duration::from_secs(2),
                "{what}: refusing took {took:?}"
            );
            // Every refused destination answers exactly the same.
            match &first {
                None => first = Some((token, disc)),
                Some((t, d)) => {
                    assert_eq!((&token, &disc), (t, d), "{what} answers differently")
                }
            }
        }
        assert_eq!(
            (v4.count(), v6.count()),
            (0, 0),
            "{backend:?}: a refused destination was connected to"
        );
        // Nothing was stored for the app.
        let (_, v) = app.get(&app.admin, "/api/resource/Token%20Cache").await;
        assert_eq!(v["data"], json!([]), "{backend:?}");
    }

    // Positive control: the same listeners do count connections when loopback is allowed.
    let app = spawn_app(Backend::Sqlite).await;
    let name = bare_app(&app).await;
    for base in [
        format!("http://127.0.0.1:{p}"),
        format!("http://localhost:{p}"),
        format!("http://[::1]:{p6}"),
    ] {
        set(
            &app,
            &name,
            json!({"openid_configuration": format!("{base}/.well-known/openid-configuration")}),
        )
        .await;
        let (status, v) = discover(&app, &name).await;
        assert_eq!(status, 200, "{base}: {v}");
    }
    assert_eq!((v4.count(), v6.count()), (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_code_exchanges_and_revocations_to_refused_addresses_never_connect() {
    // 127.0.0.2 is loopback too, but only 127.0.0.1 (the test provider) is allowed.
    let refused = Counting::bind("127.0.0.2:0").await;
    let control = Counting::bind("127.0.0.1:0").await;
    let base = format!("http://127.0.0.2:{}", refused.port);
    for backend in BACKENDS {
        let o = oauth_app(
            backend,
            |s| {
                s.outbound_allow = "127.0.0.1/32".parse().unwrap();
            },
            json!({}),
            json!({}),
        )
        .await;
        let admin = o.admin();
        o.connect(&admin, json!({})).await;
        // The token expired long ago: every use below tries to refresh it.
        o.expire("Administrator");
        let before = o.stored_secret("Administrator", "access_token");
        assert!(before.is_some());

        // The code exchange of a real authorization.
        let url = o.initiate(&admin, json!({})).await;
        let back = o.provider.authorize(&url).await;
        set(
            &o.app,
            &o.name,
            json!({"token_uri": format!("{base}/token"), "revocation_uri": format!("{base}/revoke")}),
        )
        .await;
        let (status, v) = status_json(o.callback(Some(&admin), &back).await).await;
        assert_generic_unreachable(
            &format!("{backend:?} callback"),
            status,
            &v,
            &[refused.port],
        );

        // The refresh.
        let (status, v) = o.get_access_token(&admin, "").await;
        assert_generic_unreachable(&format!("{backend:?} refresh"), status, &v, &[refused.port]);
        assert_eq!(o.stored_secret("Administrator", "access_token"), before);

        // Positive control: an allowed address on the same path is connected to (the state
        // survived the failed exchange; the control listener answers a token).
        let seen = control.count();
        set(
            &o.app,
            &o.name,
            json!({"token_uri": format!("http://127.0.0.1:{}/token", control.port)}),
        )
        .await;
        let (status, v) = status_json(o.callback(Some(&admin), &back).await).await;
        assert_ne!(status, 503, "{backend:?}: {v}");
        assert_eq!(control.count(), seen + 1, "{backend:?}");
        assert_eq!(
            o.stored_secret("Administrator", "access_token").as_deref(),
            Some("reached-token")
        );

        // The revocation when the connection is deleted (the delete itself goes through).
        let (status, _) = o
            .app
            .delete(
                &admin,
                &format!(
                    "/api/resource/Token%20Cache/{}",
                    enc(&o.tc_name("Administrator"))
                ),
            )
            .await;
        assert_eq!(status, 202, "{backend:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            refused.count(),
            0,
            "{backend:?}: a refused destination was connected to"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_allow_lets_listed_hosts_and_networks_through_and_nothing_else() {
    let v4 = Counting::bind("127.0.0.1:0").await;
    let v6 = Counting::bind("[::1]:0").await;
    let by_ip = format!("http://127.0.0.1:{}", v4.port);
    let by_name = format!("http://localhost:{}", v4.port);
    let by_v6 = format!("http://[::1]:{}", v6.port);
    // (outbound_allow, the destinations it lets through, the ones it refuses)
    let cases = [
        ("localhost", vec![&by_name], vec![&by_ip, &by_v6]),
        ("127.0.0.0/8", vec![&by_ip, &by_name], vec![&by_v6]),
        ("127.0.0.1", vec![&by_ip, &by_name], vec![&by_v6]),
        ("::1/128", vec![&by_v6], vec![&by_ip, &by_name]),
        (
            "10.0.0.0/8, idp.internal",
            vec![],
            vec![&by_ip, &by_name, &by_v6],
        ),
    ];
    for backend in BACKENDS {
        for (allow, through, refused) in &cases {
            let app = spawn_app_with(backend, |s| s.outbound_allow = allow.parse().unwrap()).await;
            let name = bare_app(&app).await;
            for base in through {
                let before = v4.count() + v6.count();
                set(
                    &app,
                    &name,
                    json!({"openid_configuration": format!("{base}/.well-known/openid-configuration")}),
                )
                .await;
                let (status, v) = discover(&app, &name).await;
                assert_eq!(status, 200, "{backend:?} {allow}: {base}: {v}");
                let (_, doc) = app
                    .get(&app.admin, &format!("/api/resource/Connected%20App/{name}"))
                    .await;
                assert_eq!(doc["data"]["token_uri"], "https://idp.example.com/token");
                assert_eq!(v4.count() + v6.count(), before + 1, "{allow}: {base}");
            }
            for base in refused {
                let before = v4.count() + v6.count();
                set(
                    &app,
                    &name,
                    json!({"openid_configuration": format!("{base}/.well-known/openid-configuration")}),
                )
                .await;
                let (status, v) = discover(&app, &name).await;
                assert_generic_unreachable(
                    &format!("{backend:?} {allow}: {base}"),
                    status,
                    &v,
                    &[],
                );
                assert_eq!(
                    v4.count() + v6.count(),
                    before,
                    "{allow}: {base} was contacted"
                );
            }
            // A listed destination also gets client credentials.
            if let Some(base) = through.first() {
                set(&app, &name, json!({"token_uri": format!("{base}/token")})).await;
                let (status, v) = backend_token(&app, &name).await;
                assert_eq!(status, 200, "{backend:?} {allow}: {v}");
                assert_eq!(v["message"]["access_token"], "reached-token");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_destination_that_refuses_or_hangs_answers_like_a_refused_one() {
    // A port nothing listens on, and one that accepts and never answers.
    let closed = free_port();
    let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang_port = hanging.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hanging.accept().await {
            held.push(s);
        }
    });
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |s| {
            s.outbound_allow = "127.0.0.1/32".parse().unwrap();
            s.http_timeout = Duration::from_secs(1);
        })
        .await;
        let name = bare_app(&app).await;
        let mut answers = Vec::new();
        for (what, base) in [
            ("connection refused", format!("http://127.0.0.1:{closed}")),
            ("timeout", format!("http://127.0.0.1:{hang_port}")),
            ("not allowed", format!("http://127.0.0.2:{closed}")),
            ("metadata", "http://169.254.169.254".to_string()),
            ("no such host", "http://no-such-host.invalid".to_string()),
        ] {
            set(
                &app,
                &name,
                json!({
                    "token_uri": format!("{base}/token"),
                    "openid_configuration": format!("{base}/.well-known/openid-configuration"),
                }),
            )
            .await;
            let (s1, token) = backend_token(&app, &name).await;
            let (s2, disc) = discover(&app, &name).await;
            let what = format!("{backend:?} {what}");
            assert_generic_unreachable(&what, s1, &token, &[closed, hang_port]);
            assert_generic_unreachable(&what, s2, &disc, &[closed, hang_port]);
            answers.push((what, token, disc));
        }
        for (what, token, disc) in &answers[1..] {
            assert_eq!(
                (token, disc),
                (&answers[0].1, &answers[0].2),
                "{what} answers differently from {}",
                answers[0].0
            );
        }
    }
}

#[tokio::test]
async fn outbound_allow_is_read_from_flag_environment_and_config_file_and_checked() {
    let db = TestDb::new(Backend::Sqlite);
    let site_config = db.dir.path().join("site_config.json");
    std::fs::write(
        &site_config,
        json!({"encryption_key": "QfCH33G7ZGvdBGIsuUydRYFMOH1r7iwa3hYyYEvJrUs="}).to_string(),
    )
    .unwrap();
    // Invalid entries stop the command with a message naming the entry.
    for (how, bad) in [
        ("flag", "127.0.0.0/33"),
        ("env", "10.0.0.0/8,not a host"),
        ("file", "::1/200"),
    ] {
        let mut cmd = command_on(&db, &site_config);
        cmd.env_remove("CONNECTED_APPS_OUTBOUND_ALLOW");
        match how {
            "flag" => {
                cmd.arg("--outbound-allow").arg(bad);
            }
            "env" => {
                cmd.env("CONNECTED_APPS_OUTBOUND_ALLOW", bad);
            }
            _ => {
                let file = db.dir.path().join("settings.json");
                std::fs::write(&file, json!({"outbound_allow": bad}).to_string()).unwrap();
                cmd.arg("--config").arg(&file);
            }
        }
        let out = cmd.arg("migrate").output().await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{how} {bad}: accepted");
        assert!(
            stderr.contains("prefix length") || stderr.contains("not a host"),
            "{how} {bad}: {stderr}"
        );
    }
    // A valid list from the environment reaches the service: a provider on loopback works.
    let out = command_on(&db, &site_config)
        .arg("migrate")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = command_on(&db, &site_config)
        .args(["user", "api-key", "Administrator"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let auth = format!("token {}", String::from_utf8_lossy(&out.stdout).trim());
    let listener = Counting::bind("127.0.0.1:0").await;
    let port = free_port();
    let mut cmd = command_on(&db, &site_config);
    cmd.env("CONNECTED_APPS_OUTBOUND_ALLOW", "127.0.0.0/8, ::1")
        .arg("--bind")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--public-url")
        .arg(format!("http://127.0.0.1:{port}"))
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _child = cmd.spawn().unwrap();
    let client = reqwest::Client::new();
    let address = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..200 {
        if client
            .get(format!("{address}/api/method/ping"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "serve did not start");
    let r = client
        .post(format!("{address}/api/resource/Connected%20App"))
        .header("Authorization", &auth)
        .json(&json!({
            "provider_name": "Local",
            "client_id": "c",
            "openid_configuration": format!("http://localhost:{}/.well-known/openid-configuration", listener.port),
        }))
        .send()
        .await
        .unwrap();
    let (status, doc) = status_json(r).await;
    assert_eq!(status, 200, "{doc}");
    let r = client
        .post(format!("{address}/api/method/run_doc_method"))
        .header("Authorization", &auth)
        .json(&json!({"dt": "Connected App", "dn": doc["data"]["name"], "method": "get_openid_configuration"}))
        .send()
        .await
        .unwrap();
    let (status, v) = status_json(r).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(listener.count(), 1);
}
