//! A new user's first hour with the binary (issue 17, "Data and setup"): `import` leaves the
//! service's own users alone, commands other than `serve`/`migrate` never start a new empty
//! database, the public URL follows `--bind`, passwords can be (re)set from the command line,
//! a missing MariaDB database is created, a first SQLite start logs no lock errors, and each
//! command's help is about that command.

use std::process::Stdio;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::cli::{cli_api_key, command, command_on, free_port, run, run_ok, Served};
use crate::helpers::*;

/// A database of `backend` migrated by the binary, with the service's own site config.
async fn migrated(backend: Backend) -> (TestDb, std::path::PathBuf) {
    let db = TestDb::new(backend);
    let sc = db.dir.path().join("own_site_config.json");
    crate::cli::write_site_config(&sc, &connected_apps::secrets::generate_key());
    run_ok(command_on(&db, &sc), &["migrate"]).await;
    (db, sc)
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn import_keeps_the_services_own_users(backend: Backend) {
    let site = crate::migration::frappe_site_db();
    let frappe_sc = crate::migration::write_site_config(site.dir.path(), "http://127.0.0.1:8000");
    let (db, sc) = migrated(backend).await;
    run_ok(
        command_on(&db, &sc),
        &[
            "user",
            "set-password",
            "Administrator",
            "--password",
            "own-admin-pw",
        ],
    )
    .await;
    let own_key = cli_api_key(command_on(&db, &sc), "Administrator").await;
    let frappe_sc = frappe_sc.to_str().unwrap();

    // Without --overwrite-users: the site's users arrive, the service's Administrator stays.
    let summary = run_ok(
        command_on(&db, &sc),
        &[
            "import",
            "--from",
            &site.url,
            "--frappe-site-config",
            frappe_sc,
        ],
    )
    .await;
    let admin_line = summary
        .lines()
        .find(|l| l.starts_with("user Administrator:"))
        .unwrap_or_else(|| panic!("Administrator is named: {summary}"));
    assert!(admin_line.contains("left as it is"), "{summary}");
    assert!(
        summary.contains("user user1@example.com: created"),
        "{summary}"
    );
    assert!(summary.contains("kept     1"), "{summary}");

    let port = free_port();
    let mut cmd = command_on(&db, &sc);
    cmd.args(["--bind", &format!("127.0.0.1:{port}")]);
    let served = Served::start(cmd, port, &[]).await;
    assert_eq!(
        served.logged_user(&own_key).await.as_deref(),
        Some("Administrator")
    );
    assert_eq!(served.login("Administrator", "own-admin-pw").await.0, 200);
    // The imported documents are served.
    let (status, _) = served
        .get(&own_key, "/api/resource/Connected%20App/90c7bdi80h")
        .await;
    assert_eq!(status, 200);

    // Asked to: the site's Administrator replaces the service's, and the summary says so.
    let summary = run_ok(
        command_on(&db, &sc),
        &[
            "import",
            "--from",
            &site.url,
            "--frappe-site-config",
            frappe_sc,
            "--overwrite-users",
        ],
    )
    .await;
    assert!(
        summary.contains("user Administrator: replaced by the site's"),
        "{summary}"
    );
    // The API key cache of the running service may trust the old key a little longer; a
    // fresh check through the database refuses it.
    let port2 = free_port();
    let mut cmd = command_on(&db, &sc);
    cmd.args(["--bind", &format!("127.0.0.1:{port2}")]);
    let fresh = Served::start(cmd, port2, &[]).await;
    assert_eq!(fresh.logged_user(&own_key).await, None);
    assert_ne!(fresh.login("Administrator", "own-admin-pw").await.0, 200);
}

#[tokio::test]
async fn import_into_sqlite_keeps_the_services_own_users_unless_asked() {
    import_keeps_the_services_own_users(Backend::Sqlite).await;
}

#[tokio::test]
async fn import_into_mariadb_keeps_the_services_own_users_unless_asked() {
    import_keeps_the_services_own_users(Backend::Mysql).await;
}

#[tokio::test]
async fn commands_other_than_serve_and_migrate_never_create_a_database_or_site_config() {
    // Run from a directory without the service's data: each refuses and names the file.
    let dir = tempfile::tempdir().unwrap();
    let expected = dir.path().join("data").join("connected-apps.sqlite");
    for args in [
        vec!["user", "add", "alice@example.com", "--password", "pw-12345"],
        vec!["user", "api-key", "Administrator"],
        vec!["user", "set-password", "Administrator", "--password", "x1"],
        vec!["rotate-key"],
    ] {
        let out = run(command(dir.path()), &args).await;
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            stderr_of(&out).contains(&expected.display().to_string()),
            "{args:?}: {}",
            stderr_of(&out)
        );
        assert!(!dir.path().join("data").exists(), "{args:?} created ./data");
    }
    // The database exists but the site config does not: refused, nothing created.
    for backend in BACKENDS {
        let (db, _) = migrated(backend).await;
        let missing = db.dir.path().join("elsewhere").join("site_config.json");
        let out = run(
            command_on(&db, &missing),
            &["user", "api-key", "Administrator"],
        )
        .await;
        assert!(!out.status.success());
        assert!(
            stderr_of(&out).contains(&missing.display().to_string()),
            "{}",
            stderr_of(&out)
        );
        assert!(!missing.exists());
    }
    // A MariaDB database that does not exist: named (without the password), not created.
    let name = format!("ca_missing_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{}/{name}", mysql_server_url());
    let dir = tempfile::tempdir().unwrap();
    let sc = dir.path().join("site_config.json");
    crate::cli::write_site_config(&sc, &connected_apps::secrets::generate_key());
    let mut cmd = command(dir.path());
    cmd.args(["--database-url", &url, "--site-config"]).arg(&sc);
    let out = run(cmd, &["user", "add", "bob@example.com"]).await;
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains(&name), "{}", stderr_of(&out));
    assert!(!mysql_database_exists(&name));
}

fn mysql_database_exists(name: &str) -> bool {
    let mut conn = diesel::MysqlConnection::establish(&mysql_server_url()).unwrap();
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        collation: String,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT DEFAULT_COLLATION_NAME AS collation FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
    )
    .bind::<diesel::sql_types::Text, _>(name)
    .load(&mut conn)
    .unwrap();
    if let Some(r) = rows.first() {
        assert_eq!(r.collation, "utf8mb4_unicode_ci");
    }
    !rows.is_empty()
}

/// Drops a MariaDB database when the test ends, however it ends.
struct DropDb(String);
impl Drop for DropDb {
    fn drop(&mut self) {
        if let Ok(mut c) = diesel::MysqlConnection::establish(&mysql_server_url()) {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS `{}`", self.0));
        }
    }
}

#[tokio::test]
async fn migrate_and_serve_create_a_missing_mariadb_database() {
    for sub in ["migrate", "serve"] {
        let name = format!("ca_new_{}", uuid::Uuid::new_v4().simple());
        let _drop = DropDb(name.clone());
        let url = format!("{}/{name}", mysql_server_url());
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = command(dir.path());
        cmd.args(["--database-url", &url]);
        assert!(!mysql_database_exists(&name));
        let stderr = if sub == "migrate" {
            let out = run(cmd, &["migrate"]).await;
            assert!(out.status.success(), "{}", stderr_of(&out));
            stderr_of(&out)
        } else {
            let port = free_port();
            cmd.args(["--bind", &format!("127.0.0.1:{port}")]);
            let served = Served::start(cmd, port, &[]).await;
            served.stderr().join("\n")
        };
        assert!(mysql_database_exists(&name), "{sub} created no database");
        assert!(!stderr.contains("ERROR"), "{sub}: {stderr}");
    }
}

#[tokio::test]
async fn without_a_public_url_the_login_link_and_redirect_uris_follow_the_bind_address() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let served = Served::start(
        command(dir.path()),
        port,
        &["--bind", &format!("127.0.0.1:{port}")],
    )
    .await;
    let expected = format!("http://127.0.0.1:{port}");
    let out = served.stdout().join("\n");
    assert!(
        out.contains(&format!("Log in at {expected}/login")),
        "{out}"
    );
    assert!(!out.contains(":8000"), "{out}");
    let admin = cli_api_key(command(dir.path()), "Administrator").await;
    let (status, body) = served
        .post(
            &admin,
            "/api/resource/Connected%20App",
            &json!({"provider_name": "P", "client_id": "c", "client_secret": "s",
                    "authorization_uri": "https://idp.example.com/auth",
                    "token_uri": "https://idp.example.com/token"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let redirect = body["data"]["redirect_uri"].as_str().unwrap();
    assert!(redirect.starts_with(&format!("{expected}/")), "{redirect}");
}

async fn set_password_and_log_in(backend: Backend) {
    let (db, sc) = migrated(backend).await;
    // `user add` without a password says how to set one.
    let out = run(command_on(&db, &sc), &["user", "add", "carol@example.com"]).await;
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("user set-password carol@example.com"),
        "{}",
        stderr_of(&out)
    );
    // Administrator's lost password, from --password.
    run_ok(
        command_on(&db, &sc),
        &[
            "user",
            "set-password",
            "Administrator",
            "--password",
            "new-admin-pw",
        ],
    )
    .await;
    // carol's from standard input.
    let mut cmd = command_on(&db, &sc);
    cmd.args(["user", "set-password", "carol@example.com"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"carol-pw-1\n").await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(out.stdout.is_empty(), "a given password is not printed");
    // dave's generated and printed (standard input empty).
    run_ok(command_on(&db, &sc), &["user", "add", "dave@example.com"]).await;
    let printed = run_ok(
        command_on(&db, &sc),
        &["user", "set-password", "dave@example.com"],
    )
    .await;
    let generated = printed.trim();
    assert!(generated.len() >= 16, "{printed:?}");
    // Unknown users are refused.
    let out = run(
        command_on(&db, &sc),
        &[
            "user",
            "set-password",
            "nobody@example.com",
            "--password",
            "x",
        ],
    )
    .await;
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("no user nobody@example.com"));

    let port = free_port();
    let mut cmd = command_on(&db, &sc);
    cmd.args(["--bind", &format!("127.0.0.1:{port}")]);
    let served = Served::start(cmd, port, &[]).await;
    assert_eq!(served.login("Administrator", "new-admin-pw").await.0, 200);
    assert_eq!(served.login("carol@example.com", "carol-pw-1").await.0, 200);
    assert_eq!(served.login("dave@example.com", generated).await.0, 200);
    assert_ne!(served.login("dave@example.com", "wrong").await.0, 200);
}

#[tokio::test]
async fn user_set_password_resets_any_users_password_on_sqlite() {
    set_password_and_log_in(Backend::Sqlite).await;
}

#[tokio::test]
async fn user_set_password_resets_any_users_password_on_mariadb() {
    set_password_and_log_in(Backend::Mysql).await;
}

#[tokio::test]
async fn an_sqlite_file_another_writer_holds_is_waited_for_without_lock_errors() {
    // A database file in SQLite's default (rollback journal) mode, locked by a writer for a
    // moment, as on a first start when the pool opens connections while another one writes.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.sqlite");
    let mut holder = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    holder
        .batch_execute(
            "CREATE TABLE other (x INTEGER); BEGIN IMMEDIATE; INSERT INTO other VALUES (1);",
        )
        .unwrap();
    let sc = dir.path().join("site_config.json");
    crate::cli::write_site_config(&sc, &connected_apps::secrets::generate_key());
    let mut cmd = command(dir.path());
    cmd.env("RUST_LOG", "info")
        .args(["--database-url", &format!("sqlite://{}", path.display())])
        .arg("--site-config")
        .arg(&sc)
        .arg("migrate")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    holder.batch_execute("COMMIT").unwrap();
    let out = child.wait_with_output().await.unwrap();
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("locked"), "{stderr}");
    assert!(!stderr.contains("ERROR"), "{stderr}");
}

#[tokio::test]
async fn each_commands_help_is_about_that_command() {
    let dir = tempfile::tempdir().unwrap();
    let help = |args: &'static [&'static str]| {
        let cmd = command(dir.path());
        async move { run_ok(cmd, args).await }
    };
    let serve = help(&["serve", "--help"]).await;
    for flag in ["--bind", "--public-url", "--body-limit", "--admin-password"] {
        assert!(serve.contains(flag), "serve --help lacks {flag}: {serve}");
    }
    for (args, own) in [
        (&["user", "add", "--help"][..], "--first-name"),
        (&["user", "set-password", "--help"][..], "--password"),
        (&["migrate", "--help"][..], "--database-url"),
        (&["import", "--help"][..], "--overwrite-users"),
    ] {
        let text = help(args).await;
        assert!(text.contains(own), "{args:?}: {text}");
        for server_flag in [
            "--bind",
            "--body-limit",
            "--session-ttl-secs",
            "--http-timeout-secs",
        ] {
            assert!(
                !text.contains(server_flag),
                "{args:?} lists {server_flag}: {text}"
            );
        }
    }
    // import names the Frappe site's config apart from the service's own.
    let import = help(&["import", "--help"]).await;
    assert!(import.contains("--frappe-site-config"), "{import}");
    // Server options before the subcommand still work (earlier versions' spelling).
    let port = free_port();
    let mut cmd = command(dir.path());
    cmd.args(["--bind", &format!("127.0.0.1:{port}")]);
    let served = Served::start(cmd, port, &[]).await;
    assert!(served
        .stdout()
        .join("\n")
        .contains(&format!("http://127.0.0.1:{port}/login")));
}

#[tokio::test]
async fn a_mariadb_user_who_cannot_create_the_database_is_told_the_statement_to_run() {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (user, name) = (
        format!("ca_lim_{}", &suffix[..8]),
        format!("ca_new_{suffix}"),
    );
    let _drop = DropDb(name.clone());
    let mut root = diesel::MysqlConnection::establish(&mysql_server_url()).unwrap();
    root.batch_execute(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY 'S3cret-pw'; CREATE USER '{user}'@'localhost' IDENTIFIED BY 'S3cret-pw'"
    ))
    .unwrap();
    let server = url::Url::parse(&mysql_server_url()).unwrap();
    let url = format!(
        "mysql://{user}:S3cret-pw@{}:{}/{name}",
        server.host_str().unwrap(),
        server.port().unwrap_or(3306)
    );
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path());
    cmd.args(["--database-url", &url]);
    let out = run(cmd, &["migrate"]).await;
    let _ = root.batch_execute(&format!(
        "DROP USER '{user}'@'%'; DROP USER '{user}'@'localhost'"
    ));
    let stderr = stderr_of(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("S3cret-pw"), "{stderr}");
    assert!(!stderr.contains("ERROR r2d2"), "{stderr}");
    assert!(!mysql_database_exists(&name));
}
