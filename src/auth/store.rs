//! Users, roles, API keys, login passwords and sessions in Frappe's tables.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{has_role, sessions, user};
use crate::db::DbConnection;
use crate::error::AppResult;
use crate::secrets::vault::{self, Sealed};

/// A user row with what authentication needs.
#[derive(Debug, Clone, Queryable)]
pub struct UserRow {
    pub name: String,
    pub enabled: i32,
    pub first_name: Option<String>,
    pub full_name: Option<String>,
    pub user_type: Option<String>,
    pub user_image: Option<String>,
}

pub fn find_user(conn: &mut DbConnection, name: &str) -> AppResult<Option<UserRow>> {
    Ok(user::table
        .filter(user::name.eq(name))
        .select((
            user::name,
            user::enabled,
            user::first_name,
            user::full_name,
            user::user_type,
            user::user_image,
        ))
        .first(conn)
        .optional()?)
}

/// Finds a user by login name or email (Frappe accepts either for `usr`).
pub fn find_login_user(conn: &mut DbConnection, usr: &str) -> AppResult<Option<UserRow>> {
    if let Some(u) = find_user(conn, usr)? {
        return Ok(Some(u));
    }
    Ok(user::table
        .filter(user::email.eq(usr))
        .select((
            user::name,
            user::enabled,
            user::first_name,
            user::full_name,
            user::user_type,
            user::user_image,
        ))
        .first(conn)
        .optional()?)
}

pub fn roles_of(conn: &mut DbConnection, name: &str) -> AppResult<Vec<String>> {
    let roles: Vec<Option<String>> = has_role::table
        .filter(has_role::parent.eq(name))
        .filter(has_role::parenttype.eq("User"))
        .order(has_role::idx.asc())
        .select(has_role::role)
        .load(conn)?;
    Ok(roles.into_iter().flatten().collect())
}

/// The user that owns an API key, with its encrypted secret from `__Auth`.
pub fn user_by_api_key(
    conn: &mut DbConnection,
    api_key: &str,
) -> AppResult<Option<(String, i32, Option<String>)>> {
    let row: Option<(String, i32)> = user::table
        .filter(user::api_key.eq(api_key))
        .select((user::name, user::enabled))
        .first(conn)
        .optional()?;
    let Some((name, enabled)) = row else {
        return Ok(None);
    };
    let secret = vault::stored(conn, "User", &name, "api_secret")?.map(|s| s.value);
    Ok(Some((name, enabled, secret)))
}

/// What `user add` creates.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub first_name: &'a str,
    pub roles: &'a [String],
    pub password_hash: Option<String>,
    pub now: NaiveDateTime,
    pub by: &'a str,
}

/// Roles every user has without a `tabHas Role` row.
pub const AUTOMATIC_ROLES: [&str; 3] = ["All", "Guest", "Desk User"];

/// Creates a user with its roles (and password hash). Fails with 409 when it exists.
pub fn create_user(conn: &mut DbConnection, u: &NewUser) -> AppResult<()> {
    let desk = u
        .roles
        .iter()
        .any(|r| !AUTOMATIC_ROLES.contains(&r.as_str()));
    let user_type = if desk || u.email == "Administrator" {
        "System User"
    } else {
        "Website User"
    };
    crate::db::write_transaction(conn, |conn| {
        diesel::insert_into(user::table)
            .values((
                user::name.eq(u.email),
                user::creation.eq(Some(u.now)),
                user::modified.eq(Some(u.now)),
                user::modified_by.eq(Some(u.by)),
                user::owner.eq(Some(u.by)),
                user::docstatus.eq(0),
                user::idx.eq(0),
                user::enabled.eq(1),
                user::email.eq(Some(if u.email.contains('@') {
                    u.email
                } else {
                    "admin@example.com"
                })),
                user::first_name.eq(Some(u.first_name)),
                user::full_name.eq(Some(u.first_name)),
                user::user_type.eq(Some(user_type)),
            ))
            .execute(conn)?;
        let mut roles: Vec<&str> = u.roles.iter().map(String::as_str).collect();
        if !roles.contains(&"All") {
            roles.push("All");
        }
        for (i, role) in roles.iter().enumerate() {
            diesel::insert_into(has_role::table)
                .values((
                    has_role::name.eq(crate::frappe::random_name()),
                    has_role::creation.eq(Some(u.now)),
                    has_role::modified.eq(Some(u.now)),
                    has_role::modified_by.eq(Some(u.by)),
                    has_role::owner.eq(Some(u.by)),
                    has_role::docstatus.eq(0),
                    has_role::idx.eq(i as i32 + 1),
                    has_role::role.eq(Some(*role)),
                    has_role::parent.eq(Some(u.email)),
                    has_role::parentfield.eq(Some("roles")),
                    has_role::parenttype.eq(Some("User")),
                ))
                .execute(conn)?;
        }
        if let Some(hash) = &u.password_hash {
            vault::write_hash(conn, "User", u.email, "password", hash)?;
        }
        Ok(())
    })
}

/// Stores a new API key and the encrypted secret for a user.
pub fn set_api_key(
    conn: &mut DbConnection,
    name: &str,
    api_key: &str,
    encrypted_secret: &Sealed,
    masked: &str,
    now: NaiveDateTime,
) -> AppResult<usize> {
    crate::db::write_transaction(conn, |conn| {
        let n = diesel::update(user::table.filter(user::name.eq(name)))
            .set((
                user::api_key.eq(Some(api_key)),
                user::api_secret.eq(Some(masked)),
                user::modified.eq(Some(now)),
            ))
            .execute(conn)?;
        if n > 0 {
            vault::write_sealed(conn, "User", name, "api_secret", encrypted_secret)?;
        }
        Ok(n)
    })
}

pub fn count_users(conn: &mut DbConnection) -> AppResult<i64> {
    Ok(user::table.count().get_result(conn)?)
}

// ----- sessions -----

/// A live session row.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub user: String,
    pub lastupdate: Option<NaiveDateTime>,
}

/// A live-looking session with its user, in one round trip: the session row, the user's
/// stored name and `enabled`, and the user's roles in order.
pub struct SessionUser {
    pub session: SessionRow,
    /// `None` when the user no longer exists.
    pub user: Option<(String, bool)>,
    pub roles: Vec<String>,
    /// `sessiondata`, read only when asked for (unsafe requests need its CSRF token).
    pub data: Option<String>,
}

/// `with_data` also reads `sessiondata` (only unsafe requests need it, for the CSRF token).
pub fn find_session_user(
    conn: &mut DbConnection,
    sid: &str,
    with_data: bool,
) -> AppResult<Option<SessionUser>> {
    let ty = crate::doc::store::text_type(conn);
    let data_col = if with_data {
        format!(", CAST(s.`sessiondata` AS {ty})")
    } else {
        String::new()
    };
    let sql = format!(
        "SELECT CAST(s.`user` AS {ty}), CAST(s.`lastupdate` AS {ty}), CAST(s.`status` AS {ty}), \
         CAST(u.`name` AS {ty}), CAST(u.`enabled` AS {ty}), CAST(r.`role` AS {ty}){data_col} \
         FROM `tabSessions` s \
         LEFT JOIN `tabUser` u ON u.`name` = s.`user` \
         LEFT JOIN `tabHas Role` r ON r.`parent` = u.`name` AND r.`parenttype` = 'User' \
         WHERE s.`sid` = ? ORDER BY r.`idx`"
    );
    let rows = crate::doc::row::Sql::new(sql).bind_text(sid).rows(conn)?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let col = |r: &crate::doc::row::DynRow, i: usize| r.0.get(i).cloned().flatten();
    // A sid is unique in practice; should it not be, the first session row decides, as a
    // plain lookup would.
    let Some(user_of_session) = col(first, 0) else {
        return Ok(None);
    };
    if col(first, 2).is_some_and(|status| status != "Active") {
        return Ok(None);
    }
    let lastupdate = col(first, 1)
        .as_deref()
        .and_then(crate::frappe::time::parse);
    let user = col(first, 3).map(|name| {
        let enabled = col(first, 4).is_some_and(|e| e.trim() != "0");
        (name, enabled)
    });
    let roles = rows
        .iter()
        .filter(|r| col(r, 0).as_deref() == Some(user_of_session.as_str()))
        .filter_map(|r| col(r, 5))
        .collect();
    Ok(Some(SessionUser {
        session: SessionRow {
            user: user_of_session,
            lastupdate,
        },
        user,
        roles,
        data: if with_data { col(first, 6) } else { None },
    }))
}

/// A session's `sessiondata`: `None` when the session does not exist, `Some(None)` when its
/// data is NULL.
pub fn session_data(conn: &mut DbConnection, sid: &str) -> AppResult<Option<Option<String>>> {
    Ok(sessions::table
        .filter(sessions::sid.eq(sid))
        .select(sessions::sessiondata)
        .first(conn)
        .optional()?)
}

/// Replaces a session's data only while it still is `old` (compare-and-set); returns the rows
/// changed.
pub fn replace_session_data(
    conn: &mut DbConnection,
    sid: &str,
    old: Option<&str>,
    new: &str,
) -> AppResult<usize> {
    let target = sessions::table.filter(sessions::sid.eq(sid));
    let n = match old {
        Some(old) => diesel::update(target.filter(sessions::sessiondata.eq(old)))
            .set(sessions::sessiondata.eq(Some(new)))
            .execute(conn)?,
        None => diesel::update(target.filter(sessions::sessiondata.is_null()))
            .set(sessions::sessiondata.eq(Some(new)))
            .execute(conn)?,
    };
    Ok(n)
}

pub fn insert_session(
    conn: &mut DbConnection,
    sid: &str,
    user_name: &str,
    data: &str,
    ip: Option<&str>,
    now: NaiveDateTime,
) -> AppResult<()> {
    diesel::insert_into(sessions::table)
        .values((
            sessions::user.eq(Some(user_name)),
            sessions::sid.eq(sid),
            sessions::sessiondata.eq(Some(data)),
            sessions::ipaddress.eq(ip),
            sessions::lastupdate.eq(Some(now)),
            sessions::status.eq(Some("Active")),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn touch_session(conn: &mut DbConnection, sid: &str, now: NaiveDateTime) -> AppResult<()> {
    diesel::update(sessions::table.filter(sessions::sid.eq(sid)))
        .set(sessions::lastupdate.eq(Some(now)))
        .execute(conn)?;
    Ok(())
}

pub fn delete_session(conn: &mut DbConnection, sid: &str) -> AppResult<()> {
    diesel::delete(sessions::table.filter(sessions::sid.eq(sid))).execute(conn)?;
    Ok(())
}
