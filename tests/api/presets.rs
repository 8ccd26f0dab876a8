//! Provider presets: `connected_apps.provider_presets` and Connected Apps made from them.

use serde_json::{json, Value};

use crate::helpers::*;

const PATH: &str = "/api/method/connected_apps.provider_presets";

fn by_id<'a>(list: &'a Value, id: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("no preset {id}"))
}

#[tokio::test]
async fn provider_presets_lists_the_catalogue_to_any_logged_in_user_and_not_to_a_guest() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let user = app.user("plain@example.com", &[]).await;
        let (status, body) = app.get(&user, PATH).await;
        assert_eq!(status, 200, "{backend:?}: {body}");
        let list = &body["message"];
        for id in [
            "google",
            "microsoft",
            "microsoft-tenant",
            "github",
            "gitlab",
            "slack",
            "salesforce",
            "xero",
            "zoom",
            "dropbox",
            "atlassian",
            "hubspot",
            "zoho",
        ] {
            let p = by_id(list, id);
            assert!(
                p["quirks"].as_array().is_some_and(|q| !q.is_empty()),
                "{id}"
            );
            assert!(
                ["client_secret_post", "client_secret_basic", "none"]
                    .contains(&p["client_auth"].as_str().unwrap()),
                "{id}"
            );
            assert!(p["token_uri"].as_str().unwrap().starts_with("https://"));
        }
        let google = by_id(list, "google");
        assert_eq!(
            google["openid_configuration"],
            "https://accounts.google.com/.well-known/openid-configuration"
        );
        assert_eq!(google["client_auth"], "client_secret_post");
        assert_eq!(
            google["connected_app"]["query_parameters"],
            json!([{"key": "access_type", "value": "offline"}, {"key": "prompt", "value": "consent"}])
        );
        assert_eq!(
            google["connected_app"]["scopes"],
            json!([{"scope": "openid"}, {"scope": "email"}, {"scope": "profile"}])
        );
        assert_eq!(by_id(list, "xero")["client_auth"], "client_secret_basic");
        assert_eq!(
            by_id(list, "microsoft")["connected_app"]["token_uri"],
            "https://login.microsoftonline.com/common/oauth2/v2.0/token"
        );
        // A tenant has no default: the form is only filled once one is given.
        assert_eq!(
            by_id(list, "microsoft-tenant")["connected_app"],
            Value::Null
        );
        assert_eq!(
            by_id(list, "gitlab")["connected_app"]["authorization_uri"],
            "https://gitlab.com/oauth/authorize"
        );

        let r = app.client.get(app.url(PATH)).send().await.expect("request");
        assert_eq!(r.status().as_u16(), 403, "a Guest may not list presets");
    }
}

#[tokio::test]
async fn a_tenant_is_filled_into_the_microsoft_urls_and_a_value_that_would_change_a_url_is_refused()
{
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let (status, body) = app
            .get(
                &app.admin,
                &format!("{PATH}?preset=microsoft-tenant&tenant=contoso.onmicrosoft.com"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let form = &body["message"]["connected_app"];
        assert_eq!(
            form["token_uri"],
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(
            form["openid_configuration"],
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration"
        );
        let (status, body) = app
            .get(
                &app.admin,
                &format!("{PATH}?preset=microsoft-tenant&tenant=evil.example%2Fx%3F"),
            )
            .await;
        assert_eq!(
            (status, body["exc_type"].as_str()),
            (417, Some("ValidationError"))
        );
        let (status, body) = app.get(&app.admin, &format!("{PATH}?preset=nope")).await;
        assert_eq!(
            (status, body["exc_type"].as_str()),
            (404, Some("DoesNotExistError")),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn a_connected_app_created_from_a_preset_is_a_normal_connected_app() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let (_, body) = app.get(&app.admin, &format!("{PATH}?preset=google")).await;
        let mut form = body["message"]["connected_app"].clone();
        form["client_id"] = json!("my-client.apps.googleusercontent.com");
        form["client_secret"] = json!("GOCSPX-secret");
        let doc = app.create_app(form.clone()).await;
        let name = doc["name"].as_str().unwrap();
        let (status, got) = app
            .get(&app.admin, &format!("/api/resource/Connected%20App/{name}"))
            .await;
        assert_eq!(status, 200);
        let got = &got["data"];
        // Only fields Frappe's Connected App has.
        const FRAPPE_KEYS: [&str; 20] = [
            "name",
            "owner",
            "creation",
            "modified",
            "modified_by",
            "docstatus",
            "idx",
            "provider_name",
            "openid_configuration",
            "client_id",
            "redirect_uri",
            "client_secret",
            "authorization_uri",
            "token_uri",
            "revocation_uri",
            "userinfo_uri",
            "introspection_uri",
            "doctype",
            "query_parameters",
            "scopes",
        ];
        for key in got.as_object().unwrap().keys() {
            assert!(
                FRAPPE_KEYS.contains(&key.as_str()),
                "{backend:?}: {key} in {got}"
            );
        }
        assert_eq!(got["provider_name"], "Google");
        assert_eq!(got["token_uri"], "https://oauth2.googleapis.com/token");
        assert_eq!(got["client_secret"], "*".repeat(13));
        let scopes: Vec<&str> = got["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["scope"].as_str().unwrap())
            .collect();
        assert_eq!(scopes, ["openid", "email", "profile"]);

        // The authorization URL carries the preset's parameters.
        let (status, body) = app
            .post(
                &app.admin,
                "/api/method/run_doc_method",
                &json!({"dt": "Connected App", "dn": name, "method": "initiate_web_application_flow"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let url = body["message"].as_str().unwrap();
        assert!(
            url.starts_with("https://accounts.google.com/o/oauth2/v2/auth?"),
            "{url}"
        );
        assert!(
            url.contains("access_type=offline") && url.contains("prompt=consent"),
            "{url}"
        );
    }
}

#[tokio::test]
async fn a_system_manager_fills_a_new_connected_app_from_a_preset_in_the_browser() {
    use std::path::Path;
    let e2e = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e");
    assert!(
        Path::new("/usr/bin/chromium").is_file()
            && e2e.join("node_modules/playwright-core").is_dir(),
        "chromium and tests/e2e/node_modules are needed (./scripts/test installs them)"
    );
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        connected_apps::commands::add_user(
            &app.state,
            "pat@example.com",
            None,
            &["System Manager".to_string()],
            Some("pat-pass-word"),
        )
        .await
        .expect("add user");
        let node = std::env::var_os("NODE").unwrap_or_else(|| "node".into());
        let out = tokio::process::Command::new(node)
            .arg("presets.mjs")
            .current_dir(&e2e)
            .env("SERVICE_URL", &app.address)
            .env("LOGIN_USER", "pat@example.com")
            .env("LOGIN_PASSWORD", "pat-pass-word")
            .kill_on_drop(true)
            .output()
            .await
            .expect("run node tests/e2e/presets.mjs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("step: all passed"),
            "{backend:?}: the browser test failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
        let name = stdout
            .lines()
            .find_map(|l| l.strip_prefix("saved: "))
            .expect("the saved app's name");

        // What the page saved is the preset's Connected App, plus the client.
        let (_, preset) = app.get(&app.admin, &format!("{PATH}?preset=google")).await;
        let preset = &preset["message"]["connected_app"];
        let (status, got) = app
            .get(&app.admin, &format!("/api/resource/Connected%20App/{name}"))
            .await;
        assert_eq!(status, 200);
        let got = &got["data"];
        for field in [
            "provider_name",
            "openid_configuration",
            "authorization_uri",
            "token_uri",
            "revocation_uri",
            "userinfo_uri",
        ] {
            assert_eq!(got[field], preset[field], "{backend:?}: {field}");
        }
        assert_eq!(
            got.get("introspection_uri").cloned().unwrap_or_default(),
            json!("")
        );
        let rows = |v: &Value, cols: &[&str]| -> Vec<Vec<Value>> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|r| cols.iter().map(|c| r[*c].clone()).collect())
                .collect()
        };
        assert_eq!(
            rows(&got["scopes"], &["scope"]),
            rows(&preset["scopes"], &["scope"])
        );
        assert_eq!(
            rows(&got["query_parameters"], &["key", "value"]),
            rows(&preset["query_parameters"], &["key", "value"])
        );
        assert_eq!(got["client_id"], "preset-client.apps.googleusercontent.com");
        assert_eq!(got["client_secret"], "*".repeat("preset-secret".len()));

        // The preset's client authentication is the app's setting (the service's own table).
        let (_, preset) = app.get(&app.admin, &format!("{PATH}?preset=google")).await;
        let (status, settings) = app
            .get(
                &app.admin,
                &format!("/api/method/connected_apps.app_settings?connected_app={name}"),
            )
            .await;
        assert_eq!(status, 200, "{settings}");
        assert_eq!(
            settings["message"]["client_auth"], preset["message"]["client_auth"],
            "{backend:?}"
        );
        assert_ne!(settings["message"]["client_auth"], Value::Null);
    }
}
