//! Loading one document with typed Diesel queries. Their SQL is fixed, so both backends keep
//! them as prepared statements: reading a document costs one execution per table, not a
//! prepare/execute/close cycle per query as the generic SQL of `store` does.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::Value;

use super::{ChildRow, Doc, Row};
use crate::db::schema::{
    connected_app as ca, oauth_scope as sc, query_parameters as qp, token_cache as tc,
};
use crate::db::DbConnection;
use crate::error::AppResult;
use crate::frappe::meta::{DocMeta, CONNECTED_APP, TOKEN_CACHE};

type Opt = Option<String>;
type Std = (
    String,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    Option<String>,
    Option<String>,
    i32,
    i32,
);

fn row_from(std: Std, fields: &[(&str, Value)]) -> Row {
    let (name, creation, modified, modified_by, owner, docstatus, idx) = std;
    let mut row = Row::new(name);
    row.creation = creation;
    row.modified = modified;
    row.modified_by = modified_by;
    row.owner = owner;
    row.docstatus = i64::from(docstatus);
    row.idx = i64::from(idx);
    for (k, v) in fields {
        row.fields.insert((*k).to_string(), v.clone());
    }
    row
}

fn s(v: Option<String>) -> Value {
    v.map(Value::String).unwrap_or(Value::Null)
}

/// The document, or `None`; only for the two served DocTypes.
pub fn load(conn: &mut DbConnection, meta: &'static DocMeta, name: &str) -> AppResult<Option<Doc>> {
    let row = if std::ptr::eq(meta, &CONNECTED_APP) {
        load_app(conn, name)?
    } else if std::ptr::eq(meta, &TOKEN_CACHE) {
        load_cache(conn, name)?
    } else {
        return Ok(None);
    };
    let Some(row) = row else { return Ok(None) };
    let mut doc = Doc {
        meta,
        children: meta.children.iter().map(|_| Vec::new()).collect(),
        row,
    };
    for (i, child) in meta.children.iter().enumerate() {
        doc.children[i] = match child.fieldname {
            "scopes" => scopes(conn, &doc.row.name, meta.doctype())?,
            "query_parameters" => query_parameters(conn, &doc.row.name, meta.doctype())?,
            _ => Vec::new(),
        };
    }
    Ok(Some(doc))
}

fn load_app(conn: &mut DbConnection, name: &str) -> AppResult<Option<Row>> {
    #[allow(clippy::type_complexity)]
    let r: Option<(
        Std,
        (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        ),
        (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        ),
    )> = ca::table
        .filter(ca::name.eq(name))
        .select((
            (
                ca::name,
                ca::creation,
                ca::modified,
                ca::modified_by,
                ca::owner,
                ca::docstatus,
                ca::idx,
            ),
            (
                ca::provider_name,
                ca::openid_configuration,
                ca::client_id,
                ca::redirect_uri,
                ca::client_secret,
                ca::authorization_uri,
                ca::token_uri,
                ca::revocation_uri,
                ca::userinfo_uri,
                ca::introspection_uri,
            ),
            (ca::_user_tags, ca::_comments, ca::_assign, ca::_liked_by),
        ))
        .first(conn)
        .optional()?;
    Ok(r.map(|(std, f, u)| {
        row_from(
            std,
            &[
                ("provider_name", s(f.0)),
                ("openid_configuration", s(f.1)),
                ("client_id", s(f.2)),
                ("redirect_uri", s(f.3)),
                ("client_secret", s(f.4)),
                ("authorization_uri", s(f.5)),
                ("token_uri", s(f.6)),
                ("revocation_uri", s(f.7)),
                ("userinfo_uri", s(f.8)),
                ("introspection_uri", s(f.9)),
                ("_user_tags", s(u.0)),
                ("_comments", s(u.1)),
                ("_assign", s(u.2)),
                ("_liked_by", s(u.3)),
            ],
        )
    }))
}

fn load_cache(conn: &mut DbConnection, name: &str) -> AppResult<Option<Row>> {
    #[allow(clippy::type_complexity)]
    let r: Option<(
        Std,
        (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            i32,
            Option<String>,
            Option<String>,
            Option<String>,
        ),
        (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        ),
    )> = tc::table
        .filter(tc::name.eq(name))
        .select((
            (
                tc::name,
                tc::creation,
                tc::modified,
                tc::modified_by,
                tc::owner,
                tc::docstatus,
                tc::idx,
            ),
            (
                tc::user,
                tc::connected_app,
                tc::provider_name,
                tc::access_token,
                tc::refresh_token,
                tc::expires_in,
                tc::state,
                tc::success_uri,
                tc::token_type,
            ),
            (tc::_user_tags, tc::_comments, tc::_assign, tc::_liked_by),
        ))
        .first(conn)
        .optional()?;
    Ok(r.map(|(std, f, u)| {
        row_from(
            std,
            &[
                ("user", s(f.0)),
                ("connected_app", s(f.1)),
                ("provider_name", s(f.2)),
                ("access_token", s(f.3)),
                ("refresh_token", s(f.4)),
                ("expires_in", Value::from(f.5)),
                ("state", s(f.6)),
                ("success_uri", s(f.7)),
                ("token_type", s(f.8)),
                ("_user_tags", s(u.0)),
                ("_comments", s(u.1)),
                ("_assign", s(u.2)),
                ("_liked_by", s(u.3)),
            ],
        )
    }))
}

fn link(
    parent: Option<String>,
    field: Option<String>,
    ty: Option<String>,
) -> [(&'static str, Value); 3] {
    [
        ("parent", s(parent)),
        ("parentfield", s(field)),
        ("parenttype", s(ty)),
    ]
}

fn scopes(conn: &mut DbConnection, parent: &str, parenttype: &str) -> AppResult<Vec<ChildRow>> {
    let rows: Vec<(Std, Opt, Opt, Opt, Opt)> = sc::table
        .filter(sc::parent.eq(parent))
        .filter(sc::parenttype.eq(parenttype))
        .filter(sc::parentfield.eq("scopes"))
        .order(sc::idx.asc())
        .select((
            (
                sc::name,
                sc::creation,
                sc::modified,
                sc::modified_by,
                sc::owner,
                sc::docstatus,
                sc::idx,
            ),
            sc::scope,
            sc::parent,
            sc::parentfield,
            sc::parenttype,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(std, scope, p, f, t)| {
            let [a, b, c] = link(p, f, t);
            ChildRow {
                row: row_from(std, &[("scope", s(scope)), a, b, c]),
                unsaved: false,
            }
        })
        .collect())
}

fn query_parameters(
    conn: &mut DbConnection,
    parent: &str,
    parenttype: &str,
) -> AppResult<Vec<ChildRow>> {
    #[allow(clippy::type_complexity)]
    let rows: Vec<(Std, Opt, Opt, Opt, Opt, Opt)> = qp::table
        .filter(qp::parent.eq(parent))
        .filter(qp::parenttype.eq(parenttype))
        .filter(qp::parentfield.eq("query_parameters"))
        .order(qp::idx.asc())
        .select((
            (
                qp::name,
                qp::creation,
                qp::modified,
                qp::modified_by,
                qp::owner,
                qp::docstatus,
                qp::idx,
            ),
            qp::key,
            qp::value,
            qp::parent,
            qp::parentfield,
            qp::parenttype,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(std, key, value, p, f, t)| {
            let [a, b, c] = link(p, f, t);
            ChildRow {
                row: row_from(std, &[("key", s(key)), ("value", s(value)), a, b, c]),
                unsaved: false,
            }
        })
        .collect())
}

/// The stored name of a document (names match case-insensitively); the outer `None` means
/// "no typed query for this DocType".
pub fn exists(
    conn: &mut DbConnection,
    meta: &DocMeta,
    name: &str,
) -> AppResult<Option<Option<String>>> {
    let found = if std::ptr::eq(meta, &CONNECTED_APP) {
        ca::table
            .filter(ca::name.eq(name))
            .select(ca::name)
            .first::<String>(conn)
            .optional()?
    } else if std::ptr::eq(meta, &TOKEN_CACHE) {
        tc::table
            .filter(tc::name.eq(name))
            .select(tc::name)
            .first::<String>(conn)
            .optional()?
    } else {
        return Ok(None);
    };
    Ok(Some(found))
}

/// A document's stored name and its `modified`.
pub type NameAndModified = (String, Option<NaiveDateTime>);

/// The stored name and `modified` of a document, in one indexed lookup; the outer `None`
/// means "no typed query for this DocType".
pub fn modified_of(
    conn: &mut DbConnection,
    meta: &DocMeta,
    name: &str,
) -> AppResult<Option<Option<NameAndModified>>> {
    let found = if std::ptr::eq(meta, &CONNECTED_APP) {
        ca::table
            .filter(ca::name.eq(name))
            .select((ca::name, ca::modified))
            .first(conn)
            .optional()?
    } else if std::ptr::eq(meta, &TOKEN_CACHE) {
        tc::table
            .filter(tc::name.eq(name))
            .select((tc::name, tc::modified))
            .first(conn)
            .optional()?
    } else {
        return Ok(None);
    };
    Ok(Some(found))
}
