//! `Application::build`: pool, migrations, first-start data, routes and the bound listener.
//! `main` and every test use it, so tests never wire the app differently.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use anyhow::{bail, Context};

use crate::auth::{store as users, ADMINISTRATOR, GUEST, SYSTEM_MANAGER};
use crate::configuration::{Settings, SiteConfig};
use crate::db::{DatabaseUrl, Db, DbConnection, DbOptions};
use crate::error::AppResult;
use crate::frappe::time::Clock;
use crate::secrets::KeyRing;
use crate::state::{AppState, Keys};

/// A built, bound, not yet running service.
pub struct Application {
    port: u16,
    server: Server,
    /// The Administrator password generated on first start, to print once.
    pub generated_admin_password: Option<String>,
    pub state: web::Data<AppState>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let state = build_state(settings).await?;
        let generated_admin_password = bootstrap_users(&state).await?;
        let listener = TcpListener::bind(&state.settings.bind)
            .with_context(|| format!("cannot listen on {}", state.settings.bind))?;
        let port = listener.local_addr()?.port();
        let data = web::Data::new(state);
        let server = run(listener, data.clone())?;
        Ok(Application {
            port,
            server,
            generated_admin_password,
            state: data,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// The public URL a listen address implies when none is set: `http://` and the address, with
/// loopback for an unspecified IP (`0.0.0.0`, `::`). `None` for port 0 (not known yet) or an
/// address that does not parse.
fn public_url_of_bind(bind: &str) -> Option<String> {
    let addr: std::net::SocketAddr = bind.trim().parse().ok()?;
    if addr.port() == 0 {
        return None;
    }
    let ip = if addr.ip().is_unspecified() {
        match addr.ip() {
            std::net::IpAddr::V4(_) => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            std::net::IpAddr::V6(_) => std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        }
    } else {
        addr.ip()
    };
    Some(format!(
        "http://{}",
        std::net::SocketAddr::new(ip, addr.port())
    ))
}

/// `path` made absolute against the current directory, for messages.
fn absolute(path: &std::path::Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// Opens the database (migrating it when asked), loads keys and builds the shared state.
pub async fn build_state(mut settings: Settings) -> anyhow::Result<AppState> {
    let url = DatabaseUrl::parse(&settings.database_url)?;
    if settings.create_database {
        let url2 = url.clone();
        let created =
            tokio::task::spawn_blocking(move || crate::db::create_database_if_missing(&url2))
                .await??;
        if created {
            tracing::info!(database = %url.redacted(), "created the database");
        }
    } else {
        let url2 = url.clone();
        let exists =
            tokio::task::spawn_blocking(move || crate::db::database_exists(&url2)).await??;
        if !exists {
            let looked_at = match url.sqlite_path() {
                Some(p) => format!("the SQLite file {}", absolute(std::path::Path::new(p))),
                None => format!("the MariaDB database {}", url.redacted()),
            };
            bail!(
                "no database: looked for {looked_at} (--database-url, DATABASE_URL or the config file's database_url; \
                 default sqlite://data/connected-apps.sqlite, relative to the current directory). \
                 Run this command where `serve` runs, or point it at the service's database; \
                 `connected-apps migrate` creates a new one"
            );
        }
        if !settings.create_site_config && !settings.site_config.exists() {
            bail!(
                "no site config: looked for {} (--site-config, CONNECTED_APPS_SITE_CONFIG or the config file's site_config; \
                 default data/site_config.json, relative to the current directory)",
                absolute(&settings.site_config)
            );
        }
    }
    let db = Db::connect_with(
        &url,
        DbOptions {
            sync_wait: settings.wsrep_sync_wait,
            write_retries: settings.db_write_retries,
            ..DbOptions::new(settings.db_pool_size, settings.db_timeout)
        },
    )?
    .with_inline_reads(settings.inline_reads);
    if settings.auto_migrate {
        let db2 = db.clone();
        tokio::task::spawn_blocking(move || db2.migrate()).await??;
    }
    let site = SiteConfig::load(&settings.site_config, settings.create_site_config)?;
    let ring = KeyRing::with_fallbacks(&site.encryption_key, &site.previous_encryption_keys)
        .with_context(|| settings.site_config.display().to_string())?;
    let tz_name = match &settings.time_zone {
        Some(tz) => tz.clone(),
        None => {
            let db2 = db.clone();
            tokio::task::spawn_blocking(move || site_time_zone(&db2))
                .await?
                .unwrap_or_else(|| "UTC".to_string())
        }
    };
    let clock = Clock::from_name(&tz_name)?;
    // Frappe's site config `allow_cors` adds to the service's own setting.
    if let Some(site_cors) = site.allow_cors.clone() {
        for origin in site_cors.origins() {
            if !settings.allow_cors.contains(&origin) {
                settings.allow_cors.push(origin);
            }
        }
    }
    let public_url = if settings.public_url_explicit {
        settings.public_url.clone()
    } else {
        site.host_name
            .clone()
            .or_else(|| public_url_of_bind(&settings.bind))
            .unwrap_or_else(|| settings.public_url.clone())
    };
    let public_url = public_url.trim_end_matches('/').to_string();
    url::Url::parse(&public_url).with_context(|| format!("public URL {public_url:?}"))?;
    let http = crate::oauth::client::build_http_client(
        settings.http_connect_timeout,
        settings.http_timeout,
        &settings.outbound_allow,
    )?;
    let metrics = crate::metrics::Metrics::new(settings.db_pool_size);
    let login = crate::auth::throttle::LoginLimits::new(&settings);
    Ok(AppState {
        metrics,
        keys: Keys::new(ring, Some(settings.site_config.clone())),
        settings,
        db,
        clock,
        public_url,
        http,
        api_keys: Default::default(),
        oauth: Default::default(),
        docs: Default::default(),
        pages: Default::default(),
        counts: Default::default(),
        login,
    })
}

/// Frappe's System Settings `time_zone`, when the database is a Frappe site's.
fn site_time_zone(db: &Db) -> Option<String> {
    use crate::db::schema::singles;
    use diesel::prelude::*;
    let mut conn = db.get().ok()?;
    let conn: &mut DbConnection = &mut conn;
    singles::table
        .filter(singles::doctype.eq("System Settings"))
        .filter(singles::field.eq("time_zone"))
        .select(singles::value)
        .first::<Option<String>>(conn)
        .ok()
        .flatten()
        .filter(|s| !s.is_empty())
}

/// On an empty database: creates Administrator (System Manager) and Guest. Returns the
/// generated Administrator password when one had to be made up.
pub async fn bootstrap_users(state: &AppState) -> anyhow::Result<Option<String>> {
    let given = state.settings.admin_password.clone();
    let now = state.clock.now();
    // Instances starting together on an empty database may race here: the loser of a
    // conflict runs again (`Db::write`), and a user another instance created first counts.
    let created_by_other = |e: &crate::error::AppError, conn: &mut DbConnection, name: &str| {
        e.status == crate::error::Status::CONFLICT
            && users::find_user(conn, name).ok().flatten().is_some()
    };
    state
        .db
        .write(move |conn| -> AppResult<Option<String>> {
            let mut generated = None;
            if users::find_user(conn, ADMINISTRATOR)?.is_none() {
                let password = match given.clone() {
                    Some(p) => p,
                    None => {
                        let p = crate::secrets::random_token(20);
                        generated = Some(p.clone());
                        p
                    }
                };
                let made = users::create_user(
                    conn,
                    &users::NewUser {
                        email: ADMINISTRATOR,
                        first_name: ADMINISTRATOR,
                        roles: &[ADMINISTRATOR.to_string(), SYSTEM_MANAGER.to_string()],
                        password_hash: Some(crate::secrets::password::hash_password(&password)),
                        now,
                        by: ADMINISTRATOR,
                    },
                );
                match made {
                    Ok(()) => {}
                    Err(e) if created_by_other(&e, conn, ADMINISTRATOR) => generated = None,
                    Err(e) => return Err(e),
                }
            }
            if users::find_user(conn, GUEST)?.is_none() {
                let made = users::create_user(
                    conn,
                    &users::NewUser {
                        email: GUEST,
                        first_name: GUEST,
                        roles: &[GUEST.to_string()],
                        password_hash: None,
                        now,
                        by: ADMINISTRATOR,
                    },
                );
                match made {
                    Ok(()) => {}
                    Err(e) if created_by_other(&e, conn, GUEST) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(generated)
        })
        .await
        .context("cannot create the first users")
}

fn run(listener: TcpListener, state: web::Data<AppState>) -> anyhow::Result<Server> {
    let workers = state.settings.workers.max(1);
    let body_limit = state.settings.body_limit;
    let server = HttpServer::new(move || {
        App::new()
            .wrap(crate::routes::frappe_errors())
            .wrap(actix_web::middleware::from_fn(crate::routes::cors))
            .wrap(actix_web::middleware::from_fn(crate::routes::observe))
            // Outermost (the last `wrap`): every other middleware and the router see a `cmd`
            // request or a trailing method part already as `/api/method/<name>`.
            .wrap(actix_web::middleware::from_fn(crate::routes::frappe_rpc))
            .app_data(state.clone())
            .configure(|cfg| crate::routes::configure(cfg, body_limit))
    })
    .workers(workers)
    .shutdown_timeout(20)
    .listen(listener)
    .context("cannot listen")?
    .run();
    Ok(server)
}
