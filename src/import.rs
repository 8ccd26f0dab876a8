//! `connected-apps import`: copies Connected Apps, Token Caches and the users they refer to
//! from a Frappe site's database into the service's own, re-encrypting every secret under the
//! service's key. Idempotent: a second run changes nothing. Rows that cannot be imported are
//! reported with their name and reason; the rest still arrives.

use std::collections::BTreeSet;
use std::io::Write;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::auth::store as users;
use crate::db::schema::{has_role, user};
use crate::db::{DatabaseUrl, Db, DbConnection};
use crate::doc::{store, Doc};
use crate::error::{AppError, AppResult};
use crate::frappe::meta::{ColumnKind, DocMeta, CONNECTED_APP, TOKEN_CACHE};
use crate::secrets::KeyRing;
use crate::state::AppState;

/// What happened to each document of one DocType.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Users that exist in the service's database and differ from the site's, left alone
    /// because the import was not asked to overwrite users.
    pub kept: usize,
    pub failed: usize,
}

/// The outcome of an import.
#[derive(Debug, Default)]
pub struct Report {
    pub per_doctype: Vec<(&'static str, Counts)>,
    /// `(doctype, name, reason)` for every row that could not be imported.
    pub failures: Vec<(String, String, String)>,
    /// `(user, what happened)` for every user the import created, changed or kept although
    /// the site's differs.
    pub users: Vec<(String, &'static str)>,
}

impl Report {
    fn counts(&mut self, doctype: &'static str) -> &mut Counts {
        if let Some(i) = self.per_doctype.iter().position(|(d, _)| *d == doctype) {
            return &mut self.per_doctype[i].1;
        }
        self.per_doctype.push((doctype, Counts::default()));
        let last = self.per_doctype.len() - 1;
        &mut self.per_doctype[last].1
    }

    pub fn summary(&self) -> String {
        let mut out = String::new();
        for (d, c) in &self.per_doctype {
            out.push_str(&format!(
                "{d:<14} created {:>5}  updated {:>5}  unchanged {:>5}  failed {:>5}",
                c.created, c.updated, c.unchanged, c.failed
            ));
            if c.kept > 0 {
                out.push_str(&format!("  kept {:>5}", c.kept));
            }
            out.push('\n');
        }
        for (u, what) in &self.users {
            out.push_str(&format!("user {u}: {what}\n"));
        }
        for (d, n, why) in &self.failures {
            out.push_str(&format!("failed: {d} {n}: {why}\n"));
        }
        out
    }
}

/// A one-line progress bar on stderr.
struct Progress {
    total: usize,
    done: usize,
    enabled: bool,
}

impl Progress {
    fn tick(&mut self, label: &str) {
        self.done += 1;
        if !self.enabled {
            return;
        }
        let width = 30;
        let filled = (self.done * width)
            .checked_div(self.total)
            .unwrap_or(width)
            .min(width);
        eprint!(
            "\r[{}{}] {}/{} {:<40}",
            "#".repeat(filled),
            " ".repeat(width - filled),
            self.done,
            self.total,
            label
        );
        let _ = std::io::stderr().flush();
    }

    fn finish(&self) {
        if self.enabled {
            eprintln!();
        }
    }
}

/// Imports from `source_url` (a Frappe site's database) whose secrets decrypt with `source_keys`.
/// Users that already exist in the service's database are left as they are unless
/// `overwrite_users` (their password hash, roles and API key would otherwise be replaced by
/// the site's).
pub async fn run(
    state: &AppState,
    source_url: &str,
    source_keys: KeyRing,
    dry_run: bool,
    overwrite_users: bool,
    progress: bool,
) -> Result<Report, String> {
    let url = DatabaseUrl::parse(source_url)?;
    let source = Db::connect(&url, 2, state.settings.db_timeout)?;
    let dest = state.db.clone();
    let dest_keys = state
        .keys
        .current_ring()
        .ok_or("the service's keys are unavailable")?;
    actix_web::rt::task::spawn_blocking(move || {
        let mut src = source.get().map_err(|e| e.to_string())?;
        let mut dst = dest.get().map_err(|e| e.to_string())?;
        import_all(
            &mut src,
            &mut dst,
            &source_keys,
            &dest_keys,
            dry_run,
            overwrite_users,
            progress,
        )
        .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

fn names(conn: &mut DbConnection, meta: &'static DocMeta) -> AppResult<Vec<String>> {
    let q = crate::frappe::list_query::parse(
        meta,
        &crate::frappe::list_query::RawListArgs {
            limit_page_length: Some(Value::from(0)),
            order_by: Some(Value::from("name asc")),
            ..Default::default()
        },
    )
    .map_err(|e| AppError::internal(&e.to_string()))?;
    Ok(store::list(conn, meta, &q, None)?
        .into_iter()
        .map(|r| r.name)
        .collect())
}

fn import_all(
    src: &mut DbConnection,
    dst: &mut DbConnection,
    src_keys: &KeyRing,
    dst_keys: &KeyRing,
    dry_run: bool,
    overwrite_users: bool,
    progress: bool,
) -> AppResult<Report> {
    let mut report = Report::default();
    let apps = names(src, &CONNECTED_APP)?;
    let caches = names(src, &TOKEN_CACHE)?;
    let mut bar = Progress {
        total: apps.len() + caches.len(),
        done: 0,
        enabled: progress,
    };
    let mut referenced: BTreeSet<String> = BTreeSet::new();
    let mut docs: Vec<Doc> = Vec::new();
    for name in apps.iter().chain(caches.iter()) {
        let meta = if docs.len() < apps.len() {
            &CONNECTED_APP
        } else {
            &TOKEN_CACHE
        };
        if let Some(doc) = store::load(src, meta, name)? {
            for u in [
                doc.row.owner.clone(),
                doc.row.modified_by.clone(),
                doc.row.get_str("user").map(str::to_string),
            ]
            .into_iter()
            .flatten()
            {
                if !u.is_empty() {
                    referenced.insert(u);
                }
            }
            docs.push(doc);
        }
    }
    // Users first, so documents never point at a missing user.
    for name in &referenced {
        match import_user(src, dst, src_keys, dst_keys, name, dry_run, overwrite_users) {
            Ok(outcome) => {
                bump(report.counts("User"), outcome);
                let what = match outcome {
                    Outcome::Created => Some("created"),
                    Outcome::Updated => Some("replaced by the site's (password, roles, API key)"),
                    Outcome::Kept => Some(
                        "exists here and differs from the site's; left as it is (--overwrite-users replaces it)",
                    ),
                    Outcome::Unchanged => None,
                };
                if let Some(what) = what {
                    report.users.push((name.clone(), what));
                }
            }
            Err(why) => {
                report.counts("User").failed += 1;
                report.failures.push(("User".into(), name.clone(), why));
            }
        }
    }
    for doc in docs {
        bar.tick(&format!("{} {}", doc.meta.doctype(), doc.name()));
        let doctype = doc.meta.doctype();
        match import_doc(src, dst, src_keys, dst_keys, &doc, dry_run) {
            Ok(outcome) => bump(report.counts(doctype), outcome),
            Err(why) => {
                report.counts(doctype).failed += 1;
                report
                    .failures
                    .push((doctype.into(), doc.name().to_string(), why));
            }
        }
    }
    bar.finish();
    Ok(report)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Created,
    Updated,
    Unchanged,
    Kept,
}

fn bump(c: &mut Counts, o: Outcome) {
    match o {
        Outcome::Created => c.created += 1,
        Outcome::Updated => c.updated += 1,
        Outcome::Unchanged => c.unchanged += 1,
        Outcome::Kept => c.kept += 1,
    }
}

/// Decrypted Password fields of a document (field → cleartext).
fn secrets_of(
    conn: &mut DbConnection,
    keys: &KeyRing,
    meta: &DocMeta,
    name: &str,
) -> Result<Vec<(&'static str, SecretString)>, String> {
    let mut out = Vec::new();
    for col in meta
        .parent
        .columns
        .iter()
        .filter(|c| c.kind == ColumnKind::Password)
    {
        let stored =
            users::auth_value(conn, meta.doctype(), name, col.name).map_err(|e| e.to_string())?;
        if let Some((v, enc)) = stored {
            let clear = if enc == 0 {
                SecretString::from(v)
            } else {
                keys.decrypt(&v).map_err(|_| {
                    format!(
                        "{} does not decrypt with the site's encryption_key",
                        col.name
                    )
                })?
            };
            out.push((col.name, clear));
        }
    }
    Ok(out)
}

/// A comparable fingerprint of a document: every column and child row, in order.
fn fingerprint(doc: &Doc) -> Value {
    let mut v = doc.to_json_with_nulls();
    if let Value::Object(m) = &mut v {
        for col in doc.meta.parent.columns {
            m.insert(col.name.into(), doc.row.value(col.name));
        }
    }
    v
}

fn same_secrets(a: &[(&'static str, SecretString)], b: &[(&'static str, SecretString)]) -> bool {
    a.len() == b.len()
        && a.iter().all(|(f, v)| {
            b.iter()
                .any(|(g, w)| f == g && v.expose_secret() == w.expose_secret())
        })
}

fn import_doc(
    src: &mut DbConnection,
    dst: &mut DbConnection,
    src_keys: &KeyRing,
    dst_keys: &KeyRing,
    doc: &Doc,
    dry_run: bool,
) -> Result<Outcome, String> {
    let _ = src;
    let meta = doc.meta;
    let secrets = secrets_of(src, src_keys, meta, doc.name())?;
    let existing = store::load(dst, meta, doc.name()).map_err(|e| e.to_string())?;
    let outcome = match &existing {
        None => Outcome::Created,
        Some(old) => {
            let old_secrets = secrets_of(dst, dst_keys, meta, old.name())?;
            if fingerprint(old) == fingerprint(doc) && same_secrets(&old_secrets, &secrets) {
                return Ok(Outcome::Unchanged);
            }
            Outcome::Updated
        }
    };
    if dry_run {
        return Ok(outcome);
    }
    dst.transaction(|conn| -> AppResult<()> {
        if existing.is_some() {
            store::delete(conn, meta, doc.name())?;
        }
        let mut fresh = doc.clone();
        for rows in &mut fresh.children {
            for r in rows.iter_mut() {
                r.unsaved = true;
            }
        }
        store::insert(conn, &fresh)?;
        for (field, clear) in &secrets {
            users::set_auth_value(
                conn,
                meta.doctype(),
                doc.name(),
                field,
                &dst_keys.encrypt(clear.expose_secret()),
                true,
            )?;
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok(outcome)
}

/// The `tabUser` columns the service keeps.
#[derive(Debug, Clone, PartialEq, Queryable)]
struct UserCols {
    name: String,
    creation: Option<NaiveDateTime>,
    modified: Option<NaiveDateTime>,
    modified_by: Option<String>,
    owner: Option<String>,
    docstatus: i32,
    idx: i32,
    enabled: i32,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    full_name: Option<String>,
    user_type: Option<String>,
    user_image: Option<String>,
    api_key: Option<String>,
    api_secret: Option<String>,
}

fn load_user(conn: &mut DbConnection, name: &str) -> AppResult<Option<UserCols>> {
    Ok(user::table
        .filter(user::name.eq(name))
        .select((
            user::name,
            user::creation,
            user::modified,
            user::modified_by,
            user::owner,
            user::docstatus,
            user::idx,
            user::enabled,
            user::email,
            user::first_name,
            user::last_name,
            user::full_name,
            user::user_type,
            user::user_image,
            user::api_key,
            user::api_secret,
        ))
        .first(conn)
        .optional()?)
}

fn roles(conn: &mut DbConnection, name: &str) -> AppResult<Vec<String>> {
    users::roles_of(conn, name)
}

fn import_user(
    src: &mut DbConnection,
    dst: &mut DbConnection,
    src_keys: &KeyRing,
    dst_keys: &KeyRing,
    name: &str,
    dry_run: bool,
    overwrite: bool,
) -> Result<Outcome, String> {
    let Some(u) = load_user(src, name).map_err(|e| e.to_string())? else {
        return Err("the user does not exist in the source database".into());
    };
    let src_roles = roles(src, name).map_err(|e| e.to_string())?;
    let password = users::auth_value(src, "User", name, "password").map_err(|e| e.to_string())?;
    let api_secret =
        match users::auth_value(src, "User", name, "api_secret").map_err(|e| e.to_string())? {
            Some((v, 1)) => Some(src_keys.decrypt(&v).map_err(|_| {
                "api_secret does not decrypt with the site's encryption_key".to_string()
            })?),
            Some((v, _)) => Some(SecretString::from(v)),
            None => None,
        };
    let existing = load_user(dst, name).map_err(|e| e.to_string())?;
    let outcome = match &existing {
        None => Outcome::Created,
        Some(old) => {
            let old_roles = roles(dst, name).map_err(|e| e.to_string())?;
            let old_pw =
                users::auth_value(dst, "User", name, "password").map_err(|e| e.to_string())?;
            let old_secret = match users::auth_value(dst, "User", name, "api_secret")
                .map_err(|e| e.to_string())?
            {
                Some((v, 1)) => dst_keys
                    .decrypt(&v)
                    .ok()
                    .map(|s| s.expose_secret().to_string()),
                Some((v, _)) => Some(v),
                None => None,
            };
            let same_secret =
                old_secret.as_deref() == api_secret.as_ref().map(|s| s.expose_secret());
            if *old == u && old_roles == src_roles && old_pw == password && same_secret {
                return Ok(Outcome::Unchanged);
            }
            if !overwrite {
                return Ok(Outcome::Kept);
            }
            Outcome::Updated
        }
    };
    if dry_run {
        return Ok(outcome);
    }
    dst.transaction(|conn| -> AppResult<()> {
        diesel::delete(user::table.filter(user::name.eq(name))).execute(conn)?;
        diesel::delete(
            has_role::table
                .filter(has_role::parent.eq(name))
                .filter(has_role::parenttype.eq("User")),
        )
        .execute(conn)?;
        let UserCols {
            name: n,
            creation,
            modified,
            modified_by,
            owner,
            docstatus,
            idx,
            enabled,
            email,
            first_name: first,
            last_name: last,
            full_name: full,
            user_type: utype,
            user_image: image,
            api_key,
            api_secret: api_mask,
        } = u.clone();
        diesel::insert_into(user::table)
            .values((
                user::name.eq(&n),
                user::creation.eq(creation),
                user::modified.eq(modified),
                user::modified_by.eq(&modified_by),
                user::owner.eq(&owner),
                user::docstatus.eq(docstatus),
                user::idx.eq(idx),
                user::enabled.eq(enabled),
                user::email.eq(&email),
                user::first_name.eq(&first),
                user::last_name.eq(&last),
                user::full_name.eq(&full),
                user::user_type.eq(&utype),
                user::user_image.eq(&image),
                user::api_key.eq(&api_key),
                user::api_secret.eq(&api_mask),
            ))
            .execute(conn)?;
        for (i, role) in src_roles.iter().enumerate() {
            diesel::insert_into(has_role::table)
                .values((
                    has_role::name.eq(crate::frappe::random_name()),
                    has_role::creation.eq(creation),
                    has_role::modified.eq(modified),
                    has_role::owner.eq(Some("Administrator")),
                    has_role::modified_by.eq(Some("Administrator")),
                    has_role::docstatus.eq(0),
                    has_role::idx.eq(i as i32 + 1),
                    has_role::role.eq(Some(role)),
                    has_role::parent.eq(Some(name)),
                    has_role::parentfield.eq(Some("roles")),
                    has_role::parenttype.eq(Some("User")),
                ))
                .execute(conn)?;
        }
        users::delete_auth_value(conn, "User", name, "password")?;
        if let Some((hash, enc)) = &password {
            users::set_auth_value(conn, "User", name, "password", hash, *enc != 0)?;
        }
        users::delete_auth_value(conn, "User", name, "api_secret")?;
        if let Some(s) = &api_secret {
            users::set_auth_value(
                conn,
                "User",
                name,
                "api_secret",
                &dst_keys.encrypt(s.expose_secret()),
                true,
            )?;
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok(outcome)
}
