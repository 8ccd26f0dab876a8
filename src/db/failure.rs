//! How a diesel error becomes a Frappe exception: a lost conflict and a lost connection are
//! typed ([`DbFailure`]) so that [`super::Db::write`] can run the transaction again; a
//! duplicate key is Frappe's 409; anything else an opaque 500 that keeps the diesel error as
//! its cause.

use diesel::result::{DatabaseErrorKind, Error};

use crate::error::{AppError, DbFailure, ExcType};

/// What a diesel error means to the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Conflict,
    ConnectionLost,
    Duplicate,
    Internal,
}

fn classify(e: &Error) -> Kind {
    match e {
        // A connection whose transaction state is unknown: dropped, never reused.
        Error::BrokenTransactionManager => Kind::ConnectionLost,
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => Kind::Conflict,
        Error::DatabaseError(_, info) if is_conflict_message(info.message()) => Kind::Conflict,
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => Kind::ConnectionLost,
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => Kind::Duplicate,
        Error::DatabaseError(_, info) if is_connection_message(info.message()) => {
            Kind::ConnectionLost
        }
        Error::SerializationError(_) | Error::DeserializationError(_) => Kind::Internal,
        _ if is_conflict_message(&e.to_string()) => Kind::Conflict,
        _ if is_connection_message(&e.to_string()) => Kind::ConnectionLost,
        _ => Kind::Internal,
    }
}

/// A diesel error: lost connections become 503, lost conflicts 503 `QueryDeadlockError`
/// (after `Db::write`'s retries), duplicates 409, everything else an opaque 500.
impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        // Galera may answer the ROLLBACK after a conflict at COMMIT with the conflict
        // again; what counts is why the commit failed, and the connection is dropped.
        if let Error::RollbackErrorOnCommit { commit_error, .. } = &e {
            let mut err = build(classify(commit_error), e);
            if err.db_failure.is_none() {
                err.db_failure = Some(DbFailure::Connection);
            }
            return err;
        }
        build(classify(&e), e)
    }
}

fn build(kind: Kind, e: Error) -> AppError {
    match kind {
        Kind::Conflict => AppError::conflict(e),
        Kind::ConnectionLost => {
            let mut err = AppError::unavailable(e);
            err.db_failure = Some(DbFailure::Connection);
            err
        }
        Kind::Duplicate => {
            let mut err = AppError::thrown(
                ExcType::DuplicateEntryError,
                "A document with this name already exists.",
            )
            .caused_by(e);
            err.exception = Some("frappe.exceptions.DuplicateEntryError".into());
            err
        }
        Kind::Internal => AppError::internal(e),
    }
}

/// A Galera certification failure or an InnoDB deadlock (`1213`), or a lock wait timeout
/// (`1205`): the server rolled the transaction back; running it again can succeed.
fn is_conflict_message(m: &str) -> bool {
    let m = m.to_ascii_lowercase();
    // InnoDB says "Deadlock found when trying to get lock"; Galera "WSREP detected
    // deadlock/conflict and aborted the transaction".
    m.contains("deadlock") || m.contains("lock wait timeout exceeded")
}

/// The connection or its node cannot serve queries: lost, refused, or a Galera node without
/// quorum (`1047 WSREP has not yet prepared node for application use`).
fn is_connection_message(m: &str) -> bool {
    let m = m.to_ascii_lowercase();
    m.contains("wsrep has not yet prepared node")
        || m.contains("server has gone away")
        || m.contains("lost connection")
        || m.contains("can't connect")
        || m.contains("connection refused")
}
