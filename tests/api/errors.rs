//! Errors as an operator sees them: a 500 is opaque to the client and logged once, where it
//! becomes an answer, with its cause.

use std::time::Duration;

use diesel::connection::SimpleConnection;

use crate::cli::{cli_api_key, command_on, free_port, write_site_config, Served};
use crate::helpers::*;

/// The lines of `served`'s stderr that contain `needle`, once they stopped growing.
async fn logged(served: &Served, needle: &str) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let find = || -> Vec<String> {
        served
            .stderr()
            .into_iter()
            .filter(|l| l.contains(needle))
            .collect()
    };
    while find().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A second line would follow within moments.
    tokio::time::sleep(Duration::from_millis(500)).await;
    find()
}

#[tokio::test]
async fn a_database_failure_is_an_opaque_500_logged_once_with_its_cause() {
    for backend in BACKENDS {
        // Arrange: a running service whose Connected App table is gone.
        let db = TestDb::new(backend);
        let site_config = db.dir.path().join("site_config.json");
        write_site_config(&site_config, &connected_apps::secrets::generate_key());
        let port = free_port();
        let mut cmd = command_on(&db, &site_config);
        cmd.env("CONNECTED_APPS_BIND", format!("127.0.0.1:{port}"));
        let served = Served::start(cmd, port, &[]).await;
        let auth = cli_api_key(command_on(&db, &site_config), "Administrator").await;
        db.raw()
            .batch_execute("DROP TABLE `tabConnected App`")
            .expect("drop the table");

        // Act
        let (status, body) = served.get(&auth, "/api/resource/Connected App").await;

        // Assert: the client learns nothing of the cause.
        assert_eq!(status, 500, "{backend:?}: {body}");
        assert_eq!(
            body["exc_type"], "InternalServerError",
            "{backend:?}: {body}"
        );
        let text = body.to_string();
        for leak in [
            "tabConnected App",
            "no such table",
            "doesn't exist",
            "SELECT",
        ] {
            assert!(!text.contains(leak), "{backend:?}: {leak:?} in {text}");
        }
        // The operator's log has it, once, with the database's own words.
        let lines = logged(&served, "internal error").await;
        assert_eq!(lines.len(), 1, "{backend:?}: {lines:#?}");
        let cause = match backend {
            Backend::Sqlite => "no such table",
            Backend::Mysql => "doesn't exist",
        };
        assert!(lines[0].contains(cause), "{backend:?}: {lines:#?}");
        assert!(lines[0].contains("ERROR"), "{backend:?}: {lines:#?}");
    }
}
