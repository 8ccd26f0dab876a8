//! Key rotation under load: `rotate-key` runs while requests write and read secrets; nothing
//! fails, nothing is lost, and afterwards every secret decrypts with the new key alone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connected_apps::secrets::KeyRing;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::cli::{command_on, encrypted_auth_rows, read_json, run_ok};
use crate::helpers::*;
use crate::rest::full_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotate_key_while_requests_run_loses_nothing_and_every_secret_decrypts_afterwards() {
    for backend in BACKENDS {
        // Every request checks its API key against the database: each one decrypts a secret.
        let app = Arc::new(spawn_app_with(backend, |s| s.api_key_cache_ttl = Duration::ZERO).await);
        let user = app.user("rot-load@example.com", &[]).await;
        let old_key = read_json(&app.site_config)["encryption_key"]
            .as_str()
            .unwrap()
            .to_string();
        let mut apps = Vec::new();
        for i in 0..5 {
            let mut body = full_app(&format!("Seed {i}"));
            body["client_secret"] = json!(format!("seed-secret-{i}"));
            let name = app.create_app(body).await["name"]
                .as_str()
                .unwrap()
                .to_string();
            apps.push((name, format!("seed-secret-{i}")));
        }
        // What each app's secret must be: the last value acknowledged.
        let expected: Arc<Mutex<Vec<(String, String)>>> = Arc::new(Mutex::new(apps.clone()));
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));

        // Load: writers create apps and change secrets; readers decrypt them and authenticate.
        let mut load = Vec::new();
        for w in 0..3 {
            let (app, expected, errors, stop) =
                (app.clone(), expected.clone(), errors.clone(), stop.clone());
            load.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let secret = format!("w{w}-secret-{i}");
                    if i % 2 == 0 {
                        let mut body = full_app(&format!("Load {w}-{i}"));
                        body["client_secret"] = json!(secret);
                        let r = client
                            .post(app.url("/api/resource/Connected%20App"))
                            .header("Authorization", &app.admin)
                            .json(&body)
                            .send()
                            .await
                            .unwrap();
                        let (status, v) = status_json(r).await;
                        if status == 200 {
                            let name = v["data"]["name"].as_str().unwrap().to_string();
                            expected.lock().unwrap().push((name, secret));
                        } else {
                            errors.lock().unwrap().push(format!("create: {status} {v}"));
                        }
                    } else {
                        // Change the secret of one seed app (each writer owns some).
                        let name = {
                            let e = expected.lock().unwrap();
                            e[w % 5].0.clone()
                        };
                        let r = client
                            .put(app.url(&format!("/api/resource/Connected%20App/{name}")))
                            .header("Authorization", &app.admin)
                            .json(&json!({"client_secret": secret}))
                            .send()
                            .await
                            .unwrap();
                        let (status, v) = status_json(r).await;
                        if status == 200 {
                            expected.lock().unwrap()[w % 5].1 = secret;
                        } else {
                            errors.lock().unwrap().push(format!("update: {status} {v}"));
                        }
                    }
                }
            }));
        }
        for _ in 0..2 {
            let (app, errors, stop, user) =
                (app.clone(), errors.clone(), stop.clone(), user.clone());
            load.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                while !stop.load(Ordering::Relaxed) {
                    let r = client
                        .get(app.url("/api/method/frappe.auth.get_logged_user"))
                        .header("Authorization", &user)
                        .send()
                        .await
                        .unwrap();
                    let (status, v) = status_json(r).await;
                    if (status, &v["message"]) != (200, &json!("rot-load@example.com")) {
                        errors
                            .lock()
                            .unwrap()
                            .push(format!("API key login: {status} {v}"));
                    }
                }
            }));
        }

        // Act: rotate while the load runs.
        tokio::time::sleep(Duration::from_millis(300)).await;
        run_ok(command_on(&app.db, &app.site_config), &["rotate-key"]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::Relaxed);
        for t in load {
            t.await.unwrap();
        }

        // Assert: no request failed, and the new key alone decrypts every stored secret.
        let errors = errors.lock().unwrap().clone();
        assert!(
            errors.is_empty(),
            "{backend:?}: {} failures, first: {:?}",
            errors.len(),
            &errors[..errors.len().min(5)]
        );
        let new_key = read_json(&app.site_config)["encryption_key"]
            .as_str()
            .unwrap()
            .to_string();
        assert_ne!(new_key, old_key, "{backend:?}");
        let ring = KeyRing::new(&new_key).unwrap();
        let rows = encrypted_auth_rows(&app.db);
        for (doctype, name, field, token) in &rows {
            assert!(
                ring.decrypt(token).is_ok(),
                "{backend:?}: {doctype} {name} {field} does not decrypt with the new key"
            );
        }
        let expected = expected.lock().unwrap().clone();
        assert!(expected.len() > 5, "{backend:?}: the load created nothing");
        for (name, secret) in &expected {
            let (_, _, _, token) = rows
                .iter()
                .find(|(d, n, f, _)| d == "Connected App" && n == name && f == "client_secret")
                .unwrap_or_else(|| panic!("{backend:?}: the secret of {name} was lost"));
            assert_eq!(
                ring.decrypt(token).unwrap().expose_secret(),
                secret.as_str(),
                "{backend:?} {name}"
            );
        }
        // The running service goes on with the new key.
        let (status, v) = app
            .get(&user, "/api/method/frappe.auth.get_logged_user")
            .await;
        assert_eq!(
            (status, &v["message"]),
            (200, &json!("rot-load@example.com"))
        );
    }
}
