//! The REST API issue: v1 resources, frappe.client.*, run_doc_method, API v2 and the desk
//! endpoints, document behaviour (naming, masking, child tables, timestamps) and permissions.

use chrono::{NaiveDateTime, Utc};
use serde_json::{json, Value};

use crate::helpers::*;

pub const CA: &str = "/api/resource/Connected%20App";
pub const TC: &str = "/api/resource/Token%20Cache";

/// A complete Connected App body.
pub fn full_app(provider: &str) -> Value {
    json!({
        "provider_name": provider,
        "client_id": "client-abc",
        "client_secret": "s3cr3t-value",
        "authorization_uri": "https://provider.example/authorize",
        "token_uri": "https://provider.example/token",
        "scopes": [{"scope": "openid"}, {"scope": "email"}],
        "query_parameters": [{"key": "access_type", "value": "offline"}]
    })
}

/// Whether `s` is a Frappe hash name: 10 characters of `[0-9a-v]`.
pub fn is_hash_name(s: &str) -> bool {
    s.len() == 10 && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='v'))
}

/// Whether `s` looks like `YYYY-MM-DD HH:MM:SS.ffffff`.
pub fn parse_timestamp(s: &str) -> Option<NaiveDateTime> {
    (s.len() == 26)
        .then(|| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.6f").ok())
        .flatten()
}

impl TestApp {
    /// A form-encoded request.
    pub async fn form(
        &self,
        method: reqwest::Method,
        auth: &str,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, Value) {
        let r = self
            .client
            .request(method, self.url(path))
            .header("Authorization", auth)
            .form(form)
            .send()
            .await
            .expect("request");
        status_json(r).await
    }

    /// A request with a raw body and content type.
    pub async fn raw_body(
        &self,
        method: reqwest::Method,
        auth: &str,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> (u16, Value) {
        let r = self
            .client
            .request(method, self.url(path))
            .header("Authorization", auth)
            .header("Content-Type", content_type)
            .body(body.to_string())
            .send()
            .await
            .expect("request");
        status_json(r).await
    }

    pub async fn patch(&self, auth: &str, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .patch(self.url(path))
            .header("Authorization", auth)
            .json(body)
            .send()
            .await
            .expect("request");
        status_json(r).await
    }

    /// The `__Auth` rows of a document as `(fieldname, ciphertext)`, read straight from the DB.
    pub fn auth_rows(&self, doctype: &str, name: &str) -> Vec<(String, String)> {
        let sql = format!(
            "SELECT fieldname, password FROM `__Auth` WHERE doctype = '{doctype}' AND name = '{name}' ORDER BY fieldname"
        );
        query_rows(&self.db, &sql)
            .into_iter()
            .map(|r| {
                let (f, p) = r.split_once('\t').expect("two columns");
                (f.to_string(), p.to_string())
            })
            .collect()
    }
}

/// Rows of a query through the backend's own command-line client, one tab-separated line each.
pub fn query_rows(db: &TestDb, sql: &str) -> Vec<String> {
    let out = match db.backend {
        Backend::Sqlite => std::process::Command::new("sqlite3")
            .args(["-separator", "\t", "-nullvalue", "NULL"])
            .arg(db.url.trim_start_matches("sqlite://"))
            .arg(sql)
            .output(),
        Backend::Mysql => {
            let url = url::Url::parse(&db.url).expect("mysql url");
            let mut c = std::process::Command::new("mysql");
            c.arg(format!("-h{}", url.host_str().unwrap_or("127.0.0.1")))
                .arg(format!("-P{}", url.port().unwrap_or(3306)))
                .arg(format!("-u{}", url.username()))
                .args(["-B", "-N", "--raw"])
                .arg(url.path().trim_start_matches('/'))
                .arg("-e")
                .arg(sql);
            if let Some(p) = url.password() {
                c.arg(format!("-p{p}"));
            }
            c.output()
        }
    }
    .expect("run the database client");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every row of every table, sorted, keyed by table: equal snapshots mean an unchanged DB.
pub fn snapshot(db: &TestDb) -> std::collections::BTreeMap<String, Vec<String>> {
    let tables = match db.backend {
        Backend::Sqlite => query_rows(
            db,
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        ),
        Backend::Mysql => query_rows(db, "SHOW TABLES"),
    };
    assert!(tables.iter().any(|t| t == "tabConnected App"), "{tables:?}");
    tables
        .into_iter()
        .map(|t| {
            let mut rows = query_rows(db, &format!("SELECT * FROM `{t}`"));
            rows.sort();
            (t, rows)
        })
        .collect()
}

fn app_path(name: &str) -> String {
    format!("{CA}/{name}")
}

#[tokio::test]
async fn connected_apps_are_created_read_updated_and_deleted_over_rest_v1_with_json_and_form_bodies(
) {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        // JSON body; name, doctype and unknown fields are ignored.
        let mut body = full_app("Test Provider");
        body["name"] = json!("my-explicit-name");
        body["doctype"] = json!("Token Cache");
        body["no_such_field"] = json!("x");
        let (status, created) = app.post(&app.admin, CA, &body).await;
        assert_eq!(status, 200, "{backend:?} {created}");
        let doc = &created["data"];
        let name = doc["name"].as_str().unwrap().to_string();
        assert!(is_hash_name(&name), "{name}");
        assert_eq!(doc["doctype"], "Connected App");
        assert!(doc.get("no_such_field").is_none());
        assert_eq!(doc["client_secret"], "************");
        assert_eq!(
            doc["redirect_uri"],
            format!(
                "{}/api/method/frappe.integrations.doctype.connected_app.connected_app.callback/{name}",
                app.address
            )
        );
        for row in doc["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .chain(doc["query_parameters"].as_array().unwrap())
        {
            assert!(is_hash_name(row["name"].as_str().unwrap()), "{row}");
            assert_eq!(row["__unsaved"], 1, "{row}");
            assert_eq!(row["parent"], name.as_str());
        }
        // Nulls are left out of a single document.
        assert!(doc.get("openid_configuration").is_none(), "{doc}");
        assert!(doc.get("revocation_uri").is_none(), "{doc}");

        // Form body with Frappe's data=<json>.
        let form_doc = json!({"provider_name": "Form Provider", "client_id": "f"}).to_string();
        let (status, form_created) = app
            .form(
                reqwest::Method::POST,
                &app.admin,
                CA,
                &[("data", &form_doc)],
            )
            .await;
        assert_eq!(status, 200, "{form_created}");
        assert_eq!(form_created["data"]["provider_name"], "Form Provider");
        assert!(is_hash_name(form_created["data"]["name"].as_str().unwrap()));

        // GET under /api/ and /api/v1/, case-insensitively.
        for prefix in ["/api/resource", "/api/v1/resource"] {
            let (status, got) = app
                .get(
                    &app.admin,
                    &format!("{prefix}/Connected%20App/{}", name.to_uppercase()),
                )
                .await;
            assert_eq!(status, 200, "{prefix} {got}");
            assert_eq!(got["data"]["name"], name.as_str());
            assert_eq!(got["data"]["scopes"].as_array().unwrap().len(), 2);
            assert!(got["data"]["scopes"][0].get("__unsaved").is_none());
        }

        // PUT with a form body: only the sent field changes, the sent redirect_uri is recomputed.
        let upd = json!({"provider_name": "Renamed", "redirect_uri": "https://evil.example/cb"});
        let (status, put) = app
            .form(
                reqwest::Method::PUT,
                &app.admin,
                &format!("/api/v1/resource/Connected%20App/{name}"),
                &[("data", &upd.to_string())],
            )
            .await;
        assert_eq!(status, 200, "{put}");
        assert_eq!(put["data"]["provider_name"], "Renamed");
        assert_eq!(put["data"]["client_id"], "client-abc");
        assert_eq!(put["data"]["redirect_uri"], doc["redirect_uri"]);
        assert_ne!(put["data"]["modified"], doc["modified"]);

        // DELETE → 202 {"data":"ok"}, then 404.
        let (status, del) = app.delete(&app.admin, &app_path(&name)).await;
        assert_eq!((status, del), (202, json!({"data": "ok"})));
        let (status, gone) = app.get(&app.admin, &app_path(&name)).await;
        assert_eq!(status, 404);
        assert_eq!(gone["exc_type"], "DoesNotExistError");
        assert_eq!(
            server_messages(&gone),
            vec![format!("Connected App {name} not found")]
        );
        let (status, _) = app.delete(&app.admin, &app_path(&name)).await;
        assert_eq!(status, 404);
    }
}

#[tokio::test]
async fn redirect_uri_follows_the_public_url_on_every_save() {
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |s| {
            s.public_url = "https://connect.example.org".into();
            s.public_url_explicit = true;
        })
        .await;
        let doc = app.create_app(full_app("P")).await;
        let name = doc["name"].as_str().unwrap();
        let expected = format!("https://connect.example.org/api/method/frappe.integrations.doctype.connected_app.connected_app.callback/{name}");
        assert_eq!(doc["redirect_uri"], expected.as_str());
        let (status, v) = app
            .post(
                &app.admin,
                "/api/method/frappe.client.set_value",
                &json!({"doctype": "Connected App", "name": name, "fieldname": "redirect_uri", "value": "x"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["message"]["redirect_uri"], expected.as_str());
        // The stored column is recomputed too, not only the response.
        let rows = query_rows(
            &app.db,
            &format!("SELECT redirect_uri FROM `tabConnected App` WHERE name = '{name}'"),
        );
        assert_eq!(rows, vec![expected]);
    }
}

#[tokio::test]
async fn missing_mandatory_fields_are_417_mandatory_errors_with_frappes_messages() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let (status, v) = app.post(&app.admin, CA, &json!({"client_id": "x"})).await;
        assert_eq!(status, 417, "{v}");
        assert_eq!(v["exc_type"], "MandatoryError");
        let exc = v["exception"].as_str().unwrap();
        assert!(
            exc.starts_with("frappe.exceptions.MandatoryError: [Connected App, ")
                && exc.ends_with("]: provider_name"),
            "{exc}"
        );
        assert_eq!(
            server_messages(&v),
            vec!["Error: Value missing for Connected App: Provider Name"]
        );
        assert_eq!(
            v["exc"],
            json!([v["exception"]]).to_string(),
            "no traceback, only the exception's line: {v}"
        );

        let (status, v) = app
            .post(
                &app.admin,
                CA,
                &json!({"provider_name": "Bad Child", "query_parameters": [{"key": "k"}]}),
            )
            .await;
        assert_eq!(status, 417, "{v}");
        assert_eq!(v["exc_type"], "MandatoryError");
        assert!(
            v["exception"].as_str().unwrap().ends_with("]: value"),
            "{v}"
        );
        let (status, v) = app
            .post(
                &app.admin,
                CA,
                &json!({"provider_name": "Bad Child", "query_parameters": [{"value": "v"}]}),
            )
            .await;
        assert_eq!(status, 417, "{v}");
        assert!(v["exception"].as_str().unwrap().ends_with("]: key"), "{v}");

        let doc = app.create_app(full_app("P")).await;
        let (status, v) = app
            .put(
                &app.admin,
                &app_path(doc["name"].as_str().unwrap()),
                &json!({"provider_name": ""}),
            )
            .await;
        assert_eq!(status, 417, "{v}");
        assert_eq!(v["exc_type"], "MandatoryError");
        // Nothing was stored by the failed requests.
        let (_, n) = app
            .get(
                &app.admin,
                "/api/method/frappe.client.get_count?doctype=Connected%20App",
            )
            .await;
        assert_eq!(n["message"], 1);
    }
}

#[tokio::test]
async fn client_secrets_are_masked_everywhere_and_kept_removed_or_replaced_on_update() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let doc = app.create_app(full_app("P")).await;
        let name = doc["name"].as_str().unwrap();
        let path = app_path(name);
        let stars = "*".repeat("s3cr3t-value".len());
        assert_eq!(doc["client_secret"], stars.as_str());
        let (_, got) = app.get(&app.admin, &path).await;
        assert_eq!(got["data"]["client_secret"], stars.as_str());
        let (_, list) = app.get(&app.admin, &format!("{CA}?fields=[\"*\"]")).await;
        assert_eq!(list["data"][0]["client_secret"], stars.as_str());
        let (_, list) = app
            .get(&app.admin, &format!("{CA}?fields=[\"client_secret\"]"))
            .await;
        assert_eq!(list["data"][0]["client_secret"], stars.as_str());
        let (_, v) = app
            .get(
                &app.admin,
                &format!("/api/method/frappe.client.get_value?doctype=Connected%20App&filters={name}&fieldname=client_secret"),
            )
            .await;
        assert_eq!(v["message"]["client_secret"], stars.as_str());
        // The column itself never holds the cleartext.
        let col = query_rows(
            &app.db,
            &format!("SELECT client_secret FROM `tabConnected App` WHERE name = '{name}'"),
        );
        assert_eq!(col, vec![stars.clone()]);
        let original = app.auth_rows("Connected App", name);
        assert_eq!(original.len(), 1);
        assert_eq!(original[0].0, "client_secret");
        assert!(!original[0].1.contains("s3cr3t"));

        // Omitted, or any run of asterisks: the secret is kept as it was.
        for body in [
            json!({"client_id": "c2"}),
            json!({"client_secret": "***"}),
            json!({"client_secret": stars}),
        ] {
            let (status, v) = app.put(&app.admin, &path, &body).await;
            assert_eq!(status, 200, "{v}");
            assert_eq!(
                v["data"]["client_secret"],
                stars.as_str(),
                "{backend:?} {body}"
            );
            assert_eq!(app.auth_rows("Connected App", name), original, "{body}");
        }
        // Anything else is re-encrypted.
        let (status, v) = app
            .put(&app.admin, &path, &json!({"client_secret": "new-secret"}))
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["data"]["client_secret"], "**********");
        let replaced = app.auth_rows("Connected App", name);
        assert_eq!(replaced.len(), 1);
        assert_ne!(replaced, original);
        // "" removes it: the __Auth row is gone, the column and the answer hold "" (as Frappe's).
        let (status, v) = app
            .put(&app.admin, &path, &json!({"client_secret": ""}))
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["data"]["client_secret"], "", "{v}");
        assert!(app.auth_rows("Connected App", name).is_empty());
        let (_, got) = app.get(&app.admin, &path).await;
        assert!(
            got["data"].get("client_secret").is_none() || got["data"]["client_secret"] == "",
            "{got}"
        );
        let (_, list) = app
            .get(&app.admin, &format!("{CA}?fields=[\"client_secret\"]"))
            .await;
        assert_eq!(list["data"][0]["client_secret"], "");
    }
}

#[tokio::test]
async fn a_child_table_sent_replaces_the_table_and_rows_sent_with_their_name_are_updated_in_place()
{
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let doc = app.create_app(full_app("P")).await;
        let path = app_path(doc["name"].as_str().unwrap());
        let openid = doc["scopes"][0]["name"].as_str().unwrap().to_string();
        let email = doc["scopes"][1]["name"].as_str().unwrap().to_string();
        let (status, v) = app
            .put(
                &app.admin,
                &path,
                &json!({"scopes": [{"name": openid, "scope": "openid-renamed"}, {"scope": "profile"}]}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let scopes = v["data"]["scopes"].as_array().unwrap().clone();
        assert_eq!(scopes.len(), 2, "{v}");
        assert_eq!(scopes[0]["name"], openid.as_str());
        assert_eq!(scopes[0]["scope"], "openid-renamed");
        assert_eq!(scopes[0]["idx"], 1);
        assert_eq!(scopes[1]["scope"], "profile");
        assert_eq!(scopes[1]["idx"], 2);
        assert_eq!(scopes[1]["__unsaved"], 1);
        assert!(is_hash_name(scopes[1]["name"].as_str().unwrap()));
        // The table not sent keeps its rows (only their modified follows the parent's).
        let strip = |rows: &Value| -> Vec<Value> {
            rows.as_array()
                .unwrap()
                .iter()
                .map(|r| json!([r["name"], r["idx"], r["key"], r["value"], r["creation"]]))
                .collect()
        };
        assert_eq!(
            strip(&v["data"]["query_parameters"]),
            strip(&doc["query_parameters"])
        );
        let rows = query_rows(
            &app.db,
            &format!(
                "SELECT name, scope FROM `tabOAuth Scope` WHERE parent = '{}' ORDER BY idx",
                doc["name"].as_str().unwrap()
            ),
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0], format!("{openid}\topenid-renamed"));
        assert!(!rows.iter().any(|r| r.starts_with(&email)), "{rows:?}");

        let (status, v) = app.put(&app.admin, &path, &json!({"scopes": []})).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["data"]["scopes"], json!([]));
    }
}

#[tokio::test]
async fn a_stale_modified_is_a_417_timestamp_mismatch_and_changes_nothing() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let doc = app.create_app(full_app("P")).await;
        let path = app_path(doc["name"].as_str().unwrap());
        let (status, v) = app
            .put(
                &app.admin,
                &path,
                &json!({"provider_name": "Q", "modified": "2000-01-01 00:00:00"}),
            )
            .await;
        assert_eq!(status, 417, "{v}");
        assert_eq!(v["exc_type"], "TimestampMismatchError");
        assert!(
            server_messages(&v)[0].contains("Document has been modified after you have opened it")
        );
        let (_, got) = app.get(&app.admin, &path).await;
        assert_eq!(got["data"]["provider_name"], "P");
        // The current modified is accepted.
        let (status, v) = app
            .put(
                &app.admin,
                &path,
                &json!({"provider_name": "Q", "modified": doc["modified"]}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
    }
}

#[tokio::test]
async fn token_caches_are_named_app_dash_user_and_an_app_they_link_to_cannot_be_deleted() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        app.user("u2@example.com", &[]).await;
        let doc = app.create_app(full_app("Beta Provider")).await;
        let name = doc["name"].as_str().unwrap();
        let (status, tc) = app
            .post(
                &app.admin,
                TC,
                &json!({"connected_app": name, "user": "u2@example.com", "access_token": "manual-at", "token_type": "Bearer", "expires_in": 100, "name": "ignored"}),
            )
            .await;
        assert_eq!(status, 200, "{tc}");
        let tc_name = format!("{name}-u2@example.com");
        assert_eq!(tc["data"]["name"], tc_name.as_str());
        assert_eq!(tc["data"]["provider_name"], "Beta Provider");
        assert_eq!(tc["data"]["access_token"], "*********");

        let (status, v) = app.delete(&app.admin, &app_path(name)).await;
        assert_eq!(status, 417, "{v}");
        assert_eq!(v["exc_type"], "LinkExistsError");
        let msg = &server_messages(&v)[0];
        assert!(
            msg.starts_with(&format!("Cannot delete or cancel because Connected App <a href=\"/app/Form/Connected App/{name}\">{name}</a> is linked with Token Cache <a href=\"/app/Form/Token Cache/{tc_name}\">{tc_name}</a>")),
            "{msg}"
        );
        let (status, _) = app.get(&app.admin, &app_path(name)).await;
        assert_eq!(status, 200);

        let (status, _) = app
            .delete(&app.admin, &format!("{TC}/{}", tc_name.replace('@', "%40")))
            .await;
        assert_eq!(status, 202);
        let (status, _) = app.delete(&app.admin, &app_path(name)).await;
        assert_eq!(status, 202);
    }
}

#[tokio::test]
async fn timestamps_are_microsecond_strings_in_the_configured_time_zone() {
    for (backend, tz, offset_minutes) in [
        (Backend::Sqlite, "Asia/Kolkata", 330),
        (Backend::Mysql, "Asia/Kolkata", 330),
        (Backend::Sqlite, "UTC", 0),
    ] {
        let app = spawn_app_with(backend, |s| s.time_zone = Some(tz.into())).await;
        let before = Utc::now().naive_utc();
        let doc = app.create_app(full_app("P")).await;
        let after = Utc::now().naive_utc();
        for key in ["creation", "modified"] {
            let ts = parse_timestamp(doc[key].as_str().unwrap())
                .unwrap_or_else(|| panic!("{key}: {}", doc[key]));
            let utc = ts - chrono::Duration::minutes(offset_minutes);
            // A one-second margin for the sub-microsecond rounding of the two clocks.
            assert!(
                utc >= before - chrono::Duration::seconds(1)
                    && utc <= after + chrono::Duration::seconds(1),
                "{backend:?} {tz}: {key} {ts} is not now in {tz} ({before} UTC)"
            );
        }
        assert_eq!(doc["scopes"][0]["creation"], doc["creation"]);
        let (_, list) = app
            .get(&app.admin, &format!("{CA}?fields=[\"modified\"]"))
            .await;
        assert_eq!(list["data"][0]["modified"], doc["modified"]);
    }
}

#[tokio::test]
async fn frappe_client_functions_read_and_write_documents() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let a = app.create_app(full_app("Alpha")).await;
        let an = a["name"].as_str().unwrap();
        let m = |f: &str| format!("/api/method/frappe.client.{f}");

        let (status, v) = app
            .get(
                &app.admin,
                &format!(
                    "{}?doctype=Connected%20App&fields=[\"name\",\"provider_name\"]",
                    m("get_list")
                ),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            v["message"],
            json!([{"name": an, "provider_name": "Alpha"}])
        );
        let (status, v) = app
            .post(
                &app.admin,
                &m("get_list"),
                &json!({"doctype": "Connected App", "filters": {"provider_name": "Nope"}}),
            )
            .await;
        assert_eq!((status, v["message"].clone()), (200, json!([])));

        let (status, v) = app
            .get(
                &app.admin,
                &format!("{}?doctype=Connected%20App&name={an}", m("get")),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["message"]["provider_name"], "Alpha");
        assert_eq!(v["message"]["scopes"].as_array().unwrap().len(), 2);
        let (status, v) = app
            .post(
                &app.admin,
                &m("get"),
                &json!({"doctype": "Connected App", "filters": {"provider_name": "Alpha"}}),
            )
            .await;
        assert_eq!((status, v["message"]["name"].clone()), (200, json!(an)));
        let (status, v) = app
            .get(
                &app.admin,
                &format!("{}?doctype=Connected%20App&name=missing", m("get")),
            )
            .await;
        assert_eq!(
            (status, v["exc_type"].clone()),
            (404, json!("DoesNotExistError"))
        );

        let (status, v) = app
            .get(
                &app.admin,
                &format!("{}?doctype=Connected%20App", m("get_count")),
            )
            .await;
        assert_eq!((status, v), (200, json!({"message": 1})));

        let (status, v) = app
            .get(
                &app.admin,
                &format!("{}?doctype=Connected%20App&filters={an}&fieldname=[\"provider_name\",\"client_id\"]", m("get_value")),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            v["message"],
            json!({"provider_name": "Alpha", "client_id": "client-abc"})
        );
        let (status, v) = app
            .get(
                &app.admin,
                &format!(
                    "{}?doctype=Connected%20App&filters=nothing&fieldname=provider_name",
                    m("get_value")
                ),
            )
            .await;
        assert_eq!((status, v), (200, json!({"message": {}})));

        // insert: JSON, form-encoded doc string; GET is not permitted.
        let (status, v) = app
            .post(
                &app.admin,
                &m("insert"),
                &json!({"doc": {"doctype": "Connected App", "provider_name": "Beta"}}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let bn = v["message"]["name"].as_str().unwrap().to_string();
        assert!(is_hash_name(&bn));
        let doc_str = json!({"doctype": "Connected App", "provider_name": "Gamma"}).to_string();
        let (status, v) = app
            .form(
                reqwest::Method::POST,
                &app.admin,
                &m("insert"),
                &[("doc", &doc_str)],
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["message"]["provider_name"], "Gamma");
        let (status, v) = app
            .get(
                &app.admin,
                &format!("{}?doc={}", m("insert"), urlencode(&doc_str)),
            )
            .await;
        assert_eq!(status, 403, "{v}");
        assert_eq!(server_messages(&v), vec!["Not permitted"]);
        let (status, v) = app
            .post(
                &app.admin,
                &m("insert"),
                &json!({"doc": {"doctype": "Connected App"}}),
            )
            .await;
        assert_eq!(
            (status, v["exc_type"].clone()),
            (417, json!("MandatoryError"))
        );

        // set_value: fieldname + value, and a dict.
        let (status, v) = app
            .post(
                &app.admin,
                &m("set_value"),
                &json!({"doctype": "Connected App", "name": bn, "fieldname": "client_id", "value": "cid"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["message"]["client_id"], "cid");
        let (status, v) = app
            .post(
                &app.admin,
                &m("set_value"),
                &json!({"doctype": "Connected App", "name": bn, "fieldname": {"provider_name": "Beta 2", "token_uri": "https://t.example"}}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["message"]["provider_name"], "Beta 2");
        assert_eq!(v["message"]["client_id"], "cid");

        let (status, v) = app
            .get(
                &app.admin,
                &format!(
                    "{}?doctype=Connected%20App&docname={an}&fields=[\"provider_name\"]",
                    m("validate_link")
                ),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["message"], json!({"name": an, "provider_name": "Alpha"}));
        let (status, v) = app
            .get(
                &app.admin,
                &format!(
                    "{}?doctype=Connected%20App&docname=nope",
                    m("validate_link")
                ),
            )
            .await;
        assert_eq!((status, v), (200, json!({"message": {}})));

        let (status, v) = app
            .post(
                &app.admin,
                &m("delete"),
                &json!({"doctype": "Connected App", "name": bn}),
            )
            .await;
        assert_eq!((status, v), (200, json!({})));
        let (status, v) = app
            .post(
                &app.admin,
                &m("delete"),
                &json!({"doctype": "Connected App", "name": bn}),
            )
            .await;
        assert_eq!(
            (status, v["exc_type"].clone()),
            (404, json!("DoesNotExistError"))
        );
        let (_, v) = app
            .get(
                &app.admin,
                &format!("{}?doctype=Connected%20App", m("get_count")),
            )
            .await;
        assert_eq!(v["message"], 2);
    }
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn document_methods_run_through_run_doc_method_run_method_and_v2() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let user = app.user("u1@example.com", &[]).await;
        let doc = app.create_app(full_app("P")).await;
        let name = doc["name"].as_str().unwrap();
        let check_url = |url: &Value| {
            let url = url.as_str().unwrap_or_else(|| panic!("not a URL: {url}"));
            assert!(
                url.starts_with("https://provider.example/authorize?response_type=code&client_id=client-abc&redirect_uri="),
                "{url}"
            );
            assert!(url.ends_with("&access_type=offline"), "{url}");
        };

        let (status, v) = app
            .post(
                &app.admin,
                "/api/method/run_doc_method",
                &json!({"dt": "Connected App", "dn": name, "method": "initiate_web_application_flow"}),
            )
            .await;
        assert_eq!(status, 200, "{backend:?} {v}");
        check_url(&v["message"]);
        assert_eq!(v["docs"][0]["name"], name);
        let tc = format!("{TC}/{name}-Administrator");
        let (status, tcv) = app.get(&app.admin, &tc).await;
        assert_eq!(status, 200, "{tcv}");
        assert_eq!(tcv["data"]["user"], "Administrator");
        assert_eq!(tcv["data"]["state"].as_str().unwrap().len(), 30);

        // The desk's docs + args form, as a user with read permission.
        let docs = app.get(&user, &app_path(name)).await.1["data"].to_string();
        let (status, v) = app
            .form(
                reqwest::Method::POST,
                &user,
                "/api/method/run_doc_method",
                &[
                    ("docs", &docs),
                    ("method", "initiate_web_application_flow"),
                    ("args", "{\"success_uri\": \"/app/after\"}"),
                ],
            )
            .await;
        assert_eq!(status, 200, "{v}");
        check_url(&v["message"]);
        let (status, tcv) = app
            .get(&user, &format!("{TC}/{name}-u1%40example.com"))
            .await;
        assert_eq!(status, 200, "{tcv}");
        assert_eq!(tcv["data"]["success_uri"], "/app/after");
        assert_eq!(tcv["data"]["owner"], "u1@example.com");
        // A stale modified in docs is refused.
        let mut stale: Value = serde_json::from_str(&docs).unwrap();
        stale["modified"] = json!("2000-01-01 00:00:00.000000");
        let (status, v) = app
            .post(
                &user,
                "/api/method/run_doc_method",
                &json!({"docs": stale.to_string(), "method": "initiate_web_application_flow"}),
            )
            .await;
        assert_eq!(
            (status, v["exc_type"].clone()),
            (417, json!("TimestampMismatchError"))
        );

        // /api/resource: GET run_method needs read; POST run_method needs write.
        let run = format!(
            "{}?run_method=initiate_web_application_flow",
            app_path(name)
        );
        let (status, v) = app.get(&user, &run).await;
        assert_eq!(status, 200, "{v}");
        check_url(&v["data"]);
        let body = json!({"run_method": "initiate_web_application_flow"});
        let (status, v) = app.post(&user, &app_path(name), &body).await;
        assert_eq!(status, 403, "{v}");
        assert!(
            server_messages(&v).contains(&"Not permitted".to_string()),
            "{v}"
        );
        let (status, v) = app.post(&app.admin, &app_path(name), &body).await;
        assert_eq!(status, 200, "{v}");
        check_url(&v["data"]);

        // v2: document method and /api/v2/method/run_doc_method.
        let v2 =
            format!("/api/v2/document/Connected%20App/{name}/method/initiate_web_application_flow");
        let (status, v) = app.post(&app.admin, &v2, &json!({})).await;
        assert_eq!(status, 200, "{v}");
        check_url(&v["data"]);
        let (status, v) = app.get(&user, &v2).await;
        assert_eq!(status, 200, "{v}");
        check_url(&v["data"]);
        let (status, v) = app.post(&user, &v2, &json!({})).await;
        assert_eq!(status, 403, "{v}");
        let document = app.get(&app.admin, &app_path(name)).await.1["data"].clone();
        let v2_run =
            json!({"document": document, "method": "initiate_web_application_flow", "kwargs": {}});
        let (status, v) = app
            .post(&app.admin, "/api/v2/method/run_doc_method", &v2_run)
            .await;
        assert_eq!(status, 200, "{v}");
        check_url(&v["data"]);
        assert_eq!(v["docs"][0]["name"], name);
        let (status, v) = app
            .post(&user, "/api/v2/method/run_doc_method", &v2_run)
            .await;
        assert_eq!(status, 403, "{v}");
        assert!(v["errors"][0]["type"] == "PermissionError", "{v}");

        let (status, v) = app
            .post(
                &app.admin,
                "/api/method/run_doc_method",
                &json!({"dt": "Connected App", "dn": name, "method": "no_such_method"}),
            )
            .await;
        assert_eq!(status, 403, "{v}");
    }
}

#[tokio::test]
async fn api_v2_documents_are_listed_created_read_updated_and_deleted() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let base = "/api/v2/document/Connected%20App";
        let mut names = vec![];
        for p in ["A", "B", "C"] {
            let (status, v) = app
                .post(
                    &app.admin,
                    base,
                    &json!({"provider_name": p, "client_id": "x"}),
                )
                .await;
            assert_eq!(status, 200, "{v}");
            assert_eq!(v["data"]["provider_name"], p);
            names.push(v["data"]["name"].as_str().unwrap().to_string());
        }
        let (status, v) = app.get(&app.admin, &format!("{base}?limit=2")).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["data"].as_array().unwrap().len(), 2);
        let (_, v) = app
            .get(
                &app.admin,
                &format!("{base}?fields=[\"provider_name\"]&order_by=provider_name%20asc"),
            )
            .await;
        assert_eq!(
            v["data"],
            json!([{"provider_name": "A"}, {"provider_name": "B"}, {"provider_name": "C"}])
        );

        let one = format!("{base}/{}", names[0]);
        let (status, v) = app.get(&app.admin, &one).await;
        assert_eq!(
            (status, v["data"]["provider_name"].clone()),
            (200, json!("A"))
        );
        let (status, v) = app
            .put(&app.admin, &one, &json!({"client_id": "put"}))
            .await;
        assert_eq!(
            (status, v["data"]["client_id"].clone()),
            (200, json!("put")),
            "{v}"
        );
        let (status, v) = app
            .patch(&app.admin, &one, &json!({"client_id": "patch"}))
            .await;
        assert_eq!(
            (status, v["data"]["client_id"].clone()),
            (200, json!("patch")),
            "{v}"
        );
        assert_eq!(v["data"]["provider_name"], "A");
        let (status, v) = app
            .get(&app.admin, "/api/v2/doctype/Connected%20App/count")
            .await;
        assert_eq!((status, v), (200, json!({"data": 3})));

        let (status, v) = app.delete(&app.admin, &one).await;
        assert_eq!((status, v), (202, json!({"data": "ok"})));
        let (status, mut v) = app.get(&app.admin, &one).await;
        assert_eq!(status, 404);
        let exception = v["errors"][0].as_object_mut().unwrap().remove("exception");
        assert!(
            !exception
                .unwrap_or_default()
                .to_string()
                .contains("Traceback"),
            "{v}"
        );
        assert_eq!(
            v,
            json!({"errors": [{"type": "DoesNotExistError", "message": format!("Connected App {} not found", names[0]), "title": "Message", "indicator": "red"}]})
        );
        let (status, v) = app.delete(&app.admin, &one).await;
        assert_eq!(status, 404);
        assert_eq!(v["errors"][0]["type"], "DoesNotExistError");

        let (status, v) = app.post(&app.admin, base, &json!({"client_id": "x"})).await;
        assert_eq!(status, 417, "{v}");
        let e = &v["errors"][0];
        assert_eq!(e["type"], "MandatoryError");
        assert_eq!(
            e["message"],
            "Error: Value missing for Connected App: Provider Name"
        );
        assert_eq!(e["title"], "Message");
        assert!(
            !e["exception"].as_str().unwrap_or("").contains("Traceback"),
            "{v}"
        );

        let (status, v) = app
            .raw_body(
                reqwest::Method::POST,
                &app.admin,
                base,
                "application/json",
                "{not json",
            )
            .await;
        assert!((400..500).contains(&status), "{status} {v}");
        assert!(v["errors"][0]["type"].is_string(), "{v}");

        let (status, v) = app
            .get(
                &app.admin,
                &format!("/api/v2/method/frappe.client.get_value?doctype=Connected%20App&filters={}&fieldname=provider_name", names[1]),
            )
            .await;
        assert_eq!((status, v), (200, json!({"data": {"provider_name": "B"}})));
    }
}

#[tokio::test]
async fn desk_endpoints_load_list_count_and_save_documents() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let doc = app.create_app(full_app("Alpha")).await;
        let name = doc["name"].as_str().unwrap();

        let (status, v) = app
            .get(
                &app.admin,
                &format!(
                    "/api/method/frappe.desk.form.load.getdoc?doctype=Connected%20App&name={name}"
                ),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["docs"][0]["name"], name);
        assert_eq!(v["docinfo"]["permissions"]["write"], 1);
        assert_eq!(v["_link_titles"], json!({}));

        let (status, v) = app
            .post(
                &app.admin,
                "/api/method/frappe.desk.reportview.get",
                &json!({"doctype": "Connected App", "fields": ["`tabConnected App`.`name`", "`tabConnected App`.`provider_name`"], "with_comment_count": 1}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            v["message"]["keys"],
            json!(["name", "provider_name", "_comment_count"])
        );
        assert_eq!(v["message"]["values"], json!([[name, "Alpha", 0]]));

        let (status, v) = app
            .post(
                &app.admin,
                "/api/method/frappe.desk.reportview.get_count",
                &json!({"doctype": "Connected App", "filters": [["Connected App", "provider_name", "=", "Alpha"]]}),
            )
            .await;
        assert_eq!((status, v), (200, json!({"message": 1})));

        let mut edited = app.get(&app.admin, &app_path(name)).await.1["data"].clone();
        edited["provider_name"] = json!("Alpha Saved");
        let (status, v) = app
            .form(
                reqwest::Method::POST,
                &app.admin,
                "/api/method/frappe.desk.form.save.savedocs",
                &[("doc", &edited.to_string()), ("action", "Save")],
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["docs"][0]["provider_name"], "Alpha Saved");
        assert_eq!(v["docs"][0]["name"], name);
        assert!(v["_server_messages"].as_str().unwrap().contains("Saved"));

        let new = json!({"doctype": "Connected App", "name": "new-connected-app-1", "__islocal": 1, "provider_name": "Desk New"});
        let (status, v) = app
            .post(
                &app.admin,
                "/api/method/frappe.desk.form.save.savedocs",
                &json!({"doc": new.to_string(), "action": "Save"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert!(is_hash_name(v["docs"][0]["name"].as_str().unwrap()), "{v}");
        let (_, v) = app
            .get(
                &app.admin,
                "/api/method/frappe.client.get_count?doctype=Connected%20App",
            )
            .await;
        assert_eq!(v["message"], 2);
    }
}

#[tokio::test]
async fn an_unknown_doctype_is_a_4xx_on_every_endpoint() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let a = &app.admin;
        let nd = "No%20Such%20Doctype";
        let cases: Vec<(u16, Value)> = vec![
            app.get(a, &format!("/api/resource/{nd}")).await,
            app.get(a, &format!("/api/resource/{nd}/x")).await,
            app.post(a, &format!("/api/resource/{nd}"), &json!({"a": 1}))
                .await,
            app.put(a, &format!("/api/resource/{nd}/x"), &json!({"a": 1}))
                .await,
            app.delete(a, &format!("/api/resource/{nd}/x")).await,
            app.get(
                a,
                &format!("/api/method/frappe.client.get_list?doctype={nd}"),
            )
            .await,
            app.get(
                a,
                &format!("/api/method/frappe.client.get?doctype={nd}&name=x"),
            )
            .await,
            app.get(
                a,
                &format!("/api/method/frappe.client.get_count?doctype={nd}"),
            )
            .await,
            app.post(
                a,
                "/api/method/frappe.client.insert",
                &json!({"doc": {"doctype": "No Such Doctype"}}),
            )
            .await,
            app.post(
                a,
                "/api/method/run_doc_method",
                &json!({"dt": "No Such Doctype", "dn": "x", "method": "m"}),
            )
            .await,
            app.get(a, &format!("/api/v2/document/{nd}")).await,
            app.get(a, &format!("/api/v2/document/{nd}/x")).await,
        ];
        for (i, (status, v)) in cases.iter().enumerate() {
            assert!(
                (400..500).contains(status),
                "{backend:?} case {i}: {status} {v}"
            );
        }
        let (status, v) = &cases[0];
        assert_eq!(*status, 404);
        assert_eq!(
            server_messages(v),
            vec!["DocType No Such Doctype not found"]
        );
        assert_eq!(cases[10].1["errors"][0]["type"], "DoesNotExistError");
    }
}

#[tokio::test]
async fn role_all_reads_connected_apps_but_cannot_create_write_or_delete_them() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let user = app.user("user1@example.com", &[]).await;
        let doc = app.create_app(full_app("P")).await;
        let name = doc["name"].as_str().unwrap();

        let (status, v) = app.get(&user, CA).await;
        assert_eq!((status, v), (200, json!({"data": [{"name": name}]})));
        let (status, v) = app.get(&user, &app_path(name)).await;
        assert_eq!(status, 200);
        assert_eq!(v["data"]["client_secret"], "************");

        let (status, v) = app.post(&user, CA, &full_app("Q")).await;
        assert_eq!(status, 403, "{v}");
        assert_eq!(v["exc_type"], "PermissionError");
        assert_eq!(
            server_messages(&v),
            vec!["User <strong>user1@example.com</strong> does not have access to this document: Connected App - None"]
        );
        assert_eq!(
            v["_error_message"],
            "You need the 'create' permission on <strong>Connected App</strong>  to perform this action."
        );
        let (status, v) = app
            .put(&user, &app_path(name), &json!({"client_id": "hack"}))
            .await;
        assert_eq!(status, 403, "{v}");
        let (status, v) = app.delete(&user, &app_path(name)).await;
        assert_eq!(status, 403, "{v}");
        assert_eq!(
            v["exception"],
            format!("frappe.exceptions.PermissionError: User not allowed to delete Connected App: {name}")
        );
        for (f, body) in [
            (
                "insert",
                json!({"doc": {"doctype": "Connected App", "provider_name": "Q"}}),
            ),
            (
                "set_value",
                json!({"doctype": "Connected App", "name": name, "fieldname": "client_id", "value": "h"}),
            ),
            ("delete", json!({"doctype": "Connected App", "name": name})),
        ] {
            let (status, v) = app
                .post(&user, &format!("/api/method/frappe.client.{f}"), &body)
                .await;
            assert_eq!(status, 403, "{f}: {v}");
        }
        let (status, v) = app
            .post(&user, "/api/v2/document/Connected%20App", &full_app("Q"))
            .await;
        assert_eq!(status, 403);
        assert_eq!(
            v["errors"][0]["message"],
            "User <strong>user1@example.com</strong> does not have access to this document: Connected App - None"
        );
        // Nothing changed.
        let (_, got) = app.get(&app.admin, &app_path(name)).await;
        assert_eq!(got["data"]["client_id"], "client-abc");
        let (_, n) = app
            .get(
                &app.admin,
                "/api/method/frappe.client.get_count?doctype=Connected%20App",
            )
            .await;
        assert_eq!(n["message"], 1);
    }
}

#[tokio::test]
async fn role_all_reads_and_deletes_only_its_own_token_caches() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let u1 = app.user("user1@example.com", &[]).await;
        let u2 = app.user("user2@example.com", &[]).await;
        let doc = app.create_app(full_app("P")).await;
        let name = doc["name"].as_str().unwrap();
        let initiate =
            json!({"dt": "Connected App", "dn": name, "method": "initiate_web_application_flow"});
        for auth in [&u1, &u2, &app.admin] {
            let (status, v) = app
                .post(auth, "/api/method/run_doc_method", &initiate)
                .await;
            assert_eq!(status, 200, "{v}");
        }
        let tc1 = format!("{TC}/{name}-user1%40example.com");
        let tc2 = format!("{TC}/{name}-user2%40example.com");

        let (status, v) = app
            .get(&u1, &format!("{TC}?fields=[\"name\",\"owner\"]"))
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            v["data"],
            json!([{"name": format!("{name}-user1@example.com"), "owner": "user1@example.com"}])
        );
        let (_, v) = app
            .get(
                &u1,
                "/api/method/frappe.client.get_count?doctype=Token%20Cache",
            )
            .await;
        assert_eq!(v["message"], 1);
        let (_, v) = app.get(&app.admin, TC).await;
        assert_eq!(v["data"].as_array().unwrap().len(), 3);

        let (status, _) = app.get(&u1, &tc1).await;
        assert_eq!(status, 200);
        let (status, v) = app.get(&u1, &tc2).await;
        assert_eq!(status, 403, "{v}");
        let (status, v) = app.put(&u1, &tc1, &json!({"expires_in": 5})).await;
        assert_eq!(status, 403, "{v}");
        let (status, v) = app
            .post(
                &u1,
                TC,
                &json!({"connected_app": name, "user": "user1@example.com"}),
            )
            .await;
        assert_eq!(status, 403, "{v}");
        let (status, v) = app.delete(&u1, &tc2).await;
        assert_eq!(status, 403, "{v}");
        let (status, _) = app.get(&app.admin, &tc2).await;
        assert_eq!(status, 200);
        let (status, v) = app.delete(&u1, &tc1).await;
        assert_eq!((status, v), (202, json!({"data": "ok"})));
        let (status, _) = app.get(&app.admin, &tc1).await;
        assert_eq!(status, 404);
    }
}

#[tokio::test]
async fn guests_get_frappes_403s_and_bad_credentials_a_401() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let doc = app.create_app(full_app("P")).await;
        let name = doc["name"].as_str().unwrap();
        let guest = |path: String| {
            let r = app.client.get(app.url(&path));
            async move { status_json(r.send().await.unwrap()).await }
        };
        let (status, v) = guest(CA.to_string()).await;
        assert_eq!(status, 403);
        assert_eq!(
            server_messages(&v),
            vec!["User <strong>Guest</strong> does not have doctype access via role permission for document <strong>Connected App</strong>"]
        );
        assert_eq!(v["_error_message"], "No permission for Connected App");
        let (status, v) = guest(app_path(name)).await;
        assert_eq!(status, 403);
        assert_eq!(
            server_messages(&v),
            vec!["User <strong>Guest</strong> does not have doctype access via role permission for document <strong>Connected App</strong><br>User <strong>Guest</strong> does not have access to this document"]
        );
        let (status, v) =
            guest("/api/method/frappe.client.get_list?doctype=Connected%20App".into()).await;
        assert_eq!(status, 403);
        assert!(
            server_messages(&v)[0].contains("frappe.client.get_list"),
            "{v}"
        );
        let r = app
            .client
            .post(app.url(CA))
            .json(&full_app("G"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let (status, v) = guest("/api/v2/document/Connected%20App".into()).await;
        assert_eq!(status, 403);
        assert_eq!(v["errors"][0]["type"], "PermissionError");

        let (status, v) = app.get("token nokey:nosecret", CA).await;
        assert_eq!(status, 401, "{v}");
        assert_eq!(v["exc_type"], "AuthenticationError");
        let (status, _) = app.get("Basic bm9rZXk6bm9zZWNyZXQ=", CA).await;
        assert_eq!(status, 401);
    }
}

#[tokio::test]
async fn v1_error_bodies_have_frappes_keys_and_never_a_traceback() {
    let app = spawn_app(Backend::Sqlite).await;
    let user = app.user("user1@example.com", &[]).await;
    let doc = app.create_app(full_app("P")).await;
    let name = doc["name"].as_str().unwrap();
    let errors = vec![
        app.post(&app.admin, CA, &json!({})).await,
        app.post(&user, CA, &full_app("Q")).await,
        app.put(
            &app.admin,
            &app_path(name),
            &json!({"modified": "2000-01-01 00:00:00"}),
        )
        .await,
        app.get(&app.admin, &format!("{CA}?fields=[\"nope\"]"))
            .await,
        app.raw_body(
            reqwest::Method::POST,
            &app.admin,
            CA,
            "application/json",
            "{bad",
        )
        .await,
        app.get(&app.admin, "/api/method/frappe.client.no_such")
            .await,
    ];
    for (status, v) in errors {
        assert!((400..500).contains(&status), "{status} {v}");
        let obj = v
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {v}"));
        for (k, val) in obj {
            // `exc` may only be there as the list of the one-line `exception`.
            assert!(
                [
                    "exception",
                    "exc_type",
                    "_server_messages",
                    "_error_message"
                ]
                .contains(&k.as_str())
                    || (k == "exc" && crate::hostile::exc_is_exception_line(val, &v)),
                "unexpected key {k} in {v}"
            );
        }
        assert!(obj.contains_key("exc_type"), "{v}");
        assert!(!v.to_string().contains("Traceback"), "{v}");
        assert!(!v.to_string().contains(".rs:"), "{v}");
        if let Some(sm) = v["_server_messages"].as_str() {
            let list: Vec<String> = serde_json::from_str(sm).expect("a JSON list of JSON texts");
            for m in list {
                let m: Value = serde_json::from_str(&m).expect("a JSON message");
                assert!(m["message"].is_string(), "{m}");
            }
        }
    }
}

#[tokio::test]
async fn a_document_read_again_follows_writes_by_other_programs_and_its_deletion() {
    use connected_apps::db::schema::{connected_app, oauth_scope};
    use diesel::prelude::*;
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let doc = app
            .create_app(
                json!({"provider_name": "P", "client_id": "c1", "scopes": [{"scope": "openid"}]}),
            )
            .await;
        let name = doc["name"].as_str().unwrap().to_string();
        let path = format!("{CA}/{name}");
        for _ in 0..2 {
            let (status, v) = app.get(&app.admin, &path).await;
            assert_eq!(status, 200);
            assert_eq!(v["data"]["client_id"], "c1");
        }
        // Another program (Frappe itself) edits the row and a child row, setting `modified`.
        let mut conn = app.db.raw();
        let later = Utc::now().naive_utc() + chrono::Duration::seconds(5);
        diesel::update(connected_app::table.filter(connected_app::name.eq(&name)))
            .set((
                connected_app::client_id.eq(Some("c2")),
                connected_app::modified.eq(Some(later)),
            ))
            .execute(&mut conn)
            .unwrap();
        diesel::update(oauth_scope::table.filter(oauth_scope::parent.eq(&name)))
            .set(oauth_scope::scope.eq(Some("email")))
            .execute(&mut conn)
            .unwrap();
        let upper = format!("{CA}/{}", name.to_uppercase());
        let (_, v) = app.get(&app.admin, &upper).await;
        let (_, v2) = app.get(&app.admin, &path).await;
        for v in [v, v2] {
            assert_eq!(v["data"]["client_id"], "c2", "{backend:?}: {v}");
            assert_eq!(v["data"]["scopes"][0]["scope"], "email", "{backend:?}");
        }
        diesel::delete(connected_app::table.filter(connected_app::name.eq(&name)))
            .execute(&mut conn)
            .unwrap();
        let (status, v) = app.get(&app.admin, &path).await;
        assert_eq!(status, 404, "{backend:?}: {v}");
    }
}
