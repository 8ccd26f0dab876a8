//! Connected App's change history (Frappe's `track_changes`): a `tabVersion` row per save
//! that changed something, as Frappe writes it, shown in `docinfo.versions`.

use serde_json::{json, Value};

use crate::helpers::*;

/// `(owner, docname, ref_doctype, data)` of every `tabVersion` row, read straight from the
/// database.
fn stored_versions(app: &TestApp) -> Vec<(String, String, String, String)> {
    use diesel::prelude::*;
    use diesel::sql_types::{Nullable, Text};
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Nullable<Text>)]
        owner: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        docname: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        ref_doctype: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        data: Option<String>,
    }
    let q = diesel::sql_query("SELECT owner, docname, ref_doctype, data FROM `tabVersion`");
    let rows: Vec<Row> = match app.db.raw() {
        connected_apps::db::DbConnection::Sqlite(mut c) => q.load(&mut c),
        connected_apps::db::DbConnection::Mysql(mut c) => q.load(&mut c),
    }
    .expect("read tabVersion");
    rows.into_iter()
        .map(|r| {
            (
                r.owner.unwrap_or_default(),
                r.docname.unwrap_or_default(),
                r.ref_doctype.unwrap_or_default(),
                r.data.unwrap_or_default(),
            )
        })
        .collect()
}

async fn versions_of(app: &TestApp, auth: &str, name: &str) -> Vec<Value> {
    let (status, body) = app
        .get(
            auth,
            &format!("/api/method/frappe.desk.form.load.getdoc?doctype=Connected+App&name={name}"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["docinfo"]["versions"].as_array().unwrap().clone()
}

fn data_of(version: &Value) -> Value {
    serde_json::from_str(version["data"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn every_change_to_a_connected_app_writes_a_version_as_frappe_does_and_the_form_lists_it() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let sm = app.user("sm@example.com", &["System Manager"]).await;
        let doc = app
            .create_app(json!({
                "provider_name": "Zoë", "client_id": "c", "client_secret": "s3cr3t-value",
                "authorization_uri": "https://p.example/auth", "token_uri": "https://p.example/token",
                "scopes": [{"scope": "openid"}, {"scope": "email"}],
                "query_parameters": [{"key": "access_type", "value": "offline"}],
            }))
            .await;
        let name = doc["name"].as_str().unwrap();
        let path = format!("/api/resource/Connected%20App/{name}");
        assert_eq!(
            versions_of(&app, &sm, name).await,
            Vec::<Value>::new(),
            "an insert writes no Version ({backend:?})"
        );

        // A changed field: Frappe's exact text (keys sorted, compact, non-ASCII escaped).
        let (status, _) = app
            .put(&sm, &path, &json!({"provider_name": "Zoë Renamed"}))
            .await;
        assert_eq!(status, 200);
        let v = versions_of(&app, &sm, name).await;
        assert_eq!(v.len(), 1, "{backend:?}");
        assert_eq!(v[0]["owner"], "sm@example.com");
        assert_eq!(
            v[0]["data"],
            r#"{"added":[],"changed":[["provider_name","Zo\u00eb","Zo\u00eb Renamed"]],"data_import":null,"removed":[],"row_changed":[],"updater_reference":null}"#
        );
        assert_eq!(
            v[0].as_object().unwrap().keys().collect::<Vec<_>>(),
            ["name", "owner", "creation", "data"]
        );

        // A save that changes nothing writes nothing.
        app.put(&sm, &path, &json!({"provider_name": "Zoë Renamed"}))
            .await;
        assert_eq!(versions_of(&app, &sm, name).await.len(), 1);

        // Child rows: one kept, one removed, one added; a parameter changed in place.
        let openid = doc["scopes"][0]["name"].as_str().unwrap();
        let email = doc["scopes"][1]["name"].as_str().unwrap();
        let param = doc["query_parameters"][0]["name"].as_str().unwrap();
        let (status, _) = app
            .put(
                &sm,
                &path,
                &json!({
                    "scopes": [{"name": openid, "scope": "openid"}, {"scope": "profile"}],
                    "query_parameters": [{"name": param, "key": "access_type", "value": "online"}],
                }),
            )
            .await;
        assert_eq!(status, 200);
        let v = versions_of(&app, &sm, name).await;
        assert_eq!(v.len(), 2);
        let d = data_of(&v[0]);
        assert_eq!(d["changed"], json!([]));
        assert_eq!(
            d["row_changed"],
            json!([[
                "query_parameters",
                0,
                param,
                [["value", "offline", "online"]]
            ]])
        );
        let added = &d["added"][0];
        assert_eq!(d["added"].as_array().unwrap().len(), 1);
        assert_eq!(added[0], "scopes");
        assert_eq!(
            (
                &added[1]["scope"],
                &added[1]["__unsaved"],
                &added[1]["doctype"],
                &added[1]["idx"],
                &added[1]["parent"]
            ),
            (
                &json!("profile"),
                &json!(1),
                &json!("OAuth Scope"),
                &json!(2),
                &json!(name)
            )
        );
        let removed = &d["removed"];
        assert_eq!(removed.as_array().unwrap().len(), 1);
        assert_eq!(
            (
                &removed[0][0],
                &removed[0][1]["name"],
                &removed[0][1]["scope"]
            ),
            (&json!("scopes"), &json!(email), &json!("email"))
        );
        assert!(removed[0][1].get("__unsaved").is_none());
        assert_eq!(data_of(&v[1])["changed"][0][0], "provider_name");

        // A new secret shows as masks of the old and new length; the secret itself never.
        app.put(
            &sm,
            &path,
            &json!({"client_secret": "another-longer-secret"}),
        )
        .await;
        let v = versions_of(&app, &sm, name).await;
        assert_eq!(
            data_of(&v[0])["changed"],
            json!([["client_secret", "*".repeat(12), "*".repeat(21)]])
        );
        let stored = stored_versions(&app);
        assert_eq!(stored.len(), 3);
        for (owner, docname, doctype, data) in &stored {
            assert_eq!(
                (owner.as_str(), docname.as_str(), doctype.as_str()),
                ("sm@example.com", name, "Connected App")
            );
            assert!(
                !data.contains("s3cr3t") && !data.contains("another-longer"),
                "{data}"
            );
        }

        // The desk's save answers with the same history.
        let (status, body) = app
            .post(
                &sm,
                "/api/method/frappe.desk.form.save.savedocs",
                &json!({"action": "Save", "doc": json!({"doctype": "Connected App", "name": name,
                          "provider_name": "Desk"}).to_string()}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["docinfo"]["versions"].as_array().unwrap().len(), 4);
        assert_eq!(
            data_of(&body["docinfo"]["versions"][0])["changed"],
            json!([["provider_name", "Zoë Renamed", "Desk"]])
        );
    }
}

#[tokio::test]
async fn deleting_a_connected_app_deletes_its_versions_and_token_caches_keep_none() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let keep = app
            .create_app(json!({"provider_name": "Keep", "client_id": "c",
                "authorization_uri": "https://p.example/auth", "token_uri": "https://p.example/token"}))
            .await;
        let gone = app
            .create_app(json!({"provider_name": "Gone", "client_id": "c",
                "authorization_uri": "https://p.example/auth", "token_uri": "https://p.example/token"}))
            .await;
        let (keep, gone) = (
            keep["name"].as_str().unwrap(),
            gone["name"].as_str().unwrap(),
        );
        for n in [keep, gone] {
            let (status, _) = app
                .put(
                    &app.admin,
                    &format!("/api/resource/Connected%20App/{n}"),
                    &json!({"client_id": "changed"}),
                )
                .await;
            assert_eq!(status, 200);
        }
        // Token Cache has no track_changes in Frappe: its saves write no Version.
        let (status, tc) = app
            .post(
                &app.admin,
                "/api/resource/Token%20Cache",
                &json!({"connected_app": keep, "user": "Administrator", "token_type": "Bearer"}),
            )
            .await;
        assert_eq!(status, 200, "{tc}");
        let tc_path = format!(
            "/api/resource/Token%20Cache/{}",
            tc["data"]["name"].as_str().unwrap()
        );
        let (status, _) = app
            .put(&app.admin, &tc_path, &json!({"token_type": "MAC"}))
            .await;
        assert_eq!(status, 200);
        assert_eq!(stored_versions(&app).len(), 2, "{backend:?}");

        let (status, _) = app
            .delete(&app.admin, &format!("/api/resource/Connected%20App/{gone}"))
            .await;
        assert_eq!(status, 202);
        let left: Vec<String> = stored_versions(&app).into_iter().map(|v| v.1).collect();
        assert_eq!(left, vec![keep.to_string()], "{backend:?}");
    }
}
