//! MySQL / MariaDB specifics: a named `GET_LOCK` for the migration lock, UTC for timestamps,
//! and `lock_wait_timeout` for DDL.
//!
//! MySQL commits DDL implicitly, so migrations never run in a transaction here: the manager
//! records a migration before running it and marks it completed after, and a failure leaves
//! a record that blocks further runs until it is repaired.

use crate::error::Error;
use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, MySqlConnection};
use std::time::Duration;

/// Session settings: timestamps in UTC.
pub(super) async fn prepare_session(conn: &mut MySqlConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql("SET time_zone = '+00:00'")
        .execute(&mut *conn)
        .await
        .map(drop)
}

/// Sets `lock_wait_timeout` (whole seconds, at least 1) for metadata locks taken by DDL.
pub(super) async fn set_lock_timeout(
    conn: &mut MySqlConnection,
    timeout: Duration,
) -> Result<(), Error> {
    sqlx::raw_sql(AssertSqlSafe(format!(
        "SET SESSION lock_wait_timeout = {}",
        timeout.as_secs().max(1)
    )))
    .execute(&mut *conn)
    .await
    .map(drop)
    .map_err(Error::db("setting lock_wait_timeout"))
}

/// Takes the named lock for `table`, waiting at most `timeout`; `Ok(None)` on timeout.
pub(super) async fn lock(
    conn: &mut MySqlConnection,
    table: &str,
    timeout: Duration,
) -> Result<Option<String>, Error> {
    let context = "taking the MySQL named lock";
    let db: Option<String> = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(&mut *conn)
        .await
        .map_err(Error::db(context))?;
    let digest = Sha256::digest(format!("{}\0{table}", db.unwrap_or_default()));
    // Lock names are limited to 64 characters.
    let name = format!(
        "engine-ops-migrate:{}",
        &crate::checksum::hex(&digest)[..40]
    );
    let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, ?)")
        .bind(&name)
        .bind(timeout.as_secs_f64())
        .fetch_one(&mut *conn)
        .await
        .map_err(Error::db(context))?;
    Ok((got == Some(1)).then_some(name))
}

/// Releases the named lock.
pub(super) async fn unlock(conn: &mut MySqlConnection, name: &str) -> Result<(), Error> {
    sqlx::query("SELECT RELEASE_LOCK(?)")
        .bind(name)
        .execute(&mut *conn)
        .await
        .map(drop)
        .map_err(Error::db("releasing the MySQL named lock"))
}
