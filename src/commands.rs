//! What each CLI command does.

use anyhow::{anyhow, bail, Context};

use crate::auth::store as users;
use crate::cli::{Command, UserCommand};
use crate::configuration::{write_private, Settings, SiteConfig};
use crate::error::AppError;
use crate::secrets::{vault, KeyRing, Vault};
use crate::startup::{bootstrap_users, build_state, Application};
use crate::state::AppState;

pub async fn run(command: Command, mut settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve { serve: options, .. } => {
            options.apply_to(&mut settings);
            serve(settings).await
        }
        Command::Migrate => {
            let state = build_state(settings).await?;
            announce_admin(bootstrap_users(&state).await?);
            println!("migrations applied ({:?})", state.db.backend);
            Ok(())
        }
        Command::User { command } => user(command, existing_only(settings)).await,
        Command::RotateKey => rotate_key(existing_only(settings)).await,
        Command::Import {
            from,
            dry_run,
            frappe_site_config,
            overwrite_users,
        } => import(settings, from, dry_run, frappe_site_config, overwrite_users).await,
    }
}

/// Settings for a command that works on the service's existing data: it refuses to create
/// the database or the site config (one run from another directory would otherwise start a
/// new, empty service whose keys the running one refuses).
fn existing_only(mut settings: Settings) -> Settings {
    settings.create_database = false;
    settings.create_site_config = false;
    settings
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    let url = app.state.public_url.clone();
    println!(
        "connected-apps listening on http://{} (public URL {url})",
        app.state.settings.bind_display(app.port())
    );
    match &app.generated_admin_password {
        Some(p) => println!("Log in at {url}/login as Administrator with the password {p} (shown once; set CONNECTED_APPS_ADMIN_PASSWORD to choose it)"),
        None => println!("Log in at {url}/login as Administrator"),
    }
    app.run_until_stopped().await.context("the server stopped")
}

async fn user(command: UserCommand, settings: Settings) -> anyhow::Result<()> {
    let state = build_state(settings).await?;
    announce_admin(bootstrap_users(&state).await?);
    match command {
        UserCommand::Add {
            email,
            first_name,
            roles,
            password,
        } => {
            add_user(
                &state,
                &email,
                first_name.as_deref(),
                &roles,
                password.as_deref(),
            )
            .await?;
            eprintln!("created user {email}");
            if password.is_none() {
                eprintln!(
                    "{email} has no password (API keys only); set one with: connected-apps user set-password {email}"
                );
            }
            Ok(())
        }
        UserCommand::SetPassword { email, password } => {
            let (password, generated) = match password {
                Some(p) => (p, false),
                None if !std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("cannot read the password from standard input")?;
                    let p = line.trim_end_matches(['\r', '\n']).to_string();
                    if p.is_empty() {
                        (crate::secrets::random_token(20), true)
                    } else {
                        (p, false)
                    }
                }
                None => (crate::secrets::random_token(20), true),
            };
            set_password(&state, &email, &password).await?;
            if generated {
                println!("{password}");
                eprintln!("set a generated password for {email} (printed above, shown once)");
            } else {
                eprintln!("set the password of {email}");
            }
            Ok(())
        }
        UserCommand::ApiKey { email } => {
            let (key, secret) = generate_api_key(&state, &email).await?;
            println!("{key}:{secret}");
            Ok(())
        }
    }
}

/// Creates a user with roles (every user also has `All`) and an optional login password.
pub async fn add_user(
    state: &AppState,
    email: &str,
    first_name: Option<&str>,
    roles: &[String],
    password: Option<&str>,
) -> anyhow::Result<()> {
    if email.trim().is_empty() || email.len() > 140 {
        bail!("the email must be 1 to 140 characters");
    }
    let now = state.clock.now();
    let first = first_name
        .map(str::to_string)
        .unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_string());
    let hash = password.map(crate::secrets::password::hash_password);
    let (email, roles) = (email.to_string(), roles.to_vec());
    state
        .db
        .run(move |conn| {
            if users::find_user(conn, &email)?.is_some() {
                return Err(AppError::validation(format!("User {email} already exists")));
            }
            users::create_user(
                conn,
                &users::NewUser {
                    email: &email,
                    first_name: &first,
                    roles: &roles,
                    password_hash: hash,
                    now,
                    by: "Administrator",
                },
            )
        })
        .await?;
    Ok(())
}

/// Replaces a user's login password (its sessions stay; other users are untouched).
pub async fn set_password(state: &AppState, email: &str, password: &str) -> anyhow::Result<()> {
    if password.is_empty() {
        bail!("the password is empty");
    }
    let hash = crate::secrets::password::hash_password(password);
    let email2 = email.to_string();
    let found = state
        .db
        .run(move |conn| {
            crate::db::write_transaction(conn, |conn| {
                if users::find_user(conn, &email2)?.is_none() {
                    return Ok(false);
                }
                vault::write_hash(conn, "User", &email2, "password", &hash)?;
                Ok(true)
            })
        })
        .await?;
    if !found {
        bail!("no user {email}");
    }
    Ok(())
}

/// Gives a user a new API key and secret (the old pair stops working).
pub async fn generate_api_key(state: &AppState, email: &str) -> anyhow::Result<(String, String)> {
    let now = state.clock.now();
    let key = crate::secrets::random_hex(15);
    let secret = crate::secrets::random_hex(15);
    let encrypted = Vault::new(&state.keys).seal(&secret)?;
    let masked = crate::secrets::mask_secret(&secret);
    let (email2, key2) = (email.to_string(), key.clone());
    let n = state
        .db
        .run(move |conn| users::set_api_key(conn, &email2, &key2, &encrypted, &masked, now))
        .await?;
    if n == 0 {
        bail!("no user {email}");
    }
    state.api_keys.invalidate_user(email);
    Ok((key, secret))
}

/// Re-encrypts every encrypted `__Auth` row under a new key, in one transaction. While it runs
/// the site config lists the old key under `previous_encryption_keys`, so running services
/// decrypt both old and new values.
async fn rotate_key(settings: Settings) -> anyhow::Result<()> {
    let path = settings.site_config.clone();
    let mut state_settings = settings;
    state_settings.create_site_config = false;
    let state = build_state(state_settings).await?;
    let old = SiteConfig::load(&path, false)?;
    let new_key = crate::secrets::generate_key();
    let mut fallbacks = vec![old.encryption_key.clone()];
    fallbacks.extend(old.previous_encryption_keys.iter().cloned());
    write_site_config(&path, &new_key, &fallbacks)?;
    let ring = KeyRing::with_fallbacks(&new_key, &fallbacks)?;
    // Running services notice the rewritten site config before their next encryption.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let ring2 = ring.clone();
    let count = state
        .db
        .run(move |conn| vault::rekey_all(conn, &ring))
        .await;
    // A value a running service encrypted with the old key just before it noticed the change
    // may commit after the pass above: sweep until every row is under the new key.
    let mut swept = 0;
    if count.is_ok() {
        for _ in 0..5 {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let r = ring2.clone();
            match state.db.run(move |conn| vault::rekey_stale(conn, &r)).await {
                Ok(0) => break,
                Ok(n) => swept += n,
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context("key rotation sweep failed (the old key stays a fallback)"))
                }
            }
        }
    }
    let count = count.map(|n| n + swept);
    match count {
        Ok(n) => {
            write_site_config(&path, &new_key, &[])?;
            println!("re-encrypted {n} secrets under a new key");
            Ok(())
        }
        Err(e) => {
            // Nothing was committed: go back to the old key as the primary one.
            write_site_config(&path, &old.encryption_key, &old.previous_encryption_keys)?;
            Err(anyhow::Error::new(e).context("key rotation failed, nothing changed"))
        }
    }
}

/// Rewrites `encryption_key` (and the fallbacks) keeping every other key of a Frappe site config.
fn write_site_config(path: &std::path::Path, key: &str, previous: &[String]) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| path.display().to_string())?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| anyhow!("the site config is not a JSON object"))?;
    obj.insert("encryption_key".into(), key.into());
    if previous.is_empty() {
        obj.remove("previous_encryption_keys");
    } else {
        obj.insert("previous_encryption_keys".into(), previous.to_vec().into());
    }
    let tmp = path.with_extension("json.tmp");
    write_private(&tmp, &serde_json::to_string_pretty(&v).unwrap_or_default())?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

fn announce_admin(generated: Option<String>) {
    if let Some(p) = generated {
        eprintln!("created Administrator with the password {p} (shown once)");
    }
}

/// `import --from <site db>`: the site's secrets decrypt with the key of
/// `--frappe-site-config`; the service's own key is `--site-config`. Without
/// `--frappe-site-config` (the earlier spelling), `--site-config` is the site's file and the
/// service's own comes from `CONNECTED_APPS_OWN_SITE_CONFIG` or, by default, `data/site_config.json`.
async fn import(
    mut settings: Settings,
    from: String,
    dry_run: bool,
    frappe_site_config: Option<std::path::PathBuf>,
    overwrite_users: bool,
) -> anyhow::Result<()> {
    let source_config = match &frappe_site_config {
        Some(p) => p.clone(),
        None => settings.site_config.clone(),
    };
    let source = SiteConfig::load(&source_config, false).context("the Frappe site's config")?;
    let source_keys =
        KeyRing::with_fallbacks(&source.encryption_key, &source.previous_encryption_keys)?;
    if frappe_site_config.is_none() {
        if let Ok(own) = std::env::var("CONNECTED_APPS_OWN_SITE_CONFIG") {
            settings.site_config = own.into();
        } else if settings.site_config == source_config {
            settings.site_config = Settings::default().site_config;
        }
    }
    let settings = existing_only(settings);
    let state = build_state(settings).await?;
    announce_admin(bootstrap_users(&state).await?);
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let report = crate::import::run(
        &state,
        &from,
        source_keys,
        dry_run,
        overwrite_users,
        progress,
    )
    .await?;
    print!("{}", report.summary());
    if dry_run {
        println!("dry run: nothing was written");
    }
    if !report.failures.is_empty() {
        bail!("{} rows could not be imported", report.failures.len());
    }
    Ok(())
}
