//! Unit tests of the provider client against canned HTTP answers on loopback: the harness
//! here, the tests in one file per part.

mod auth;
mod authorization_code;
mod discovery;
mod grants;
mod http;
mod token_response;

use super::http::RawResponse;
use super::token_response::parse_token_response;
use super::*;
use crate::oauth::outbound::OutboundAllow;
use base64::Engine as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Exchange 301's recorded authorization URL (state `KNoRQpCPeN44h1J1hhJYKbv0XH1zYn`).
const RECORDED_URL: &str = "http://127.0.0.1:9100/authorize?response_type=code&client_id=client-abc&redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2Fapi%2Fmethod%2Ffrappe.integrations.doctype.connected_app.connected_app.callback%2F90c7bdi80h&scope=openid+email+profile&state=KNoRQpCPeN44h1J1hhJYKbv0XH1zYn&access_type=offline&prompt=consent";
const RECORDED_STATE: &str = "KNoRQpCPeN44h1J1hhJYKbv0XH1zYn";
const REDIRECT: &str = "http://127.0.0.1:8000/api/method/frappe.integrations.doctype.connected_app.connected_app.callback/90c7bdi80h";
const TOKEN_OK: &str = r#"{"access_token":"at-1","refresh_token":"rt-1","token_type":"bearer","expires_in":3600,"scope":"openid email"}"#;

/// One canned answer of the test provider.
#[derive(Clone)]
enum Canned {
    /// Raw HTTP response bytes, then close.
    Raw(Vec<u8>),
    /// Read the request and never answer.
    Hang,
}

/// A request the test provider received.
#[derive(Debug, Clone)]
struct Captured {
    head: String,
    body: String,
}

impl Captured {
    fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
    fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
    fn sorted_form(&self) -> Vec<(String, String)> {
        let mut f = self.form();
        f.sort();
        f
    }
}

fn response(status: u16, content_type: &str, body: &str) -> Canned {
    Canned::Raw(
        format!(
            "HTTP/1.1 {status} Canned\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

fn json(status: u16, body: &str) -> Canned {
    response(status, "application/json", body)
}

/// A provider on 127.0.0.1 answering connection n with `answers[n]` (the last one repeats).
async fn provider(answers: Vec<Canned>) -> (String, Arc<Mutex<Vec<Captured>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        let mut n = 0usize;
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let answer = answers[n.min(answers.len() - 1)].clone();
            n += 1;
            let seen = seen2.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                let head_end = loop {
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break p;
                    }
                    let r = sock.read(&mut tmp).await.unwrap();
                    if r == 0 {
                        return;
                    }
                    buf.extend_from_slice(&tmp[..r]);
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                while buf.len() < head_end + 4 + len {
                    let r = sock.read(&mut tmp).await.unwrap();
                    if r == 0 {
                        break;
                    }
                    buf.extend_from_slice(&tmp[..r]);
                }
                let body = String::from_utf8_lossy(&buf[head_end + 4..]).into_owned();
                seen.lock().unwrap().push(Captured { head, body });
                match answer {
                    Canned::Raw(bytes) => {
                        let _ = sock.write_all(&bytes).await;
                        let _ = sock.shutdown().await;
                    }
                    Canned::Hang => tokio::time::sleep(Duration::from_secs(60)).await,
                }
            });
        }
    });
    (base, seen)
}

fn app(base: &str) -> AppEndpoints {
    AppEndpoints {
        client_id: "client-abc".into(),
        client_secret: Some(SecretString::from("s3cr3t-value")),
        authorization_uri: Some(format!("{base}/authorize")),
        token_uri: Some(format!("{base}/token")),
        revocation_uri: Some(format!("{base}/revoke")),
        redirect_uri: REDIRECT.into(),
        scopes: vec!["openid".into(), "email".into(), "profile".into()],
        query_params: vec![
            ("access_type".into(), "offline".into()),
            ("prompt".into(), "consent".into()),
        ],
        client_auth: ClientAuth::Frappe,
        openid_configuration: None,
    }
}

/// The shared client, allowed to reach the test providers on loopback.
fn http() -> HttpClient {
    build_http_client(Duration::from_secs(2), Duration::from_secs(5), &loopback()).unwrap()
}

fn loopback() -> OutboundAllow {
    "127.0.0.0/8,::1".parse().unwrap()
}

const LIMITS: ClientLimits = ClientLimits {
    max_response_bytes: 4096,
};

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

/// Exchange 323's recorded form (field set; the order is cosmetic).
fn recorded_code_form() -> Vec<(String, String)> {
    pairs(&[
        ("grant_type", "authorization_code"),
        ("client_id", "client-abc"),
        ("client_secret", "s3cr3t-value"),
        ("code", "abc"),
        ("redirect_uri", REDIRECT),
        ("access_type", "offline"),
        ("prompt", "consent"),
    ])
}

fn assert_token_request_headers(c: &Captured) {
    assert_eq!(c.request_line(), "POST /token HTTP/1.1");
    assert_eq!(c.header("authorization"), None);
    assert_eq!(c.header("accept").as_deref(), Some("application/json"));
    assert!(c
        .header("content-type")
        .unwrap()
        .starts_with("application/x-www-form-urlencoded"));
}
