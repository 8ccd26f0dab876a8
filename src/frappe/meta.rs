//! The DocTypes this service serves, described as data: tables, columns and child tables.
//!
//! Everything that builds SQL from user input checks names against these lists first.

/// How a column is stored and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// varchar(140) / text.
    Data,
    /// int columns (`docstatus`, `idx`, `expires_in`).
    Int,
    /// datetime(6) (`creation`, `modified`).
    Datetime,
    /// A Password field: the column holds `*` × len, the cleartext lives encrypted in `__Auth`.
    Password,
}

/// One column of a Frappe table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub kind: ColumnKind,
    /// Frappe's label, used in "Value missing for …" messages.
    pub label: &'static str,
    pub mandatory: bool,
}

const fn col(name: &'static str, kind: ColumnKind, label: &'static str) -> Column {
    Column {
        name,
        kind,
        label,
        mandatory: false,
    }
}

const fn req(name: &'static str, kind: ColumnKind, label: &'static str) -> Column {
    Column {
        name,
        kind,
        label,
        mandatory: true,
    }
}

/// A table: a DocType's own table or a child table.
#[derive(Debug, PartialEq, Eq)]
pub struct TableMeta {
    pub doctype: &'static str,
    pub table: &'static str,
    /// Every column of the table, in Frappe's column order (standard columns first).
    pub columns: &'static [Column],
}

impl TableMeta {
    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// A child table field of a DocType (`scopes`, `query_parameters`).
#[derive(Debug, PartialEq, Eq)]
pub struct ChildField {
    pub fieldname: &'static str,
    pub label: &'static str,
    pub table: &'static TableMeta,
}

/// Which DocType a [`DocMeta`] describes: it chooses the DocType's own rules (naming,
/// permissions, validation, hooks) in `src/doctype/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocKind {
    ConnectedApp,
    TokenCache,
}

/// A DocType served by this service.
#[derive(Debug, PartialEq, Eq)]
pub struct DocMeta {
    pub kind: DocKind,
    /// Frappe's `track_changes`: a save that changes something writes a Version.
    pub track_changes: bool,
    pub parent: &'static TableMeta,
    pub children: &'static [ChildField],
}

impl DocMeta {
    pub fn doctype(&self) -> &'static str {
        self.parent.doctype
    }

    /// The child table whose DocType or table name is given (`OAuth Scope`, `tabOAuth Scope`).
    pub fn child_by_doctype(&self, name: &str) -> Option<&'static ChildField> {
        self.children
            .iter()
            .find(|c| c.table.doctype == name || c.table.table == name)
    }

    pub fn child_by_field(&self, fieldname: &str) -> Option<&'static ChildField> {
        self.children.iter().find(|c| c.fieldname == fieldname)
    }
}

use ColumnKind::{Data, Datetime, Int, Password};

macro_rules! standard_columns {
    ($($rest:expr),* $(,)?) => {
        &[
            col("name", Data, "ID"),
            col("creation", Datetime, "Created On"),
            col("modified", Datetime, "Last Updated On"),
            col("modified_by", Data, "Last Updated By"),
            col("owner", Data, "Created By"),
            col("docstatus", Int, "Document Status"),
            col("idx", Int, "Index"),
            $($rest,)*
        ]
    };
}

pub static CONNECTED_APP_TABLE: TableMeta = TableMeta {
    doctype: "Connected App",
    table: "tabConnected App",
    columns: standard_columns![
        req("provider_name", Data, "Provider Name"),
        col("openid_configuration", Data, "OpenID Configuration"),
        col("client_id", Data, "Client Id"),
        col("redirect_uri", Data, "Redirect URI"),
        col("client_secret", Password, "Client Secret"),
        col("authorization_uri", Data, "Authorization URI"),
        col("token_uri", Data, "Token URI"),
        col("revocation_uri", Data, "Revocation URI"),
        col("userinfo_uri", Data, "Userinfo URI"),
        col("introspection_uri", Data, "Introspection URI"),
        col("_user_tags", Data, "User Tags"),
        col("_comments", Data, "Comments"),
        col("_assign", Data, "Assigned To"),
        col("_liked_by", Data, "Liked By"),
    ],
};

pub static TOKEN_CACHE_TABLE: TableMeta = TableMeta {
    doctype: "Token Cache",
    table: "tabToken Cache",
    columns: standard_columns![
        col("user", Data, "User"),
        col("connected_app", Data, "Connected App"),
        col("provider_name", Data, "Provider Name"),
        col("access_token", Password, "Access Token"),
        col("refresh_token", Password, "Refresh Token"),
        col("expires_in", Int, "Expires In"),
        col("state", Data, "State"),
        col("success_uri", Data, "Success URI"),
        col("token_type", Data, "Token Type"),
        col("_user_tags", Data, "User Tags"),
        col("_comments", Data, "Comments"),
        col("_assign", Data, "Assigned To"),
        col("_liked_by", Data, "Liked By"),
    ],
};

pub static OAUTH_SCOPE_TABLE: TableMeta = TableMeta {
    doctype: "OAuth Scope",
    table: "tabOAuth Scope",
    columns: standard_columns![
        col("scope", Data, "Scope"),
        col("parent", Data, "Parent"),
        col("parentfield", Data, "Parent Field"),
        col("parenttype", Data, "Parent Type"),
    ],
};

pub static QUERY_PARAMETERS_TABLE: TableMeta = TableMeta {
    doctype: "Query Parameters",
    table: "tabQuery Parameters",
    columns: standard_columns![
        req("key", Data, "Key"),
        req("value", Data, "Value"),
        col("parent", Data, "Parent"),
        col("parentfield", Data, "Parent Field"),
        col("parenttype", Data, "Parent Type"),
    ],
};

pub static CONNECTED_APP: DocMeta = DocMeta {
    kind: DocKind::ConnectedApp,
    track_changes: true,
    parent: &CONNECTED_APP_TABLE,
    children: &[
        ChildField {
            fieldname: "scopes",
            label: "Scopes",
            table: &OAUTH_SCOPE_TABLE,
        },
        ChildField {
            fieldname: "query_parameters",
            label: "Query Parameters",
            table: &QUERY_PARAMETERS_TABLE,
        },
    ],
};

pub static TOKEN_CACHE: DocMeta = DocMeta {
    kind: DocKind::TokenCache,
    track_changes: false,
    parent: &TOKEN_CACHE_TABLE,
    children: &[ChildField {
        fieldname: "scopes",
        label: "Scopes",
        table: &OAUTH_SCOPE_TABLE,
    }],
};

/// The DocType served under this name, if any.
pub fn doc_meta(doctype: &str) -> Option<&'static DocMeta> {
    match doctype {
        "Connected App" => Some(&CONNECTED_APP),
        "Token Cache" => Some(&TOKEN_CACHE),
        _ => None,
    }
}
