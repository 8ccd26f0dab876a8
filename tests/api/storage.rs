//! Storage compatibility with Frappe: the tables migrations create, running on a Frappe site's
//! database without altering it, Fernet secrets both ways with Python, passlib passwords and
//! sessions kept in the database.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use connected_apps::db::schema::{auth, connected_app, has_role, sessions, user};
use connected_apps::startup::Application;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use serde_json::json;

use crate::cli::{command_on, python_fernet, run_ok, write_site_config, Served};
use crate::helpers::*;

/// Frappe's tables as `schema.sql` records them: name → `SHOW CREATE TABLE` text.
fn frappe_schema() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(reference("schema.sql")).expect("schema.sql");
    text.split("\n;")
        .map(|block| {
            block
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
                .trim()
                .to_string()
        })
        .filter(|b| b.starts_with("CREATE TABLE"))
        .map(|b| {
            let name = b.split('`').nth(1).expect("table name").to_string();
            (name, b)
        })
        .collect()
}

fn reference_key() -> String {
    std::fs::read_to_string(reference("encryption_key.txt"))
        .expect("encryption_key.txt")
        .trim()
        .to_string()
}

fn mysql(db: &TestDb) -> diesel::MysqlConnection {
    diesel::MysqlConnection::establish(&db.url).expect("open mariadb")
}

#[derive(QueryableByName)]
struct CreateTable {
    #[diesel(sql_type = Text, column_name = "Create Table")]
    text: String,
}

#[derive(QueryableByName)]
struct Named {
    #[diesel(sql_type = Text)]
    name: String,
}

fn show_create(conn: &mut diesel::MysqlConnection, table: &str) -> String {
    diesel::sql_query(format!("SHOW CREATE TABLE `{table}`"))
        .get_result::<CreateTable>(conn)
        .unwrap_or_else(|e| panic!("SHOW CREATE TABLE {table}: {e}"))
        .text
}

fn mysql_tables(conn: &mut diesel::MysqlConnection) -> BTreeSet<String> {
    diesel::sql_query(
        "SELECT CAST(table_name AS CHAR) AS name FROM information_schema.tables WHERE table_schema = DATABASE()",
    )
    .load::<Named>(conn)
    .expect("list tables")
    .into_iter()
    .map(|n| n.name)
    .collect()
}

/// A MariaDB test database holding Frappe's tables and the recorded data, and a site config
/// with the site's key.
/// tabVersion as `SHOW CREATE TABLE` prints it on a Frappe v15 site (with a custom index a site
/// might add, so that a migration recreating it would show).
const FRAPPE_VERSION_TABLE: &str = "CREATE TABLE `tabVersion` (
  `name` varchar(140) NOT NULL,
  `creation` datetime(6) DEFAULT NULL,
  `modified` datetime(6) DEFAULT NULL,
  `modified_by` varchar(140) DEFAULT NULL,
  `owner` varchar(140) DEFAULT NULL,
  `docstatus` int(1) NOT NULL DEFAULT 0,
  `idx` int(8) NOT NULL DEFAULT 0,
  `ref_doctype` varchar(140) DEFAULT NULL,
  `docname` varchar(140) DEFAULT NULL,
  `data` longtext DEFAULT NULL,
  `_user_tags` text DEFAULT NULL,
  `_comments` text DEFAULT NULL,
  `_assign` text DEFAULT NULL,
  `_liked_by` text DEFAULT NULL,
  PRIMARY KEY (`name`),
  KEY `ref_doctype_docname_index` (`ref_doctype`,`docname`),
  KEY `modified` (`modified`),
  KEY `owner_index` (`owner`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci ROW_FORMAT=DYNAMIC;";

fn frappe_site() -> (TestDb, std::path::PathBuf) {
    let db = TestDb::new(Backend::Mysql);
    let mut conn = mysql(&db);
    for create in frappe_schema().values() {
        conn.batch_execute(create).expect("create a Frappe table");
    }
    // Every Frappe site has its change history table; the recorded schema leaves it out. A
    // site's own must stay as it is (the service creates one only where it is missing).
    conn.batch_execute(FRAPPE_VERSION_TABLE)
        .expect("create tabVersion as a Frappe site has it");
    let dump = std::fs::read_to_string(reference("dump.sql")).expect("dump.sql");
    conn.batch_execute(&dump).expect("load dump.sql");
    let site_config = db.dir.path().join("site_config.json");
    write_site_config(&site_config, &reference_key());
    (db, site_config)
}

#[tokio::test]
async fn migrate_on_an_empty_mariadb_database_creates_frappes_tables_as_frappe_defines_them() {
    let db = TestDb::new(Backend::Mysql);
    let site_config = db.dir.path().join("site_config.json");
    write_site_config(&site_config, &reference_key());

    run_ok(command_on(&db, &site_config), &["migrate"]).await;

    let mut conn = mysql(&db);
    for (table, frappe) in frappe_schema() {
        let ours = show_create(&mut conn, &table);
        if table == "tabUser" {
            // tabUser has only the columns the service uses; each is declared as Frappe does.
            let frappe_lines: BTreeSet<&str> = frappe
                .lines()
                .map(|l| l.trim().trim_end_matches(','))
                .collect();
            for line in ours.lines() {
                let line = line.trim().trim_end_matches(',');
                assert!(
                    frappe_lines.contains(line),
                    "tabUser: `{line}` is not in Frappe's schema"
                );
            }
            assert_eq!(ours.lines().last(), frappe.lines().last(), "table options");
        } else {
            assert_eq!(ours, frappe, "{table}");
        }
    }
}

#[tokio::test]
async fn migrate_on_an_empty_sqlite_file_creates_every_frappe_table_and_column() {
    let db = TestDb::new(Backend::Sqlite);
    let site_config = db.dir.path().join("site_config.json");
    write_site_config(&site_config, &reference_key());

    run_ok(command_on(&db, &site_config), &["migrate"]).await;

    // The MariaDB migration declares the columns; the SQLite store has the same ones.
    let mariadb = TestDb::new(Backend::Mysql);
    run_ok(command_on(&mariadb, &site_config), &["migrate"]).await;
    let mut my = mysql(&mariadb);
    let mut lite =
        diesel::SqliteConnection::establish(db.url.trim_start_matches("sqlite://")).unwrap();
    for table in frappe_schema().keys() {
        let names =
            |rows: Vec<Named>| -> Vec<String> { rows.into_iter().map(|n| n.name).collect() };
        let on_mysql = names(
            diesel::sql_query(format!(
                "SELECT CAST(column_name AS CHAR) AS name FROM information_schema.columns \
                 WHERE table_schema = DATABASE() AND table_name = '{table}' ORDER BY ordinal_position"
            ))
            .load(&mut my)
            .unwrap(),
        );
        let on_sqlite = names(
            diesel::sql_query(format!(
                "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
            ))
            .load(&mut lite)
            .unwrap(),
        );
        assert!(!on_mysql.is_empty(), "{table}");
        assert_eq!(on_sqlite, on_mysql, "{table}");
    }
}

#[tokio::test]
async fn migrate_and_serve_on_a_frappe_database_leave_every_frappe_table_as_it_was() {
    // Arrange: Frappe's tables and data.
    let (db, site_config) = frappe_site();
    let mut conn = mysql(&db);
    let tables_before = mysql_tables(&mut conn);
    let schema_before: BTreeMap<String, String> = tables_before
        .iter()
        .map(|t| (t.clone(), show_create(&mut conn, t)))
        .collect();

    // Act: migrate, then serve and use it.
    run_ok(command_on(&db, &site_config), &["migrate"]).await;
    let port = crate::cli::free_port();
    let mut cmd = command_on(&db, &site_config);
    cmd.args(["--bind", &format!("127.0.0.1:{port}")]);
    let served = Served::start(cmd, port, &[]).await;

    // Assert: Frappe's users work as they are.
    let out = served.stdout();
    assert!(
        !out.iter().any(|l| l.contains("password")),
        "Administrator exists, no password is generated: {out:?}"
    );
    let (status, body) = served.login("user1@example.com", "user1pass").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["full_name"], "User One");
    for (name, secret) in [
        ("Administrator", "e116e69232bd2c5"),
        ("user1@example.com", "2242aa491df56dd"),
        ("user2@example.com", "48c1041438a867e"),
    ] {
        let key: Option<String> = user::table
            .filter(user::name.eq(name))
            .select(user::api_key)
            .first(&mut conn)
            .expect("recorded user");
        let key = key.expect("recorded api_key");
        assert_eq!(
            served
                .logged_user(&format!("token {key}:{secret}"))
                .await
                .as_deref(),
            Some(name)
        );
    }
    let admin = format!(
        "token {}:e116e69232bd2c5",
        user::table
            .filter(user::name.eq("Administrator"))
            .select(user::api_key)
            .first::<Option<String>>(&mut conn)
            .unwrap()
            .unwrap()
    );
    let (status, body) = served
        .get(&admin, "/api/resource/Connected%20App/90c7bdi80h")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["provider_name"], "Test Provider Renamed");
    assert_eq!(body["data"]["client_secret"], "************");

    // Frappe's tables are untouched; the service added only its own.
    let tables_after = mysql_tables(&mut conn);
    assert!(tables_after.is_superset(&tables_before));
    for added in tables_after.difference(&tables_before) {
        assert!(
            added.starts_with("ca_") || added == "__diesel_schema_migrations",
            "unexpected table {added}"
        );
    }
    for (table, before) in &schema_before {
        assert_eq!(
            &show_create(&mut conn, table),
            before,
            "{table} was altered"
        );
    }
    drop(served);

    // A second migrate on the same database changes nothing either.
    run_ok(command_on(&db, &site_config), &["migrate"]).await;
    for (table, before) in &schema_before {
        assert_eq!(
            &show_create(&mut conn, table),
            before,
            "{table} was altered"
        );
    }
}

#[tokio::test]
async fn a_secret_set_through_the_api_is_a_fernet_token_python_decrypts_and_its_column_is_masked() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let key = crate::cli::read_json(&app.site_config)["encryption_key"]
            .as_str()
            .unwrap()
            .to_string();
        let secret = "sëcret-välue"; // 12 characters, 14 bytes
        let doc = app
            .create_app(
                json!({"provider_name": "Fernet", "client_id": "f", "client_secret": secret}),
            )
            .await;
        let name = doc["name"].as_str().unwrap().to_string();
        assert_eq!(doc["client_secret"], "*".repeat(12), "{backend:?}");

        let stored = |field: &str, doctype: &str, name: &str| -> (String, i32) {
            let mut conn = app.db.raw();
            auth::table
                .filter(auth::doctype.eq(doctype))
                .filter(auth::name.eq(name))
                .filter(auth::fieldname.eq(field))
                .select((auth::password, auth::encrypted))
                .first(&mut conn)
                .unwrap_or_else(|e| {
                    panic!("{backend:?}: no __Auth row {doctype} {name} {field}: {e}")
                })
        };
        let column = || -> Option<String> {
            let mut conn = app.db.raw();
            connected_app::table
                .filter(connected_app::name.eq(&name))
                .select(connected_app::client_secret)
                .first(&mut conn)
                .unwrap()
        };

        let (token, encrypted) = stored("client_secret", "Connected App", &name);
        assert_eq!(encrypted, 1);
        assert!(token.starts_with("gAAAAA"), "{token}");
        assert_eq!(
            python_fernet("decrypt", &key, &token).as_deref(),
            Ok(secret)
        );
        assert_eq!(column().as_deref(), Some("************"), "{backend:?}");

        // A new value is encrypted again; asterisks sent back keep it.
        let path = format!("/api/resource/Connected%20App/{name}");
        let (status, _) = app
            .put(&app.admin, &path, &json!({"client_secret": "second"}))
            .await;
        assert_eq!(status, 200);
        let (status, _) = app
            .put(&app.admin, &path, &json!({"client_secret": "***"}))
            .await;
        assert_eq!(status, 200);
        let (token, _) = stored("client_secret", "Connected App", &name);
        assert_eq!(
            python_fernet("decrypt", &key, &token).as_deref(),
            Ok("second")
        );
        assert_eq!(column().as_deref(), Some("******"), "{backend:?}");

        // API secrets are stored the same way.
        let auth_header = app.user("fernet@example.com", &[]).await;
        let api_secret = auth_header.rsplit(':').next().unwrap();
        let (token, encrypted) = stored("api_secret", "User", "fernet@example.com");
        assert_eq!(encrypted, 1);
        assert_eq!(
            python_fernet("decrypt", &key, &token).as_deref(),
            Ok(api_secret)
        );
        let mut conn = app.db.raw();
        let masked: Option<String> = user::table
            .filter(user::name.eq("fernet@example.com"))
            .select(user::api_secret)
            .first(&mut conn)
            .unwrap();
        assert_eq!(masked, Some("*".repeat(api_secret.chars().count())));
    }
}

#[tokio::test]
async fn fernet_tokens_made_by_python_and_by_frappe_are_used_by_the_service() {
    for backend in BACKENDS {
        // The site key of the recorded Frappe site, so its own tokens can be used as they are.
        let app = spawn_app_with(backend, |s| {
            write_site_config(&s.site_config, &reference_key());
        })
        .await;
        let key = reference_key();
        let auth_header = app.user("py@example.com", &[]).await;
        let api_key = auth_header
            .trim_start_matches("token ")
            .split(':')
            .next()
            .unwrap()
            .to_string();

        // A secret Python encrypted.
        let token = python_fernet("encrypt", &key, "made-by-python").unwrap();
        {
            let mut conn = app.db.raw();
            diesel::update(
                auth::table
                    .filter(auth::doctype.eq("User"))
                    .filter(auth::name.eq("py@example.com"))
                    .filter(auth::fieldname.eq("api_secret")),
            )
            .set(auth::password.eq(&token))
            .execute(&mut conn)
            .unwrap();
        }
        let (status, body) = app
            .get(
                &format!("token {api_key}:made-by-python"),
                "/api/method/frappe.auth.get_logged_user",
            )
            .await;
        assert_eq!(
            (status, body["message"].as_str()),
            (200, Some("py@example.com")),
            "{backend:?} {body}"
        );

        // The token Frappe stored for user1's API secret (auth_rows.json).
        let rows: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(reference("auth_rows.json")).unwrap())
                .unwrap();
        let frappe_token = rows["auth_rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "user1@example.com" && r["fieldname"] == "api_secret")
            .expect("user1's api_secret row")["stored"]
            .as_str()
            .unwrap()
            .to_string();
        app.user("frappe-made@example.com", &[]).await;
        let frappe_key = "frappe-made-key";
        {
            let mut conn = app.db.raw();
            diesel::update(user::table.filter(user::name.eq("frappe-made@example.com")))
                .set(user::api_key.eq(frappe_key))
                .execute(&mut conn)
                .unwrap();
            diesel::update(
                auth::table
                    .filter(auth::doctype.eq("User"))
                    .filter(auth::name.eq("frappe-made@example.com"))
                    .filter(auth::fieldname.eq("api_secret")),
            )
            .set(auth::password.eq(&frappe_token))
            .execute(&mut conn)
            .unwrap();
        }
        let (status, body) = app
            .get(
                &format!("token {frappe_key}:2242aa491df56dd"),
                "/api/method/frappe.auth.get_logged_user",
            )
            .await;
        assert_eq!(
            (status, body["message"].as_str()),
            (200, Some("frappe-made@example.com")),
            "{backend:?} {body}"
        );
    }
}

/// user1's login password hash as Frappe (passlib) stored it in dump.sql.
fn frappe_password_hash() -> String {
    let dump = std::fs::read_to_string(reference("dump.sql")).unwrap();
    let line = dump
        .lines()
        .find(|l| l.contains("('User','user1@example.com','password','"))
        .expect("user1's password row");
    line.split('\'').nth(7).expect("hash").to_string()
}

#[tokio::test]
async fn a_frappe_password_hash_verifies_and_sessions_live_in_the_database() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        app.user("hashed@example.com", &[]).await;
        let hash = frappe_password_hash();
        assert!(hash.starts_with("$pbkdf2-sha256$29000$"), "{hash}");
        {
            let mut conn = app.db.raw();
            diesel::update(
                auth::table
                    .filter(auth::doctype.eq("User"))
                    .filter(auth::name.eq("hashed@example.com"))
                    .filter(auth::fieldname.eq("password")),
            )
            .set((auth::password.eq(&hash), auth::encrypted.eq(0)))
            .execute(&mut conn)
            .unwrap();
        }

        let r = app
            .client
            .post(app.url("/api/method/login"))
            .json(&json!({"usr": "hashed@example.com", "pwd": "user1pass"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{backend:?}");
        let sid = sid_of(&r);

        // The session is a row of tabSessions ...
        let mut conn = app.db.raw();
        let owner: Option<String> = sessions::table
            .filter(sessions::sid.eq(&sid))
            .select(sessions::user)
            .first(&mut conn)
            .unwrap_or_else(|e| panic!("{backend:?}: no tabSessions row: {e}"));
        assert_eq!(owner.as_deref(), Some("hashed@example.com"));

        // ... so another instance on the same database knows it.
        let mut settings = test_settings(&app.db);
        settings.admin_password = None;
        let other = Application::build(settings).await.expect("second instance");
        let port = other.port();
        tokio::spawn(other.run_until_stopped());
        let r = app
            .client
            .get(format!(
                "http://127.0.0.1:{port}/api/method/frappe.auth.get_logged_user"
            ))
            .header("Cookie", format!("sid={sid}"))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(r).await;
        assert_eq!(
            (status, body["message"].as_str()),
            (200, Some("hashed@example.com")),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn a_session_follows_its_row_its_user_and_the_users_roles_on_every_request() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let email = "roles@example.com";
        app.user(email, &["System Manager"]).await;
        let login = || async {
            let r = app
                .client
                .post(app.url("/api/method/login"))
                .json(&json!({"usr": email, "pwd": "pass-word-1"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{backend:?}");
            sid_of(&r)
        };
        let doc = app.create_app(json!({"provider_name": "P"})).await;
        // Asking about another user's connection needs System Manager (403 otherwise); a
        // request without a live session runs as Guest, which is refused too.
        let probe = format!(
            "/api/method/frappe.integrations.doctype.connected_app.connected_app.has_token?connected_app={}&connected_user=Administrator",
            doc["name"].as_str().unwrap()
        );
        let list = |sid: String| {
            let c = app
                .client
                .get(app.url(&probe))
                .header("Cookie", format!("sid={sid}"));
            async move { c.send().await.unwrap().status().as_u16() }
        };
        let who = |sid: String| {
            let c = app
                .client
                .get(app.url("/api/method/frappe.auth.get_logged_user"))
                .header("Cookie", format!("sid={sid}"));
            async move { status_json(c.send().await.unwrap()).await.1["message"].clone() }
        };
        let sid = login().await;
        assert_eq!(list(sid.clone()).await, 200, "{backend:?}");

        // Losing the role takes effect on the next request.
        let mut conn = app.db.raw();
        diesel::delete(
            has_role::table
                .filter(has_role::parent.eq(email))
                .filter(has_role::role.eq("System Manager")),
        )
        .execute(&mut conn)
        .unwrap();
        assert_eq!(list(sid.clone()).await, 403, "{backend:?}: role removed");
        assert_eq!(
            who(sid.clone()).await,
            email,
            "{backend:?}: still logged in"
        );
        diesel::insert_into(has_role::table)
            .values((
                has_role::name.eq("restored-role"),
                has_role::parent.eq(email),
                has_role::parenttype.eq("User"),
                has_role::parentfield.eq("roles"),
                has_role::role.eq("System Manager"),
                has_role::idx.eq(9),
            ))
            .execute(&mut conn)
            .unwrap();
        assert_eq!(list(sid.clone()).await, 200, "{backend:?}: role back");

        // A disabled user's session runs as Guest.
        diesel::update(user::table.filter(user::name.eq(email)))
            .set(user::enabled.eq(0))
            .execute(&mut conn)
            .unwrap();
        assert_eq!(list(sid.clone()).await, 403, "{backend:?}: disabled");
        assert_ne!(who(sid.clone()).await, email, "{backend:?}: disabled");
        diesel::update(user::table.filter(user::name.eq(email)))
            .set(user::enabled.eq(1))
            .execute(&mut conn)
            .unwrap();
        assert_eq!(list(sid.clone()).await, 200, "{backend:?}: enabled again");

        // A session row Frappe marked Expired, or one older than the lifetime, is over.
        diesel::update(sessions::table.filter(sessions::sid.eq(&sid)))
            .set(sessions::status.eq(Some("Expired")))
            .execute(&mut conn)
            .unwrap();
        assert_ne!(who(sid.clone()).await, email, "{backend:?}: expired status");
        let sid = login().await;
        assert_eq!(
            who(sid.clone()).await,
            email,
            "{backend:?}: a new login works"
        );
        let old = chrono::Utc::now().naive_utc() - chrono::Duration::hours(171);
        diesel::update(sessions::table.filter(sessions::sid.eq(&sid)))
            .set(sessions::lastupdate.eq(Some(old)))
            .execute(&mut conn)
            .unwrap();
        assert_ne!(who(sid).await, email, "{backend:?}: older than 170 h");
    }
}
