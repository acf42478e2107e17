//! PostgreSQL specifics: a session-level advisory lock, `lock_timeout` for DDL, and the
//! INVALID indexes a killed `CREATE INDEX CONCURRENTLY` leaves behind.
//!
//! The advisory lock key is derived from the database, the schema and the ledger table, so
//! two schemas of one database migrate independently. A session lock dies with its
//! connection: a runner that crashes or is killed releases it when the server notices the
//! closed socket.

use crate::error::Error;
use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, PgConnection, Row};
use std::time::Duration;

fn millis(d: Duration) -> u128 {
    d.as_millis().max(1)
}

/// Session settings. `client_connection_check_interval` (PostgreSQL 14+) makes the server
/// notice a runner that died in the middle of a long statement within a second, instead of
/// when the statement ends: the session, its transaction and its advisory lock go with it,
/// so other runners do not wait for a dead one. Older servers do not know the setting; the
/// lock is then released when the statement ends.
pub(super) async fn prepare_session(conn: &mut PgConnection) {
    if let Err(e) = sqlx::raw_sql("SET client_connection_check_interval = '1s'")
        .execute(&mut *conn)
        .await
    {
        tracing::debug!(error = %e, "client_connection_check_interval is not available");
    }
}

/// Sets `lock_timeout`: how long one statement may wait for a lock.
pub(super) async fn set_lock_timeout(
    conn: &mut PgConnection,
    timeout: Duration,
) -> Result<(), Error> {
    sqlx::raw_sql(AssertSqlSafe(format!(
        "SET lock_timeout = '{}ms'",
        millis(timeout)
    )))
    .execute(&mut *conn)
    .await
    .map(drop)
    .map_err(Error::db("setting lock_timeout"))
}

/// Takes the advisory lock for `table`, waiting at most `timeout`; `Ok(None)` on timeout.
pub(super) async fn lock(
    conn: &mut PgConnection,
    table: &str,
    timeout: Duration,
) -> Result<Option<i64>, Error> {
    let context = "taking the PostgreSQL advisory lock";
    prepare_session(conn).await;
    let (db, schema): (String, String) =
        sqlx::query_as("SELECT current_database()::text, current_schema()::text")
            .fetch_one(&mut *conn)
            .await
            .map_err(Error::db(context))?;
    let digest = Sha256::digest(format!("engine-ops-migrate\0{db}\0{schema}\0{table}"));
    let key = i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    set_lock_timeout(conn, timeout).await?;
    let taken = sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(key)
        .execute(&mut *conn)
        .await;
    match taken {
        Ok(_) => Ok(Some(key)),
        Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("55P03") => {
            Ok(None)
        }
        Err(e) => Err(Error::db(context)(e)),
    }
}

/// Releases the advisory lock.
pub(super) async fn unlock(conn: &mut PgConnection, key: i64) -> Result<(), Error> {
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .execute(&mut *conn)
        .await
        .map(drop)
        .map_err(Error::db("releasing the PostgreSQL advisory lock"))
}

/// Schema-qualified names of INVALID indexes in the current schema. One round trip (the
/// simple query protocol: no parameters).
pub(super) async fn invalid_indexes(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::raw_sql(
        "SELECT n.nspname || '.' || c.relname FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE NOT i.indisvalid AND n.nspname = current_schema() ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|row| row.try_get(0)).collect()
}

/// Whether `table` (a checked identifier: letters, digits, `_`) resolves to a table through
/// the search path, as the unqualified name in later statements will. One round trip.
pub(super) async fn table_exists(
    conn: &mut PgConnection,
    table: &str,
) -> Result<bool, sqlx::Error> {
    debug_assert!(table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    let row = sqlx::raw_sql(AssertSqlSafe(format!(
        "SELECT to_regclass('{table}') IS NOT NULL"
    )))
    .fetch_one(&mut *conn)
    .await?;
    row.try_get(0)
}

/// The 1-based character position a PostgreSQL error points at in the query sent, if any.
pub(super) fn error_position(err: &sqlx::Error) -> Option<usize> {
    let pg = err
        .as_database_error()?
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
    match pg.position()? {
        sqlx::postgres::PgErrorPosition::Original(pos) => Some(pos),
        _ => None,
    }
}
