//! `connected-apps import`: copies Connected Apps, Token Caches and the users they refer to
//! from a Frappe site's database into the service's own, re-encrypting every secret under the
//! service's key. Idempotent: a second run changes nothing. Rows that cannot be imported are
//! reported with their name and reason; the rest still arrives.

use std::collections::BTreeSet;
use std::io::Write;

use anyhow::Context;
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
use crate::secrets::vault::{self, Stored};
use crate::secrets::{KeyRing, Vault};
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
) -> anyhow::Result<Report> {
    let url = DatabaseUrl::parse(source_url)?;
    let source = Db::connect(&url, 2, state.settings.db_timeout)?;
    let dest = state.db.clone();
    let dest_keys = state
        .keys
        .current_ring()
        .context("the service's keys are unavailable")?;
    tokio::task::spawn_blocking(move || -> anyhow::Result<Report> {
        let mut src = source.get()?;
        let mut dst = dest.get()?;
        Ok(import_all(
            &mut src,
            &mut dst,
            &source_keys,
            &dest_keys,
            dry_run,
            overwrite_users,
            progress,
        )?)
    })
    .await
    .context("the import task failed")?
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
    .map_err(AppError::internal)?;
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
                report
                    .failures
                    .push(("User".into(), name.clone(), why.to_string()));
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
                    .push((doctype.into(), doc.name().to_string(), why.to_string()));
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
) -> Result<Vec<(&'static str, SecretString)>, Failure> {
    let mut out = Vec::new();
    for col in meta
        .parent
        .columns
        .iter()
        .filter(|c| c.kind == ColumnKind::Password)
    {
        if let Some(stored) = vault::stored(conn, meta.doctype(), name, col.name)? {
            out.push((col.name, reveal(keys, stored, col.name)?));
        }
    }
    Ok(out)
}

/// Why one row could not be imported (the report shows it beside the row's name).
#[derive(Debug)]
enum Failure {
    /// A secret of the row does not decrypt with the site's keys.
    Undecryptable(&'static str),
    /// The row is missing from the source database.
    Missing,
    Store(AppError),
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Self {
        Failure::Store(e)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Undecryptable(field) => {
                write!(f, "{field} does not decrypt with the site's encryption_key")
            }
            Failure::Missing => f.write_str("the user does not exist in the source database"),
            Failure::Store(e) => e.fmt(f),
        }
    }
}

/// The cleartext of a value of the site's `__Auth`.
fn reveal(keys: &KeyRing, stored: Stored, field: &'static str) -> Result<SecretString, Failure> {
    if !stored.encrypted {
        return Ok(SecretString::from(stored.value));
    }
    Vault::new(keys)
        .open(&stored.value)
        .map_err(|_| Failure::Undecryptable(field))
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
) -> Result<Outcome, Failure> {
    let meta = doc.meta;
    let secrets = secrets_of(src, src_keys, meta, doc.name())?;
    let existing = store::load(dst, meta, doc.name())?;
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
            Vault::new(dst_keys).write(
                conn,
                meta.doctype(),
                doc.name(),
                field,
                clear.expose_secret(),
            )?;
        }
        Ok(())
    })?;
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
) -> Result<Outcome, Failure> {
    let Some(u) = load_user(src, name)? else {
        return Err(Failure::Missing);
    };
    let src_roles = roles(src, name)?;
    let password = vault::stored(src, "User", name, "password")?;
    let api_secret = vault::stored(src, "User", name, "api_secret")?
        .map(|s| reveal(src_keys, s, "api_secret"))
        .transpose()?;
    let existing = load_user(dst, name)?;
    let outcome = match &existing {
        None => Outcome::Created,
        Some(old) => {
            let old_roles = roles(dst, name)?;
            let old_pw = vault::stored(dst, "User", name, "password")?;
            let old_secret = vault::stored(dst, "User", name, "api_secret")?
                .and_then(|s| reveal(dst_keys, s, "api_secret").ok())
                .map(|s| s.expose_secret().to_string());
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
        vault::remove(conn, "User", name, "password")?;
        if let Some(stored) = &password {
            // A login password is a hash; Frappe never encrypts it, and one that is cannot
            // be re-keyed here (the site's key is not the service's).
            if stored.encrypted {
                let clear = reveal(src_keys, stored.clone(), "password")
                    .map_err(|e| AppError::validation(e.to_string()))?;
                Vault::new(dst_keys).write(
                    conn,
                    "User",
                    name,
                    "password",
                    clear.expose_secret(),
                )?;
            } else {
                vault::write_hash(conn, "User", name, "password", &stored.value)?;
            }
        }
        vault::remove(conn, "User", name, "api_secret")?;
        if let Some(s) = &api_secret {
            Vault::new(dst_keys).write(conn, "User", name, "api_secret", s.expose_secret())?;
        }
        Ok(())
    })?;
    Ok(outcome)
}
