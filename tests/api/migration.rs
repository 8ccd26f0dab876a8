//! Migration from the Python implementation: attach to a Frappe site's database, or import it
//! into the service's own database (SQLite or MariaDB). The site is `dump.sql` of the reference.

use std::process::Command;

use connected_apps::secrets::KeyRing;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::provider::TestProvider;

/// The site's Fernet key.
pub(crate) fn site_key() -> String {
    std::fs::read_to_string(reference("encryption_key.txt"))
        .unwrap()
        .trim()
        .to_string()
}

/// A fresh MariaDB database holding Frappe's tables and the reference site's rows.
pub(crate) fn frappe_site_db() -> TestDb {
    let db = TestDb::new(Backend::Mysql);
    let name = db.url.rsplit('/').next().unwrap().to_string();
    for file in ["schema.sql", "dump.sql"] {
        let sql = std::fs::File::open(reference(file)).unwrap();
        let status = Command::new("mysql")
            .args(["--protocol=tcp", "-h127.0.0.1", "-uroot", &name])
            .stdin(sql)
            .status()
            .expect("the mysql client is needed to load dump.sql");
        assert!(status.success(), "loading {file} failed");
    }
    db
}

pub(crate) fn write_site_config(dir: &std::path::Path, host: &str) -> std::path::PathBuf {
    let path = dir.join("frappe_site_config.json");
    std::fs::write(
        &path,
        json!({"encryption_key": site_key(), "host_name": host, "db_name": "site"}).to_string(),
    )
    .unwrap();
    path
}

/// The recorded answers for the documents as they are in the dump (single-document shape:
/// nulls left out).
fn recorded_docs() -> Vec<(&'static str, String, Value)> {
    let load = |file: &str, key: &str| -> Value {
        let text = std::fs::read_to_string(reference(&format!("exchanges/{file}"))).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        strip_nulls(v["response"]["body"][key].clone())
    };
    vec![
        (
            "Connected App",
            "90c7bdi80h".into(),
            load("253-v2-get.json", "data"),
        ),
        (
            "Connected App",
            "opc0eonetm".into(),
            load("206-client-get-by-filters.json", "message"),
        ),
        (
            "Connected App",
            "q4jvuo69gj".into(),
            load("220-client-set_value-redirect_uri.json", "message"),
        ),
        (
            "Token Cache",
            "90c7bdi80h-Administrator".into(),
            load("510-tc-put-admin-readonly-fields.json", "data"),
        ),
        (
            "Token Cache",
            "opc0eonetm-user2@example.com".into(),
            load("512-tc-create-admin.json", "data"),
        ),
    ]
}

fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// Every secret of `auth_rows.json`, read from `__Auth` of `db` and decrypted with `key`.
fn assert_secrets_decrypt(db: &TestDb, key: &str, skip: &[&str]) {
    use connected_apps::db::schema::auth;
    use diesel::prelude::*;
    let ring = KeyRing::new(key).unwrap();
    let rows: Value =
        serde_json::from_str(&std::fs::read_to_string(reference("auth_rows.json")).unwrap())
            .unwrap();
    let mut conn = db.raw();
    for row in rows["auth_rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["encrypted"] == 1 && !skip.contains(&r["name"].as_str().unwrap()))
    {
        let (dt, name, field) = (
            row["doctype"].as_str().unwrap(),
            row["name"].as_str().unwrap(),
            row["fieldname"].as_str().unwrap(),
        );
        let stored: String = auth::table
            .filter(auth::doctype.eq(dt))
            .filter(auth::name.eq(name))
            .filter(auth::fieldname.eq(field))
            .select(auth::password)
            .first(&mut conn)
            .unwrap_or_else(|e| panic!("{dt} {name} {field} missing: {e}"));
        let clear = ring
            .decrypt(&stored)
            .unwrap_or_else(|_| panic!("{dt} {name} {field} does not decrypt"));
        assert_eq!(
            clear.expose_secret(),
            row["cleartext"].as_str().unwrap(),
            "{dt} {name} {field}"
        );
    }
}

fn api_key_of(site: &TestDb, user_name: &str) -> String {
    use connected_apps::db::schema::user;
    use diesel::prelude::*;
    let mut conn = site.raw();
    user::table
        .filter(user::name.eq(user_name))
        .select(user::api_key)
        .first::<Option<String>>(&mut conn)
        .unwrap()
        .unwrap()
}

/// What a user of the migrated service sees: the documents as recorded, logins and API keys.
async fn assert_site_served(app: &TestApp, site: &TestDb, admin: &str) {
    for (doctype, name, expected) in recorded_docs() {
        let path = format!(
            "/api/resource/{}/{}",
            doctype.replace(' ', "%20"),
            name.replace('@', "%40")
        );
        let (status, body) = app.get(admin, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["data"], expected, "{path}");
    }
    // user1 logs in with the site's password.
    let r = app
        .client
        .post(app.url("/api/method/login"))
        .json(&json!({"usr": "user1@example.com", "pwd": "user1pass"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A recorded API key works.
    let key = api_key_of(site, "user1@example.com");
    let (status, body) = app
        .get(
            &format!("token {key}:2242aa491df56dd"),
            "/api/method/frappe.auth.get_logged_user",
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (200, Some("user1@example.com"))
    );
}

#[tokio::test]
async fn attached_to_a_frappe_database_the_service_serves_its_documents_users_and_secrets() {
    let site = frappe_site_db();
    let cfg = write_site_config(site.dir.path(), "http://127.0.0.1:8000");
    let url = site.url.clone();
    let mut settings = test_settings(&site);
    settings.database_url = url;
    settings.site_config = cfg;
    settings.create_site_config = false;
    settings.time_zone = None; // read from the site: the dump has no System Settings, so UTC
    let app = spawn_on(site, settings).await;
    // (The harness gave Administrator a new API key on the site, so its secret is not checked.)
    assert_site_served(&app, &app.db, &app.admin.clone()).await;
    assert_secrets_decrypt(&app.db, &site_key(), &["Administrator"]);
    // A live Frappe session (a tabSessions row Frappe wrote) logs the user in; keep it live
    // relative to the test's clock.
    {
        use diesel::prelude::*;
        let mut conn = app.db.raw();
        diesel::sql_query("UPDATE `tabSessions` SET `lastupdate` = UTC_TIMESTAMP(6) WHERE `sid` = '5e67959d3a95fa09714e1e02784bfbea2f0c7ec7ca1ebfe2a9751f41'")
            .execute(&mut conn)
            .unwrap();
    }
    let r = app
        .client
        .get(app.url("/api/method/frappe.auth.get_logged_user"))
        .header(
            "Cookie",
            "sid=5e67959d3a95fa09714e1e02784bfbea2f0c7ec7ca1ebfe2a9751f41",
        )
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(r).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (200, Some("user1@example.com"))
    );
}

async fn import_into(backend: Backend) {
    let site = frappe_site_db();
    let app = spawn_app(backend).await;
    let keys = KeyRing::new(&site_key()).unwrap();
    let report =
        connected_apps::import::run(&app.state, &site.url, keys.clone(), false, true, false)
            .await
            .unwrap();
    assert!(report.failures.is_empty(), "{}", report.summary());
    let apps = &report
        .per_doctype
        .iter()
        .find(|(d, _)| *d == "Connected App")
        .unwrap()
        .1;
    assert_eq!((apps.created, apps.failed), (4, 0));
    // Asked to overwrite users: the site's Administrator (and its API key) replaced the one
    // the harness made.
    let admin = format!(
        "token {}:e116e69232bd2c5",
        api_key_of(&site, "Administrator")
    );
    assert_site_served(&app, &site, &admin).await;
    // Secrets are re-encrypted under the service's own key.
    let own: Value =
        serde_json::from_str(&std::fs::read_to_string(&app.site_config).unwrap()).unwrap();
    assert_secrets_decrypt(&app.db, own["encryption_key"].as_str().unwrap(), &[]);
    // A second run changes nothing.
    let again = connected_apps::import::run(&app.state, &site.url, keys, false, true, false)
        .await
        .unwrap();
    for (doctype, c) in &again.per_doctype {
        assert_eq!(
            (c.created, c.updated, c.failed),
            (0, 0, 0),
            "{doctype}: {}",
            again.summary()
        );
    }
}

#[tokio::test]
async fn importing_a_frappe_site_into_sqlite_keeps_every_document_user_and_secret() {
    import_into(Backend::Sqlite).await;
}

#[tokio::test]
async fn importing_a_frappe_site_into_mariadb_keeps_every_document_user_and_secret() {
    import_into(Backend::Mysql).await;
}

#[tokio::test]
async fn a_row_that_does_not_decrypt_is_reported_and_the_rest_still_arrives() {
    use diesel::prelude::*;
    let site = frappe_site_db();
    {
        use connected_apps::db::schema::auth;
        let mut conn = site.raw();
        diesel::update(
            auth::table
                .filter(auth::doctype.eq("Connected App"))
                .filter(auth::name.eq("pdg4llvuf7")),
        )
        .set(auth::password.eq("gAAAAABnot-a-valid-token"))
        .execute(&mut conn)
        .unwrap();
    }
    let app = spawn_app(Backend::Sqlite).await;
    let report = connected_apps::import::run(
        &app.state,
        &site.url,
        KeyRing::new(&site_key()).unwrap(),
        false,
        true,
        false,
    )
    .await
    .unwrap();
    assert_eq!(report.failures.len(), 1, "{}", report.summary());
    assert_eq!(report.failures[0].1, "pdg4llvuf7", "{}", report.summary());
    assert!(
        report.failures[0].2.contains("does not decrypt"),
        "{}",
        report.failures[0].2
    );
    let admin = format!(
        "token {}:e116e69232bd2c5",
        api_key_of(&site, "Administrator")
    );
    let (status, _) = app
        .get(&admin, "/api/resource/Connected%20App/90c7bdi80h")
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .get(&admin, "/api/resource/Connected%20App/pdg4llvuf7")
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_dry_run_writes_nothing() {
    let site = frappe_site_db();
    let app = spawn_app(Backend::Sqlite).await;
    let report = connected_apps::import::run(
        &app.state,
        &site.url,
        KeyRing::new(&site_key()).unwrap(),
        true,
        false,
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        report
            .per_doctype
            .iter()
            .find(|(d, _)| *d == "Connected App")
            .unwrap()
            .1
            .created,
        4
    );
    let (_, body) = app
        .get(
            &app.admin,
            "/api/method/frappe.client.get_count?doctype=Connected%20App",
        )
        .await;
    assert_eq!(body["message"], 0);
}

/// Attached to the site: a token the service refreshes stays valid for Frappe's own code
/// (Fernet under the site key, `modified + expires_in` in the future).
#[tokio::test]
async fn a_token_refreshed_on_an_attached_site_stays_valid_for_frappe() {
    let site = frappe_site_db();
    let cfg = write_site_config(site.dir.path(), "http://127.0.0.1:8000");
    let mut settings = test_settings(&site);
    settings.database_url = site.url.clone();
    settings.site_config = cfg;
    settings.create_site_config = false;
    settings.public_url_explicit = false;
    let app = spawn_on(site, settings).await;
    // Point the site's app at a real provider and connect Administrator through it.
    let redirect = format!(
        "{}/api/method/frappe.integrations.doctype.connected_app.connected_app.callback/90c7bdi80h",
        app.address
    );
    let provider = TestProvider::start(json!({
        "accessTokenTTL": 3600,
        "clients": [{"client_id": "client-abc", "client_secret": "s3cr3t-value", "redirect_uris": [redirect]}]
    }))
    .await;
    let (status, body) = app
        .put(
            &app.admin,
            "/api/resource/Connected%20App/90c7bdi80h",
            &json!({
                "authorization_uri": provider.authorization_endpoint(),
                "token_uri": provider.token_endpoint(),
                "revocation_uri": provider.revocation_endpoint(),
                "query_parameters": [],
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .post(&app.admin, "/api/method/run_doc_method", &json!({"dt": "Connected App", "dn": "90c7bdi80h", "method": "initiate_web_application_flow"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let back = provider.authorize(body["message"].as_str().unwrap()).await;
    let path = back.trim_start_matches(&app.address).to_string();
    let r = app
        .client
        .get(app.url(&path))
        .header("Authorization", &app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    // Let the token expire as Frappe sees it: received long ago.
    {
        use diesel::prelude::*;
        let mut conn = app.db.raw();
        diesel::sql_query("UPDATE `tabToken Cache` SET `expires_in` = 1 WHERE `name` = '90c7bdi80h-Administrator'").execute(&mut conn).unwrap();
        diesel::sql_query("UPDATE `ca_token_state` SET `received_at` = '2000-01-01 00:00:00' WHERE `token_cache` = '90c7bdi80h-Administrator'").execute(&mut conn).unwrap();
    }
    let (status, body) = app
        .get(
            &app.admin,
            "/api/method/connected_apps.get_access_token?connected_app=90c7bdi80h",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["message"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let stats = provider.stats().await;
    assert!(stats["refresh_requests"].as_i64().unwrap() >= 1, "{stats}");
    // Frappe's view of the row: decrypt with Python's cryptography, and modified + expires_in > now.
    use diesel::prelude::*;
    let mut conn = app.db.raw();
    #[derive(QueryableByName)]
    struct R {
        #[diesel(sql_type = diesel::sql_types::Text)]
        password: String,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        fresh: i32,
    }
    let r: R = diesel::sql_query(
        "SELECT a.password, CAST(TIMESTAMPADD(SECOND, t.expires_in, t.modified) > NOW() AS SIGNED) AS fresh \
         FROM `tabToken Cache` t JOIN `__Auth` a ON a.doctype = 'Token Cache' AND a.name = t.name AND a.fieldname = 'access_token' \
         WHERE t.name = '90c7bdi80h-Administrator'",
    )
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(
        r.fresh, 1,
        "Frappe would consider the refreshed token expired"
    );
    let out = Command::new("python3")
        .args(["-c", "import sys; from cryptography.fernet import Fernet; print(Fernet(sys.argv[1].encode()).decrypt(sys.argv[2].encode()).decode())", &site_key(), &r.password])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "Python could not decrypt (pip install cryptography?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), token);
}
